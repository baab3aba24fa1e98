//! Bad input ends in a clear condition, no crash, nothing deleted, and the
//! credential recovers on its own once the input is fixed.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use otpilot_api::{ApiCredential, ClusterMfaProfile};
use otpilot_sim::Vendor;
use otpilot_tests::{TestCluster, TestNamespace};
use support::*;

async fn setup(test: &str) -> (TestCluster, TestNamespace, otpilot_sim::SimHandle) {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace(test).await.expect("namespace");
    let sim = vendor(Vendor::Goaxr).await;
    create_server_ca(&ns, &sim).await;
    (cluster, ns, sim)
}

async fn wait_for_reason(
    ns: &TestNamespace,
    operator: &Operator,
    type_: &str,
    reason: &str,
) -> ApiCredential {
    wait_for(
        ns,
        "bot",
        Duration::from_secs(60),
        operator,
        &format!("{type_} reason {reason}"),
        |c| condition(c, type_).is_some_and(|(s, r)| s == "False" && r == reason),
    )
    .await
}

fn message(c: &ApiCredential, type_: &str) -> String {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|x| x.type_ == type_))
        .map(|x| x.message.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn missing_password_secret_is_reported_and_recovers_once_created() {
    let (_cluster, ns, sim) = setup("missing-secret").await;
    let mut operator = Operator::start(ns.name()).await;
    create_credential(&ns, &credential("bot", "goaxr", &sim.base_url(), "Retain")).await;

    let c = wait_for_reason(&ns, &operator, "Enrolled", "SecretNotFound").await;
    let msg = message(&c, "Enrolled");
    assert!(
        msg.contains(LOGIN_SECRET) && msg.contains("create it"),
        "{msg}"
    );
    assert_eq!(
        condition(&c, "Ready").map(|x| x.1),
        Some("SecretNotFound".into())
    );
    assert!(operator.try_wait().is_none(), "the operator keeps running");
    // Nothing was sent to the vendor.
    let account = sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert!(!account.enrolled && account.pending_totp_secret_base32.is_none());

    create_login_secret(&ns).await;
    wait_for_ready(&ns, "bot", &operator).await;
    login_with_secrets(&ns, "bot").await;
    let values = secret_values(&ns, "bot").await;
    assert_no_secret_leaks(&ns, &operator, &values).await;
}

#[tokio::test]
async fn missing_key_in_the_password_secret_is_reported_and_recovers_once_added() {
    let (_cluster, ns, sim) = setup("missing-key").await;
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": { "name": LOGIN_SECRET },
        "stringData": { "api-key": API_KEY },
    }))
    .expect("Secret");
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");
    let operator = Operator::start(ns.name()).await;
    create_credential(&ns, &credential("bot", "goaxr", &sim.base_url(), "Retain")).await;

    let c = wait_for_reason(&ns, &operator, "Enrolled", "SecretKeyMissing").await;
    let msg = message(&c, "Enrolled");
    assert!(
        msg.contains("'password'") && msg.contains("missing"),
        "{msg}"
    );

    let patch = serde_json::json!({ "stringData": { "password": PASSWORD } });
    ns.api::<Secret>()
        .patch(LOGIN_SECRET, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("add the key");
    wait_for_ready(&ns, "bot", &operator).await;
    login_with_secrets(&ns, "bot").await;
}

