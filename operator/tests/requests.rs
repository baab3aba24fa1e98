//! Requests made with annotations, against the operator process and the
//! simulator: `otpilot.dev/renew-certificate` issues a new client
//! certificate the vendor accepts; `otpilot.dev/reenroll` turns MFA over to
//! a new TOTP secret (the new one logs in, the old one is refused), or says
//! why the vendor cannot be re-enrolled. Each value is honoured once.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use otpilot_api::ApiCredential;
use otpilot_profile::FlowErrorKind;
use otpilot_sim::Vendor;
use otpilot_tests::{TestCluster, TestNamespace};
use support::*;

async fn annotate(ns: &TestNamespace, name: &str, key: &str, value: &str) {
    let patch = serde_json::json!({ "metadata": { "annotations": { key: value } } });
    ns.api::<ApiCredential>()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate the ApiCredential");
}

/// Reasons of the Events about `name`.
async fn event_reasons(ns: &TestNamespace, name: &str) -> Vec<String> {
    ns.api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

/// Waits for an Event about `name` with `reason` (published just after
/// the status write that records the request).
async fn wait_for_event(ns: &TestNamespace, name: &str, reason: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !event_reasons(ns, name).await.iter().any(|r| r == reason) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {reason} Event about {name}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_handled(
    ns: &TestNamespace,
    name: &str,
    operator: &Operator,
    field: fn(&otpilot_api::api_credential::ApiCredentialStatus) -> Option<&String>,
    value: &str,
) -> ApiCredential {
    wait_for(
        ns,
        name,
        Duration::from_secs(120),
        operator,
        &format!("request {value} handled and Ready"),
        |c| {
            c.status.as_ref().and_then(field).map(String::as_str) == Some(value)
                && condition(c, "Ready").is_some_and(|(s, _)| s == "True")
        },
    )
    .await
}

fn serial(pem: &[u8]) -> String {
    otpilot_pki::certificate_info(std::str::from_utf8(pem).expect("utf-8"))
        .expect("certificate")
        .serial
}

#[tokio::test]
async fn renew_request_issues_a_new_certificate_the_vendor_accepts_once_per_value() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("renew-request").await.expect("namespace");
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
    let first = serial(&secret_data(&ns, "bot-runtime").await["tls.crt"]);
    let seed = runtime_seed(&ns, "bot").await;
    // The sidecars' session key is made once and survives every rewrite.
    let session_key = secret_data(&ns, "bot-runtime").await["session-key"].clone();
    assert!(
        otpilot_api::session_key::SessionKey::from_text(&session_key).is_ok(),
        "the runtime Secret carries a session key"
    );

    annotate(&ns, "bot", "otpilot.dev/renew-certificate", "r1").await;
    let done = wait_handled(
        &ns,
        "bot",
        &operator,
        |s| s.handled_renew_request.as_ref(),
        "r1",
    )
    .await;
    let second = serial(&secret_data(&ns, "bot-runtime").await["tls.crt"]);
    assert_ne!(first, second, "a new certificate was issued");
    assert_eq!(
        secret_data(&ns, "bot-runtime").await["session-key"],
        session_key,
        "the session key is not rotated by a rewrite of the runtime Secret"
    );
    assert_eq!(runtime_seed(&ns, "bot").await, seed, "MFA is untouched");
    login_with_secrets(&ns, "bot").await;
    wait_for_event(&ns, "bot", "CertificateRenewed").await;

    // The same value again is not a new request: the certificate stays.
    let resync = serde_json::json!({ "metadata": { "labels": { "poke": "1" } } });
    ns.api::<ApiCredential>()
        .patch("bot", &PatchParams::default(), &Patch::Merge(&resync))
        .await
        .expect("poke");
    wait_for(
        &ns,
        "bot",
        Duration::from_secs(30),
        &operator,
        "reconciled after the poke",
        |c| {
            c.status.as_ref().and_then(|s| s.observed_generation) == c.metadata.generation
                && c.metadata.resource_version != done.metadata.resource_version
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        serial(&secret_data(&ns, "bot-runtime").await["tls.crt"]),
        second,
        "one certificate per request value"
    );

    // AUDD cannot be re-enrolled through its API: said so, recorded, untouched.
    annotate(&ns, "bot", "otpilot.dev/reenroll", "e1").await;
    wait_handled(
        &ns,
        "bot",
        &operator,
        |s| s.handled_reenroll_request.as_ref(),
        "e1",
    )
    .await;
    wait_for_event(&ns, "bot", "ReenrollUnsupported").await;
    assert_eq!(runtime_seed(&ns, "bot").await, seed);
    login_with_secrets(&ns, "bot").await;

    let values = secret_values(&ns, "bot").await;
    assert_no_secret_leaks(&ns, &operator, &values).await;
    sim.shutdown().await;
}

/// Re-enrolls on request; the new seed logs in and the old one is refused.
async fn reenroll_request_turns_mfa_over(vendor_kind: Vendor, profile: &str) {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace(&format!("reenroll-{profile}"))
        .await
        .expect("namespace");
    let sim = vendor(vendor_kind).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(&ns, &credential("bot", profile, &sim.base_url(), "Retain")).await;
    wait_for_ready(&ns, "bot", &operator).await;
    let old_seed = runtime_seed(&ns, "bot").await;
    let mut values = secret_values(&ns, "bot").await;

    annotate(&ns, "bot", "otpilot.dev/reenroll", "2026-12-03T06:00:00Z").await;
    let done = wait_handled(
        &ns,
        "bot",
        &operator,
        |s| s.handled_reenroll_request.as_ref(),
        "2026-12-03T06:00:00Z",
    )
    .await;
    let new_seed = runtime_seed(&ns, "bot").await;
    assert_ne!(new_seed, old_seed, "{profile}: a new seed");
    let recovery = secret_data(&ns, "bot-recovery").await;
    for key in [
        "enrollment-checkpoint",
        "reenroll-request",
        "reenroll-phase",
    ] {
        assert!(!recovery.contains_key(key), "{profile}: {key} removed");
    }
    assert_eq!(
        done.status.as_ref().and_then(|s| s.enrollment),
        Some(otpilot_api::api_credential::EnrollmentState::Enrolled)
    );
    login_with_secrets(&ns, "bot").await;
    let refused = try_login(&ns, "bot", Some(&old_seed))
        .await
        .expect_err("the old seed is refused");
    assert!(
        matches!(
            refused.kind,
            FlowErrorKind::CodeRejected { .. } | FlowErrorKind::Status { .. }
        ),
        "{profile}: old seed refused by the vendor, not {refused}"
    );
    wait_for_event(&ns, "bot", "Reenrolled").await;

    values.extend(secret_values(&ns, "bot").await);
    assert_no_secret_leaks(&ns, &operator, &values).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn reenroll_request_replaces_the_cryptr_secret_in_place() {
    reenroll_request_turns_mfa_over(Vendor::Cryptr, "cryptr").await;
}

#[tokio::test]
async fn reenroll_request_turns_conduit_mfa_off_and_on_with_a_new_secret() {
    reenroll_request_turns_mfa_over(Vendor::Conduit, "conduit").await;
}

#[tokio::test]
async fn requests_that_do_not_apply_are_answered_and_recorded_once() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("requests-moot").await.expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    // A re-enroll request on a credential that was never enrolled: its
    // first enrollment makes the new secret the request asks for.
    let mut bot = credential("bot", "conduit", &sim.base_url(), "Retain");
    bot.metadata.annotations =
        Some([("otpilot.dev/reenroll".to_owned(), "first".to_owned())].into());
    create_credential(&ns, &bot).await;
    let ready = wait_handled(
        &ns,
        "bot",
        &operator,
        |s| s.handled_reenroll_request.as_ref(),
        "first",
    )
    .await;
    wait_for_event(&ns, "bot", "ReenrollNotNeeded").await;
    // No client certificate: nothing to renew, and the status says none is needed.
    assert_eq!(
        condition(&ready, "CertificateReady"),
        Some(("True".to_owned(), "NotRequired".to_owned()))
    );
    annotate(&ns, "bot", "otpilot.dev/renew-certificate", "r1").await;
    wait_handled(
        &ns,
        "bot",
        &operator,
        |s| s.handled_renew_request.as_ref(),
        "r1",
    )
    .await;
    wait_for_event(&ns, "bot", "RenewNotApplicable").await;
}
