//! Malformed custom resources are refused by the real API server's CRD
//! validation, with a message a person can act on: a table of (malformed
//! object, words the API server's message must contain). Every object is
//! sent as a dry-run create, so nothing is stored; the valid objects each
//! row starts from are accepted first, so a row fails for its own change.
//! The update rule that fixes the vendor once the credential is enrolled is tested
//! on a stored object, its status set as the operator sets it.

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use otpilot_tests::{TestCluster, refusal};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug)]
enum Kind {
    ApiCredential,
    ClientCA,
    ClusterMfaProfile,
}

impl Kind {
    fn resource(self) -> ApiResource {
        let kind = match self {
            Kind::ApiCredential => "ApiCredential",
            Kind::ClientCA => "ClientCA",
            Kind::ClusterMfaProfile => "ClusterMfaProfile",
        };
        ApiResource::from_gvk(&GroupVersionKind::gvk("otpilot.dev", "v1alpha1", kind))
    }

    fn valid(self) -> Value {
        match self {
            Kind::ApiCredential => json!({
                "apiVersion": "otpilot.dev/v1alpha1", "kind": "ApiCredential",
                "metadata": { "name": "payments-bot" },
                "spec": {
                    "profile": "goaxr",
                    "baseUrl": "https://api.vendor.example/v1",
                    "username": "payments-bot@example.com",
                    "passwordSecretRef": { "name": "vendor-login", "key": "password" },
                    "apiKeySecretRef": { "name": "vendor-login", "key": "api-key" },
                    "secretValues": [
                        { "name": "client_secret",
                          "secretKeyRef": { "name": "vendor-login", "key": "client-secret" } }
                    ],
                    "variables": { "org": "acme" },
                    "clientCertificate": {
                        "caRef": "vendor-ca",
                        "subject": { "commonName": "payments-bot", "organizations": ["Acme"] }
                    },
                    "totp": { "algorithm": "SHA1", "digits": 6, "period": 30 },
                    "token": { "refreshBefore": "60s" }
                }
            }),
            Kind::ClientCA => json!({
                "apiVersion": "otpilot.dev/v1alpha1", "kind": "ClientCA",
                "metadata": { "name": "vendor-ca" },
                "spec": {
                    "generate": {
                        "subject": { "commonName": "payments root" },
                        "duration": "87600h",
                        "renewBefore": "720h"
                    },
                    "allowedNamespaces": { "names": ["payments"] }
                }
            }),
            Kind::ClusterMfaProfile => json!({
                "apiVersion": "otpilot.dev/v1alpha1", "kind": "ClusterMfaProfile",
                "metadata": { "name": "acme" },
                "spec": {
                    "totp": { "algorithm": "SHA1", "digits": 6, "period": 30 },
                    "tokenLifetimeSeconds": 3600,
                    "enroll": { "steps": [{
                        "method": "POST", "path": "/mfa",
                        "extract": { "totp_secret": { "pointer": "/secret", "as": "base32Secret",
                                     "fallback": { "pointer": "/otpauth", "as": "otpauthUri" } } }
                    }] },
                    "login": { "steps": [{
                        "method": "POST", "path": "/login",
                        "body": { "code": "{{ totp }}" },
                        "responses": [{ "status": [401], "outcome": "codeRejected" }],
                        "extract": { "access_token": { "pointer": "/token" } }
                    }] }
                }
            }),
        }
    }
}

/// One row: the valid object of `kind` with `change` applied.
struct Case {
    what: &'static str,
    kind: Kind,
    object: Value,
    expect: &'static str,
}

/// A change to a valid object: set (or, with `None`, remove) the value at a
/// JSON pointer.
fn case(
    what: &'static str,
    kind: Kind,
    changes: &[(&str, Option<Value>)],
    expect: &'static str,
) -> Case {
    let mut object = kind.valid();
    for (pointer, value) in changes {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
        let parent = object
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("{what}: no {parent} in the valid object"));
        match (parent, value) {
            (Value::Object(map), Some(v)) => {
                map.insert(key.to_owned(), v.clone());
            }
            (Value::Object(map), None) => {
                map.remove(key)
                    .unwrap_or_else(|| panic!("{what}: no {pointer}"));
            }
            (Value::Array(items), Some(v)) => {
                let i: usize = key.parse().expect("array index");
                items[i] = v.clone();
            }
            (other, _) => panic!("{what}: {pointer} is inside {other}"),
        }
    }
    Case {
        what,
        kind,
        object,
        expect,
    }
}

