//! The injection webhook served by the operator PROCESS, registered with the
//! real kube-apiserver by a loopback URL and its CA bundle (as envtest
//! does): Pods, and the Pods of Deployments and Jobs, created through the
//! API server get the native sidecar, are
//! left alone, or are refused; and the operator-managed serving certificate.
//! Needs the test control plane (`eval "$(scripts/control-plane.sh up)"`).

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use otpilot_tests::TestCluster;
use otpilot_tests::webhook::{create_credential, first_pod};
use serde_json::json;
use support::Operator;
use support::webhook_server::*;

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
        // Labelled with the refused Pod's namespace: the alert reaches its team.
        let counted = metrics.contains(&format!(
            "otpilot_operator_webhook_denials_total{{namespace=\"{}\",reason=\"CredentialNotFound\"}}",
            namespace.name()
        ));
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
