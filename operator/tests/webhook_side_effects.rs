//! What the injection webhook does NOT do, and who does it instead: a
//! made-up AdmissionReview sent straight to the webhook port (as any Pod of
//! the cluster could) writes nothing anywhere and learns nothing about other
//! namespaces; the shared-session grants follow the injected Pods the API
//! server stored, and are taken back when they are gone. The operator
//! PROCESS against the test control plane
//! (`eval "$(scripts/control-plane.sh up)"`).

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use otpilot_tests::webhook::create_credential;
use otpilot_tests::{TestCluster, TestNamespace};
use serde_json::{Value, json};
use support::webhook_server::*;

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