#[tokio::test]
async fn unknown_profile_is_reported_and_a_new_cluster_profile_of_that_name_is_picked_up() {
    let (cluster, ns, sim) = setup("unknown-profile").await;
    create_login_secret(&ns).await;
    let operator = Operator::start(ns.name()).await;
    let profile_name = format!("acme-{}", ns.name().rsplit('-').next().unwrap_or("x"));
    create_credential(
        &ns,
        &credential("bot", &profile_name, &sim.base_url(), "Retain"),
    )
    .await;

    let c = wait_for_reason(&ns, &operator, "Enrolled", "ProfileNotFound").await;
    assert!(message(&c, "Enrolled").contains(&profile_name));

    // A ClusterMfaProfile of that name (goaxr's flows) makes it work.
    let spec = otpilot_profile::builtin::get("goaxr")
        .expect("goaxr")
        .spec()
        .clone();
    let profile = ClusterMfaProfile::new(
        &profile_name,
        otpilot_api::ClusterMfaProfileSpec { profile: spec },
    );
    let profiles = kube::Api::<ClusterMfaProfile>::all(cluster.client());
    profiles
        .create(&PostParams::default(), &profile)
        .await
        .expect("create ClusterMfaProfile");
    wait_for_ready(&ns, "bot", &operator).await;
    let valid = profiles.get(&profile_name).await.expect("get profile");
    let valid = valid.status.expect("status").conditions;
    assert!(
        valid
            .iter()
            .any(|c| c.type_ == "Valid" && c.status == "True"),
        "{valid:?}"
    );
    profiles
        .delete(&profile_name, &Default::default())
        .await
        .expect("delete ClusterMfaProfile");
}

#[tokio::test]
async fn unreachable_base_url_is_reported_and_recovers_once_fixed() {
    let (_cluster, ns, sim) = setup("unreachable").await;
    create_login_secret(&ns).await;
    let operator = Operator::start(ns.name()).await;
    // Port 9 on loopback: nothing listens there.
    create_credential(
        &ns,
        &credential("bot", "goaxr", "https://127.0.0.1:9", "Retain"),
    )
    .await;

    let c = wait_for_reason(&ns, &operator, "Enrolled", "VendorUnreachable").await;
    assert!(message(&c, "Enrolled").contains("could not reach the vendor"));

    let patch = serde_json::json!({ "spec": { "baseUrl": sim.base_url() } });
    ns.api::<ApiCredential>()
        .patch("bot", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("fix baseUrl");
    let ready = wait_for_ready(&ns, "bot", &operator).await;
    assert_eq!(
        ready.status.and_then(|s| s.observed_generation),
        ready.metadata.generation
    );
    login_with_secrets(&ns, "bot").await;
}

#[tokio::test]
async fn missing_server_ca_config_map_is_reported_and_recovers_once_created() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("missing-ca").await.expect("namespace");
    let sim = vendor(Vendor::Goaxr).await;
    create_login_secret(&ns).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(&ns, &credential("bot", "goaxr", &sim.base_url(), "Retain")).await;

    let c = wait_for_reason(&ns, &operator, "Enrolled", "ConfigMapNotFound").await;
    let msg = message(&c, "Enrolled");
    assert!(msg.contains(CA_CONFIG_MAP), "names the ConfigMap: {msg}");
    let account = sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert!(!account.enrolled, "nothing was sent to the vendor");

    create_server_ca(&ns, &sim).await;
    wait_for_ready(&ns, "bot", &operator).await;
}

#[tokio::test]
async fn an_unreadable_enrollment_checkpoint_is_reported_and_kept() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("bad-checkpoint")
        .await
        .expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    // An enrollment stopped after its first checkpoint (the operator killed there).
    let mut first = Operator::start_with(
        ns.name(),
        "otpilot-operator",
        &[("OTPILOT_FAILPOINT", "enroll-before-step-0")],
    )
    .await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &sim.base_url(), "Retain"),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !first
        .log_text()
        .contains("\"failpoint\":\"enroll-before-step-0\"")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "failpoint not reached"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill();
    // Someone edits the checkpoint by hand.
    let garbage =
        serde_json::json!({ "stringData": { "enrollment-checkpoint": "{not a checkpoint" } });
    ns.api::<Secret>()
        .patch(
            "bot-recovery",
            &PatchParams::default(),
            &Patch::Merge(&garbage),
        )
        .await
        .expect("corrupt the checkpoint");

    let operator = Operator::start(ns.name()).await;
    let c = wait_for_reason(&ns, &operator, "Enrolled", "CheckpointUnreadable").await;
    let msg = message(&c, "Enrolled");
    assert!(msg.contains("checkpoint"), "says what is unreadable: {msg}");
    let kept = secret_data(&ns, "bot-recovery").await;
    assert_eq!(
        kept.get("enrollment-checkpoint").map(Vec::as_slice),
        Some(b"{not a checkpoint".as_slice()),
        "nothing is thrown away: a person decides"
    );
}
