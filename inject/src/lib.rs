//! Sidecar injection: what the mutating admission webhook does to a Pod
//! annotated `otpilot.dev/inject: <apicredential>`, as pure functions.
//!
//! [`mutate`] turns a Pod, the ApiCredential its annotation names (looked up
//! by the caller, in the Pod's namespace) and the installation's
//! [`InjectConfig`] into a [`Decision`]: JSON-patch operations that add the
//! sidecar, or a refusal whose message says what to fix. [`review`] wraps it
//! for an `AdmissionReview`. Nothing here does I/O; the operator serves the
//! webhook and does the lookup.

pub mod annotations;
pub mod config;
pub mod decision;
mod mutate;
mod patch;
pub mod review;
pub mod sidecar;

pub use config::{ConfigError, InjectConfig, SidecarResources, WhenNotReady};
pub use decision::{Decision, DenyReason};
pub use mutate::mutate;
pub use review::{CredentialLookup, credential_to_look_up, refusal_event_target, review};
