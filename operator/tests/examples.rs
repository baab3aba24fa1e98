//! Every vendor example in `examples/` applied as a user applies it, against
//! the real API server, with the operator running as a process and that
//! vendor's simulator answering over real HTTPS (mTLS for AUDD, with the
//! ClientCA's certificate registered the way a person hands it to a vendor),
//! until the ApiCredential is Ready.
//!
//! The test rewrites only what `examples/README.md` says a user changes: the
//! namespace (each test has its own), `baseUrl` (where the simulator
//! listens), and the ClientCA's name and labels (ClientCAs are cluster-wide;
//! the test operator only sees ClientCAs labelled for its namespace). The
//! simulator's TOTP period is the vendor's, as the examples expect.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use otpilot_api::ClientCA;
use otpilot_sim::{AccountSpec, SimConfig, SimHandle, Vendor};
use otpilot_tests::{TestCluster, TestNamespace};
use serde_json::Value;
use support::*;

/// Where the test puts what the examples point at.
struct Placement<'a> {
    namespace: &'a str,
    base_url: &'a str,
}

/// The example's objects, ready to apply: Namespace documents dropped (the
/// test has its own namespace) and only the fields a user changes rewritten.
fn for_test(docs: &[Value], at: &Placement) -> Vec<Value> {
    docs.iter()
        .filter(|d| d["kind"] != "Namespace")
        .cloned()
        .map(|mut d| {
            if d["metadata"].get("namespace").is_some() {
                d["metadata"]["namespace"] = at.namespace.into();
            }
            match d["kind"].as_str() {
                Some("ClientCA") => {
                    let name = client_ca_name(&d["metadata"]["name"], at);
                    d["metadata"]["name"] = name.into();
                    d["metadata"]["labels"]["otpilot.dev/test"] = at.namespace.into();
                    d["spec"]["allowedNamespaces"]["names"] = serde_json::json!([at.namespace]);
                }
                Some("ApiCredential") => {
                    d["spec"]["baseUrl"] = at.base_url.into();
                    if let Some(ca) = d["spec"].get("clientCertificate").map(|c| &c["caRef"]) {
                        let name = client_ca_name(ca, at);
                        d["spec"]["clientCertificate"]["caRef"] = name.into();
                    }
                }
                _ => {}
            }
            d
        })
        .collect()
}

fn client_ca_name(name: &Value, at: &Placement) -> String {
    format!("{}-{}", name.as_str().unwrap_or_default(), at.namespace)
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The vendor account the example's Secret logs in to: its username,
/// password and API key. A vendor without a password gets a random one: a
/// fixed word would be in the secret ledger and match wherever a test happens
/// to use the same word as a name.
fn account(docs: &[Value]) -> AccountSpec {
    let credential = of_kind(docs, "ApiCredential")[0];
    let spec = &credential["spec"];
    let value = |reference: &Value| -> Option<String> {
        let secret = of_kind(docs, "Secret")
            .into_iter()
            .find(|s| s["metadata"]["name"] == reference["name"])?;
        secret["stringData"][reference["key"].as_str()?]
            .as_str()
            .map(str::to_owned)
    };
    AccountSpec::new(
        spec["username"].as_str().expect("spec.username"),
        value(&spec["passwordSecretRef"])
            .unwrap_or_else(|| format!("unused-{:016x}", rand::random::<u64>())),
        value(&spec["apiKeySecretRef"]).unwrap_or_default(),
    )
}

fn example(vendor: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(format!("{vendor}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Server-side apply with strict field validation: a field the API server
/// does not know fails the test instead of being dropped.
async fn apply(cluster: &TestCluster, ns: &TestNamespace, doc: &Value) {
    let object: DynamicObject = serde_json::from_value(doc.clone()).expect("a Kubernetes object");
    let types = object.types.as_ref().expect("apiVersion and kind");
    let gvk = GroupVersionKind::try_from(types).expect("apiVersion");
    let client = cluster.client();
    let (resource, capabilities) = pinned_kind(&client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("{} unknown to the API server: {e}", gvk.kind));
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Namespaced => Api::namespaced_with(client, ns.name(), &resource),
        Scope::Cluster => Api::all_with(client, &resource),
    };
    let name = object.metadata.name.clone().expect("metadata.name");
    let params = PatchParams::apply("otpilot-examples-test").validation_strict();
    api.patch(&name, &params, &Patch::Apply(doc))
        .await
        .unwrap_or_else(|e| panic!("apply {} {name}: {e}", gvk.kind));
}

/// The simulator's private server CA, in the ConfigMap the credential's
/// `serverCa` names (run-local.sh creates the same one).
async fn create_server_ca_for(ns: &TestNamespace, credential: &Value, sim: &SimHandle) {
    let server_ca = &credential["spec"]["serverCa"];
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: server_ca["name"].as_str().map(str::to_owned),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            server_ca["key"].as_str().expect("serverCa.key").to_owned(),
            sim.server_ca_pem().to_owned(),
        )])),
        ..ConfigMap::default()
    };
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &config_map)
        .await
        .expect("create the server CA ConfigMap");
}

