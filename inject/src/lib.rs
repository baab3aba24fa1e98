//! Sidecar injection: what the mutating admission webhook does to a Pod
//! annotated `otpilot.dev/inject: <apicredential>`, as pure functions.
//!
//! [`mutate`] turns a Pod, the ApiCredential its annotation names (looked up
//! by the caller, in the Pod's namespace) and the installation's
//! [`InjectConfig`] into a [`Decision`]: JSON-patch operations that add the
//! sidecar, or a refusal whose message says what to fix. [`review()`] wraps it
//! for an `AdmissionReview`. Nothing here does I/O; the operator serves the
//! webhook and does the lookup.
//!
//! Serving it (what the operator's webhook handler does, per request):
//!
//! 1. read the body as `AdmissionReview<Pod>` (a parse error:
//!    `AdmissionResponse::invalid`);
//! 2. [`credential_to_look_up`]: `Some(key)` → GET the ApiCredential
//!    `key.name` in `key.namespace` → [`CredentialLookup`] `Found`,
//!    `NotFound` or `Failed(error text)`; `None` → `NotNeeded`;
//! 3. [`review::decide`] for the [`Decision`], then [`review::respond`] (or
//!    [`review()`] for both at once); before answering an allowed Pod with a
//!    patch, GET the metadata of each Secret [`borrowed::named_secrets`] lists
//!    and pass the decision through [`borrowed::refuse_borrowed`], so no Pod
//!    mounts otpilot's own Secrets; send `response.into_review()` as JSON;
//! 4. on `Decision::Deny { reason, .. }`: count it with `reason.as_str()` as
//!    the label (a bounded set). Nothing is written to the API server: the
//!    webhook is declared `sideEffects: None`, and the Pod's controller
//!    (ReplicaSet, Job...) records its own `FailedCreate` Event with the
//!    refusal's message.
//!
//! Settings come from [`InjectConfig::from_json`] (the chart's ConfigMap
//! `<release>-inject`, key `inject.json`).

#![warn(missing_docs)]

pub mod annotations;
pub mod borrowed;
pub mod config;
pub mod decision;
mod mutate;
mod patch;
pub mod probes;
pub mod review;
pub mod sidecar;

pub use config::{ConfigError, InjectConfig, SidecarResources, WhenNotReady};
pub use decision::{Decision, DenyReason};
pub use mutate::mutate;
pub use review::{CredentialLookup, credential_to_look_up, review};
