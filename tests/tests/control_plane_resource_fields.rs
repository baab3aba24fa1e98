//! The resource fields of issue 8 against a real kube-apiserver: printer
//! columns that print an expiry as a date (not `<invalid>`), the optional
//! password, extra vendor secrets, a ClientCA's allowed namespaces, the
//! failure bookkeeping in status and the new enrollment states.

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use otpilot_api::{ApiCredential, ClientCA};
use otpilot_tests::{TestCluster, refusal};
use serde_json::{Value, json};

const FUTURE: &str = "2030-01-01T00:00:00Z";

fn api_credential(name: &str) -> Value {
    json!({
        "apiVersion": "otpilot.dev/v1alpha1",
        "kind": "ApiCredential",
        "metadata": { "name": name },
        "spec": {
            "profile": "conduit",
            "baseUrl": "https://127.0.0.1:8443/api",
            "username": "payments-bot",
            "passwordSecretRef": { "name": "payments-bot", "key": "password" }
        }
    })
}

fn client_ca(name: &str) -> Value {
    json!({
        "apiVersion": "otpilot.dev/v1alpha1", "kind": "ClientCA",
        "metadata": { "name": name },
        "spec": { "generate": { "subject": { "commonName": "payments root" } } }
    })
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

fn dynamic_api(cluster: &TestCluster, kind: &str, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("otpilot.dev", "v1alpha1", kind));
    match namespace {
        Some(namespace) => Api::namespaced_with(cluster.client(), namespace, &resource),
        None => Api::all_with(cluster.client(), &resource),
    }
}

/// Creates `object` and returns the API server's 422 message.
async fn rejection(api: &Api<DynamicObject>, object: Value) -> String {
    let object: DynamicObject = serde_json::from_value(object).expect("test object");
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => panic!("the API server accepted an invalid object"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "expected 422 Invalid, got {status:?}");
            status.message
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

async fn create(api: &Api<DynamicObject>, object: Value) {
    let object: DynamicObject = serde_json::from_value(object).expect("test object");
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|error| panic!("the API server refused a valid object: {error}"));
}

fn ready_condition(reason: &str, message: &str) -> Value {
    json!({
        "type": "Ready", "status": "False", "reason": reason, "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z"
    })
}

/// The server-side table `kubectl get` prints: (columns with priorities, first row's cells).
async fn table(cluster: &TestCluster, path: &str) -> (Vec<(String, i64)>, Vec<Value>) {
    let request = http::Request::get(path)
        .header(
            http::header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io",
        )
        .body(Vec::new())
        .expect("request");
    let text = cluster
        .client()
        .request_text(request)
        .await
        .expect("GET as Table");
    let table: Value = serde_json::from_str(&text).expect("Table JSON");
    assert_eq!(table["kind"], "Table", "{table}");
    let columns = table["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|column| {
            (
                column["name"].as_str().expect("name").to_owned(),
                column["priority"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let cells = table["rows"][0]["cells"].as_array().expect("cells").clone();
    (columns, cells)
}

fn cell<'a>(columns: &[(String, i64)], cells: &'a [Value], name: &str) -> &'a Value {
    let index = columns
        .iter()
        .position(|(column, _)| column == name)
        .unwrap_or_else(|| panic!("no {name} column in {columns:?}"));
    &cells[index]
}

#[tokio::test]
async fn api_credential_table_prints_the_certificate_expiry_as_a_date_and_the_ready_reason() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let namespace = cluster.namespace("apicred_table").await.expect("namespace");
    let api = dynamic_api(&cluster, "ApiCredential", Some(namespace.name()));
    create(&api, api_credential("payments")).await;
    let typed: Api<ApiCredential> = namespace.api();
    typed
        .patch_status(
            "payments",
            &PatchParams::apply("otpilot-tests").force(),
            &Patch::Apply(json!({
                "apiVersion": "otpilot.dev/v1alpha1", "kind": "ApiCredential",
                "status": {
                    "certificateNotAfter": FUTURE,
                    "conditions": [ready_condition("WrongPassword", "the vendor refused the password: fix Secret payments-bot key password")]
                }
            })),
        )
        .await
        .expect("status apply");

    let (columns, cells) = table(
        &cluster,
        &format!(
            "/apis/otpilot.dev/v1alpha1/namespaces/{}/apicredentials/payments",
            namespace.name()
        ),
    )
    .await;
    // A `type: date` column would print the age of a future time as <invalid>.
    assert_eq!(cell(&columns, &cells, "Cert-Expires"), FUTURE);
    assert_eq!(cell(&columns, &cells, "Ready"), "False");
    assert_eq!(cell(&columns, &cells, "Reason"), "WrongPassword");
    assert!(
        cell(&columns, &cells, "Message")
            .as_str()
            .is_some_and(|m| m.starts_with("the vendor refused the password")),
        "{cells:?}"
    );
    let priority = |name: &str| columns.iter().find(|(c, _)| c == name).map(|(_, p)| *p);
    assert_eq!(priority("Reason"), Some(1), "only with -o wide");
    assert_eq!(priority("Message"), Some(1), "only with -o wide");
    assert_eq!(priority("Cert-Expires"), Some(0));
}

