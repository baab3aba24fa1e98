//! The objects a user creates for a credential (login Secret, server CA
//! ConfigMap, ApiCredential, ClientCA) and waiting for the operator.
//! Shaped like operator/tests/support's, which this crate cannot import.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ObjectMeta, PostParams};
use otpilot_api::{ApiCredential, ClientCA};
use otpilot_sim::SimHandle;
use otpilot_tests::{TestCluster, TestNamespace};

use super::operator::Operator;
use super::{API_KEY, PASSWORD, PERIOD_SECS, USERNAME};

pub const LOGIN_SECRET: &str = "vendor-login";
pub const CA_CONFIG_MAP: &str = "vendor-ca";

pub async fn create_login_secret(ns: &TestNamespace) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(LOGIN_SECRET.into()),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([
            ("password".to_owned(), PASSWORD.to_owned()),
            ("api-key".to_owned(), API_KEY.to_owned()),
        ])),
        ..Secret::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create login Secret");
}

pub async fn create_server_ca(ns: &TestNamespace, sim: &SimHandle) {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(CA_CONFIG_MAP.into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "ca.crt".to_owned(),
            sim.server_ca_pem().to_owned(),
        )])),
        ..ConfigMap::default()
    };
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .expect("create server CA ConfigMap");
}

/// An ApiCredential for the simulator, optionally with a client
/// certificate from the ClientCA `ca`.
pub async fn create_credential(
    ns: &TestNamespace,
    name: &str,
    profile: &str,
    sim: &SimHandle,
    ca: Option<&str>,
) {
    let mut spec = serde_json::json!({
        "profile": profile,
        "baseUrl": sim.base_url(),
        "serverCa": { "name": CA_CONFIG_MAP, "key": "ca.crt" },
        "username": USERNAME,
        "passwordSecretRef": { "name": LOGIN_SECRET, "key": "password" },
        "apiKeySecretRef": { "name": LOGIN_SECRET, "key": "api-key" },
        "totp": { "period": PERIOD_SECS },
    });
    if let Some(ca) = ca {
        spec["clientCertificate"] = serde_json::json!({
            "caRef": ca,
            "subject": { "commonName": "otpilot cli test client" },
            "duration": "2h",
            "renewBefore": "1h",
        });
    }
    let credential: ApiCredential = serde_json::from_value(serde_json::json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ApiCredential",
        "metadata": { "name": name },
        "spec": spec,
    }))
    .expect("ApiCredential");
    ns.api::<ApiCredential>()
        .create(&PostParams::default(), &credential)
        .await
        .expect("create ApiCredential");
}

/// Waits until `pred` holds; panics with the status and operator log.
pub async fn wait_for(
    ns: &TestNamespace,
    name: &str,
    operator: &Operator,
    what: &str,
    pred: impl Fn(&ApiCredential) -> bool,
) -> ApiCredential {
    let api = ns.api::<ApiCredential>();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let current = api.get_opt(name).await.expect("get ApiCredential");
        if let Some(c) = &current
            && pred(c)
        {
            return c.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {what} not reached; status: {}\noperator log:\n{}",
            serde_json::to_string_pretty(&current.and_then(|c| c.status)).unwrap_or_default(),
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn condition_is(c: &ApiCredential, type_: &str, status: &str) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|x| x.type_ == type_ && x.status == status)
    })
}

pub async fn wait_for_ready(ns: &TestNamespace, name: &str, operator: &Operator) -> ApiCredential {
    wait_for(ns, name, operator, "Ready=True", |c| {
        condition_is(c, "Ready", "True")
    })
    .await
}

pub async fn secret_data(ns: &TestNamespace, name: &str) -> BTreeMap<String, Vec<u8>> {
    let secret = ns.api::<Secret>().get(name).await.expect("get Secret");
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

/// A runtime Secret entry as text.
pub async fn runtime_entry(ns: &TestNamespace, credential: &str, key: &str) -> String {
    let data = secret_data(ns, &format!("{credential}-runtime")).await;
    String::from_utf8(data.get(key).cloned().unwrap_or_default()).expect("UTF-8")
}

/// A generated ClientCA (cluster-scoped, named after the namespace), once
/// Ready.
pub async fn create_client_ca(
    cluster: &TestCluster,
    ns: &TestNamespace,
    operator: &Operator,
) -> ClientCA {
    let name = format!("ca-{}", ns.name());
    let ca: ClientCA = serde_json::from_value(serde_json::json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ClientCA",
        "metadata": { "name": name, "labels": { "otpilot.dev/test": ns.name() } },
        "spec": {
            "generate": {
                "subject": { "commonName": "otpilot cli test client CA" },
                "duration": "8760h",
            },
            "allowedNamespaces": { "names": [ns.name()] },
        },
    }))
    .expect("ClientCA");
    let api = kube::Api::<ClientCA>::all(cluster.client());
    api.create(&PostParams::default(), &ca)
        .await
        .expect("create ClientCA");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let current = api.get(&name).await.expect("get ClientCA");
        let status = current.status.clone().unwrap_or_default();
        if status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
        {
            return current;
        }
        assert!(
            Instant::now() < deadline,
            "ClientCA {name} not Ready: {status:?}\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
