//! ApiCredentials for the built-in profiles reach Ready with the operator
//! running as a process, and a login with only what the Secrets hold
//! succeeds; no secret value reaches status, Events or the operator's log.

mod support;

use otpilot_sim::Vendor;
use otpilot_tests::TestCluster;
use support::*;

async fn reaches_ready_and_logs_in(vendor_kind: Vendor, profile: &str) {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace(&format!("builtin-{profile}"))
        .await
        .expect("namespace");
    let sim = vendor(vendor_kind).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(&ns, &credential("bot", profile, &sim.base_url(), "Retain")).await;

    let ready = wait_for_ready(&ns, "bot", &operator).await;
    let status = ready.status.as_ref().expect("status");
    assert_eq!(status.observed_generation, ready.metadata.generation);
    assert_eq!(
        condition(&ready, "Enrolled"),
        Some(("True".into(), "EnrollmentComplete".into()))
    );
    let account = sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert!(account.enrolled, "the vendor shows MFA on");

    // The checkpoint is gone once enrolled; recovery codes stay (Acreto has none).
    let recovery = secret_data(&ns, "bot-recovery").await;
    assert!(!recovery.contains_key("enrollment-checkpoint"));
    if profile != "acreto" {
        assert!(
            recovery.contains_key("recovery-codes"),
            "{profile}: recovery codes stored"
        );
        assert_eq!(
            status.recovery_codes_remaining,
            Some(u32::try_from(account.recovery_codes_left).expect("small"))
        );
        let metrics = operator.metrics().await;
        let want = format!(
            "otpilot_operator_recovery_codes_remaining{{namespace=\"{}\",name=\"bot\"}} {}",
            ns.name(),
            account.recovery_codes_left
        );
        assert!(metrics.lines().any(|l| l == want), "{want} in\n{metrics}");
    }
    login_with_secrets(&ns, "bot").await;

    let values = secret_values(&ns, "bot").await;
    assert!(
        values.len() >= 3,
        "password, API key and seed are scanned for"
    );
    assert_no_secret_leaks(&ns, &operator, &values).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn goaxr_credential_reaches_ready_and_its_secrets_log_in() {
    reaches_ready_and_logs_in(Vendor::Goaxr, "goaxr").await;
}

#[tokio::test]
async fn conduit_credential_reaches_ready_and_its_secrets_log_in() {
    reaches_ready_and_logs_in(Vendor::Conduit, "conduit").await;
}

#[tokio::test]
async fn acreto_credential_reaches_ready_and_its_secrets_log_in() {
    reaches_ready_and_logs_in(Vendor::Acreto, "acreto").await;
}

#[tokio::test]
async fn cryptr_credential_reaches_ready_and_its_secrets_log_in() {
    reaches_ready_and_logs_in(Vendor::Cryptr, "cryptr").await;
}