fn set(pointer: &str, value: Value) -> (&str, Option<Value>) {
    (pointer, Some(value))
}

fn remove(pointer: &str) -> (&str, Option<Value>) {
    (pointer, None)
}

// A table: one row per line, as a reviewer reads it.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Kind::*;
    vec![
        // ApiCredential
        case("baseUrl over plain http", ApiCredential, &[set("/spec/baseUrl", json!("http://api.vendor.example"))],
            "spec.baseUrl: Invalid value: \"http://api.vendor.example\": baseUrl must be an https:// URL"),
        case("baseUrl not a URL", ApiCredential, &[set("/spec/baseUrl", json!("api.vendor.example"))],
            "baseUrl must be an https:// URL"),
        case("profile missing", ApiCredential, &[remove("/spec/profile")],
            "spec.profile: Required value"),
        case("profile empty", ApiCredential, &[set("/spec/profile", json!(""))],
            "spec.profile: Invalid value: \"\": spec.profile in body should be at least 1 chars long"),
        case("profile not a name", ApiCredential, &[set("/spec/profile", json!("Acme Corp"))],
            "profile must be a built-in profile name or a ClusterMfaProfile name"),
        case("username missing", ApiCredential, &[remove("/spec/username")],
            "spec.username: Required value"),
        case("username empty", ApiCredential, &[set("/spec/username", json!(""))],
            "spec.username in body should be at least 1 chars long"),
        case("password Secret without a name", ApiCredential, &[set("/spec/passwordSecretRef/name", json!(""))],
            "spec.passwordSecretRef.name in body should be at least 1 chars long"),
        case("API key Secret without a key", ApiCredential, &[remove("/spec/apiKeySecretRef/key")],
            "spec.apiKeySecretRef.key: Required value"),
        case("server CA reference without a key", ApiCredential,
            &[set("/spec/serverCa", json!({ "name": "vendor-ca" }))],
            "spec.serverCa.key: Required value"),
        case("deletionPolicy not an option", ApiCredential, &[set("/spec/deletionPolicy", json!("Delete"))],
            "spec.deletionPolicy: Unsupported value: \"Delete\": supported values: \"Retain\", \"Disable\""),
        case("TOTP digits too few", ApiCredential, &[set("/spec/totp/digits", json!(4))],
            "spec.totp.digits: Invalid value: 4: spec.totp.digits in body should be greater than or equal to 6"),
        case("TOTP period zero", ApiCredential, &[set("/spec/totp/period", json!(0))],
            "spec.totp.period in body should be greater than or equal to 1"),
        case("TOTP period negative", ApiCredential, &[set("/spec/totp/period", json!(-30))],
            "spec.totp.period in body should be greater than or equal to 1"),
        case("TOTP algorithm unknown", ApiCredential, &[set("/spec/totp/algorithm", json!("MD5"))],
            "spec.totp.algorithm: Unsupported value: \"MD5\": supported values: \"SHA1\", \"SHA256\", \"SHA512\""),
        case("TOTP period as text", ApiCredential, &[set("/spec/totp/period", json!("30s"))],
            "spec.totp.period: Invalid value: \"string\": spec.totp.period in body must be of type integer"),
        case("secret value named like an engine input", ApiCredential,
            &[set("/spec/secretValues/0/name", json!("password"))],
            "name must not be one the engine provides itself"),
        case("secret value name not snake_case", ApiCredential,
            &[set("/spec/secretValues/0/name", json!("ClientSecret"))],
            "name must be snake_case"),
        case("secret value also a variable", ApiCredential,
            &[set("/spec/variables", json!({ "client_secret": "visible" }))],
            "a secretValues name may not also be a key of variables"),
        case("secret value named twice", ApiCredential,
            &[set("/spec/secretValues", json!([
                { "name": "client_secret", "secretKeyRef": { "name": "a", "key": "b" } },
                { "name": "client_secret", "secretKeyRef": { "name": "c", "key": "d" } }
            ]))],
            "spec.secretValues[1]: Duplicate value"),
        case("client certificate without a CA", ApiCredential,
            &[set("/spec/clientCertificate/caRef", json!(""))],
            "spec.clientCertificate.caRef in body should be at least 1 chars long"),
        case("client certificate subject without a common name", ApiCredential,
            &[set("/spec/clientCertificate/subject", json!({ "organizations": ["Acme"] }))],
            "spec.clientCertificate.subject.commonName: Required value"),
        case("client certificate with two organizations", ApiCredential,
            &[set("/spec/clientCertificate/subject/organizations", json!(["Acme", "Acme EU"]))],
            "spec.clientCertificate.subject.organizations: Too many: 2: must have at most 1 item"),
        case("client certificate key algorithm unknown", ApiCredential,
            &[set("/spec/clientCertificate/keyAlgorithm", json!("RSA-2048"))],
            "spec.clientCertificate.keyAlgorithm: Unsupported value: \"RSA-2048\""),
        case("certificate duration in words", ApiCredential,
            &[set("/spec/clientCertificate/duration", json!("90 days"))],
            "spec.clientCertificate.duration in body should match"),
        case("certificate duration negative", ApiCredential,
            &[set("/spec/clientCertificate/duration", json!("-2160h"))],
            "spec.clientCertificate.duration in body should match"),
        case("certificate renewed after it expires", ApiCredential,
            &[set("/spec/clientCertificate/duration", json!("24h")),
              set("/spec/clientCertificate/renewBefore", json!("48h"))],
            "spec.clientCertificate: Invalid value: renewBefore must be shorter than duration"),
        case("certificate of zero duration", ApiCredential,
            &[set("/spec/clientCertificate/duration", json!("0s")),
              set("/spec/clientCertificate/renewBefore", json!("0s"))],
            "renewBefore must be shorter than duration"),
        case("token refreshBefore negative", ApiCredential,
            &[set("/spec/token/refreshBefore", json!("-60s"))],
            "spec.token.refreshBefore in body should match"),
        // ClientCA
        case("CA with neither source", ClientCA, &[remove("/spec/generate")],
            "spec: Invalid value: set exactly one of generate or importFrom"),
        case("CA with both sources", ClientCA,
            &[set("/spec/importFrom", json!({ "secretName": "existing-ca" }))],
            "set exactly one of generate or importFrom"),
        case("imported CA with an empty Secret name", ClientCA,
            &[remove("/spec/generate"), set("/spec/importFrom", json!({ "secretName": "" }))],
            "secretName must not be empty"),
        case("generated CA without a common name", ClientCA,
            &[set("/spec/generate/subject/commonName", json!(""))],
            "spec.generate.subject.commonName in body should be at least 1 chars long"),
        case("CA duration in words", ClientCA, &[set("/spec/generate/duration", json!("ten years"))],
            "spec.generate.duration in body should match"),
        case("CA of zero duration", ClientCA,
            &[set("/spec/generate/duration", json!("0s")), remove("/spec/generate/renewBefore")],
            "spec.generate: Invalid value: duration must be longer than 0s"),
        case("CA rolled after it expires", ClientCA,
            &[set("/spec/generate/renewBefore", json!("87600h"))],
            "renewBefore must be shorter than duration"),
        case("CA key algorithm unknown", ClientCA, &[set("/spec/generate/keyAlgorithm", json!("RSA"))],
            "spec.generate.keyAlgorithm: Unsupported value: \"RSA\""),
        case("allowed namespace not a namespace name", ClientCA,
            &[set("/spec/allowedNamespaces/names", json!(["Payments"]))],
            "names must be namespace names"),
        case("allowed namespace listed twice", ClientCA,
            &[set("/spec/allowedNamespaces/names", json!(["payments", "payments"]))],
            "spec.allowedNamespaces.names[1]: Duplicate value: \"payments\""),
        // ClusterMfaProfile
        case("profile without an enroll flow", ClusterMfaProfile, &[remove("/spec/enroll")],
            "spec.enroll: Required value"),
        case("flow without steps", ClusterMfaProfile, &[set("/spec/login/steps", json!([]))],
            "spec.login.steps: Invalid value: 0: spec.login.steps in body should have at least 1 items"),
        case("step with an unknown method", ClusterMfaProfile,
            &[set("/spec/login/steps/0/method", json!("FETCH"))],
            "spec.login.steps[0].method: Unsupported value: \"FETCH\""),
        case("step without a path", ClusterMfaProfile, &[remove("/spec/login/steps/0/path")],
            "spec.login.steps[0].path: Required value"),
        case("response rule with a status that is not HTTP", ClusterMfaProfile,
            &[set("/spec/login/steps/0/responses/0/status", json!([4010]))],
            "spec.login.steps[0].responses[0].status[0] in body should be less than or equal to 599"),
        case("response rule with an unknown outcome", ClusterMfaProfile,
            &[set("/spec/login/steps/0/responses/0/outcome", json!("retryLater"))],
            "spec.login.steps[0].responses[0].outcome: Unsupported value: \"retryLater\""),
        case("extraction with no source", ClusterMfaProfile,
            &[set("/spec/login/steps/0/extract/access_token", json!({ "as": "string" }))],
            "spec.login.steps[0].extract[access_token]: Invalid value: set exactly one of pointer, header and value"),
        case("extraction with two sources", ClusterMfaProfile,
            &[set("/spec/login/steps/0/extract/access_token", json!({ "pointer": "/token", "header": "X-Token" }))],
            "set exactly one of pointer, header and value"),
        case("fallback with no source", ClusterMfaProfile,
            &[set("/spec/enroll/steps/0/extract/totp_secret/fallback", json!({ "as": "otpauthUri" }))],
            "set exactly one of pointer and header"),
        case("extraction read as an unknown kind", ClusterMfaProfile,
            &[set("/spec/login/steps/0/extract/access_token/as", json!("jwt"))],
            "Unsupported value: \"jwt\""),
        case("TOTP digits too many", ClusterMfaProfile, &[set("/spec/totp/digits", json!(10))],
            "spec.totp.digits in body should be less than or equal to 8"),
        case("TOTP period zero", ClusterMfaProfile, &[set("/spec/totp/period", json!(0))],
            "spec.totp.period in body should be greater than or equal to 1"),
        case("token lifetime zero", ClusterMfaProfile, &[set("/spec/tokenLifetimeSeconds", json!(0))],
            "spec.tokenLifetimeSeconds in body should be greater than or equal to 1"),
        case("token lifetime over a year", ClusterMfaProfile,
            &[set("/spec/tokenLifetimeSeconds", json!(40_000_000))],
            "spec.tokenLifetimeSeconds in body should be less than or equal to 31622400"),
        case("token expiry not an option", ClusterMfaProfile, &[set("/spec/tokenExpiry", json!("sometimes"))],
            "spec.tokenExpiry: Unsupported value: \"sometimes\""),
        case("generated secret too short", ClusterMfaProfile,
            &[set("/spec/enroll/generateSecret", json!({ "bytes": 8 }))],
            "spec.enroll.generateSecret.bytes in body should be greater than or equal to 16"),
    ]
}

