//! The injection webhook served by the operator PROCESS, registered with the
//! real kube-apiserver by a loopback URL and its CA bundle (as envtest
//! does): Pods, and the Pods of Deployments and Jobs, created through the
//! API server get the native sidecar, are
//! left alone, or are refused; and the operator-managed serving certificate.
//! Needs the test control plane (`eval "$(scripts/control-plane.sh up)"`).

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use otpilot_api::common::{CertificateSubject, KeyAlgorithm};
use otpilot_tests::webhook::{
    SCOPE_LABEL, create_credential, first_pod, scoped_namespace, wait_until_webhook_answers,
};
use otpilot_tests::{TestCluster, TestNamespace};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use support::Operator;

const IMAGE: &str = "localhost/otpilot/sidecar:webhook-test";
/// Field manager of the Ready condition the tests set.
const FIELD_MANAGER: &str = "webhook-test";
const INJECT: &str = "otpilot.dev/inject";

/// One operator process serving the webhook, a configuration pointing at it,
/// and namespaces labelled for it.
struct Setup {
    cluster: TestCluster,
    operator: Operator,
    _operator_namespace: TestNamespace,
    config_name: String,
    scope: String,
    /// The webhook's address and the CA of its serving certificate, for
    /// requests that do not come from the API server.
    addr: String,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A CA and a serving certificate for 127.0.0.1 in `dir` (what cert-manager
/// would mount); returns the CA PEM.
fn write_serving_certificate(dir: &std::path::Path) -> String {
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

fn webhook_configuration(name: &str, url: &str, scope: &str, ca_pem: Option<&str>) -> Value {
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

async fn create_configuration(cluster: &TestCluster, configuration: Value) {
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
    async fn start(test_name: &str) -> Setup {
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
    async fn start_watching(
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
    async fn namespace(&self, test_name: &str) -> TestNamespace {
        let namespace = scoped_namespace(&self.cluster, test_name, &self.scope).await;
        if let Err(last) = wait_until_webhook_answers(&namespace).await {
            panic!(
                "the API server never got the operator's answer within 30 s (last: {last}); operator log:\n{}",
                self.operator.log_text()
            );
        }
        namespace
    }

    async fn stop(self) {
        Api::<MutatingWebhookConfiguration>::all(self.cluster.client())
            .delete(&self.config_name, &DeleteParams::default())
            .await
            .expect("delete the test webhook configuration");
        drop(self.operator);
    }
}

fn pod_json(name: &str, annotations: Value) -> Value {
    json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}
    })
}

async fn create_pod(namespace: &TestNamespace, pod: Value) -> Result<Pod, kube::Error> {
    let pod: Pod = serde_json::from_value(pod).expect("Pod");
    namespace
        .api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
}

fn refusal(result: Result<Pod, kube::Error>) -> String {
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

fn init_containers(pod: &Pod) -> Vec<(String, Option<String>, Option<String>)> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .map(|c| (c.name.clone(), c.restart_policy.clone(), c.image.clone()))
        .collect()
}

#[tokio::test]
async fn an_annotated_pod_gets_the_native_sidecar_and_an_unannotated_pod_is_untouched() {
    let setup = Setup::start("webhook-injects").await;
    let namespace = setup.namespace("webhook-injects-apps").await;
    create_credential(&namespace, "vendor", "True", FIELD_MANAGER).await;

    let pod = create_pod(&namespace, pod_json("annotated", json!({INJECT: "vendor"})))
        .await
        .expect("the annotated Pod is admitted");
    assert_eq!(
        init_containers(&pod),
        [(
            otpilot_inject::sidecar::CONTAINER_NAME.to_owned(),
            Some("Always".to_owned()),
            Some(IMAGE.to_owned())
        )],
        "a native sidecar with the image from --inject-config"
    );
    let volumes: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.secret.as_ref().and_then(|s| s.secret_name.clone()))
        .collect();
    assert!(
        volumes.contains(&"vendor-runtime".to_owned()),
        "{volumes:?}"
    );
    let env: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers[0].env.iter().flatten())
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(env.len(), 3, "the app learns where the sidecar is: {env:?}");

    let plain = create_pod(&namespace, pod_json("plain", json!({"unrelated": "x"})))
        .await
        .expect("an unannotated Pod is admitted");
    assert!(init_containers(&plain).is_empty(), "untouched");
    assert!(
        plain
            .spec
            .iter()
            .all(|s| s.containers.iter().all(|c| c.env.is_none()))
    );
    setup.stop().await;
}

#[tokio::test]
async fn the_pods_of_deployments_and_jobs_get_the_native_sidecar() {
    let setup = Setup::start("webhook-controllers").await;
    let namespace = setup.namespace("webhook-controllers-apps").await;
    create_credential(&namespace, "vendor", "True", FIELD_MANAGER).await;
    let template = |app: &str, restart: &str| {
        let mut t = json!({
            "metadata": {"labels": {"app": app}, "annotations": {INJECT: "vendor"}},
            "spec": pod_json("", json!({}))["spec"].clone()
        });
        t["spec"]["restartPolicy"] = json!(restart);
        t
    };
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": template("web", "Always")}
    }))
    .expect("Deployment");
    namespace
        .api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create Deployment");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "batch"},
        "spec": {"template": template("batch", "Never"), "backoffLimit": 0}
    }))
    .expect("Job");
    namespace
        .api::<Job>()
        .create(&PostParams::default(), &job)
        .await
        .expect("create Job");
    for app in ["web", "batch"] {
        let pod = first_pod(&namespace, "app", app).await;
        assert_eq!(
            init_containers(&pod),
            [(
                otpilot_inject::sidecar::CONTAINER_NAME.to_owned(),
                Some("Always".to_owned()),
                Some(IMAGE.to_owned())
            )],
            "the {app} controller's Pod carries the native sidecar"
        );
    }
    setup.stop().await;
}

