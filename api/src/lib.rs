//! The otpilot custom resources, as Rust types with no I/O.
//!
//! Group `otpilot.dev`, version `v1alpha1`. Doc comments on the types and
//! fields become the CRD descriptions users read with `kubectl explain`;
//! implementation notes are `//` comments.

pub mod profile;
pub mod schema;
