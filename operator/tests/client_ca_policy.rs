//! A ClientCA's issuance is constrained and revocable, against the operator
//! process and an mTLS vendor: a subject outside `spec.issuancePolicy` or a
//! duration above its `maxDuration` is refused (and a certificate issued
//! before the policy is taken away), one inside is issued and accepted; a
//! namespace taken out of `allowedNamespaces` loses the key and certificate
//! from its runtime Secret.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use otpilot_api::runtime_secret::RuntimeBundle;
use otpilot_api::{ApiCredential, ClientCA};
use otpilot_sim::Vendor;
use otpilot_tests::{TestCluster, TestNamespace};
use support::*;

async fn patch_ca(cluster: &TestCluster, ca: &str, patch: serde_json::Value) {
    kube::Api::<ClientCA>::all(cluster.client())
        .patch(ca, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the ClientCA");
}

async fn patch_credential(ns: &TestNamespace, name: &str, patch: serde_json::Value) {
    ns.api::<ApiCredential>()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the ApiCredential");
}

/// Waits for CertificateReady False with `reason`; returns its message.
async fn wait_refused(ns: &TestNamespace, name: &str, operator: &Operator, reason: &str) -> String {
    let c = wait_for(ns, name, Duration::from_secs(60), operator, reason, |c| {
        condition(c, "CertificateReady").is_some_and(|(s, r)| s == "False" && r == reason)
    })
    .await;
    c.status
        .and_then(|s| {
            s.conditions
                .into_iter()
                .find(|x| x.type_ == "CertificateReady")
        })
        .map(|x| x.message)
        .unwrap_or_default()
}

/// The runtime Secret's keys, or none when it does not exist.
async fn runtime_keys(ns: &TestNamespace, name: &str) -> Vec<String> {
    ns.api::<Secret>()
        .get_opt(&format!("{name}-runtime"))
        .await
        .expect("get the runtime Secret")
        .and_then(|s| s.data)
        .map(|d| d.into_keys().collect())
        .unwrap_or_default()
}

/// Waits until the runtime Secret holds neither tls.crt nor tls.key.
async fn wait_withdrawn(ns: &TestNamespace, name: &str, operator: &Operator) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let keys = runtime_keys(ns, name).await;
        if !keys.iter().any(|k| k == "tls.crt" || k == "tls.key") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: tls.crt/tls.key still in the runtime Secret ({keys:?})\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_for_event(ns: &TestNamespace, name: &str, reason: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = ns
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .expect("list Events")
            .items
            .into_iter()
            .find(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(reason)
            });
        if let Some(event) = found {
            return event.message.unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "no {reason} Event about {name}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What stays in the runtime Secret after the withdrawal still parses, and
/// only the client certificate is gone: the vendor's mTLS refuses a login
/// made with what the Secrets hold now.
async fn assert_only_the_certificate_is_gone(ns: &TestNamespace, name: &str) {
    let data = secret_data(ns, &format!("{name}-runtime")).await;
    let bundle = RuntimeBundle::from_data(&data).expect("the runtime Secret still parses");
    assert!(bundle.totp.is_some(), "the seed stays");
    assert!(bundle.tls_crt.is_none() && bundle.tls_key.is_none());
    assert!(
        try_login(ns, name, None).await.is_err(),
        "a login without the client certificate is refused by the vendor"
    );
}

#[tokio::test]
async fn the_issuance_policy_refuses_other_subjects_and_long_durations_and_takes_back_what_it_no_longer_allows()
 {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("ca-policy").await.expect("namespace");
    let sim = mtls_vendor(Vendor::Audd).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    let (ca, ca_pem) = create_client_ca(&cluster, &ns, &operator).await;
    sim.admin()
        .expect("admin")
        .register_client_ca(&ca_pem)
        .await
        .expect("register the client CA with the vendor");

    // Without a policy (as before it existed), any subject is issued.
    create_credential(
        &ns,
        &mtls_credential("bot", "audd", &sim.base_url(), &ca, "2160h", "720h"),
    )
    .await;
    wait_for_ready(&ns, "bot", &operator).await;
    login_with_secrets(&ns, "bot").await;

    // The policy binds the subject to the credential: `otpilot test client`
    // is now refused, and the certificate issued before is taken back.
    patch_ca(
        &cluster,
        &ca,
        serde_json::json!({ "spec": { "issuancePolicy": {
            "commonNames": ["${namespace}.${name}"],
            "maxDuration": "2160h",
        }}}),
    )
    .await;
    let message = wait_refused(&ns, "bot", &operator, "CertificateNotAllowed").await;
    assert!(
        message.contains("spec.issuancePolicy.commonNames")
            && message.contains(&format!("{}.bot", ns.name())),
        "{message}"
    );
    wait_withdrawn(&ns, "bot", &operator).await;
    assert_only_the_certificate_is_gone(&ns, "bot").await;
    let note = wait_for_event(&ns, "bot", "ClientCertificateRemoved").await;
    assert!(note.contains("tls.key"), "{note}");

    // A new credential outside the pattern never gets a certificate.
    create_credential(
        &ns,
        &mtls_credential("other", "audd", &sim.base_url(), &ca, "2160h", "720h"),
    )
    .await;
    wait_refused(&ns, "other", &operator, "CertificateNotAllowed").await;
    let keys = runtime_keys(&ns, "other").await;
    assert!(!keys.iter().any(|k| k == "tls.crt"), "{keys:?}");

    // Inside the pattern but longer than maxDuration: refused, not shortened.
    let own = format!("{}.bot", ns.name());
    patch_credential(
        &ns,
        "bot",
        serde_json::json!({ "spec": { "clientCertificate": {
            "subject": { "commonName": own },
            "duration": "4000h",
        }}}),
    )
    .await;
    let message = wait_for(
        &ns,
        "bot",
        Duration::from_secs(60),
        &operator,
        "maxDuration refusal",
        |c| {
            c.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|x| {
                    x.type_ == "CertificateReady"
                        && x.reason == "CertificateNotAllowed"
                        && x.message.contains("maxDuration")
                })
            })
        },
    )
    .await;
    assert!(
        runtime_keys(&ns, "bot")
            .await
            .iter()
            .all(|k| k != "tls.crt")
    );
    drop(message);

    // Inside the policy: issued with that subject, and the vendor accepts it.
    patch_credential(
        &ns,
        "bot",
        serde_json::json!({ "spec": { "clientCertificate": { "duration": "2160h" }}}),
    )
    .await;
    let ready = wait_for_ready(&ns, "bot", &operator).await;
    assert_eq!(
        condition(&ready, "CertificateReady"),
        Some(("True".into(), "Issued".into()))
    );
    let crt =
        String::from_utf8(secret_data(&ns, "bot-runtime").await["tls.crt"].clone()).expect("utf-8");
    let subject = otpilot_pki::certificate_subject(&crt).expect("certificate");
    assert_eq!(subject.common_name, own);
    login_with_secrets(&ns, "bot").await;
}