/// Sends `object` as a dry-run create: Ok, or the API server's status
/// code and message.
async fn dry_run_create(
    cluster: &TestCluster,
    namespace: &str,
    kind: Kind,
    object: &Value,
) -> Result<(), (u16, String)> {
    let resource = kind.resource();
    let api: Api<DynamicObject> = match kind {
        Kind::ApiCredential => Api::namespaced_with(cluster.client(), namespace, &resource),
        Kind::ClientCA | Kind::ClusterMfaProfile => Api::all_with(cluster.client(), &resource),
    };
    let object: DynamicObject = serde_json::from_value(object.clone()).expect("object JSON");
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match api.create(&params, &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err((status.code, status.message)),
        Err(other) => Err((0, other.to_string())),
    }
}

#[tokio::test]
async fn malformed_custom_resources_are_refused_with_messages_a_person_can_act_on() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let namespace = cluster
        .namespace("crd-validation")
        .await
        .expect("namespace");
    let ns = namespace.name();

    for kind in [Kind::ApiCredential, Kind::ClientCA, Kind::ClusterMfaProfile] {
        if let Err((code, message)) = dry_run_create(&cluster, ns, kind, &kind.valid()).await {
            panic!("the valid {kind:?} every row starts from was refused ({code}): {message}");
        }
    }

    let minor = otpilot_tests::server_minor(&cluster).await;
    let cases = cases();
    let mut wrong = Vec::new();
    for case in &cases {
        match dry_run_create(&cluster, ns, case.kind, &case.object).await {
            Ok(()) => wrong.push(format!("{}: accepted", case.what)),
            Err((422, message)) if refusal::says(&message, case.expect, minor) => {}
            Err((code, message)) => wrong.push(format!(
                "{}: refused ({code}) without {:?}:\n    {message}",
                case.what, case.expect
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows wrong:\n  {}",
        wrong.len(),
        cases.len(),
        wrong.join("\n  ")
    );
}

/// Sets `status.enrollment` through the status subresource, as the operator does.
async fn set_enrollment(api: &Api<DynamicObject>, name: &str, state: &str) {
    let status = json!({ "status": { "enrollment": state } });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap_or_else(|e| panic!("set status.enrollment {state}: {e}"));
}

async fn edit(api: &Api<DynamicObject>, name: &str, spec: Value) -> Result<(), (u16, String)> {
    let patch = json!({ "spec": spec });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err((status.code, status.message)),
        Err(other) => Err((0, other.to_string())),
    }
}

/// Once the credential is enrolled the vendor is fixed: an update of
/// `spec.baseUrl` or `spec.serverCa` is refused with what to do instead;
/// before, it is a correction and accepted. A table of (enrollment state,
/// edit, refused?).
#[tokio::test]
async fn the_vendor_cannot_change_once_enrolled() {
    let cluster = TestCluster::with_crds().await.expect("install CRDs");
    let namespace = cluster.namespace("vendor-lock").await.expect("namespace");
    let resource = Kind::ApiCredential.resource();
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client(), namespace.name(), &resource);
    let object: DynamicObject =
        serde_json::from_value(Kind::ApiCredential.valid()).expect("object JSON");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create the ApiCredential");
    let name = "payments-bot";

    let another_host = || json!({ "baseUrl": "https://attacker.example/v1" });
    let a_ca = || json!({ "serverCa": { "name": "attacker-ca", "key": "ca.crt" } });
    // No status yet, then NotStarted: a typo in the address can be fixed.
    edit(
        &api,
        name,
        json!({ "baseUrl": "https://api2.vendor.example/v1" }),
    )
    .await
    .expect("baseUrl edit before any status");
    set_enrollment(&api, name, "NotStarted").await;
    edit(
        &api,
        name,
        json!({ "baseUrl": "https://api.vendor.example/v1" }),
    )
    .await
    .expect("baseUrl edit while NotStarted");
    edit(&api, name, a_ca())
        .await
        .expect("serverCa added while NotStarted");

    let mut wrong = Vec::new();
    // A first enrollment under way or stuck (nothing confirmed yet): a
    // wrong address can still be fixed.
    for state in ["Pending", "Failed", "LockedOut"] {
        set_enrollment(&api, name, state).await;
        edit(
            &api,
            name,
            json!({ "baseUrl": format!("https://{state}.vendor.example/v1") }),
        )
        .await
        .unwrap_or_else(|e| panic!("baseUrl edit while {state}: {e:?}"));
    }
    for state in ["Enrolled", "ReenrollRequired", "Disabled"] {
        set_enrollment(&api, name, state).await;
        for (what, spec) in [
            ("another host", another_host()),
            (
                "another CA",
                json!({ "serverCa": { "name": "other-ca", "key": "ca.crt" } }),
            ),
            ("no CA", json!({ "serverCa": null })),
        ] {
            match edit(&api, name, spec).await {
                Err((422, message))
                    if message.contains("cannot change once the credential is enrolled")
                        && message.contains("create a new ApiCredential") => {}
                other => wrong.push(format!("{state}, {what}: {other:?}")),
            }
        }
        // Everything else stays editable, and the status moves on.
        if let Err(e) = edit(
            &api,
            name,
            json!({ "username": format!("bot-{state}@example.com") }),
        )
        .await
        {
            wrong.push(format!("{state}, username: {e:?}"));
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n  {}", wrong.join("\n  "));
}
