//! Injection through the real kube-apiserver: Pods, Deployments and Jobs
//! created through the API server, with the chart's webhook definition
//! pointing at a server around `otpilot_inject::review` (see
//! support/webhook.rs). Needs the test control plane
//! (`eval "$(scripts/control-plane.sh up)"`).

mod support;

use std::sync::atomic::Ordering;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use otpilot_api::sidecar::env;
use otpilot_inject::InjectConfig;
use otpilot_inject::annotations::{INJECT, INJECTED};
use otpilot_inject::sidecar::CONTAINER_NAME;
use otpilot_tests::TestNamespace;
use otpilot_tests::webhook::{create_credential, first_pod};
use serde_json::{Value, json};
use support::webhook::TestWebhook;

const IMAGE: &str = "localhost/otpilot/sidecar:test";
/// Field manager of the Ready condition the tests set.
const FIELD_MANAGER: &str = "inject-test";

fn config() -> InjectConfig {
    InjectConfig::new(IMAGE)
}

fn pod_json(name: &str, annotations: Value) -> Value {
    json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "migrate:1"}],
            "containers": [{"name": "app", "image": "app:1"}, {"name": "worker", "image": "worker:1"}]
        }
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

/// What the API server stored carries the sidecar exactly as specified.
fn assert_injected(pod: &Pod, credential: &str) {
    let spec = pod.spec.as_ref().expect("spec");
    let init: Vec<_> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        init,
        [CONTAINER_NAME, "migrate"],
        "the sidecar first, the Pod's own init container after it"
    );
    let sidecar = &spec.init_containers.as_ref().expect("init containers")[0];
    assert_eq!(
        sidecar.restart_policy.as_deref(),
        Some("Always"),
        "a native sidecar"
    );
    assert_eq!(sidecar.image.as_deref(), Some(IMAGE));
    let probe = sidecar
        .startup_probe
        .as_ref()
        .and_then(|p| p.exec.as_ref())
        .and_then(|e| e.command.clone());
    assert_eq!(
        probe,
        Some(
            [
                "/usr/local/bin/otpilot-sidecar",
                "probe",
                "ready",
                "--api-addr",
                "127.0.0.1:8181"
            ]
            .map(String::from)
            .to_vec()
        )
    );
    let security = sidecar.security_context.as_ref().expect("securityContext");
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let volumes: Vec<_> = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| {
            v.secret
                .as_ref()
                .map(|s| (v.name.as_str(), s.secret_name.clone().unwrap_or_default()))
        })
        .collect();
    assert!(
        volumes.contains(&("otpilot-runtime", format!("{credential}-runtime"))),
        "{volumes:?}"
    );
    assert!(
        volumes.contains(&("otpilot-password", format!("{credential}-login"))),
        "{volumes:?}"
    );
    assert!(
        volumes.contains(&("otpilot-api-key", format!("{credential}-login"))),
        "{volumes:?}"
    );
    assert!(
        !volumes
            .iter()
            .any(|(_, secret)| secret.ends_with("-recovery")),
        "{volumes:?}"
    );
    for app in &spec.containers {
        let names: Vec<_> = app.env.iter().flatten().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [env::TOKEN_URL, env::TOKEN_HEADER, env::PROXY_URL],
            "{}",
            app.name
        );
    }
    let marker = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INJECTED));
    assert_eq!(marker.map(String::as_str), Some(credential));
}

/// The first Pod with `label=value` in the namespace, waiting up to 60 s
/// for the controller to create it.
#[tokio::test]
async fn pods_deployments_and_jobs_created_through_the_api_server_get_the_native_sidecar() {
    let webhook = TestWebhook::start(config()).await;
    let namespace = webhook.namespace("injection-through-the-api-server").await;
    create_credential(&namespace, "vendor", "True", FIELD_MANAGER).await;

    let pod = create_pod(&namespace, pod_json("direct", json!({INJECT: "vendor"})))
        .await
        .expect("the annotated Pod is admitted");
    assert_injected(&pod, "vendor");

    let template = json!({
        "metadata": {"labels": {"app": "web"}, "annotations": {INJECT: "vendor"}},
        "spec": pod_json("", json!({INJECT: "vendor"}))["spec"].clone()
    });
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template}
    }))
    .expect("Deployment");
    namespace
        .api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create Deployment");
    assert_injected(&first_pod(&namespace, "app", "web").await, "vendor");

    let mut job_template = template.clone();
    job_template["metadata"]["labels"] = json!({"app": "batch"});
    job_template["spec"]["restartPolicy"] = json!("Never");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "batch"},
        "spec": {"template": job_template, "backoffLimit": 0}
    }))
    .expect("Job");
    namespace
        .api::<Job>()
        .create(&PostParams::default(), &job)
        .await
        .expect("create Job");
    assert_injected(&first_pod(&namespace, "app", "batch").await, "vendor");

    webhook.stop().await;
}

