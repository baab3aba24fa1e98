//! Test support: the operator as a process, a simulated vendor, and the
//! objects a user creates (password Secret, server CA ConfigMap, ApiCredential).

#![allow(dead_code)] // each test binary uses a different part

pub mod faults;
mod private_control_plane;
mod process;
pub mod webhook_server;

#[allow(unused_imports)] // only the control-plane fault tests use it
pub use private_control_plane::PrivateControlPlane;
pub use process::Operator;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::api::{ListParams, ObjectMeta, PostParams};
use otpilot_api::ApiCredential;
use otpilot_api::runtime_secret::RuntimeBundle;
use otpilot_profile::{
    CodeTimer, Engine, HttpSettings, Inputs, SystemClock, TotpKey, TotpParams, builtin,
};
use otpilot_sim::{AccountSpec, SimConfig, SimHandle, Vendor};
use otpilot_tests::TestNamespace;
use secrecy::{ExposeSecret, SecretString};

pub const PERIOD_SECS: u64 = 2;
pub const USERNAME: &str = "bot@example.com";
pub const PASSWORD: &str = "Tr0ub4dor-operator-pw";
pub const API_KEY: &str = "ak-operator-9XqLmV2sPz7Kd";
pub const LOGIN_SECRET: &str = "vendor-login";
pub const CA_CONFIG_MAP: &str = "vendor-ca";

pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A simulated vendor with one account, 2-second TOTP steps.
pub async fn vendor(vendor: Vendor) -> SimHandle {
    install_crypto_provider();
    let config = SimConfig::new(vendor)
        .with_period(Duration::from_secs(PERIOD_SECS))
        .with_account(AccountSpec::new(USERNAME, PASSWORD, API_KEY));
    otpilot_sim::spawn(config).await.expect("simulator starts")
}

/// The password / API key Secret and the server CA ConfigMap a user creates.
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

/// An ApiCredential for the simulator, as a user would write it.
pub fn credential(name: &str, profile: &str, base_url: &str, policy: &str) -> ApiCredential {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ApiCredential",
        "metadata": { "name": name },
        "spec": {
            "profile": profile,
            "baseUrl": base_url,
            "serverCa": { "name": CA_CONFIG_MAP, "key": "ca.crt" },
            "username": USERNAME,
            "passwordSecretRef": { "name": LOGIN_SECRET, "key": "password" },
            "apiKeySecretRef": { "name": LOGIN_SECRET, "key": "api-key" },
            "totp": { "period": PERIOD_SECS },
            "deletionPolicy": policy,
        }
    }))
    .expect("ApiCredential")
}

pub async fn create_credential(ns: &TestNamespace, credential: &ApiCredential) {
    ns.api::<ApiCredential>()
        .create(&PostParams::default(), credential)
        .await
        .expect("create ApiCredential");
}

/// `(status, reason)` of a condition.
pub fn condition(c: &ApiCredential, type_: &str) -> Option<(String, String)> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|x| x.type_ == type_)
        .map(|x| (x.status.clone(), x.reason.clone()))
}