#[tokio::test]
async fn a_namespace_removed_from_allowed_namespaces_loses_its_client_key_and_certificate() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("ca-withdrawn").await.expect("namespace");
    let sim = mtls_vendor(Vendor::Audd).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    let (ca, ca_pem) = create_client_ca(&cluster, &ns, &operator).await;
    sim.admin()
        .expect("admin")
        .register_client_ca(&ca_pem)
        .await
        .expect("register the client CA with the vendor");
    create_credential(
        &ns,
        &mtls_credential("bot", "audd", &sim.base_url(), &ca, "2160h", "720h"),
    )
    .await;
    wait_for_ready(&ns, "bot", &operator).await;
    let keys = runtime_keys(&ns, "bot").await;
    assert!(keys.iter().any(|k| k == "tls.key"), "{keys:?}");

    patch_ca(
        &cluster,
        &ca,
        serde_json::json!({ "spec": { "allowedNamespaces": { "names": ["someone-else"] } } }),
    )
    .await;
    let c = wait_for(
        &ns,
        "bot",
        Duration::from_secs(60),
        &operator,
        "NamespaceNotAllowed",
        |c| {
            condition(c, "CertificateReady")
                .is_some_and(|(s, r)| s == "False" && r == "NamespaceNotAllowed")
        },
    )
    .await;
    assert_eq!(
        condition(&c, "Ready").map(|x| x.1),
        Some("NamespaceNotAllowed".into())
    );
    wait_withdrawn(&ns, "bot", &operator).await;
    assert_only_the_certificate_is_gone(&ns, "bot").await;
    let note = wait_for_event(&ns, "bot", "ClientCertificateRemoved").await;
    assert!(note.contains("allowedNamespaces"), "{note}");
}