#[tokio::test]
async fn a_missing_credential_is_refused_counted_and_reported_by_the_pods_controller_alone() {
    let setup = Setup::start("webhook-refuses").await;
    let namespace = setup.namespace("webhook-refuses-apps").await;
    let ns = namespace.name().to_owned();

    let message =
        refusal(create_pod(&namespace, pod_json("bare", json!({INJECT: "nowhere"}))).await);
    assert!(
        message.contains(&format!(
            "ApiCredential nowhere in namespace {ns} is missing or not Ready"
        )),
        "{message}"
    );

    // The webhook writes nothing (sideEffects: None): the ReplicaSet
    // controller records FailedCreate with the webhook's message itself.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {
                     "metadata": {"labels": {"app": "web"}, "annotations": {INJECT: "nowhere"}},
                     "spec": pod_json("", json!({}))["spec"].clone()
                 }}
    }))
    .expect("Deployment");
    namespace
        .api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create Deployment");
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let metrics = setup.operator.metrics().await;
        let events = namespace
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .expect("list Events");
        let failed_create = events.items.iter().any(|e| {
            e.reason.as_deref() == Some("FailedCreate")
                && e.involved_object.kind.as_deref() == Some("ReplicaSet")
                && e.message.as_deref().is_some_and(|m| {
                    m.contains("ApiCredential nowhere in namespace")
                        && m.contains("missing or not Ready")
                })
        });
        let counted = metrics
            .contains("otpilot_operator_webhook_denials_total{reason=\"CredentialNotFound\"}");
        if failed_create && counted {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "no FailedCreate Event on the ReplicaSet ({failed_create}) or no denial metric ({counted}) within 60 s:\n{metrics}\n{}",
            setup.operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let own: Vec<_> = events
        .items
        .iter()
        .filter(|e| {
            e.reporting_component.as_deref() == Some("otpilot-operator")
                || e.source.as_ref().and_then(|s| s.component.as_deref())
                    == Some("otpilot-operator")
                || e.reason.as_deref() == Some("CredentialNotFound")
        })
        .collect();
    assert!(own.is_empty(), "the webhook recorded Events: {own:?}");
    setup.stop().await;
}

#[tokio::test]
async fn a_pod_in_another_namespace_cannot_use_the_credential() {
    let setup = Setup::start("webhook-namespaces").await;
    let owner = setup.namespace("webhook-credential-owner").await;
    let other = setup.namespace("webhook-credential-other").await;
    create_credential(&owner, "vendor", "True", FIELD_MANAGER).await;

    let message =
        refusal(create_pod(&other, pod_json("borrower", json!({INJECT: "vendor"}))).await);
    assert!(
        message.contains(&format!(
            "ApiCredential vendor in namespace {} is missing or not Ready",
            other.name()
        )),
        "{message}"
    );
    let qualified = format!("{}/vendor", owner.name());
    let message =
        refusal(create_pod(&other, pod_json("qualified", json!({INJECT: qualified}))).await);
    assert!(message.contains("another namespace"), "{message}");
    setup.stop().await;
}

