//! The operator process serving the injection webhook to the real
//! kube-apiserver (registered by a loopback URL and its CA bundle, as
//! envtest does), scoped to one test's namespaces, and the Pods the tests
//! create through it.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use otpilot_api::common::{CertificateSubject, KeyAlgorithm};
use otpilot_tests::webhook::{SCOPE_LABEL, scoped_namespace, wait_until_webhook_answers};
use otpilot_tests::{TestCluster, TestNamespace};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::Operator;

pub const IMAGE: &str = "localhost/otpilot/sidecar:webhook-test";
/// Field manager of the Ready condition the tests set.
pub const FIELD_MANAGER: &str = "webhook-test";
pub const INJECT: &str = "otpilot.dev/inject";

/// One operator process serving the webhook, a configuration pointing at it,
/// and namespaces labelled for it.
pub struct Setup {
    pub cluster: TestCluster,
    pub operator: Operator,
    _operator_namespace: TestNamespace,
    pub config_name: String,
    pub scope: String,
    /// The webhook's address and the CA of its serving certificate, for
    /// requests that do not come from the API server.
    pub addr: String,
    pub ca_pem: String,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A CA and a serving certificate for 127.0.0.1 in `dir` (what cert-manager
/// would mount); returns the CA PEM.
pub fn write_serving_certificate(dir: &std::path::Path) -> String {
    let now = jiff::Timestamp::now();
    let day = Duration::from_secs(24 * 3600);
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

pub fn webhook_configuration(name: &str, url: &str, scope: &str, ca_pem: Option<&str>) -> Value {
    let mut client_config = json!({"url": url});
    if let Some(ca) = ca_pem {
        client_config["caBundle"] =
            serde_json::to_value(ByteString(ca.as_bytes().to_vec())).expect("caBundle");
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "inject.otpilot.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 10,
            "reinvocationPolicy": "IfNeeded",
            "clientConfig": client_config,
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {SCOPE_LABEL: scope}},
            "matchConditions": [{"name": "annotated",
                "expression": "has(object.metadata.annotations) && 'otpilot.dev/inject' in object.metadata.annotations"}]
        }]
    })
}

pub async fn create_configuration(cluster: &TestCluster, configuration: Value) {
    let configuration: MutatingWebhookConfiguration =
        serde_json::from_value(configuration).expect("MutatingWebhookConfiguration");
    Api::<MutatingWebhookConfiguration>::all(cluster.client())
        .create(&PostParams::default(), &configuration)
        .await
        .expect("register the test webhook");
}

impl Setup {
    /// The operator, watching its own namespace only (no controller touches
    /// the test's apps), with the default inject settings.
    pub async fn start(test_name: &str) -> Setup {
        let cluster = TestCluster::with_crds().await.expect("test control plane");
        let scope = format!("{:08x}", rand::random::<u32>());
        Self::launch(
            cluster,
            test_name,
            scope,
            None,
            json!({"sidecarImage": IMAGE}),
        )
        .await
    }

    /// The operator watching a fresh namespace the webhook serves (its
    /// controllers, the session grants among them, act there), with these
    /// inject settings.
    pub async fn start_watching(
        test_name: &str,
        apps_name: &str,
        settings: Value,
    ) -> (Setup, TestNamespace) {
        let cluster = TestCluster::with_crds().await.expect("test control plane");
        let scope = format!("{:08x}", rand::random::<u32>());
        let apps = scoped_namespace(&cluster, apps_name, &scope).await;
        let setup = Self::launch(cluster, test_name, scope, Some(apps.name()), settings).await;
        if let Err(last) = wait_until_webhook_answers(&apps).await {
            panic!(
                "the API server never got the operator's answer within 30 s (last: {last}); operator log:\n{}",
                setup.operator.log_text()
            );
        }
        (setup, apps)
    }

    async fn launch(
        cluster: TestCluster,
        test_name: &str,
        scope: String,
        watch: Option<&str>,
        settings: Value,
    ) -> Setup {
        let operator_namespace = cluster
            .namespace(&format!("{test_name}-operator"))
            .await
            .expect("operator namespace");
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_pem = write_serving_certificate(dir.path());
        let settings_path = dir.path().join("inject.json");
        std::fs::write(&settings_path, settings.to_string()).expect("write inject.json");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let ns = operator_namespace.name().to_owned();
        let cert_dir = dir.path().display().to_string();
        let settings_path = settings_path.display().to_string();
        let mut env = vec![
            ("OTPILOT_WEBHOOK_ADDR", addr.as_str()),
            ("OTPILOT_WEBHOOK_CERT_DIR", cert_dir.as_str()),
            ("OTPILOT_INJECT_CONFIG", settings_path.as_str()),
        ];
        if let Some(watch) = watch {
            env.push(("OTPILOT_WATCH_NAMESPACE", watch));
        }
        let operator = Operator::start_with(&ns, "otpilot-operator", &env).await;
        let config_name = format!("otpilot-operator-webhook-test-{scope}");
        create_configuration(
            &cluster,
            webhook_configuration(
                &config_name,
                &format!("https://{addr}/inject"),
                &scope,
                Some(&ca_pem),
            ),
        )
        .await;
        Setup {
            cluster,
            operator,
            _operator_namespace: operator_namespace,
            config_name,
            scope,
            addr,
            ca_pem,
            _dir: dir,
        }
    }

    /// A fresh namespace the webhook serves, once the API server calls it.
    pub async fn namespace(&self, test_name: &str) -> TestNamespace {
        let namespace = scoped_namespace(&self.cluster, test_name, &self.scope).await;
        if let Err(last) = wait_until_webhook_answers(&namespace).await {
            panic!(
                "the API server never got the operator's answer within 30 s (last: {last}); operator log:\n{}",
                self.operator.log_text()
            );
        }
        namespace
    }

    pub async fn stop(self) {
        Api::<MutatingWebhookConfiguration>::all(self.cluster.client())
            .delete(&self.config_name, &DeleteParams::default())
            .await
            .expect("delete the test webhook configuration");
        drop(self.operator);
    }
}

pub fn pod_json(name: &str, annotations: Value) -> Value {
    json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}
    })
}

pub async fn create_pod(namespace: &TestNamespace, pod: Value) -> Result<Pod, kube::Error> {
    let pod: Pod = serde_json::from_value(pod).expect("Pod");
    namespace
        .api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
}

pub fn refusal(result: Result<Pod, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{status:?}");
            status.message
        }
        Err(other) => panic!("expected the webhook's refusal, got {other}"),
        Ok(pod) => panic!(
            "expected a refusal, the Pod was created: {:?}",
            pod.metadata.name
        ),
    }
}

pub fn init_containers(pod: &Pod) -> Vec<(String, Option<String>, Option<String>)> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .map(|c| (c.name.clone(), c.restart_policy.clone(), c.image.clone()))
        .collect()
}
