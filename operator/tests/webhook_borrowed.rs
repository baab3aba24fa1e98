//! The injection webhook, served by the operator process and called by the
//! real kube-apiserver, refuses a Pod whose ApiCredential names one of
//! otpilot's own Secrets (another credential's recovery, runtime or session
//! Secret, a ClientCA's key, any Secret otpilot labels or owns) as an input,
//! even when the credential says Ready: the Secret would be mounted into
//! the Pod. No operator reconciles the apps namespace here, so the
//! credentials' Ready conditions stay as the test sets them.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Resource;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use otpilot_api::ApiCredential;
use otpilot_api::common::{CertificateSubject, KeyAlgorithm};
use otpilot_api::labels;
use otpilot_tests::webhook::{SCOPE_LABEL, scoped_namespace, wait_until_webhook_answers};
use otpilot_tests::{TestCluster, TestNamespace};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use support::Operator;

const FIELD_MANAGER: &str = "webhook-borrowed-test";

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A serving certificate for 127.0.0.1 in `dir`; returns its CA PEM.
fn write_serving_certificate(dir: &std::path::Path) -> String {
    let now = jiff::Timestamp::now();
    let day = std::time::Duration::from_secs(24 * 3600);
    let subject = CertificateSubject {
        common_name: "webhook test CA".to_owned(),
        ..CertificateSubject::default()
    };
    let ca = otpilot_pki::generate_ca(&subject, KeyAlgorithm::EcdsaP256, day, now).expect("CA");
    let leaf = otpilot_pki::issue_server_certificate(&ca, &["127.0.0.1".to_owned()], day, now)
        .expect("serving certificate");
    std::fs::write(dir.join("tls.crt"), &leaf.chain_pem).expect("write tls.crt");
    std::fs::write(dir.join("tls.key"), leaf.key_pem.expose_secret()).expect("write tls.key");
    ca.cert_pem
}

fn webhook_configuration(name: &str, url: &str, scope: &str, ca_pem: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "inject.otpilot.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "NoneOnDryRun",
            "failurePolicy": "Fail",
            "timeoutSeconds": 10,
            "clientConfig": {"url": url, "caBundle":
                serde_json::to_value(ByteString(ca_pem.as_bytes().to_vec())).expect("caBundle")},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {SCOPE_LABEL: scope}},
            "matchConditions": [{"name": "annotated",
                "expression": "has(object.metadata.annotations) && 'otpilot.dev/inject' in object.metadata.annotations"}]
        }]
    })
}

/// An ApiCredential whose password comes from `secret`, marked Ready.
async fn ready_credential(ns: &TestNamespace, name: &str, secret: &str) -> ApiCredential {
    let api: Api<ApiCredential> = ns.api();
    let credential: ApiCredential = serde_json::from_value(json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ApiCredential",
        "metadata": {"name": name},
        "spec": {
            "profile": "audd",
            "baseUrl": "https://127.0.0.1:8443/api",
            "username": "payments-bot",
            "passwordSecretRef": {"name": secret, "key": "password"}
        }
    }))
    .expect("ApiCredential");
    let created = api
        .create(&PostParams::default(), &credential)
        .await
        .expect("create ApiCredential");
    let status = json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ApiCredential",
        "status": {"conditions": [{
            "type": "Ready", "status": "True", "reason": "Reconciled", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"
        }]}
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&status),
    )
    .await
    .expect("set the Ready condition");
    created
}

async fn create_secret(ns: &TestNamespace, name: &str, metadata: ObjectMeta) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..metadata
        },
        string_data: Some(BTreeMap::from([("password".into(), "pw".into())])),
        ..Secret::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create Secret");
}

fn labelled(pairs: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        labels: Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ObjectMeta::default()
    }
}

/// Creates (dry run) a Pod using `credential`; the webhook's answer.
async fn admit(ns: &TestNamespace, credential: &str) -> Result<Pod, kube::Error> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "app-", "annotations": {"otpilot.dev/inject": credential}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}
    }))
    .expect("Pod");
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    ns.api::<Pod>().create(&params, &pod).await
}

