//! `AdmissionReview` glue around [`crate::mutate`], still without I/O: the
//! caller reads the review, looks the credential up (see
//! [`credential_to_look_up`]) and sends back what [`review`] returns.

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use otpilot_api::ApiCredential;

use crate::annotations;
use crate::config::InjectConfig;
use crate::decision::{Decision, DenyReason};
use crate::mutate::mutate;

/// The ApiCredential a request asks for, in the Pod's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialKey {
    /// The Pod's namespace.
    pub namespace: String,
    /// The ApiCredential's name.
    pub name: String,
}

/// What the caller's lookup of [`CredentialKey`] found.
#[derive(Clone, Debug)]
pub enum CredentialLookup {
    /// It exists.
    Found(Box<ApiCredential>),
    /// There is none by that name.
    NotFound,
    /// The API server could not answer; the text is shown to the Pod's
    /// creator (it must hold no secret material: an API error is fine).
    Failed(String),
    /// Nothing was looked up: [`credential_to_look_up`] said there is nothing to look up.
    NotNeeded,
}

/// Which ApiCredential to fetch before calling [`review`]: `None` when the
/// Pod needs no lookup (not a Pod creation, no annotation, already injected,
/// or an annotation that will be refused anyway).
pub fn credential_to_look_up(review: &AdmissionReview<Pod>) -> Option<CredentialKey> {
    let request = review.request.as_ref()?;
    if request.operation != Operation::Create {
        return None;
    }
    let pod = request.object.as_ref()?;
    let annotations = pod.metadata.annotations.as_ref()?;
    if annotations.contains_key(annotations::INJECTED) {
        return None;
    }
    let name = annotations::requested_credential(annotations)?;
    let namespace = request.namespace.clone()?;
    Some(CredentialKey { namespace, name })
}

/// The decision for an admission request, given the lookup's result.
pub fn decide(
    request: &AdmissionRequest<Pod>,
    lookup: &CredentialLookup,
    config: &InjectConfig,
) -> Decision {
    if request.operation != Operation::Create {
        return Decision::untouched();
    }
    let Some(pod) = request.object.as_ref() else {
        return Decision::deny(
            DenyReason::InvalidRequest,
            "the admission request carries no Pod",
        );
    };
    // Pods created by controllers arrive without metadata.namespace: the
    // request's namespace is the one the Pod will live in.
    let mut pod = pod.clone();
    match (&pod.metadata.namespace, &request.namespace) {
        (Some(own), Some(requested)) if own != requested => {
            return Decision::deny(
                DenyReason::CrossNamespace,
                format!("the Pod says namespace {own} but is created in {requested}"),
            );
        }
        (None, Some(requested)) => pod.metadata.namespace = Some(requested.clone()),
        _ => {}
    }
    match lookup {
        CredentialLookup::Found(credential) => mutate(&pod, Some(credential), config),
        CredentialLookup::NotFound | CredentialLookup::NotNeeded => mutate(&pod, None, config),
        CredentialLookup::Failed(error) => match mutate(&pod, None, config) {
            // Only when the Pod needed the credential: an invalid annotation
            // is still refused for what it is.
            Decision::Deny {
                reason: DenyReason::CredentialNotFound,
                ..
            } => Decision::deny(
                DenyReason::LookupFailed,
                format!(
                    "failed to look up the ApiCredential named by annotation {}: {error}; try again",
                    annotations::INJECT
                ),
            ),
            other => other,
        },
    }
}

/// The admission response for a decision.
pub fn respond(request: &AdmissionRequest<Pod>, decision: Decision) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    match decision {
        Decision::Allow { patch, warnings } => {
            let mut response = if patch.is_empty() {
                response
            } else {
                match response.clone().with_patch(json_patch::Patch(patch)) {
                    Ok(patched) => patched,
                    Err(error) => {
                        return deny(response, DenyReason::InvalidRequest, &error.to_string());
                    }
                }
            };
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            response
        }
        Decision::Deny { reason, message } => deny(response, reason, &message),
    }
}

fn deny(response: AdmissionResponse, reason: DenyReason, message: &str) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result.code = match reason {
        DenyReason::LookupFailed => 500,
        DenyReason::InvalidRequest => 400,
        _ => 403,
    };
    response
}

/// The whole exchange: an `AdmissionReview` in, the response out.
pub fn review(
    review: AdmissionReview<Pod>,
    lookup: &CredentialLookup,
    config: &InjectConfig,
) -> AdmissionResponse {
    let request: AdmissionRequest<Pod> = match review.try_into() {
        Ok(request) => request,
        Err(error) => return AdmissionResponse::invalid(error),
    };
    let decision = decide(&request, lookup, config);
    respond(&request, decision)
}
