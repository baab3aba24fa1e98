//! Fixtures for tests of the injection webhook through the real API server,
//! shared by the inject crate's test server and the operator's: a
//! credential with a chosen Ready condition, namespaces scoped to one
//! test's webhook, the wait until the API server calls it, and the first
//! Pod a controller makes.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use otpilot_api::ApiCredential;
use serde_json::json;

use crate::{TestCluster, TestNamespace};

/// Label that scopes one test's webhook configuration (namespaceSelector)
/// to that test's namespaces, so tests sharing the control plane never see
/// each other's webhooks.
pub const SCOPE_LABEL: &str = "otpilot.dev/inject-test";

/// Creates an AUDD ApiCredential `name` whose Ready condition is `ready`
/// ("True" or "False"), applied as `field_manager`. No operator reconciles
/// it in these tests, so the condition stays as set.
pub async fn create_credential(
    namespace: &TestNamespace,
    name: &str,
    ready: &str,
    field_manager: &str,
) {
    let api: Api<ApiCredential> = namespace.api();
    let credential: ApiCredential = serde_json::from_value(json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ApiCredential",
        "metadata": {"name": name},
        "spec": {
            "profile": "audd",
            "baseUrl": "https://127.0.0.1:8443/api",
            "username": "payments-bot",
            "passwordSecretRef": {"name": format!("{name}-login"), "key": "password"},
            "apiKeySecretRef": {"name": format!("{name}-login"), "key": "api-key"}
        }
    }))
    .expect("ApiCredential");
    api.create(&PostParams::default(), &credential)
        .await
        .expect("create ApiCredential");
    let status = json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ApiCredential",
        "status": {"conditions": [{
            "type": "Ready", "status": ready,
            "reason": if ready == "True" { "Reconciled" } else { "EnrollmentPending" },
            "message": if ready == "True" { "" } else { "waiting for the vendor to confirm the TOTP seed" },
            "lastTransitionTime": "2026-01-01T00:00:00Z"
        }]}
    });
    api.patch_status(
        name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&status),
    )
    .await
    .expect("set the Ready condition");
}

/// A fresh namespace labelled for the webhook of `scope`.
pub async fn scoped_namespace(
    cluster: &TestCluster,
    test_name: &str,
    scope: &str,
) -> TestNamespace {
    let namespace = cluster.namespace(test_name).await.expect("test namespace");
    let patch = json!({"metadata": {"labels": {SCOPE_LABEL: scope}}});
    Api::<Namespace>::all(cluster.client())
        .patch(
            namespace.name(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("label the test namespace");
    namespace
}

/// The API server loads webhook configurations asynchronously: dry-run Pods
/// naming a credential that does not exist until one is refused by the
/// webhook. Err holds the last answer, for the caller's message.
pub async fn wait_until_webhook_answers(namespace: &TestNamespace) -> Result<(), String> {
    let probe: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "webhook-probe-", "annotations": {"otpilot.dev/inject": "webhook-probe"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}
    }))
    .expect("probe Pod");
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        match namespace.api::<Pod>().create(&params, &probe).await {
            Err(kube::Error::Api(status))
                if status.message.contains("webhook-probe in namespace") =>
            {
                return Ok(());
            }
            other => last = format!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last)
}

/// The first Pod labelled `label=value`, once its controller has made it.
pub async fn first_pod(namespace: &TestNamespace, label: &str, value: &str) -> Pod {
    let params = ListParams::default().labels(&format!("{label}={value}"));
    for _ in 0..300 {
        if let Some(pod) = namespace
            .api::<Pod>()
            .list(&params)
            .await
            .expect("list Pods")
            .items
            .into_iter()
            .next()
        {
            return pod;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no Pod {label}={value} appeared within 60 s: is kube-controller-manager running?");
}
