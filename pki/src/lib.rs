//! otpilot's certificate authority, with no I/O.
//!
//! The operator builds each `ClientCA` on [`generate_ca`] or
//! [`CaMaterial::from_pem`] (an imported CA), issues `ApiCredential` client
//! certificates with [`issue_client_certificate`] and decides when to renew
//! them with [`renewal`]; the webhook gets its serving certificate from
//! [`issue_server_certificate`]. Every certificate carries the extensions
//! strict verifiers demand (RFC 5280: basicConstraints, keyUsage,
//! extendedKeyUsage on leaves, subject and authority key identifiers), which
//! the tests check with `openssl verify -x509_strict`.
//!
//! Times are [`jiff::Timestamp`]s, as in `k8s-openapi`'s `Time`, and "now"
//! is always a parameter. Private keys are [`secrecy::SecretString`]s, and
//! no `Debug` or error message of this crate contains key material.
//!
//! Keys are ECDSA P-256 (the default), ECDSA P-384 or Ed25519. RSA keys
//! cannot be generated with the ring backend; an imported RSA CA works.

#![warn(missing_docs)]

mod ca;
mod error;
mod info;
mod issue;
mod policy;
mod renewal;
mod subject;
mod validity;

pub use ca::{CaMaterial, generate_ca};
pub use error::PkiError;
pub use info::{CertInfo, certificate_info, certificate_subject};
pub use issue::{IssuedCertificate, issue_client_certificate, issue_server_certificate};
pub use policy::{PolicyViolation, Requester, check_policy, expand};
pub use renewal::{RenewReason, Renewal, renewal};
pub use validity::CLOCK_SKEW_ALLOWANCE;
