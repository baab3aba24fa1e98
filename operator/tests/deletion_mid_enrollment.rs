//! `deletionPolicy: Disable` for a credential deleted while its enrollment
//! was under way: the operator was killed right after the vendor turned MFA
//! on (before it recorded that), or right before; a fresh operator looks
//! with the checkpoint's secret and turns MFA off only if it is on.

mod support;

use std::time::{Duration, Instant};

use kube::api::DeleteParams;
use otpilot_api::ApiCredential;
use otpilot_sim::Vendor;
use otpilot_tests::TestCluster;
use support::*;

async fn deleted_after_a_kill_at(point: &str, mfa_on_before_deletion: bool) {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("delete-mid-enrollment")
        .await
        .expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &sim.base_url(), "Disable"),
    )
    .await;
    let mut first = Operator::start_with(ns.name(), "first", &[("OTPILOT_FAILPOINT", point)]).await;
    let needle = format!("\"failpoint\":\"{point}\"");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !first.log_text().contains(&needle) {
        assert!(
            Instant::now() < deadline,
            "{point} not reached\n{}",
            first.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill();
    let admin = sim.admin().expect("admin");
    assert_eq!(
        admin.account(USERNAME).await.expect("account").enrolled,
        mfa_on_before_deletion,
        "{point}"
    );

    ns.api::<ApiCredential>()
        .delete("bot", &DeleteParams::default())
        .await
        .expect("delete");
    let operator = Operator::start_with(ns.name(), "second", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while ns
        .api::<ApiCredential>()
        .get_opt("bot")
        .await
        .expect("get")
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "{point}: the ApiCredential is not deleted\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        !admin.account(USERNAME).await.expect("account").enrolled,
        "{point}: MFA is off at the vendor"
    );
}

#[tokio::test]
async fn killed_after_the_vendor_turned_mfa_on_then_deleted_turns_it_off() {
    // Conduit's step 2 is `verify`: MFA is on once it answered.
    deleted_after_a_kill_at("enroll-answered-step-2", true).await;
}

#[tokio::test]
async fn killed_before_mfa_was_on_then_deleted_leaves_nothing_to_turn_off() {
    deleted_after_a_kill_at("enroll-before-step-2", false).await;
}
