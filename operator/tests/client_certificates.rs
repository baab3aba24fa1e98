//! ClientCA and client certificates: a generated CA published for people,
//! an AUDD credential over mTLS, renewal accepted by the vendor, and a
//! missing ClientCA reported.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use otpilot_sim::Vendor;
use otpilot_tests::TestCluster;
use support::*;

#[tokio::test]
async fn audd_credential_with_a_generated_client_ca_reaches_ready_and_logs_in_over_mtls() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("audd-mtls").await.expect("namespace");
    let sim = mtls_vendor(Vendor::Audd).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    let (ca, ca_pem) = create_client_ca(&cluster, &ns, &operator).await;

    // Published for people: a ConfigMap with the certificate; the key only
    // in a Secret of the operator's namespace.
    let cm = ns
        .api::<ConfigMap>()
        .get(&format!("{ca}-ca"))
        .await
        .expect("CA ConfigMap");
    assert_eq!(cm.data.expect("data").get("ca.crt"), Some(&ca_pem));
    let key = ns
        .api::<Secret>()
        .get(&format!("{ca}-ca-key"))
        .await
        .expect("CA key Secret");
    let ca_key = String::from_utf8(key.data.expect("data")["tls.key"].0.clone()).expect("utf-8");

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
    let ready = wait_for_ready(&ns, "bot", &operator).await;
    assert_eq!(
        condition(&ready, "CertificateReady"),
        Some(("True".into(), "Issued".into()))
    );
    assert!(
        ready
            .status
            .as_ref()
            .and_then(|s| s.certificate_not_after.as_ref())
            .is_some()
    );
    let runtime = secret_data(&ns, "bot-runtime").await;
    assert!(runtime.contains_key("tls.crt") && runtime.contains_key("tls.key"));
    login_with_secrets(&ns, "bot").await;
    let metrics = operator.metrics().await;
    assert!(
        metrics.lines().any(|l| l
            .strip_prefix(&format!(
                "otpilot_operator_certificate_expiry_timestamp_seconds{{namespace=\"{}\",name=\"bot\"}} ",
                ns.name()
            ))
            .is_some_and(|v| v.parse::<i64>().is_ok_and(|t| t > 0))),
        "certificate expiry metric:\n{metrics}"
    );

    let mut values = secret_values(&ns, "bot").await;
    values.push(ca_key);
    assert_no_secret_leaks(&ns, &operator, &values).await;
}

#[tokio::test]
async fn client_certificate_is_renewed_before_expiry_and_the_vendor_accepts_the_new_one() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("renewal").await.expect("namespace");
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
    // Renewed 50 s before the end of a 60 s lifetime: about 10 s after issue.
    create_credential(
        &ns,
        &mtls_credential("bot", "audd", &sim.base_url(), &ca, "60s", "50s"),
    )
    .await;
    wait_for_ready(&ns, "bot", &operator).await;
    let first = secret_data(&ns, "bot-runtime").await["tls.crt"].clone();

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = secret_data(&ns, "bot-runtime").await["tls.crt"].clone();
        if now != first {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the certificate was not renewed\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_for_ready(&ns, "bot", &operator).await;
    login_with_secrets(&ns, "bot").await;
}

#[tokio::test]
async fn a_missing_client_ca_is_reported_on_certificate_ready() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("no-ca").await.expect("namespace");
    let sim = mtls_vendor(Vendor::Audd).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(
        &ns,
        &mtls_credential(
            "bot",
            "audd",
            &sim.base_url(),
            "no-such-ca",
            "2160h",
            "720h",
        ),
    )
    .await;
    let c = wait_for(
        &ns,
        "bot",
        Duration::from_secs(60),
        &operator,
        "ClientCANotFound",
        |c| {
            condition(c, "CertificateReady")
                .is_some_and(|(s, r)| s == "False" && r == "ClientCANotFound")
        },
    )
    .await;
    assert_eq!(
        condition(&c, "Ready").map(|x| x.1),
        Some("ClientCANotFound".into())
    );
    let account = sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert!(
        !account.enrolled,
        "nothing sent to the vendor without a certificate"
    );
}