/// Waits for the ClientCA's certificate and registers it with the vendor.
async fn hand_client_ca_to_vendor(
    cluster: &TestCluster,
    name: &str,
    sim: &SimHandle,
    operator: &Operator,
) {
    let api = Api::<ClientCA>::all(cluster.client());
    let deadline = Instant::now() + Duration::from_secs(60);
    let pem = loop {
        let status = api.get(name).await.expect("get ClientCA").status;
        if let Some(pem) = status.as_ref().and_then(|s| s.certificate.clone()) {
            break pem;
        }
        assert!(
            Instant::now() < deadline,
            "ClientCA {name} has no certificate: {status:?}\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    sim.admin()
        .expect("admin")
        .register_client_ca(&pem)
        .await
        .expect("register the ClientCA with the vendor");
}

async fn example_reaches_ready(vendor_name: &str) {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace(&format!("example-{vendor_name}"))
        .await
        .expect("namespace");
    let docs = example(vendor_name);
    let credential = of_kind(&docs, "ApiCredential")[0].clone();
    assert_eq!(credential["spec"]["profile"], vendor_name);

    install_crypto_provider();
    let vendor: Vendor = vendor_name.parse().expect("a simulated vendor");
    let sim = otpilot_sim::spawn(SimConfig::new(vendor).with_account(account(&docs)))
        .await
        .expect("simulator starts");
    create_server_ca_for(&ns, &credential, &sim).await;
    let operator = Operator::start(ns.name()).await;

    let base_url = sim.base_url();
    let at = Placement {
        namespace: ns.name(),
        base_url: &base_url,
    };
    let objects = for_test(&docs, &at);
    for object in &objects {
        apply(&cluster, &ns, object).await;
    }
    for ca in objects.iter().filter(|d| d["kind"] == "ClientCA") {
        let name = ca["metadata"]["name"].as_str().expect("name");
        hand_client_ca_to_vendor(&cluster, name, &sim, &operator).await;
    }

    let name = credential["metadata"]["name"].as_str().expect("name");
    wait_for_ready(&ns, name, &operator).await;
    // The example's own password and keys, and the seed, recovery codes and key it led to.
    let mut values = secret_values(&ns, name).await;
    let account = account(&docs);
    values.extend(
        [account.password, account.api_key]
            .into_iter()
            .filter(|v| !v.is_empty()),
    );
    assert_no_secret_leaks(&ns, &operator, &values).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn audd_example_reaches_ready_over_mtls() {
    example_reaches_ready("audd").await;
}

#[tokio::test]
async fn goaxr_example_reaches_ready() {
    example_reaches_ready("goaxr").await;
}

#[tokio::test]
async fn conduit_example_reaches_ready() {
    example_reaches_ready("conduit").await;
}

#[tokio::test]
async fn acreto_example_reaches_ready() {
    example_reaches_ready("acreto").await;
}

#[tokio::test]
async fn cryptr_example_reaches_ready() {
    example_reaches_ready("cryptr").await;
}

#[test]
fn every_example_file_is_tested_and_every_built_in_profile_has_one() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut vendors: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".yaml").map(str::to_owned))
        .filter(|f| f != "workload")
        .collect();
    vendors.sort();
    assert_eq!(vendors, ["acreto", "audd", "conduit", "cryptr", "goaxr"]);
}

#[test]
fn the_test_changes_only_what_a_user_changes() {
    let docs = example("audd");
    let at = Placement {
        namespace: "ns-1",
        base_url: "https://127.0.0.1:1234",
    };
    let rewritten = for_test(&docs, &at);
    assert!(of_kind(&rewritten, "Namespace").is_empty());
    let original: Vec<&Value> = docs.iter().filter(|d| d["kind"] != "Namespace").collect();
    assert_eq!(original.len(), rewritten.len());
    // Everything else is as the file says: undo the rewrites and compare.
    for (before, after) in original.into_iter().zip(&rewritten) {
        let mut undone = after.clone();
        if before["metadata"].get("namespace").is_some() {
            assert_eq!(undone["metadata"]["namespace"], "ns-1");
            undone["metadata"]["namespace"] = before["metadata"]["namespace"].clone();
        }
        match before["kind"].as_str() {
            Some("ClientCA") => {
                assert_eq!(undone["metadata"]["name"], "demo-vendor-ca-ns-1");
                undone["metadata"]["name"] = before["metadata"]["name"].clone();
                undone["metadata"]
                    .as_object_mut()
                    .expect("metadata")
                    .remove("labels");
                undone["spec"]["allowedNamespaces"] = before["spec"]["allowedNamespaces"].clone();
            }
            Some("ApiCredential") => {
                assert_eq!(undone["spec"]["baseUrl"], "https://127.0.0.1:1234");
                undone["spec"]["baseUrl"] = before["spec"]["baseUrl"].clone();
                undone["spec"]["clientCertificate"]["caRef"] =
                    before["spec"]["clientCertificate"]["caRef"].clone();
            }
            _ => {}
        }
        assert_eq!(&undone, before);
    }
}
