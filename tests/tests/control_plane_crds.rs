//! The generated CRDs against a real kube-apiserver: they install, become
//! Established, reject invalid objects with the message a user would see,
//! and round-trip valid ones.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use otpilot_api::{ApiCredential, ClientCA};
use otpilot_tests::TestCluster;
use serde_json::{Value, json};

fn valid_api_credential(name: &str) -> Value {
    json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ApiCredential",
        "metadata": { "name": name },
        "spec": {
            "profile": "audd",
            "baseUrl": "https://127.0.0.1:8443/api",
            "username": "payments-bot",
            "passwordSecretRef": { "name": "payments-bot", "key": "password" },
            "apiKeySecretRef": { "name": "payments-bot", "key": "api-key" },
            "clientCertificate": {
                "caRef": "vendor-ca",
                "subject": { "commonName": "payments-bot" }
            }
        }
    })
}

/// Creates `object` as an ApiCredential and returns the API server's error message.
async fn rejection_message(cluster: &TestCluster, namespace: &str, object: Value) -> String {
    let gvk = GroupVersionKind::gvk("otpilot.dev", "v1alpha1", "ApiCredential");
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client(), namespace, &ApiResource::from_gvk(&gvk));
    let object: DynamicObject = serde_json::from_value(object).expect("test object is valid JSON");
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => panic!("the API server accepted an invalid ApiCredential"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "expected 422 Invalid, got {status:?}");
            status.message
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

/// Set by `scripts/compat.sh` to the older Kubernetes it runs these tests against: the
/// server must be exactly that release, so a compatibility run cannot pass on the new one.
const EXPECTED_VERSION_ENV: &str = "OTPILOT_TEST_K8S_VERSION";

#[tokio::test]
async fn control_plane_is_a_real_kube_apiserver_of_the_version_under_test() {
    let cluster = TestCluster::connect().await.expect("test control plane");
    let version = cluster
        .client()
        .apiserver_version()
        .await
        .expect("GET /version");
    println!(
        "kube-apiserver {} ({}, built with {})",
        version.git_version, version.platform, version.go_version
    );
    assert_eq!(version.major, "1");
    match std::env::var(EXPECTED_VERSION_ENV) {
        Ok(expected) => assert_eq!(
            version.git_version, expected,
            "{EXPECTED_VERSION_ENV} names the release under test"
        ),
        Err(_) => {
            let minor: u32 = version
                .minor
                .trim_end_matches('+')
                .parse()
                .expect("numeric minor");
            assert!(
                minor >= 36,
                "expected 1.36 or newer, got {}",
                version.git_version
            );
        }
    }
    // kube-controller-manager runs too: it creates the default ServiceAccount
    // of a new namespace, which the API server alone never does.
    let namespace = cluster
        .namespace("kcm_is_running")
        .await
        .expect("namespace");
    let service_accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(cluster.client(), namespace.name());
    let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            if service_accounts
                .get_opt("default")
                .await
                .ok()
                .flatten()
                .is_some()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "kube-controller-manager did not create the default ServiceAccount"
    );
}

#[tokio::test]
async fn generated_crds_install_and_become_established() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(cluster.client());
    for name in [
        "apicredentials.otpilot.dev",
        "clientcas.otpilot.dev",
        "clustermfaprofiles.otpilot.dev",
    ] {
        let crd = crds.get(name).await.expect("CRD exists");
        let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True"),
            "{name} is not Established: {conditions:?}"
        );
    }
}

#[tokio::test]
async fn valid_api_credential_round_trips_with_defaults_applied() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let namespace = cluster
        .namespace("valid_api_credential_round_trips")
        .await
        .expect("namespace");
    let api: Api<ApiCredential> = namespace.api();
    let sent: ApiCredential =
        serde_json::from_value(valid_api_credential("payments")).expect("typed ApiCredential");
    let created = api
        .create(&PostParams::default(), &sent)
        .await
        .expect("create");
    let read = api.get("payments").await.expect("get");
    assert_eq!(read.spec, created.spec);
    assert_eq!(read.spec.username, "payments-bot");
    // Defaults come from the schema, applied by the API server.
    let defaulted = serde_json::to_value(&read.spec).expect("serialize");
    assert_eq!(defaulted["deletionPolicy"], "Retain");
    assert_eq!(defaulted["clientCertificate"]["keyAlgorithm"], "ECDSA-P256");
    assert_eq!(defaulted["clientCertificate"]["duration"], "2160h");
    assert_eq!(defaulted["clientCertificate"]["renewBefore"], "720h");

    // A ClusterMfaProfile's name may be a DNS subdomain, dots included.
    let mut dotted = sent.clone();
    dotted.metadata.name = Some("dotted-profile".into());
    dotted.spec.profile = "payments.vendor-v2".into();
    api.create(&PostParams::default(), &dotted)
        .await
        .expect("dotted profile name");
}