#[tokio::test]
async fn a_namespace_not_allowed_by_the_client_ca_gets_no_certificate() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("ca-not-allowed")
        .await
        .expect("namespace");
    let sim = mtls_vendor(Vendor::Audd).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    let (ca, _) = create_client_ca(&cluster, &ns, &operator).await;
    // Only this namespace's neighbour is allowed now.
    let patch =
        serde_json::json!({ "spec": { "allowedNamespaces": { "names": ["someone-else"] } } });
    kube::Api::<otpilot_api::ClientCA>::all(cluster.client())
        .patch(
            &ca,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("narrow allowedNamespaces");
    create_credential(
        &ns,
        &mtls_credential("bot", "audd", &sim.base_url(), &ca, "2160h", "720h"),
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
    assert!(
        ns.api::<Secret>()
            .get_opt("bot-runtime")
            .await
            .expect("get")
            .is_none_or(|s| { !s.data.unwrap_or_default().contains_key("tls.crt") }),
        "no certificate was issued"
    );
    assert_eq!(
        condition(&c, "Ready").map(|x| x.1),
        Some("NamespaceNotAllowed".into())
    );
}

#[tokio::test]
async fn a_client_ca_the_vendor_does_not_know_is_reported_as_a_refused_certificate() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("ca-unregistered")
        .await
        .expect("namespace");
    let sim = mtls_vendor(Vendor::Audd).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    let (ca, _) = create_client_ca(&cluster, &ns, &operator).await;
    // The CA is never registered with the vendor.
    create_credential(
        &ns,
        &mtls_credential("bot", "audd", &sim.base_url(), &ca, "2160h", "720h"),
    )
    .await;
    let c = wait_for(
        &ns,
        "bot",
        Duration::from_secs(60),
        &operator,
        "Enrolled False",
        |c| condition(c, "Enrolled").is_some_and(|(s, r)| s == "False" && r != "EnrollmentPending"),
    )
    .await;
    let (_, reason) = condition(&c, "Enrolled").expect("Enrolled");
    let message = c
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|x| x.type_ == "Enrolled"))
        .map(|x| x.message.clone())
        .unwrap_or_default();
    assert_eq!(reason, "ClientCertificateRejected", "{message}");
    assert!(message.contains("register"), "{message}");
}

/// The ClientCA's Ready condition and reason, once it has one.
async fn client_ca_reason(cluster: &TestCluster, name: &str) -> Option<(String, String)> {
    kube::Api::<otpilot_api::ClientCA>::all(cluster.client())
        .get(name)
        .await
        .ok()?
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status, c.reason))
}

async fn wait_for_client_ca(cluster: &TestCluster, name: &str, status: &str, reason: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = client_ca_reason(cluster, name).await;
        if now
            .as_ref()
            .is_some_and(|(s, r)| s == status && r == reason)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ClientCA {name}: {status} {reason}, not {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn an_imported_client_ca_waits_for_a_usable_secret_and_its_credentials_with_it() {
    use kube::api::{Patch, PatchParams, PostParams};
    use secrecy::ExposeSecret;

    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("imported-ca").await.expect("namespace");
    let sim = mtls_vendor(Vendor::Audd).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    let name = format!("imported-{}", ns.name());
    let ca: otpilot_api::ClientCA = serde_json::from_value(serde_json::json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ClientCA",
        "metadata": { "name": name, "labels": { "otpilot.dev/test": ns.name() } },
        "spec": {
            "importFrom": { "secretName": "corporate-ca" },
            "allowedNamespaces": { "names": [ns.name()] },
        },
    }))
    .expect("ClientCA");
    kube::Api::<otpilot_api::ClientCA>::all(cluster.client())
        .create(&PostParams::default(), &ca)
        .await
        .expect("create ClientCA");
    create_credential(
        &ns,
        &mtls_credential("bot", "audd", &sim.base_url(), &name, "2160h", "720h"),
    )
    .await;

    // No Secret yet: the CA says so, its credential waits for it.
    wait_for_client_ca(&cluster, &name, "False", "SecretNotFound").await;
    wait_for(
        &ns,
        "bot",
        Duration::from_secs(60),
        &operator,
        "ClientCANotReady",
        |c| {
            condition(c, "CertificateReady")
                .is_some_and(|(s, r)| s == "False" && r == "ClientCANotReady")
        },
    )
    .await;

    // A Secret that holds no CA.
    let garbage: Secret = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "corporate-ca" },
        "type": "kubernetes.io/tls",
        "stringData": { "tls.crt": "not a certificate", "tls.key": "not a key" },
    }))
    .expect("Secret");
    ns.api::<Secret>()
        .create(&PostParams::default(), &garbage)
        .await
        .expect("create the Secret");
    wait_for_client_ca(&cluster, &name, "False", "InvalidSecret").await;

    // The real CA: imported, registered at the vendor, and the credential Ready.
    let material = otpilot_pki::generate_ca(
        &otpilot_api::common::CertificateSubject {
            common_name: "corporate client CA".into(),
            organizations: vec![],
            organizational_units: vec![],
        },
        otpilot_api::common::KeyAlgorithm::default(),
        Duration::from_secs(365 * 24 * 3600),
        jiff::Timestamp::now(),
    )
    .expect("a CA");
    let patch = serde_json::json!({ "stringData": {
        "tls.crt": material.cert_pem,
        "tls.key": material.key_pem.expose_secret(),
    }});
    ns.api::<Secret>()
        .patch(
            "corporate-ca",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("put the CA in the Secret");
    wait_for_client_ca(&cluster, &name, "True", "Imported").await;
    sim.admin()
        .expect("admin")
        .register_client_ca(&material.cert_pem)
        .await
        .expect("register the CA at the vendor");
    let ready = wait_for_ready(&ns, "bot", &operator).await;
    assert_eq!(
        condition(&ready, "CertificateReady"),
        Some(("True".into(), "Issued".into()))
    );
    login_with_secrets(&ns, "bot").await;
}
