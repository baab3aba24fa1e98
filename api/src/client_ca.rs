//! `ClientCA`: a root CA whose certificate the platform team hands to vendors,
//! and which issues the client certificates of `ApiCredential`s.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
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
#[kube(
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
    // `type: date` would print the age of the timestamp, and the API server
    // prints `<invalid>` for every future time: an expiry is shown as its
    // RFC 3339 text instead.
    printcolumn(name = "Expires", type_ = "string", json_path = ".status.notAfter"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = "1",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        priority = "1",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
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
    /// The namespaces whose ApiCredentials may have client certificates
    /// issued by this CA: those listed by name and those whose labels match
    /// the selector. When absent, no namespace may; an empty selector ({})
    /// selects every namespace. A vendor trusts every certificate this CA
    /// issues, so grant it only to the namespaces that act for that vendor
    /// account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_namespaces: Option<AllowedNamespaces>,
}

/// Namespaces, by name or by label selector.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AllowedNamespaces {
    /// Namespace names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 63)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new("self.all(n, n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))").message("names must be namespace names (lowercase letters, digits and '-')"))]
    pub names: Vec<String>,
    /// Namespaces whose labels match this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// How to generate the CA.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
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
#[serde(rename_all = "camelCase")]
pub struct ImportedCA {
    /// Name of a kubernetes.io/tls Secret in the operator's namespace.
    #[x_kube(validation = Rule::new("self.size() > 0").message("secretName must not be empty"))]
    pub secret_name: String,
}

/// Observed state of a ClientCA. Holds only public material.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClientCAStatus {
    /// Current state, as conditions keyed by type: Ready, and Expiring
    /// (True when the CA certificate nears its notAfter: hand vendors its
    /// successor before then).
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
    /// When the CA certificate became valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Time>,
    /// When the CA certificate expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Time>,
    /// When the operator rolls a generated CA (renewBefore ahead of
    /// notAfter). Absent for imported CAs, which you renew yourself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_time: Option<Time>,
    /// Serial number of the CA certificate (upper-case hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Name of the ConfigMap (in the operator's namespace) holding ca.crt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
