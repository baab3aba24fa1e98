//! Types shared by several resources.

use kube_derive::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A key in a Secret in the same namespace as the resource that names it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A key in a ConfigMap in the same namespace as the resource that names it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the ConfigMap's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The subject of an X.509 certificate.
// The lists hold one value at most: the certificate library (rcgen) writes
// one value per attribute type, and otpilot-pki refuses more rather than
// silently dropping some. Lengths are RFC 5280's upper bounds.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSubject {
    /// Common name (CN).
    #[schemars(length(min = 1, max = 64))]
    pub common_name: String,
    /// Organization (O). At most one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1), inner(length(min = 1, max = 64)))]
    pub organizations: Vec<String>,
    /// Organizational unit (OU). At most one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1), inner(length(min = 1, max = 64)))]
    pub organizational_units: Vec<String>,
}

/// The key algorithm of a generated private key.
// No RSA: the ring backend of rcgen cannot generate RSA keys (only
// aws-lc-rs can, and the workspace uses ring alone). An imported RSA CA
// still signs ECDSA/Ed25519 client certificates.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// ECDSA on the NIST P-256 curve with SHA-256 (the default; widely accepted by vendors).
    #[default]
    #[serde(rename = "ECDSA-P256")]
    EcdsaP256,
    /// ECDSA on the NIST P-384 curve with SHA-384.
    #[serde(rename = "ECDSA-P384")]
    EcdsaP384,
    /// Ed25519 (not accepted by every vendor).
    #[serde(rename = "Ed25519")]
    Ed25519,
}

/// A vendor secret beyond the password and the API key (e.g. Conduit's
/// client secret), given to the profile as a template value.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Eq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct SecretValue {
    /// The name the profile's templates use for the value, in snake_case
    /// (e.g. client_secret). It may not be a name the engine itself
    /// provides (username, password, api_key, totp, totp_secret,
    /// recovery_code, recovery_codes).
    #[x_kube(validation = Rule::new("self.matches('^[a-z]([a-z0-9_]*[a-z0-9])?$')").message("name must be snake_case: lowercase letters, digits and '_', starting with a letter"))]
    #[x_kube(validation = Rule::new("!(self in ['username', 'password', 'api_key', 'totp', 'totp_secret', 'recovery_code', 'recovery_codes'])").message("name must not be one the engine provides itself (username, password, api_key, totp, totp_secret, recovery_code, recovery_codes)"))]
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The Secret key holding the value. The value is secret: it never
    /// appears in status, Events, logs or metrics.
    pub secret_key_ref: SecretKeyRef,
}

/// Whether a condition holds: "True", "False" or "Unknown".
pub mod condition_status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// Not known (yet).
    pub const UNKNOWN: &str = "Unknown";
}
