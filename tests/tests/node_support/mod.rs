//! One end-to-end case's world on the node: the chart installed, a namespace, a simulated
//! vendor on the host at the bridge address, its server CA and the login Secret, a ClientCA
//! registered at the vendor (for a vendor that requires mTLS), and a Ready ApiCredential.

pub mod chart;
pub mod health;
pub mod held_back;
pub mod readiness;
pub mod reenroll;
pub mod refresh;
pub mod seeds;
pub mod workloads;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use otpilot_api::{ApiCredential, ClientCA};
use otpilot_sim::{AccountSpec, Faults, SimConfig, SimHandle, Vendor};
use otpilot_tests::node::{host_address, nodes_line};
use otpilot_tests::{TestCluster, TestNamespace};
use serde_json::json;

pub const USERNAME: &str = "payments-bot";
pub const PASSWORD: &str = "Tr0ub4dor-node-e2e-pw";
pub const API_KEY: &str = "ak-node-e2e-7QwErTy";
pub const LOGIN_SECRET: &str = "vendor-login";
pub const CREDENTIAL: &str = "payments";
const CA_CONFIG_MAP: &str = "vendor-ca";
const PERIOD_SECS: u64 = 2;

pub struct World {
    pub cluster: TestCluster,
    pub ns: TestNamespace,
    /// Held for the test's length: the vendor stops when it is dropped.
    #[allow(dead_code)]
    pub sim: SimHandle,
}

/// Client certificate lifetime of the world's credential (`duration`, `renewBefore`).
pub struct CertificateLife(pub &'static str, pub &'static str);
pub const LONG_LIVED: CertificateLife = CertificateLife("2160h", "720h");

/// What a case's world is made of.
pub struct Setup {
    /// AUDD (mTLS: a ClientCA and a client certificate) or a vendor without mTLS.
    pub vendor: Vendor,
    /// The client certificate's lifetime, for a vendor that requires mTLS.
    pub life: CertificateLife,
    /// The vendor's access token lifetime, when not its default.
    pub access_token_lifetime: Option<Duration>,
    /// `--set` values for the shared chart install, beyond the node's images.
    pub chart_values: &'static [&'static str],
    /// The vendor answers 503 to everything (faults) from before the credential exists until
    /// the test clears its faults; the credential is then not waited for.
    pub vendor_down: bool,
    /// The chart's narrow RBAC mode: `rbac.secretNamespaces` lists this case's namespace only.
    pub secret_namespaces_rbac: bool,
}

impl Setup {
    pub const fn audd(life: CertificateLife) -> Self {
        Setup {
            vendor: Vendor::Audd,
            life,
            access_token_lifetime: None,
            chart_values: &[],
            vendor_down: false,
            secret_namespaces_rbac: false,
        }
    }
}

/// The world of most cases: AUDD, the chart's defaults, a Ready credential.
pub async fn world(test: &str, life: CertificateLife) -> World {
    world_with(test, Setup::audd(life)).await
}

pub async fn world_with(test: &str, setup: Setup) -> World {
    let cluster = TestCluster::connect_node()
        .await
        .expect("the node cluster (OTPILOT_NODE_KUBECONFIG)");
    println!("{}", nodes_line(&cluster.client()).await);
    let ns = cluster.namespace(test).await.expect("namespace");
    println!("namespace {}", ns.name());
    let narrow = format!("rbac.secretNamespaces={{{}}}", ns.name());
    let mut values = setup.chart_values.to_vec();
    if setup.secret_namespaces_rbac {
        values.push(&narrow);
    }
    chart::install(&cluster, &values).await;
    let mut config = SimConfig::new(setup.vendor)
        .with_period(Duration::from_secs(PERIOD_SECS))
        .with_account(AccountSpec::new(USERNAME, PASSWORD, API_KEY));
    if let Some(access) = setup.access_token_lifetime {
        let refresh = config.refresh_token_lifetime;
        config = config.with_token_lifetimes(access, refresh);
    }
    // On the bridge (or OTPILOT_NODE_HOST_ADDRESS): Pods (operator and sidecars) reach the host there.
    config.vendor_addr = SocketAddr::new(host_address(), 0);
    let sim = otpilot_sim::spawn(config)
        .await
        .expect("the simulator binds the bridge address (is the node up?)");
    println!("vendor ({} simulator) at {}", setup.vendor, sim.base_url());
    create_inputs(&ns, &sim).await;
    let admin = sim.admin().expect("admin client");
    if setup.vendor.requires_mtls() {
        let ca_pem = client_ca(&cluster, &ns).await;
        admin
            .register_client_ca(&ca_pem)
            .await
            .expect("register the ClientCA at the vendor");
    }
    if setup.vendor_down {
        let down = Faults {
            down: true,
            ..Faults::default()
        };
        admin.set_faults(&down).await.expect("take the vendor down");
        println!("vendor down (503 to every call) until the test brings it back");
    }
    create_credential(&ns, CREDENTIAL, &sim.base_url(), setup.vendor, &setup.life).await;
    if !setup.vendor_down {
        wait_until_ready(&ns, CREDENTIAL).await;
    }
    World { cluster, ns, sim }
}