#[tokio::test]
async fn the_operator_managed_certificate_is_stored_and_its_ca_patched_into_the_webhook_configuration()
 {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let namespace = cluster
        .namespace("webhook-managed-certificate")
        .await
        .expect("operator namespace");
    let scope = format!("{:08x}", rand::random::<u32>());
    let config_name = format!("otpilot-operator-managed-cert-{scope}");
    // Scoped to a label no namespace carries: it must never affect a Pod.
    let unreachable = format!("https://127.0.0.1:{}/inject", free_port());
    create_configuration(
        &cluster,
        webhook_configuration(&config_name, &unreachable, &format!("none-{scope}"), None),
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let cert_dir = dir.path().display().to_string();
    let addr = format!("127.0.0.1:{}", free_port());
    let operator = Operator::start_with(
        namespace.name(),
        "otpilot-operator",
        &[
            ("OTPILOT_WEBHOOK_ADDR", addr.as_str()),
            ("OTPILOT_WEBHOOK_CERT_DIR", cert_dir.as_str()),
            ("OTPILOT_WEBHOOK_SECRET_NAME", "otpilot-webhook-tls"),
            ("OTPILOT_WEBHOOK_CONFIG_NAME", config_name.as_str()),
            ("OTPILOT_WEBHOOK_SERVICE_NAME", "otpilot-webhook"),
        ],
    )
    .await;

    let configurations = Api::<MutatingWebhookConfiguration>::all(cluster.client());
    let deadline = Instant::now() + Duration::from_secs(30);
    let (secret, bundle) = loop {
        let secret = namespace
            .api::<Secret>()
            .get_opt("otpilot-webhook-tls")
            .await
            .expect("get Secret");
        let bundle = configurations
            .get(&config_name)
            .await
            .expect("get the configuration")
            .webhooks
            .unwrap_or_default()
            .first()
            .and_then(|w| w.client_config.ca_bundle.clone());
        if let (Some(secret), Some(bundle)) = (secret, bundle) {
            break (secret, bundle);
        }
        assert!(
            Instant::now() < deadline,
            "no Secret and CA bundle within 30 s:\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.expect("Secret data");
    let text = |key: &str| String::from_utf8(data.get(key).expect(key).0.clone()).expect("UTF-8");
    assert_eq!(
        bundle.0,
        text("ca.crt").into_bytes(),
        "the caBundle is ca.crt"
    );
    let info = otpilot_pki::certificate_info(&text("tls.crt")).expect("tls.crt");
    let ns = namespace.name();
    assert_eq!(
        info.subject_alt_names,
        [
            format!("otpilot-webhook.{ns}.svc"),
            format!("otpilot-webhook.{ns}.svc.cluster.local")
        ]
    );
    let key = text("tls.key");
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!key_body.is_empty());
    assert!(
        !operator.log_text().replace('\n', "").contains(&key_body),
        "the serving key leaked into the log"
    );

    drop(operator);
    configurations
        .delete(&config_name, &DeleteParams::default())
        .await
        .expect("delete the test webhook configuration");
}

/// Whether `user` may `verb` `resource/name` in `namespace` (SubjectAccessReview).
async fn may(
    cluster: &TestCluster,
    namespace: &str,
    service_account: &str,
    (verb, group, resource, name): (&str, &str, &str, &str),
) -> bool {
    let review: k8s_openapi::api::authorization::v1::SubjectAccessReview =
        serde_json::from_value(json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": format!("system:serviceaccount:{namespace}:{service_account}"),
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": {"namespace": namespace, "verb": verb,
                    "group": group, "resource": resource, "name": name}
            }
        }))
        .expect("SubjectAccessReview");
    Api::<k8s_openapi::api::authorization::v1::SubjectAccessReview>::all(cluster.client())
        .create(&PostParams::default(), &review)
        .await
        .expect("SubjectAccessReview answered")
        .status
        .is_some_and(|s| s.allowed)
}

