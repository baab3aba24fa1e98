//! The recovery-code path, against the operator process and the simulator:
//! the seed in the runtime Secret is corrupted by hand, so the vendor
//! refuses its codes. The operator spends exactly ONE recovery code, then
//! re-enrolls where the vendor requires it and the profile can (Cryptr), or
//! says on the status why a person must act (AUDD).

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use otpilot_api::api_credential::EnrollmentState;
use otpilot_sim::Vendor;
use otpilot_tests::{TestCluster, TestNamespace};
use support::*;

/// A valid base32 secret the vendor never saw.
const WRONG_SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

async fn corrupt_seed(ns: &TestNamespace, credential: &str) {
    let patch = serde_json::json!({ "stringData": { "totp-secret": WRONG_SEED } });
    ns.api::<Secret>()
        .patch(
            &format!("{credential}-runtime"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("corrupt the runtime Secret's seed");
}

/// Corrupts the seed and keeps it corrupted until `noticed`: a pass that
/// read the runtime Secret just before the edit may write the old seed back.
async fn corrupt_seed_until(
    ns: &TestNamespace,
    old_seed: &str,
    operator: &Operator,
    noticed: impl AsyncFn() -> bool,
) {
    corrupt_seed(ns, "bot").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !noticed().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the corrupted seed was not noticed\n{}",
            operator.log_text()
        );
        if runtime_seed(ns, "bot").await == old_seed {
            corrupt_seed(ns, "bot").await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn has_event(ns: &TestNamespace, reason: &str) -> bool {
    ns.api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items
        .iter()
        .any(|e| e.reason.as_deref() == Some(reason))
}

async fn codes_left_at_vendor(sim: &otpilot_sim::SimHandle) -> usize {
    sim.admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account")
        .recovery_codes_left
}

#[tokio::test]
async fn audd_refused_seed_spends_one_recovery_code_and_says_a_person_must_reset_mfa() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("recovery-audd").await.expect("namespace");
    let sim = mtls_vendor(Vendor::Audd).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    let (ca, ca_pem) = create_client_ca(&cluster, &ns, &operator).await;
    sim.admin()
        .expect("admin")
        .register_client_ca(&ca_pem)
        .await
        .expect("register");
    create_credential(
        &ns,
        &mtls_credential("bot", "audd", &sim.base_url(), &ca, "2160h", "720h"),
    )
    .await;
    wait_for_ready(&ns, "bot", &operator).await;
    let values = secret_values(&ns, "bot").await;
    let before = codes_left_at_vendor(&sim).await;
    let old_seed = runtime_seed(&ns, "bot").await;

    corrupt_seed_until(&ns, &old_seed, &operator, async || {
        let c = ns
            .api::<otpilot_api::ApiCredential>()
            .get("bot")
            .await
            .expect("get");
        condition(&c, "Enrolled") == Some(("False".into(), "ReenrollRequired".into()))
    })
    .await;
    let refused = wait_for(
        &ns,
        "bot",
        Duration::from_secs(90),
        &operator,
        "Enrolled=False ReenrollRequired",
        |c| condition(c, "Enrolled") == Some(("False".into(), "ReenrollRequired".into())),
    )
    .await;
    let status = refused.status.as_ref().expect("status");
    assert_eq!(status.enrollment, Some(EnrollmentState::ReenrollRequired));
    let message = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Enrolled")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("Reset MFA for the account at the vendor"),
        "{message}"
    );
    assert_eq!(
        codes_left_at_vendor(&sim).await,
        before - 1,
        "one code spent"
    );
    assert_eq!(
        status.recovery_codes_remaining,
        Some(u32::try_from(before - 1).expect("small"))
    );
    let recovery = secret_data(&ns, "bot-recovery").await;
    assert!(recovery.contains_key("refused-totp-secret"));

    // Later passes (the Secret writes and a spec change re-trigger it) never
    // spend a second code on the same decision.
    let poke = serde_json::json!({ "spec": { "variables": { "poke": "1" } } });
    ns.api::<otpilot_api::ApiCredential>()
        .patch("bot", &PatchParams::default(), &Patch::Merge(&poke))
        .await
        .expect("poke");
    wait_for(
        &ns,
        "bot",
        Duration::from_secs(30),
        &operator,
        "the new generation observed",
        |c| c.status.as_ref().and_then(|s| s.observed_generation) == c.metadata.generation,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        codes_left_at_vendor(&sim).await,
        before - 1,
        "still one code spent"
    );

    let mut values = values;
    values.push(WRONG_SEED.to_owned());
    assert_no_secret_leaks(&ns, &operator, &values).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn cryptr_refused_seed_spends_one_recovery_code_and_re_enrolls() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("recovery-cryptr")
        .await
        .expect("namespace");
    let sim = vendor(Vendor::Cryptr).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(&ns, &credential("bot", "cryptr", &sim.base_url(), "Retain")).await;
    wait_for_ready(&ns, "bot", &operator).await;
    let old_seed = runtime_seed(&ns, "bot").await;
    let mut values = secret_values(&ns, "bot").await;

    corrupt_seed_until(&ns, &old_seed, &operator, async || {
        has_event(&ns, "RecoveredWithRecoveryCode").await
    })
    .await;
    let ready = wait_for_ready(&ns, "bot", &operator).await;
    let seed = runtime_seed(&ns, "bot").await;
    assert_ne!(seed, WRONG_SEED);
    assert_ne!(seed, old_seed, "a new enrollment, a new seed");
    // Forced re-enrollment hands out a new set of codes.
    let left = codes_left_at_vendor(&sim).await;
    assert_eq!(left, 5);
    assert_eq!(
        ready
            .status
            .as_ref()
            .and_then(|s| s.recovery_codes_remaining),
        Some(5)
    );
    let recovery = secret_data(&ns, "bot-recovery").await;
    for key in [
        "refused-totp-secret",
        "reenroll-request",
        "enrollment-checkpoint",
    ] {
        assert!(!recovery.contains_key(key), "{key} removed");
    }
    assert_eq!(
        ready
            .status
            .as_ref()
            .and_then(|s| s.handled_reenroll_request.clone()),
        None,
        "a recovery is not a person's request"
    );
    login_with_secrets(&ns, "bot").await;

    values.extend(secret_values(&ns, "bot").await);
    values.push(WRONG_SEED.to_owned());
    assert_no_secret_leaks(&ns, &operator, &values).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn audd_runtime_secret_deleted_by_hand_is_not_a_silent_second_enrollment() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("runtime-deleted")
        .await
        .expect("namespace");
    let sim = mtls_vendor(Vendor::Audd).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    let (ca, ca_pem) = create_client_ca(&cluster, &ns, &operator).await;
    let admin = sim.admin().expect("admin");
    admin.register_client_ca(&ca_pem).await.expect("register");
    create_credential(
        &ns,
        &mtls_credential("bot", "audd", &sim.base_url(), &ca, "2160h", "720h"),
    )
    .await;
    wait_for_ready(&ns, "bot", &operator).await;
    let values = secret_values(&ns, "bot").await;
    let at_vendor = admin.account(USERNAME).await.expect("account");

    ns.api::<Secret>()
        .delete("bot-runtime", &Default::default())
        .await
        .expect("delete the runtime Secret");
    let stuck = wait_for(
        &ns,
        "bot",
        Duration::from_secs(90),
        &operator,
        "Enrolled=False ReenrollRequired",
        |c| condition(c, "Enrolled") == Some(("False".into(), "ReenrollRequired".into())),
    )
    .await;
    let message = stuck
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Enrolled"))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.contains("already on"), "{message}");
    let after = admin.account(USERNAME).await.expect("account");
    assert!(after.enrolled);
    assert_eq!(
        after.totp_secret_base32, at_vendor.totp_secret_base32,
        "the vendor keeps its secret"
    );
    let runtime = secret_data(&ns, "bot-runtime").await;
    assert!(
        !runtime.contains_key("totp-secret"),
        "no seed the vendor does not know is handed to sidecars"
    );

    // No further code is sent for that secret, whatever triggers a pass.
    let poke = serde_json::json!({ "spec": { "variables": { "poke": "1" } } });
    ns.api::<otpilot_api::ApiCredential>()
        .patch("bot", &PatchParams::default(), &Patch::Merge(&poke))
        .await
        .expect("poke");
    wait_for(
        &ns,
        "bot",
        Duration::from_secs(30),
        &operator,
        "the new generation observed",
        |c| c.status.as_ref().and_then(|s| s.observed_generation) == c.metadata.generation,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = admin.account(USERNAME).await.expect("account");
    assert_eq!(
        later.failed_attempts, after.failed_attempts,
        "no new attempt"
    );

    assert_no_secret_leaks(&ns, &operator, &values).await;
    sim.shutdown().await;
}