/// Waits until `pred` holds for the credential; panics with its status and
/// the operator's log otherwise.
pub async fn wait_for(
    ns: &TestNamespace,
    name: &str,
    timeout: Duration,
    operator: &Operator,
    what: &str,
    pred: impl Fn(&ApiCredential) -> bool,
) -> ApiCredential {
    let api = ns.api::<ApiCredential>();
    let deadline = Instant::now() + timeout;
    loop {
        let current = api.get_opt(name).await.expect("get ApiCredential");
        if let Some(c) = &current
            && pred(c)
        {
            return c.clone();
        }
        if Instant::now() >= deadline {
            panic!(
                "{name}: {what} not reached within {timeout:?}; status: {}\noperator log:\n{}",
                serde_json::to_string_pretty(&current.and_then(|c| c.status)).unwrap_or_default(),
                operator.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn wait_for_ready(ns: &TestNamespace, name: &str, operator: &Operator) -> ApiCredential {
    wait_for(
        ns,
        name,
        Duration::from_secs(90),
        operator,
        "Ready=True",
        |c| condition(c, "Ready").is_some_and(|(s, _)| s == "True"),
    )
    .await
}

/// The data of a Secret, or panic.
pub async fn secret_data(ns: &TestNamespace, name: &str) -> BTreeMap<String, Vec<u8>> {
    let secret = ns.api::<Secret>().get(name).await.expect("get Secret");
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

/// Logs in at the vendor with only what the Secrets hold (the sidecar's
/// view): the runtime Secret and the user's login Secret.
pub async fn login_with_secrets(ns: &TestNamespace, credential: &str) {
    let session = try_login(ns, credential, None)
        .await
        .unwrap_or_else(|e| panic!("login with the Secrets' contents failed: {e}"));
    assert!(!session.access_token.expose_secret().is_empty());
}

/// The base32 TOTP seed the runtime Secret holds now.
pub async fn runtime_seed(ns: &TestNamespace, credential: &str) -> String {
    let data = secret_data(ns, &format!("{credential}-runtime")).await;
    let bundle = RuntimeBundle::from_data(&data).expect("runtime Secret parses");
    let totp = bundle.totp.as_ref().expect("runtime Secret holds the seed");
    totp.secret.expose_secret().to_owned()
}

/// A login with what the Secrets hold, or with `seed` in place of the
/// runtime Secret's seed.
pub async fn try_login(
    ns: &TestNamespace,
    credential: &str,
    seed: Option<&str>,
) -> Result<otpilot_profile::Session, otpilot_profile::FlowError> {
    let data = secret_data(ns, &format!("{credential}-runtime")).await;
    let bundle = RuntimeBundle::from_data(&data).expect("runtime Secret parses");
    let totp = bundle.totp.as_ref().expect("runtime Secret holds the seed");
    let key = TotpKey::from_base32(
        seed.unwrap_or(totp.secret.expose_secret()),
        TotpParams {
            algorithm: totp.params.algorithm,
            digits: totp.params.digits,
            period: totp.params.period,
        },
    )
    .expect("seed");
    let profile = builtin::get(&bundle.profile_name).expect("built-in profile");
    let client_identity = match (&bundle.tls_crt, &bundle.tls_key) {
        (Some(crt), Some(key)) => Some(otpilot_profile::ClientIdentity {
            cert_chain_pem: crt.clone(),
            key_pem: key.clone(),
        }),
        _ => None,
    };
    let settings = HttpSettings {
        server_ca_pem: bundle.server_ca.clone(),
        client_identity,
        ..HttpSettings::default()
    };
    let timer = Arc::new(CodeTimer::new(Arc::new(SystemClock)));
    if let Some(step) = bundle.last_code_step {
        timer.mark_used(&key, step);
    }
    let engine = Engine::new(profile, &bundle.base_url, settings)
        .expect("engine")
        .with_timer(timer);
    let inputs = Inputs {
        username: Some(bundle.username.clone()),
        password: Some(SecretString::from(PASSWORD)),
        api_key: Some(SecretString::from(API_KEY)),
        totp: Some(key),
        variables: bundle.variables.clone(),
        ..Inputs::default()
    };
    engine.login(&inputs).await
}

/// Every secret value a credential's Secrets hold, plus the user's.
pub async fn secret_values(ns: &TestNamespace, credential: &str) -> Vec<String> {
    let mut values = vec![PASSWORD.to_owned(), API_KEY.to_owned()];
    let runtime = secret_data(ns, &format!("{credential}-runtime")).await;
    for key in ["totp-secret", "tls.key"] {
        if let Some(v) = runtime.get(key) {
            values.push(String::from_utf8(v.clone()).expect("utf-8"));
        }
    }
    let recovery = secret_data(ns, &format!("{credential}-recovery")).await;
    if let Some(codes) = recovery.get("recovery-codes") {
        let text = String::from_utf8(codes.clone()).expect("utf-8");
        values.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
    }
    values
}

/// Status, Events and the operator's log hold none of `values`.
pub async fn assert_no_secret_leaks(ns: &TestNamespace, operator: &Operator, values: &[String]) {
    let credentials = ns
        .api::<ApiCredential>()
        .list(&ListParams::default())
        .await
        .expect("list ApiCredentials");
    let statuses: Vec<_> = credentials.items.iter().map(|c| &c.status).collect();
    let status_text = serde_json::to_string(&statuses).expect("json");
    let events = ns
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("list Events");
    let events_text = serde_json::to_string(&events.items).expect("json");
    assert!(!events.items.is_empty(), "the operator published Events");
    let log = operator.log_text();
    for value in values {
        assert!(
            value.len() >= 6,
            "secret values are long enough to scan for"
        );
        for (what, text) in [
            ("status", &status_text),
            ("Events", &events_text),
            ("operator log", &log),
        ] {
            assert!(
                !text.contains(value.as_str()),
                "a secret value ({} chars) appears in {what}",
                value.len()
            );
        }
    }
}

/// A generated ClientCA (cluster-scoped, named after the namespace), once
/// Ready: returns its name and certificate.
pub async fn create_client_ca(
    cluster: &otpilot_tests::TestCluster,
    ns: &TestNamespace,
    operator: &Operator,
) -> (String, String) {
    use otpilot_api::ClientCA;
    let name = format!("ca-{}", ns.name());
    let ca: ClientCA = serde_json::from_value(serde_json::json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ClientCA",
        "metadata": { "name": name, "labels": { "otpilot.dev/test": ns.name() } },
        "spec": { "generate": {
            "subject": { "commonName": "otpilot test client CA", "organizations": ["otpilot tests"] },
            "duration": "8760h",
        },
        "allowedNamespaces": { "names": [ns.name()] }},
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
            let pem = status.certificate.expect("status.certificate");
            return (name, pem);
        }
        assert!(
            Instant::now() < deadline,
            "ClientCA {name} not Ready: {status:?}\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An ApiCredential with a client certificate from `ca`.
pub fn mtls_credential(
    name: &str,
    profile: &str,
    base_url: &str,
    ca: &str,
    duration: &str,
    renew_before: &str,
) -> ApiCredential {
    let mut c = credential(name, profile, base_url, "Retain");
    c.spec.client_certificate = serde_json::from_value(serde_json::json!({
        "caRef": ca,
        "subject": { "commonName": "otpilot test client" },
        "duration": duration,
        "renewBefore": renew_before,
    }))
    .expect("clientCertificate");
    c
}

/// A simulator for an mTLS vendor, with no client CA registered yet.
pub async fn mtls_vendor(vendor: Vendor) -> SimHandle {
    install_crypto_provider();
    let config = SimConfig::new(vendor)
        .with_period(Duration::from_secs(PERIOD_SECS))
        .with_account(AccountSpec::new(USERNAME, PASSWORD, API_KEY));
    otpilot_sim::spawn(config).await.expect("simulator starts")
}