/// The `otpilot-session-vendor` RoleBinding's subjects once they are `want`
/// (the grants follow the Pods through a watch); panics after 30 s.
async fn wait_for_subjects(setup: &Setup, namespace: &TestNamespace, want: &[&str]) {
    use k8s_openapi::api::rbac::v1::RoleBinding;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let binding = namespace
            .api::<RoleBinding>()
            .get_opt("otpilot-session-vendor")
            .await
            .expect("get RoleBinding");
        let subjects: Vec<String> = binding
            .iter()
            .flat_map(|b| b.subjects.iter().flatten())
            .map(|s| s.name.clone())
            .collect();
        if subjects == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the RoleBinding lists {subjects:?}, not {want:?}, after 30 s; operator log:\n{}",
            setup.operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_injected_pods_service_account_may_use_exactly_its_credentials_shared_session() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::RoleBinding;
    use otpilot_api::ApiCredential;

    // The operator reconciles this namespace: the test's credential becomes
    // not Ready (there is no vendor), so its Pods are injected regardless.
    let (setup, namespace) = Setup::start_watching(
        "webhook-session",
        "webhook-session-apps",
        json!({"sidecarImage": IMAGE, "whenNotReady": "Inject"}),
    )
    .await;
    create_credential(&namespace, "vendor", "True", FIELD_MANAGER).await;
    for sa in ["app", "batch", "dry", "forger"] {
        let account: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": sa}})).expect("ServiceAccount");
        namespace
            .api::<ServiceAccount>()
            .create(&PostParams::default(), &account)
            .await
            .expect("create ServiceAccount");
    }
    let pod_of = |name: &str, sa: &str| {
        let mut pod = pod_json(name, json!({INJECT: "vendor"}));
        pod["spec"]["serviceAccountName"] = json!(sa);
        pod
    };
    for (name, sa) in [("a", "app"), ("b", "app"), ("c", "batch")] {
        create_pod(&namespace, pod_of(name, sa))
            .await
            .expect("the annotated Pod is admitted");
    }
    let dry: Pod = serde_json::from_value(pod_of("d", "dry")).expect("Pod");
    namespace
        .api::<Pod>()
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &dry,
        )
        .await
        .expect("a dry run is admitted");
    // The marker annotation set by hand skips the webhook: no sidecar, no grant.
    let mut forged = pod_json("forged", json!({"otpilot.dev/injected": "vendor"}));
    forged["spec"]["serviceAccountName"] = json!("forger");
    create_pod(&namespace, forged)
        .await
        .expect("a Pod without the inject annotation is admitted untouched");

    wait_for_subjects(&setup, &namespace, &["app", "batch"]).await;
    let credential = namespace
        .api::<ApiCredential>()
        .get("vendor")
        .await
        .expect("credential");
    let uid = credential.metadata.uid.clone().expect("uid");
    let secret = namespace
        .api::<Secret>()
        .get("vendor-session")
        .await
        .expect("the session Secret exists");
    let lease = namespace
        .api::<Lease>()
        .get("vendor-session")
        .await
        .expect("the session Lease exists");
    let binding = namespace
        .api::<RoleBinding>()
        .get("otpilot-session-vendor")
        .await
        .expect("the RoleBinding exists");
    for meta in [&secret.metadata, &lease.metadata, &binding.metadata] {
        let owner = &meta.owner_references.as_ref().expect("owned")[0];
        assert_eq!(
            owner.uid, uid,
            "owned by the ApiCredential (deleted with it)"
        );
        assert_eq!(
            meta.labels.as_ref().expect("labels")["otpilot.dev/credential"],
            "vendor"
        );
    }
    assert_eq!(
        secret
            .data
            .as_ref()
            .expect("data")
            .keys()
            .collect::<Vec<_>>(),
        ["layout-version"],
        "nothing published yet"
    );

    let ns = namespace.name();
    let session_secret = ("get", "", "secrets", "vendor-session");
    let session_lease = ("update", "coordination.k8s.io", "leases", "vendor-session");
    // The authorizer learns of new bindings through its own watch.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(may(&setup.cluster, ns, "app", session_secret).await
        && may(&setup.cluster, ns, "batch", session_lease).await)
    {
        assert!(
            Instant::now() < deadline,
            "the RoleBinding never took effect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for sa in ["dry", "forger"] {
        assert!(!may(&setup.cluster, ns, sa, session_secret).await, "{sa}");
    }
    for other in [
        ("get", "", "secrets", "vendor-runtime"),
        ("get", "", "secrets", "vendor-login"),
        ("list", "", "secrets", ""),
        ("create", "", "secrets", ""),
        ("delete", "", "secrets", "vendor-session"),
    ] {
        assert!(!may(&setup.cluster, ns, "app", other).await, "{other:?}");
    }

    // An account leaves the binding with its last Pod; one of two Pods of
    // an account going changes nothing.
    let pods = namespace.api::<Pod>();
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    pods.delete("c", &now).await.expect("delete c");
    wait_for_subjects(&setup, &namespace, &["app"]).await;
    pods.delete("a", &now).await.expect("delete a");
    pods.delete("b", &now).await.expect("delete b");
    wait_for_subjects(&setup, &namespace, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while may(&setup.cluster, ns, "app", session_secret).await {
        assert!(Instant::now() < deadline, "the grant was never taken back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    setup.stop().await;
}

/// A made-up AdmissionReview: Pod `pod_name` created in `namespace`, asking
/// for `credential`, running as `service_account`, owned by a ReplicaSet.
fn forged_review(namespace: &str, credential: &str, service_account: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0d3c1e5f-forged-0000-0000-000000000000",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "metadata": {
                    "generateName": "web-5d8f-",
                    "annotations": {INJECT: credential},
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f",
                        "uid": "0b6c7f3e-1d2a-4c5b-9e8f-7a6b5c4d3e2f", "controller": true
                    }]
                },
                "spec": {
                    "serviceAccountName": service_account,
                    "containers": [{"name": "app", "image": "app:1"}]
                }
            },
            "oldObject": null,
            "dryRun": false
        }
    })
}