#[tokio::test]
async fn client_ca_table_prints_its_expiry_as_a_date_and_the_ready_reason() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let name = unique("table");
    let api = dynamic_api(&cluster, "ClientCA", None);
    create(&api, client_ca(&name)).await;
    let typed: Api<ClientCA> = Api::all(cluster.client());
    typed
        .patch_status(
            &name,
            &PatchParams::apply("otpilot-tests").force(),
            &Patch::Apply(json!({
                "apiVersion": "otpilot.dev/v1alpha1", "kind": "ClientCA",
                "status": {
                    "notAfter": FUTURE, "notBefore": "2026-01-01T00:00:00Z",
                    "renewalTime": "2029-01-01T00:00:00Z", "serialNumber": "0A1B",
                    "conditions": [ready_condition("ClientCAInvalid", "tls.key does not belong to tls.crt")]
                }
            })),
        )
        .await
        .expect("status apply");
    let (columns, cells) = table(
        &cluster,
        &format!("/apis/otpilot.dev/v1alpha1/clientcas/{name}"),
    )
    .await;
    assert_eq!(cell(&columns, &cells, "Expires"), FUTURE);
    assert_eq!(cell(&columns, &cells, "Reason"), "ClientCAInvalid");
    assert_eq!(
        cell(&columns, &cells, "Message"),
        "tls.key does not belong to tls.crt"
    );
    let status = typed
        .get_status(&name)
        .await
        .expect("get")
        .status
        .expect("status");
    assert_eq!(status.serial_number.as_deref(), Some("0A1B"));
    assert!(status.renewal_time.is_some() && status.not_before.is_some());
}

#[tokio::test]
async fn password_is_optional_and_extra_vendor_secrets_are_named_in_snake_case() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let namespace = cluster.namespace("secret_values").await.expect("namespace");
    let api = dynamic_api(&cluster, "ApiCredential", Some(namespace.name()));

    let mut no_password = api_credential("no-password");
    no_password["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("passwordSecretRef");
    no_password["spec"]["secretValues"] = json!([
        { "name": "client_secret", "secretKeyRef": { "name": "conduit", "key": "client-secret" } },
        { "name": "tenant_token2", "secretKeyRef": { "name": "conduit", "key": "tenant" } }
    ]);
    create(&api, no_password).await;
    let typed: Api<ApiCredential> = namespace.api();
    let read = typed.get("no-password").await.expect("get");
    assert_eq!(read.spec.password_secret_ref, None);
    let names: Vec<&str> = read
        .spec
        .secret_values
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(names, ["client_secret", "tenant_token2"]);

    let with = |name: &str, values: Value| {
        let mut object = api_credential(name);
        object["spec"]["secretValues"] = values;
        object
    };
    let value = |name: &str| json!({ "name": name, "secretKeyRef": { "name": "s", "key": "k" } });
    for (case, values, expected) in [
        (
            "upper-case",
            json!([value("Client_Secret")]),
            "name must be snake_case",
        ),
        (
            "dashes",
            json!([value("client-secret")]),
            "name must be snake_case",
        ),
        (
            "leading digit",
            json!([value("1secret")]),
            "name must be snake_case",
        ),
        (
            "trailing underscore",
            json!([value("secret_")]),
            "name must be snake_case",
        ),
        (
            "the password's name",
            json!([value("password")]),
            "must not be one the engine provides",
        ),
        (
            "the TOTP code's name",
            json!([value("totp")]),
            "must not be one the engine provides",
        ),
        (
            "twice the same name",
            json!([value("client_secret"), value("client_secret")]),
            "Duplicate value",
        ),
        (
            "no key",
            json!([{ "name": "client_secret", "secretKeyRef": { "name": "s" } }]),
            "secretKeyRef.key: Required value",
        ),
    ] {
        let message = rejection(&api, with(&unique("bad"), values)).await;
        assert!(message.contains("spec.secretValues"), "{case}: {message}");
        assert!(message.contains(expected), "{case}: {message}");
    }

    // A secret value and a (public) variable of the same name would be ambiguous.
    let mut shadowing = with("shadowing", json!([value("client_id")]));
    shadowing["spec"]["variables"] = json!({ "client_id": "public-id" });
    let message = rejection(&api, shadowing).await;
    assert!(
        message.contains("a secretValues name may not also be a key of variables"),
        "{message}"
    );
    let mut distinct = with("distinct", json!([value("client_secret")]));
    distinct["spec"]["variables"] = json!({ "client_id": "public-id" });
    create(&api, distinct).await;
}