async fn create_inputs(ns: &TestNamespace, sim: &SimHandle) {
    let cm = ConfigMap {
        metadata: named(CA_CONFIG_MAP),
        data: Some(BTreeMap::from([(
            "ca.crt".to_owned(),
            sim.server_ca_pem().to_owned(),
        )])),
        ..ConfigMap::default()
    };
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .expect("create the server CA ConfigMap");
    let secret = Secret {
        metadata: named(LOGIN_SECRET),
        string_data: Some(BTreeMap::from([
            ("password".to_owned(), PASSWORD.to_owned()),
            ("api-key".to_owned(), API_KEY.to_owned()),
        ])),
        ..Secret::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the login Secret");
}

fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    }
}

/// A generated ClientCA named after the namespace, once Ready: its certificate.
async fn client_ca(cluster: &TestCluster, ns: &TestNamespace) -> String {
    let ca: ClientCA = serde_json::from_value(json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ClientCA",
        "metadata": {"name": ns.name()},
        "spec": {
            "generate": {"subject": {"commonName": "otpilot node e2e client CA"}},
            "allowedNamespaces": {"names": [ns.name()]}
        }
    }))
    .expect("ClientCA");
    let api = Api::<ClientCA>::all(cluster.client());
    api.create(&PostParams::default(), &ca)
        .await
        .expect("create ClientCA");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = api
            .get(ns.name())
            .await
            .expect("get ClientCA")
            .status
            .unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if let (true, Some(pem)) = (ready, status.certificate.clone()) {
            return pem;
        }
        assert!(Instant::now() < deadline, "ClientCA not Ready: {status:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// An ApiCredential for the world's account at `vendor` (its built-in profile), with a client
/// certificate from the namespace's ClientCA when the vendor requires mTLS.
pub async fn create_credential(
    ns: &TestNamespace,
    name: &str,
    base_url: &str,
    vendor: Vendor,
    life: &CertificateLife,
) {
    let mut spec = json!({
        "profile": vendor.as_str(),
        "baseUrl": base_url,
        "serverCa": {"name": CA_CONFIG_MAP, "key": "ca.crt"},
        "username": USERNAME,
        "passwordSecretRef": {"name": LOGIN_SECRET, "key": "password"},
        "apiKeySecretRef": {"name": LOGIN_SECRET, "key": "api-key"},
        "totp": {"period": PERIOD_SECS},
    });
    if vendor.requires_mtls() {
        spec["clientCertificate"] = json!({
            "caRef": ns.name(),
            "subject": {"commonName": USERNAME},
            "duration": life.0,
            "renewBefore": life.1,
        });
    }
    let credential: ApiCredential = serde_json::from_value(json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ApiCredential",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("ApiCredential");
    ns.api::<ApiCredential>()
        .create(&PostParams::default(), &credential)
        .await
        .expect("create ApiCredential");
}

/// `(status, reason, message)` of the credential's Ready condition.
pub fn ready_condition(c: &ApiCredential) -> Option<(String, String, String)> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|x| x.type_ == "Ready")
        .map(|x| (x.status.clone(), x.reason.clone(), x.message.clone()))
}

/// Waits until the credential's Ready condition has `status`; returns the credential.
pub async fn wait_for_condition(ns: &TestNamespace, name: &str, status: &str) -> ApiCredential {
    let api = ns.api::<ApiCredential>();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let c = api.get(name).await.expect("get ApiCredential");
        if ready_condition(&c).is_some_and(|(s, _, _)| s == status) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "ApiCredential {name}: Ready never {status}: {:?}",
            c.status
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn wait_until_ready(ns: &TestNamespace, name: &str) -> ApiCredential {
    let c = wait_for_condition(ns, name, "True").await;
    println!(
        "ApiCredential {name} Ready: {:?}, certificate until {:?}",
        ready_condition(&c),
        c.status
            .as_ref()
            .and_then(|s| s.certificate_not_after.clone())
    );
    c
}

/// The runtime Secret's client certificate (PEM).
pub async fn runtime_certificate(ns: &TestNamespace) -> Vec<u8> {
    let secret = ns
        .api::<Secret>()
        .get(&otpilot_api::labels::runtime_secret_name(CREDENTIAL))
        .await
        .expect("get the runtime Secret");
    secret
        .data
        .unwrap_or_default()
        .get("tls.crt")
        .map(|b| b.0.clone())
        .unwrap_or_default()
}

/// Fails when a secret value shows up in `text` (logs, events, statuses).
pub fn assert_no_secrets(what: &str, text: &str) {
    for secret in [PASSWORD, API_KEY] {
        assert!(!text.contains(secret), "{what} holds a secret value");
    }
}
