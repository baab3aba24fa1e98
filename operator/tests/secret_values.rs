//! Vendor secrets beyond the password and the API key, with the operator
//! running as a process: Conduit with client validation on enrolls once the
//! ApiCredential names its client secret in `spec.secretValues`; a name the
//! profile does not use is reported before anything is sent; the client
//! secret reaches no status, Event or log line.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use otpilot_api::ApiCredential;
use otpilot_sim::{AccountSpec, SimConfig, Vendor};
use otpilot_tests::TestCluster;
use support::*;

const CLIENT_ID: &str = "otpilot-operator-app";
const CLIENT_SECRET: &str = "cs-operator-Vq8Lw3Np6Zr";
const APP_SECRET: &str = "conduit-app";

fn message(c: &ApiCredential, type_: &str) -> String {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|x| x.type_ == type_))
        .map(|x| x.message.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn conduit_with_client_validation_enrolls_with_its_client_secret_from_a_secret() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("secret-values").await.expect("namespace");
    install_crypto_provider();
    let sim = otpilot_sim::spawn(
        SimConfig::new(Vendor::Conduit)
            .with_period(Duration::from_secs(PERIOD_SECS))
            .with_account(AccountSpec::new(USERNAME, PASSWORD, API_KEY))
            .with_client_credentials(CLIENT_ID, CLIENT_SECRET),
    )
    .await
    .expect("simulator starts");
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let app = Secret {
        metadata: ObjectMeta {
            name: Some(APP_SECRET.into()),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([(
            "client-secret".to_owned(),
            CLIENT_SECRET.to_owned(),
        )])),
        ..Secret::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &app)
        .await
        .expect("create the application Secret");
    let operator = Operator::start(ns.name()).await;

    // A misspelt name: refused by name before any call to the vendor.
    let mut bot = credential("bot", "conduit", &sim.base_url(), "Retain");
    bot.spec.variables = BTreeMap::from([("client_id".to_owned(), CLIENT_ID.to_owned())]);
    bot.spec.secret_values = vec![otpilot_api::common::SecretValue {
        name: "clientsecret".into(),
        secret_key_ref: otpilot_api::common::SecretKeyRef {
            name: APP_SECRET.into(),
            key: "client-secret".into(),
        },
    }];
    create_credential(&ns, &bot).await;
    let refused = wait_for(
        &ns,
        "bot",
        Duration::from_secs(60),
        &operator,
        "Enrolled reason MissingInput",
        |c| condition(c, "Enrolled").is_some_and(|(s, r)| s == "False" && r == "MissingInput"),
    )
    .await;
    let msg = message(&refused, "Enrolled");
    assert!(
        msg.contains("no secret value named 'clientsecret' (it uses client_secret)"),
        "{msg}"
    );
    let account = sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert!(!account.enrolled && account.pending_totp_secret_base32.is_none());

    // The right name: the client headers go with every call, and it enrolls.
    let fix = serde_json::json!({"spec": {"secretValues": [
        {"name": "client_secret", "secretKeyRef": {"name": APP_SECRET, "key": "client-secret"}}
    ]}});
    ns.api::<ApiCredential>()
        .patch("bot", &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .expect("fix the name");
    wait_for_ready(&ns, "bot", &operator).await;
    let account = sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert!(account.enrolled, "enrolled through client validation");

    let mut values = secret_values(&ns, "bot").await;
    values.push(CLIENT_SECRET.to_owned());
    assert_no_secret_leaks(&ns, &operator, &values).await;
    sim.shutdown().await;
}