/// POSTs `review` to the webhook port directly, as any Pod of the cluster
/// could; returns the `response` object.
async fn post_to_webhook(setup: &Setup, review: &Value) -> Value {
    support::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(setup.ca_pem.as_bytes()).expect("CA");
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("HTTPS client");
    let answer: Value = client
        .post(format!("https://{}/inject", setup.addr))
        .json(review)
        .send()
        .await
        .expect("the webhook answers")
        .json()
        .await
        .expect("an AdmissionReview");
    answer["response"].clone()
}

#[tokio::test]
async fn a_forged_review_changes_nothing_anywhere_and_learns_nothing_about_other_namespaces() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use otpilot_api::ApiCredential;

    let setup = Setup::start("webhook-forged").await;
    let victim = setup.namespace("webhook-forged-victim").await;
    let ns = victim.name().to_owned();
    // No controller touches this namespace: the conditions stay as set.
    create_credential(&victim, "open", "True", FIELD_MANAGER).await;
    create_credential(&victim, "pending", "False", FIELD_MANAGER).await;
    let stranger = format!("made-up-{:08x}", rand::random::<u32>());

    // A Pod of a Ready credential: admitted with the sidecar, and nothing
    // is granted to the made-up account.
    let open = post_to_webhook(&setup, &forged_review(&ns, "open", &stranger)).await;
    assert_eq!(open["allowed"], true, "{open}");

    // Exists but not Ready, then the same name once it does not exist: the
    // same answer, byte for byte.
    let not_ready = post_to_webhook(&setup, &forged_review(&ns, "pending", &stranger)).await;
    victim
        .api::<ApiCredential>()
        .delete("pending", &DeleteParams::default())
        .await
        .expect("delete the credential");
    let missing = post_to_webhook(&setup, &forged_review(&ns, "pending", &stranger)).await;
    // Nothing was written: no session object, no Event, in the claimed
    // namespace or anywhere else for the made-up account.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let none = ListParams::default();
    let leases = victim.api::<Lease>().list(&none).await.expect("Leases");
    let roles = victim.api::<Role>().list(&none).await.expect("Roles");
    let bindings = victim
        .api::<RoleBinding>()
        .list(&none)
        .await
        .expect("RoleBindings");
    let sessions: Vec<_> = victim
        .api::<Secret>()
        .list(&none)
        .await
        .expect("Secrets")
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .filter(|name| name.ends_with("-session"))
        .collect();
    assert!(leases.items.is_empty(), "{:?}", leases.items);
    assert!(roles.items.is_empty(), "{:?}", roles.items);
    assert!(bindings.items.is_empty(), "{:?}", bindings.items);
    assert!(sessions.is_empty(), "{sessions:?}");
    let events = victim.api::<Event>().list(&none).await.expect("Events");
    let about_pods: Vec<_> = events
        .items
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some("web-5d8f"))
        .collect();
    assert!(about_pods.is_empty(), "{about_pods:?}");
    let everywhere = Api::<RoleBinding>::all(setup.cluster.client())
        .list(&none)
        .await
        .expect("every RoleBinding");
    let granted: Vec<_> = everywhere
        .items
        .iter()
        .filter(|b| b.subjects.iter().flatten().any(|s| s.name == stranger))
        .filter_map(|b| b.metadata.name.clone())
        .collect();
    assert!(granted.is_empty(), "{stranger} was bound by {granted:?}");

    assert_eq!(not_ready["allowed"], false, "{not_ready}");
    assert_eq!(
        serde_json::to_vec(&not_ready["status"]).expect("json"),
        serde_json::to_vec(&missing["status"]).expect("json"),
        "the answers differ: {not_ready} vs {missing}"
    );
    assert_eq!(not_ready["warnings"], missing["warnings"]);
    let message = not_ready["status"]["message"].as_str().expect("a message");
    assert!(message.contains("missing or not Ready"), "{message}");
    setup.stop().await;
}