#[tokio::test]
async fn status_subresource_keeps_conditions_as_a_map_keyed_by_type() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let namespace = cluster
        .namespace("status_subresource")
        .await
        .expect("namespace");
    let api: Api<ApiCredential> = namespace.api();
    let sent: ApiCredential =
        serde_json::from_value(valid_api_credential("payments")).expect("typed ApiCredential");
    api.create(&PostParams::default(), &sent)
        .await
        .expect("create");
    let condition = |type_: &str, status: &str| {
        json!({
            "type": type_, "status": status, "reason": "Testing", "message": "set by a test",
            "lastTransitionTime": "2026-01-01T00:00:00Z"
        })
    };
    let apply = |conditions: Value| {
        json!({
            "apiVersion": "otpilot.dev/v1alpha1", "kind": "ApiCredential",
            "status": { "conditions": conditions, "recoveryCodesRemaining": 10 }
        })
    };
    let params = PatchParams::apply("otpilot-tests").force();
    api.patch_status(
        "payments",
        &params,
        &Patch::Apply(apply(json!([condition("Ready", "False")]))),
    )
    .await
    .expect("first status apply");
    // A second manager owning another condition type merges, not replaces.
    let other = PatchParams::apply("otpilot-tests-other").force();
    api.patch_status(
        "payments",
        &other,
        &Patch::Apply(apply(json!([condition("Enrolled", "True")]))),
    )
    .await
    .expect("second status apply");
    let status = api
        .get_status("payments")
        .await
        .expect("get")
        .status
        .expect("status");
    let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["Ready", "Enrolled"]);
    assert_eq!(status.recovery_codes_remaining, Some(10));
}

#[tokio::test]
async fn invalid_api_credentials_are_rejected_with_messages_a_user_can_act_on() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let namespace = cluster
        .namespace("invalid_api_credentials")
        .await
        .expect("namespace");
    let ns = namespace.name();

    let mut plain_http = valid_api_credential("plain-http");
    plain_http["spec"]["baseUrl"] = json!("http://vendor.example/api");
    let message = rejection_message(&cluster, ns, plain_http).await;
    assert!(message.contains("spec.baseUrl: Invalid value"), "{message}");
    assert!(
        message.contains("baseUrl must be an https:// URL"),
        "{message}"
    );

    let mut no_username = valid_api_credential("no-username");
    no_username["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("username");
    let message = rejection_message(&cluster, ns, no_username).await;
    assert!(
        message.contains("spec.username: Required value"),
        "{message}"
    );

    let mut renew_too_late = valid_api_credential("renew-too-late");
    renew_too_late["spec"]["clientCertificate"]["duration"] = json!("24h");
    renew_too_late["spec"]["clientCertificate"]["renewBefore"] = json!("48h");
    let message = rejection_message(&cluster, ns, renew_too_late).await;
    assert!(
        message.contains("renewBefore must be shorter than duration"),
        "{message}"
    );

    let mut bad_duration = valid_api_credential("bad-duration");
    bad_duration["spec"]["clientCertificate"]["duration"] = json!("90 days");
    let message = rejection_message(&cluster, ns, bad_duration).await;
    assert!(
        message.contains("spec.clientCertificate.duration"),
        "{message}"
    );

    let mut bad_policy = valid_api_credential("bad-policy");
    bad_policy["spec"]["deletionPolicy"] = json!("Delete");
    let message = rejection_message(&cluster, ns, bad_policy).await;
    assert!(
        message.contains("spec.deletionPolicy: Unsupported value: \"Delete\""),
        "{message}"
    );

    let mut bad_digits = valid_api_credential("bad-digits");
    bad_digits["spec"]["totp"] = json!({ "digits": 4 });
    let message = rejection_message(&cluster, ns, bad_digits).await;
    assert!(message.contains("spec.totp.digits"), "{message}");

    let mut bad_profile = valid_api_credential("bad-profile");
    bad_profile["spec"]["profile"] = json!("Not A Name");
    let message = rejection_message(&cluster, ns, bad_profile).await;
    assert!(
        message.contains("profile must be a built-in profile name"),
        "{message}"
    );
}

#[tokio::test]
async fn client_ca_needs_exactly_one_source() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let api: Api<ClientCA> = Api::all(cluster.client());
    let both: ClientCA = serde_json::from_value(json!({
        "apiVersion": "otpilot.dev/v1alpha1", "kind": "ClientCA",
        "metadata": { "name": "both-sources" },
        "spec": {
            "generate": { "subject": { "commonName": "payments root" } },
            "importFrom": { "secretName": "existing-ca" }
        }
    }))
    .expect("typed ClientCA");
    let error = api
        .create(&PostParams::default(), &both)
        .await
        .expect_err("both sources must be rejected");
    assert!(
        error
            .to_string()
            .contains("set exactly one of generate or importFrom"),
        "{error}"
    );

    let generated: ClientCA = serde_json::from_value(json!({
        "apiVersion": "otpilot.dev/v1alpha1", "kind": "ClientCA",
        "metadata": { "name": format!("generated-{:08x}", rand::random::<u32>()) },
        "spec": { "generate": { "subject": { "commonName": "payments root" } } }
    }))
    .expect("typed ClientCA");
    let created = api
        .create(&PostParams::default(), &generated)
        .await
        .expect("create");
    let defaulted = serde_json::to_value(&created.spec).expect("serialize");
    assert_eq!(defaulted["generate"]["duration"], "87600h");
    assert_eq!(defaulted["generate"]["keyAlgorithm"], "ECDSA-P256");
}

#[tokio::test]
async fn namespace_deletion_completes_because_the_controller_manager_runs() {
    let cluster = TestCluster::connect().await.expect("test control plane");
    let namespace = cluster
        .namespace("namespace_deletion")
        .await
        .expect("namespace");
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    namespaces
        .delete(namespace.name(), &Default::default())
        .await
        .expect("delete namespace");
    let gone = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        // Only a 404 counts as gone: an API error is not evidence either way.
        while namespaces
            .get_opt(namespace.name())
            .await
            .expect("read the namespace")
            .is_some()
        {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "namespace stayed Terminating: is kube-controller-manager running?"
    );
}