#[tokio::test]
async fn certificate_subjects_hold_one_organization_and_unit_at_most() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let namespace = cluster
        .namespace("subject_limits")
        .await
        .expect("namespace");
    let api = dynamic_api(&cluster, "ApiCredential", Some(namespace.name()));
    let with_subject = |name: &str, subject: Value| {
        let mut object = api_credential(name);
        object["spec"]["clientCertificate"] = json!({ "caRef": "vendor-ca", "subject": subject });
        object
    };
    create(
        &api,
        with_subject("one-each", json!({ "commonName": "bot", "organizations": ["Acme"], "organizationalUnits": ["Payments"] })),
    )
    .await;
    let message = rejection(
        &api,
        with_subject(
            "two-orgs",
            json!({ "commonName": "bot", "organizations": ["Acme", "Other"] }),
        ),
    )
    .await;
    assert!(
        message.contains("spec.clientCertificate.subject.organizations: Too many"),
        "{message}"
    );
    let message = rejection(
        &api,
        with_subject(
            "long-unit",
            json!({ "commonName": "bot", "organizationalUnits": ["x".repeat(65)] }),
        ),
    )
    .await;
    assert!(
        message.contains("spec.clientCertificate.subject.organizationalUnits[0]: Too long"),
        "{message}"
    );
}

#[tokio::test]
async fn client_ca_names_the_namespaces_allowed_to_issue_from_it() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let api = dynamic_api(&cluster, "ClientCA", None);
    let typed: Api<ClientCA> = Api::all(cluster.client());

    let name = unique("allowed");
    let mut allowed = client_ca(&name);
    allowed["spec"]["allowedNamespaces"] = json!({
        "names": ["payments", "treasury-2"],
        "selector": { "matchLabels": { "otpilot.dev/vendor": "conduit" } }
    });
    create(&api, allowed).await;
    let read = typed.get(&name).await.expect("get");
    let namespaces = read.spec.allowed_namespaces.expect("allowedNamespaces");
    assert_eq!(namespaces.names, ["payments", "treasury-2"]);
    let selector = namespaces.selector.expect("selector");
    assert_eq!(
        selector
            .match_labels
            .expect("matchLabels")
            .get("otpilot.dev/vendor")
            .map(String::as_str),
        Some("conduit")
    );

    // Absent means none: the field stays absent, no default widens it.
    let closed = unique("closed");
    create(&api, client_ca(&closed)).await;
    assert!(
        typed
            .get(&closed)
            .await
            .expect("get")
            .spec
            .allowed_namespaces
            .is_none()
    );

    for (case, namespaces, expected) in [
        (
            "an upper-case name",
            json!({ "names": ["Payments"] }),
            "names must be namespace names",
        ),
        (
            "a name with a dot",
            json!({ "names": ["pay.ments"] }),
            "names must be namespace names",
        ),
        (
            "a name too long",
            json!({ "names": ["x".repeat(64)] }),
            "Too long",
        ),
        (
            "a name twice",
            json!({ "names": ["payments", "payments"] }),
            "Duplicate value",
        ),
    ] {
        let mut object = client_ca(&unique("bad"));
        object["spec"]["allowedNamespaces"] = namespaces;
        let message = rejection(&api, object).await;
        assert!(
            message.contains("spec.allowedNamespaces.names"),
            "{case}: {message}"
        );
        assert!(message.contains(expected), "{case}: {message}");
    }
}

#[tokio::test]
async fn status_keeps_failure_bookkeeping_and_the_new_enrollment_states() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let namespace = cluster
        .namespace("status_failures")
        .await
        .expect("namespace");
    let api = dynamic_api(&cluster, "ApiCredential", Some(namespace.name()));
    create(&api, api_credential("payments")).await;
    let typed: Api<ApiCredential> = namespace.api();
    let params = PatchParams::apply("otpilot-tests").force();
    for state in ["Failed", "LockedOut", "ReenrollRequired"] {
        typed
            .patch_status(
                "payments",
                &params,
                &Patch::Apply(json!({
                    "apiVersion": "otpilot.dev/v1alpha1", "kind": "ApiCredential",
                    "status": {
                        "enrollment": state,
                        "renewalTime": "2029-06-01T00:00:00Z",
                        "lastFailureTime": "2026-03-01T10:00:00Z",
                        "failedAttempts": 4,
                        "nextRetryTime": "2026-03-01T10:05:00Z",
                        "clockOffsetSeconds": -47
                    }
                })),
            )
            .await
            .unwrap_or_else(|error| panic!("{state}: {error}"));
        let status = typed
            .get_status("payments")
            .await
            .expect("get")
            .status
            .expect("status");
        assert_eq!(
            serde_json::to_value(status.enrollment).expect("state"),
            json!(state)
        );
        assert_eq!(status.failed_attempts, Some(4));
        assert_eq!(status.clock_offset_seconds, Some(-47));
        assert!(status.renewal_time.is_some());
        assert!(status.last_failure_time.is_some() && status.next_retry_time.is_some());
    }
    let error = typed
        .patch_status(
            "payments",
            &params,
            &Patch::Apply(json!({
                "apiVersion": "otpilot.dev/v1alpha1", "kind": "ApiCredential",
                "status": { "enrollment": "Broken", "failedAttempts": -1 }
            })),
        )
        .await
        .expect_err("an unknown state and a negative count are refused");
    let message = error.to_string();
    let minor = otpilot_tests::server_minor(&cluster).await;
    assert!(
        refusal::says(
            &message,
            "status.enrollment: Unsupported value: \"Broken\"",
            minor
        ),
        "{message}"
    );
    assert!(
        refusal::says(&message, "status.failedAttempts", minor),
        "{message}"
    );
}
