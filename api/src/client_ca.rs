//! `ClientCA`: a root CA whose certificate the platform team hands to vendors,
//! and which issues the client certificates of `ApiCredential`s.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube_derive::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{CertificateSubject, KeyAlgorithm};
use crate::duration::Duration;

/// A root certificate authority for client certificates. The operator either
/// generates it or imports it from a Secret, keeps the private key in a Secret
/// in the operator's namespace, and publishes the CA certificate in this
/// resource's status and in a ConfigMap, for you to hand to the vendor.
// clippy reads each printcolumn's `type_ = ...` as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "otpilot.dev",
    version = "v1alpha1",
    kind = "ClientCA",
    plural = "clientcas",
    shortname = "clientca",
    category = "otpilot",
    status = "ClientCAStatus",
    derive = "PartialEq",
    doc = "A root certificate authority that issues client certificates for ApiCredentials.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Source", type_ = "string", json_path = ".status.source"),
    printcolumn(name = "Expires", type_ = "date", json_path = ".status.notAfter"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.generate) != has(self.importFrom)").message("set exactly one of generate or importFrom"))]
#[serde(rename_all = "camelCase")]
pub struct ClientCASpec {
    /// Generate a new CA key pair and self-signed certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<GeneratedCA>,
    /// Import an existing CA from a Secret of type kubernetes.io/tls
    /// (keys tls.crt and tls.key) in the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_from: Option<ImportedCA>,
}

/// How to generate the CA.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("!has(self.renewBefore) || duration(self.renewBefore) < duration(self.duration)").message("renewBefore must be shorter than duration"))]
#[serde(rename_all = "camelCase")]
pub struct GeneratedCA {
    /// Subject of the CA certificate.
    pub subject: CertificateSubject,
    /// Key algorithm of the CA key.
    #[serde(default)]
    pub key_algorithm: KeyAlgorithm,
    /// Validity of the CA certificate, e.g. 87600h (ten years).
    #[serde(default = "default_ca_duration")]
    pub duration: Duration,
    /// How long before expiry the operator rolls the CA. Vendors must be
    /// given the new certificate before then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before: Option<Duration>,
}

fn default_ca_duration() -> Duration {
    Duration::new("87600h")
}

/// Where to import the CA from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct ImportedCA {
    /// Name of a kubernetes.io/tls Secret in the operator's namespace.
    #[x_kube(validation = Rule::new("self.size() > 0").message("secretName must not be empty"))]
    pub secret_name: String,
}

/// Observed state of a ClientCA. Holds only public material.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct ClientCAStatus {
    /// Current state, as conditions keyed by type (Ready).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Generated or Imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The CA certificate (PEM) to hand to vendors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// SHA-256 fingerprint of the CA certificate (hex, colon-separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_sha256: Option<String>,
    /// When the CA certificate expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Time>,
    /// Name of the ConfigMap (in the operator's namespace) holding ca.crt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