#[tokio::test]
async fn a_pod_is_refused_when_its_credential_names_otpilots_own_secret() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let operator_ns = cluster
        .namespace("borrowed-webhook-operator")
        .await
        .expect("operator namespace");
    let scope = format!("{:08x}", rand::random::<u32>());
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_pem = write_serving_certificate(dir.path());
    let settings = dir.path().join("inject.json");
    std::fs::write(
        &settings,
        json!({"sidecarImage": "localhost/otpilot/sidecar:test"}).to_string(),
    )
    .expect("write inject.json");
    let addr = format!("127.0.0.1:{}", free_port());
    let (cert_dir, settings) = (
        dir.path().display().to_string(),
        settings.display().to_string(),
    );
    let operator = Operator::start_with(
        operator_ns.name(),
        "otpilot-operator",
        &[
            ("OTPILOT_WEBHOOK_ADDR", addr.as_str()),
            ("OTPILOT_WEBHOOK_CERT_DIR", cert_dir.as_str()),
            ("OTPILOT_INJECT_CONFIG", settings.as_str()),
        ],
    )
    .await;
    let config_name = format!("otpilot-borrowed-test-{scope}");
    let configuration: MutatingWebhookConfiguration =
        serde_json::from_value(webhook_configuration(
            &config_name,
            &format!("https://{addr}/inject"),
            &scope,
            &ca_pem,
        ))
        .expect("MutatingWebhookConfiguration");
    let configurations = Api::<MutatingWebhookConfiguration>::all(cluster.client());
    configurations
        .create(&PostParams::default(), &configuration)
        .await
        .expect("register the test webhook");
    let ns = scoped_namespace(&cluster, "borrowed-webhook-apps", &scope).await;
    if let Err(last) = wait_until_webhook_answers(&ns).await {
        panic!(
            "the webhook never answered (last: {last}):\n{}",
            operator.log_text()
        );
    }

    // A victim credential, so a Secret can be owned by it.
    let victim = ready_credential(&ns, "victim", "victim-login").await;
    create_secret(&ns, "victim-login", ObjectMeta::default()).await;
    let owned_by_victim = ObjectMeta {
        owner_references: Some(vec![victim.controller_owner_ref(&()).expect("owner")]),
        ..ObjectMeta::default()
    };
    let cases: Vec<(&str, &str, ObjectMeta, &str)> = vec![
        (
            "recovery",
            "victim-recovery",
            labelled(&[
                (labels::SECRET_KIND, "recovery"),
                (labels::CREDENTIAL, "victim"),
            ]),
            "otpilot's recovery Secret",
        ),
        (
            "runtime",
            "victim-runtime",
            labelled(&[
                (labels::SECRET_KIND, "runtime"),
                (labels::CREDENTIAL, "victim"),
            ]),
            "otpilot's runtime Secret",
        ),
        (
            "session",
            "victim-session",
            owned_by_victim,
            "owned by ApiCredential victim",
        ),
        (
            "cakey",
            "vendor-ca-ca-key",
            labelled(&[
                (labels::SECRET_KIND, "ca-key"),
                (labels::CLIENT_CA, "vendor-ca"),
            ]),
            "otpilot's ca-key Secret",
        ),
        (
            "labelled",
            "vendor-settings",
            labelled(&[(labels::MANAGED_BY, labels::MANAGED_BY_VALUE)]),
            "managed by otpilot",
        ),
    ];
    for (name, secret, metadata, _) in &cases {
        create_secret(&ns, secret, metadata.clone()).await;
        ready_credential(&ns, &format!("thief-{name}"), secret).await;
    }

    // The victim itself, naming a user's Secret, is admitted with a sidecar.
    let pod = admit(&ns, "victim")
        .await
        .expect("the victim's Pod is admitted");
    assert!(
        pod.spec
            .iter()
            .flat_map(|s| s.init_containers.iter().flatten())
            .any(|c| c.name == otpilot_inject::sidecar::CONTAINER_NAME),
        "injected"
    );
    for (name, secret, _, why) in &cases {
        let thief = format!("thief-{name}");
        match admit(&ns, &thief).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 403, "{thief}: {status:?}");
                assert!(
                    status.message.contains(&format!(
                        "ApiCredential {thief} names Secret {secret} in spec.passwordSecretRef"
                    )) && status.message.contains(why),
                    "{thief}: {}",
                    status.message
                );
            }
            other => panic!("{thief}: the Pod was not refused: {other:?}"),
        }
    }

    configurations
        .delete(&config_name, &DeleteParams::default())
        .await
        .expect("delete the test webhook configuration");
    drop(operator);
}
