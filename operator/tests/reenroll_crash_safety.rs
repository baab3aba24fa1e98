//! A re-enrollment on request survives a SIGKILL of the operator process at
//! every point (before and after turning MFA off, before and after each
//! enroll step and its Secret write, between the runtime Secret write and
//! the clean-up): in the end the vendor verifies with the seed the runtime
//! Secret holds, the old seed is refused, the request is recorded once, and
//! the recovery codes the vendor holds are the ones stored.

mod support;

use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use otpilot_api::ApiCredential;
use otpilot_sim::Vendor;
use otpilot_tests::TestCluster;
use support::*;

fn kill_points(profile: &str) -> Vec<String> {
    let steps = otpilot_profile::builtin::get(profile)
        .expect("built-in profile")
        .spec()
        .enroll
        .steps
        .len();
    let mut points = Vec::new();
    if profile == "conduit" {
        points.push("reenroll-before-disable".to_owned());
        points.push("reenroll-after-disable".to_owned());
    }
    points.push("enroll-before-first-checkpoint".to_owned());
    for i in 0..steps {
        points.push(format!("enroll-before-step-{i}"));
        points.push(format!("enroll-after-step-{i}"));
    }
    points.push("enroll-after-runtime-write".to_owned());
    points
}

async fn wait_for_failpoint(operator: &Operator, point: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let needle = format!("\"failpoint\":\"{point}\"");
    while !operator.log_text().contains(&needle) {
        assert!(
            Instant::now() < deadline,
            "failpoint {point} not reached:\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reenrollment_survives_a_kill_at_every_point(vendor_kind: Vendor, profile: &str) {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace(&format!("reenroll-crash-{profile}"))
        .await
        .expect("namespace");
    let sim = vendor(vendor_kind).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    create_credential(&ns, &credential("bot", profile, &sim.base_url(), "Retain")).await;
    let mut setup = Operator::start_with(ns.name(), "setup", &[]).await;
    wait_for_ready(&ns, "bot", &setup).await;
    setup.kill();
    let old_seed = runtime_seed(&ns, "bot").await;

    let patch =
        serde_json::json!({ "metadata": { "annotations": { "otpilot.dev/reenroll": "r1" } } });
    ns.api::<ApiCredential>()
        .patch("bot", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
    for (run, point) in kill_points(profile).iter().enumerate() {
        let lease = format!("run-{run}");
        let mut operator =
            Operator::start_with(ns.name(), &lease, &[("OTPILOT_FAILPOINT", point)]).await;
        wait_for_failpoint(&operator, point).await;
        operator.kill();
    }
    let operator = Operator::start_with(ns.name(), "final", &[]).await;
    let done = wait_for(
        &ns,
        "bot",
        Duration::from_secs(90),
        &operator,
        "request r1 handled and Ready",
        |c| {
            c.status
                .as_ref()
                .and_then(|s| s.handled_reenroll_request.as_deref())
                == Some("r1")
                && condition(c, "Ready").is_some_and(|(s, _)| s == "True")
        },
    )
    .await;
    let seed = runtime_seed(&ns, "bot").await;
    assert_ne!(seed, old_seed, "{profile}: a new seed");
    let account = sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert_eq!(account.totp_secret_base32.as_deref(), Some(seed.as_str()));
    assert_eq!(
        done.status
            .as_ref()
            .and_then(|s| s.recovery_codes_remaining),
        Some(u32::try_from(account.recovery_codes_left).expect("small"))
    );
    let recovery = secret_data(&ns, "bot-recovery").await;
    for key in [
        "enrollment-checkpoint",
        "reenroll-request",
        "reenroll-phase",
    ] {
        assert!(!recovery.contains_key(key), "{profile}: {key} removed");
    }
    login_with_secrets(&ns, "bot").await;
    assert!(
        try_login(&ns, "bot", Some(&old_seed)).await.is_err(),
        "{profile}: the old seed is refused"
    );
    let values = secret_values(&ns, "bot").await;
    assert_no_secret_leaks(&ns, &operator, &values).await;
}

#[tokio::test]
async fn cryptr_reenrollment_survives_a_kill_at_every_point() {
    reenrollment_survives_a_kill_at_every_point(Vendor::Cryptr, "cryptr").await;
}

#[tokio::test]
async fn conduit_reenrollment_survives_a_kill_at_every_point() {
    reenrollment_survives_a_kill_at_every_point(Vendor::Conduit, "conduit").await;
}
