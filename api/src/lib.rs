//! The otpilot custom resources, as Rust types with no I/O.
//!
//! Group `otpilot.dev`, version `v1alpha1`. Doc comments on the types and
//! fields become the CRD descriptions users read with `kubectl explain`;
//! implementation notes are `//` comments.

#![warn(missing_docs)]

pub mod api_credential;
pub mod client_ca;
pub mod cluster_mfa_profile;
pub mod common;
pub mod conditions;
pub mod crds;
pub mod duration;
pub mod labels;
pub mod lease;
pub mod owned_secret;
pub mod profile;
pub mod reference;
pub mod runtime_secret;
pub mod schema;
pub mod secret_value_flag;
pub mod session;
pub mod session_key;
pub mod sidecar;

pub use api_credential::{ApiCredential, ApiCredentialSpec, ApiCredentialStatus};
pub use client_ca::{ClientCA, ClientCASpec, ClientCAStatus};
pub use cluster_mfa_profile::{ClusterMfaProfile, ClusterMfaProfileSpec, ClusterMfaProfileStatus};

/// The API group of every otpilot resource.
pub const GROUP: &str = "otpilot.dev";