#[tokio::test]
async fn pods_without_the_annotation_are_never_sent_to_the_webhook() {
    let webhook = TestWebhook::start(config()).await;
    let namespace = webhook.namespace("unannotated-pods-skip-the-webhook").await;
    let before = webhook.calls.load(Ordering::SeqCst);
    let pod = create_pod(&namespace, pod_json("plain", json!({"unrelated": "x"})))
        .await
        .expect("an unannotated Pod is admitted");
    let init: Vec<_> = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(init, ["migrate"], "untouched");
    assert!(
        pod.spec
            .as_ref()
            .is_some_and(|s| s.containers.iter().all(|c| c.env.is_none()))
    );
    assert_eq!(
        webhook.calls.load(Ordering::SeqCst),
        before,
        "matchConditions keep unannotated Pods away from the webhook"
    );
    webhook.stop().await;
}

#[tokio::test]
async fn a_missing_or_not_ready_credential_is_refused_with_a_message_naming_it() {
    let webhook = TestWebhook::start(config()).await;
    let namespace = webhook.namespace("missing-or-not-ready-credential").await;
    let ns = namespace.name().to_owned();

    let message =
        refusal(create_pod(&namespace, pod_json("missing", json!({INJECT: "nowhere"}))).await);
    assert!(
        message.contains(&format!(
            "ApiCredential nowhere in namespace {ns} is missing or not Ready"
        )),
        "{message}"
    );

    create_credential(&namespace, "pending", "False", FIELD_MANAGER).await;
    let message =
        refusal(create_pod(&namespace, pod_json("pending", json!({INJECT: "pending"}))).await);
    assert!(
        message.contains(&format!(
            "ApiCredential pending in namespace {ns} is missing or not Ready"
        )),
        "{message}"
    );
    // Deliberately not why: the answer to a forged review must not say.
    assert!(
        !message.contains("waiting for the vendor to confirm the TOTP seed"),
        "{message}"
    );

    let message = refusal(
        create_pod(
            &namespace,
            pod_json(
                "port",
                json!({INJECT: "pending", "otpilot.dev/api-port": "80"}),
            ),
        )
        .await,
    );
    assert!(message.contains("otpilot.dev/api-port"), "{message}");
    webhook.stop().await;
}

#[tokio::test]
async fn a_not_ready_credential_is_injected_when_the_installation_says_so() {
    let inject = InjectConfig {
        when_not_ready: otpilot_inject::WhenNotReady::Inject,
        ..config()
    };
    let webhook = TestWebhook::start(inject).await;
    let namespace = webhook.namespace("not-ready-credential-injected").await;
    create_credential(&namespace, "pending", "False", FIELD_MANAGER).await;
    let pod = create_pod(&namespace, pod_json("waits", json!({INJECT: "pending"})))
        .await
        .expect("admitted: the startup probe makes the app wait");
    assert_injected(&pod, "pending");
    webhook.stop().await;
}

#[tokio::test]
async fn a_pod_in_another_namespace_cannot_use_the_credential() {
    let webhook = TestWebhook::start(config()).await;
    let owner = webhook.namespace("credential-owner-namespace").await;
    let other = webhook.namespace("credential-other-namespace").await;
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
    assert!(
        message.contains("another namespace") && message.contains("own namespace"),
        "{message}"
    );
    webhook.stop().await;
}

#[tokio::test]
async fn the_injected_sidecar_passes_the_restricted_pod_security_standard() {
    let webhook = TestWebhook::start(config()).await;
    let namespace = webhook.namespace("restricted-pod-security").await;
    let label = json!({"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest"
    }}});
    Api::<k8s_openapi::api::core::v1::Namespace>::all(webhook.cluster.client())
        .patch(
            namespace.name(),
            &PatchParams::default(),
            &Patch::Merge(&label),
        )
        .await
        .expect("enforce the restricted profile");
    create_credential(&namespace, "vendor", "True", FIELD_MANAGER).await;
    let restricted = json!({
        "runAsNonRoot": true, "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}
    });
    let compliant = json!({
        "metadata": {"name": "compliant", "annotations": {INJECT: "vendor"}},
        "spec": {"containers": [{"name": "app", "image": "app:1", "securityContext": restricted}]}
    });
    let pod = create_pod(&namespace, compliant)
        .await
        .expect("a restricted-compliant Pod stays compliant once injected");
    let init: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(init, [CONTAINER_NAME]);

    // The control: the namespace really enforces the profile.
    let message = match create_pod(
        &namespace,
        json!({
            "metadata": {"name": "non-compliant"},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]}
        }),
    )
    .await
    {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("the restricted profile is not enforced in this namespace: {other:?}"),
    };
    assert!(message.contains("violates PodSecurity"), "{message}");
    webhook.stop().await;
}
