//! The AdmissionReview exchange: what the API server sends, what it gets back.

mod support;

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionResponse, AdmissionReview};
use otpilot_inject::review::{CredentialKey, CredentialLookup, credential_to_look_up, review};
use otpilot_inject::sidecar::CONTAINER_NAME;
use pretty_assertions::assert_eq;
use serde_json::json;
use support::*;

/// A review as the API server sends it for a Pod a Deployment creates: no
/// name, no namespace in the object, the namespace in the request.
fn admission_review(pod: &Pod, operation: &str) -> AdmissionReview<Pod> {
    let mut object = serde_json::to_value(pod).expect("json");
    object["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("namespace");
    serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": NAMESPACE,
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object,
            "oldObject": null,
            "dryRun": false
        }
    }))
    .expect("a valid AdmissionReview")
}

fn patched(pod: &Pod, response: &AdmissionResponse) -> Pod {
    let bytes = response.patch.as_ref().expect("a patch");
    let patch: json_patch::Patch = serde_json::from_slice(bytes).expect("a JSON patch");
    apply(pod, &patch.0)
}

#[test]
fn the_credential_to_look_up_is_in_the_requests_namespace() {
    let review = admission_review(&pod().injecting().build(), "CREATE");
    assert_eq!(
        credential_to_look_up(&review),
        Some(CredentialKey {
            namespace: NAMESPACE.into(),
            name: CREDENTIAL.into()
        })
    );
    for nothing_to_look_up in [
        admission_review(&pod().build(), "CREATE"),
        admission_review(&pod().injecting().build(), "UPDATE"),
        admission_review(
            &pod().annotated("otpilot.dev/inject", "ns/x").build(),
            "CREATE",
        ),
        admission_review(
            &pod()
                .injecting()
                .annotated("otpilot.dev/injected", "vendor")
                .build(),
            "CREATE",
        ),
    ] {
        assert_eq!(credential_to_look_up(&nothing_to_look_up), None);
    }
}

#[test]
fn an_allowed_pod_gets_its_patch_with_the_request_uid_and_the_namespace_from_the_request() {
    let pod = pod().injecting().build();
    let response = review(
        admission_review(&pod, "CREATE"),
        &CredentialLookup::Found(Box::new(credential().build())),
        &config(),
    );
    assert!(response.allowed);
    assert_eq!(response.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
    let injected = patched(&pod, &response);
    let first = injected
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .and_then(|c| c.first())
        .expect("init");
    assert_eq!(first.name, CONTAINER_NAME);
    let wire = serde_json::to_value(&response).expect("json");
    assert_eq!(wire["patchType"], "JSONPatch");
}

#[test]
fn refusals_carry_the_message_and_a_status_code() {
    let pod = pod().injecting().build();
    let response = review(
        admission_review(&pod, "CREATE"),
        &CredentialLookup::NotFound,
        &config(),
    );
    assert!(!response.allowed);
    assert_eq!(response.result.code, 403);
    assert!(
        response
            .result
            .message
            .contains("ApiCredential vendor in namespace payments is missing or not Ready"),
        "{}",
        response.result.message
    );

    let response = review(
        admission_review(&pod, "CREATE"),
        &CredentialLookup::Failed("the server is currently unable to handle the request".into()),
        &config(),
    );
    assert!(!response.allowed);
    assert_eq!(response.result.code, 500);
    assert!(
        response
            .result
            .message
            .contains("failed to look up the ApiCredential"),
        "{}",
        response.result.message
    );
}

#[test]
fn warnings_reach_the_response() {
    let pod = pod()
        .injecting()
        .containers(vec![with_env(container("app"), "OTPILOT_TOKEN_URL", "x")])
        .build();
    let response = review(
        admission_review(&pod, "CREATE"),
        &CredentialLookup::Found(Box::new(credential().build())),
        &config(),
    );
    assert!(response.allowed);
    assert_eq!(response.warnings.map(|w| w.len()), Some(1));
}

#[test]
fn untouched_pods_and_other_operations_get_no_patch() {
    for review_in in [
        admission_review(&pod().build(), "CREATE"),
        admission_review(&pod().injecting().build(), "UPDATE"),
    ] {
        let response = review(review_in, &CredentialLookup::NotNeeded, &config());
        assert!(response.allowed);
        assert_eq!(response.patch, None);
    }
}

#[test]
fn a_review_without_a_request_is_invalid() {
    let empty: AdmissionReview<Pod> = serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"
    }))
    .expect("parses");
    let response = review(empty, &CredentialLookup::NotNeeded, &config());
    assert!(!response.allowed);
}
