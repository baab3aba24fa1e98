//! The vendor refusing an input: the condition names which one and the
//! fix — the password, the API key (told apart by the step that sends it,
//! or by the vendor's answer when one step sends both, as AUDD's does), or
//! the caller's IP address (an allow-list refusal, here from a 403 page in
//! front of the vendor: no vendor document shows its own).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use otpilot_sim::{Faults, Vendor};
use otpilot_tests::{TestCluster, TestNamespace};
use support::*;

async fn login_secret(ns: &TestNamespace, password: &str, api_key: &str) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(LOGIN_SECRET.into()),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([
            ("password".to_owned(), password.to_owned()),
            ("api-key".to_owned(), api_key.to_owned()),
        ])),
        ..Secret::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create login Secret");
}

async fn enrolled_reason(
    ns: &TestNamespace,
    name: &str,
    operator: &Operator,
    want: &str,
) -> String {
    let c = wait_for(
        ns,
        name,
        Duration::from_secs(60),
        operator,
        &format!("Enrolled=False {want}"),
        |c| condition(c, "Enrolled") == Some(("False".into(), want.into())),
    )
    .await;
    c.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Enrolled"))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn conduit_wrong_password_and_cryptr_wrong_api_key_are_told_apart() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("refused-inputs")
        .await
        .expect("namespace");
    let conduit = vendor(Vendor::Conduit).await;
    let cryptr = vendor(Vendor::Cryptr).await;
    login_secret(&ns, "not-the-password-1", "not-the-api-key-1").await;
    create_server_ca(&ns, &conduit).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(
        &ns,
        &credential("conduit", "conduit", &conduit.base_url(), "Retain"),
    )
    .await;
    let mut c = credential("cryptr", "cryptr", &cryptr.base_url(), "Retain");
    // Each simulator has its own server CA; the Cryptr one gets its own ConfigMap.
    let cm = k8s_openapi::api::core::v1::ConfigMap {
        metadata: ObjectMeta {
            name: Some("cryptr-ca".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "ca.crt".to_owned(),
            cryptr.server_ca_pem().to_owned(),
        )])),
        ..Default::default()
    };
    ns.api::<k8s_openapi::api::core::v1::ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .expect("ConfigMap");
    c.spec.server_ca =
        serde_json::from_value(serde_json::json!({"name": "cryptr-ca", "key": "ca.crt"}))
            .expect("serverCa");
    create_credential(&ns, &c).await;

    let message = enrolled_reason(&ns, "conduit", &operator, "WrongPassword").await;
    assert!(message.contains("passwordSecretRef"), "{message}");
    let message = enrolled_reason(&ns, "cryptr", &operator, "ApiKeyRejected").await;
    assert!(message.contains("apiKeySecretRef"), "{message}");
    assert_no_secret_leaks(
        &ns,
        &operator,
        &[
            "not-the-password-1".to_owned(),
            "not-the-api-key-1".to_owned(),
        ],
    )
    .await;
}

#[tokio::test]
async fn audd_answer_tells_a_wrong_api_key_from_a_wrong_password() {
    for (password, api_key, want) in [
        (PASSWORD, "not-the-api-key-2", "ApiKeyRejected"),
        ("not-the-password-2", API_KEY, "WrongPassword"),
    ] {
        let cluster = TestCluster::with_crds().await.expect("test control plane");
        let ns = cluster.namespace("audd-refused").await.expect("namespace");
        let sim = mtls_vendor(Vendor::Audd).await;
        login_secret(&ns, password, api_key).await;
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
        enrolled_reason(&ns, "bot", &operator, want).await;
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn an_ip_allow_list_refusal_names_the_fix() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("ip-refused").await.expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    sim.admin()
        .expect("admin")
        .set_faults(&Faults {
            error_status: Some(403),
            error_body: Some(
                "<html><body><h1>403 Forbidden</h1>Your IP address is not whitelisted.</body></html>"
                    .into(),
            ),
            ..Faults::default()
        })
        .await
        .expect("fault");
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &sim.base_url(), "Retain"),
    )
    .await;
    let message = enrolled_reason(&ns, "bot", &operator, "IpNotAllowed").await;
    assert!(message.contains("allow-list"), "{message}");
    sim.shutdown().await;
}
