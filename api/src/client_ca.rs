//! `ClientCA`: a root CA whose certificate the platform team hands to vendors,
//! and which issues the client certificates of `ApiCredential`s.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube_core::{Selector, SelectorExt};
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
    /// What the certificates this CA issues may say: subject patterns and
    /// a longest validity. A credential asking for anything else is refused
    /// (CertificateReady False, reason CertificateNotAllowed), and a
    /// certificate issued before the policy that breaks it is taken out of
    /// the credential's runtime Secret. When absent, any subject may be
    /// issued for up to the CA's own lifetime (the behaviour before this
    /// field existed); set it on every CA that more than one team uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuance_policy: Option<IssuancePolicy>,
}

/// Subject patterns and a longest validity for issued certificates.
///
/// A pattern is literal text in which `${namespace}` stands for the
/// ApiCredential's namespace, `${name}` for its name, and `*` for any run of
/// characters (none included). Nothing else is special, and `$` may appear
/// only in those two placeholders. Example: `${namespace}.${name}` lets the
/// credential `bot` in `payments` be issued `CN=payments.bot` and nothing
/// else. A list that is absent or empty leaves that attribute free; a list
/// that is set requires the attribute and one matching pattern.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("duration(self.maxDuration) > duration('0s')").message("maxDuration must be longer than 0s"))]
#[serde(rename_all = "camelCase")]
pub struct IssuancePolicy {
    /// Patterns the subject's commonName (CN) must match, one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 128)))]
    #[x_kube(validation = Rule::new(PATTERN_RULE).message(PATTERN_MESSAGE))]
    pub common_names: Vec<String>,
    /// Patterns the subject's organization (O) must match, one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 128)))]
    #[x_kube(validation = Rule::new(PATTERN_RULE).message(PATTERN_MESSAGE))]
    pub organizations: Vec<String>,
    /// Patterns the subject's organizational unit (OU) must match, one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 128)))]
    #[x_kube(validation = Rule::new(PATTERN_RULE).message(PATTERN_MESSAGE))]
    pub organizational_units: Vec<String>,
    /// The longest validity a credential may ask for in
    /// spec.clientCertificate.duration; a longer one is refused, not
    /// shortened (2160h, 90 days, when not set: the credentials' default).
    #[serde(default = "default_max_duration")]
    pub max_duration: Duration,
}

// `$` only inside the two placeholders: a typo such as `${namspace}` is
// refused by the API server instead of matching nothing.
const PATTERN_RULE: &str = "self.all(p, p.matches('^([^$]|[$][{](namespace|name)[}])*$'))";
const PATTERN_MESSAGE: &str = "patterns may use $ only in ${namespace} and ${name}";

fn default_max_duration() -> Duration {
    Duration::new("2160h")
}

impl Default for IssuancePolicy {
    fn default() -> Self {
        Self {
            common_names: Vec::new(),
            organizations: Vec::new(),
            organizational_units: Vec::new(),
            max_duration: default_max_duration(),
        }
    }
}

/// Namespaces, by name or by label selector.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(crates(kube_core = "::kube_core"))]
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

impl ClientCASpec {
    /// Whether ApiCredentials in `namespace` (with `labels`) may be issued
    /// certificates by this CA: listed by name, or selected by label.
    /// Absent allowedNamespaces allows none.
    pub fn allows_namespace(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, InvalidNamespaceSelector> {
        let Some(allowed) = &self.allowed_namespaces else {
            return Ok(false);
        };
        if allowed.names.iter().any(|name| name == namespace) {
            return Ok(true);
        }
        match &allowed.selector {
            None => Ok(false),
            Some(selector) => Selector::try_from(selector.clone())
                .map(|selector| selector.matches(labels))
                .map_err(|error| InvalidNamespaceSelector(error.0)),
        }
    }
}

/// A namespace selector the API server accepted but that cannot be
/// evaluated (e.g. `In` without values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to evaluate spec.allowedNamespaces.selector: {0}; fix the selector")]
pub struct InvalidNamespaceSelector(pub String);

/// How to generate the CA.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("!has(self.renewBefore) || duration(self.renewBefore) < duration(self.duration)").message("renewBefore must be shorter than duration"))]
#[x_kube(validation = Rule::new("duration(self.duration) > duration('0s')").message("duration must be longer than 0s"))]
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
    /// How long before expiry the CA is reported as expiring (condition
    /// Expiring, a Warning Event, `status.renewalTime`). The operator never
    /// rolls a CA by itself: vendors must be given a new one first (see
    /// docs/operations.md, 'Rotating a ClientCA').
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
    /// When the CA enters its renewal window (renewBefore ahead of
    /// notAfter): from then on it is reported as expiring. Set for
    /// generated and imported CAs alike; neither is rolled by the operator.
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

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn spec(allowed: Option<AllowedNamespaces>) -> ClientCASpec {
        ClientCASpec {
            generate: None,
            import_from: None,
            allowed_namespaces: allowed,
            issuance_policy: None,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn match_labels(pairs: &[(&str, &str)]) -> Option<LabelSelector> {
        Some(LabelSelector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        })
    }

    // (case, allowedNamespaces, namespace, its labels, allowed?)
    type Case<'a> = (
        &'a str,
        Option<AllowedNamespaces>,
        &'a str,
        &'a BTreeMap<String, String>,
        bool,
    );

    #[test]
    fn namespaces_allowed_to_issue() {
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let vendor = labels(&[("otpilot.dev/vendor", "conduit")]);
        let none = labels(&[]);
        let cases: Vec<Case> = vec![
            ("absent allows none", None, "payments", &vendor, false),
            (
                "empty allows none",
                Some(AllowedNamespaces::default()),
                "payments",
                &vendor,
                false,
            ),
            (
                "listed by name",
                Some(AllowedNamespaces {
                    names: names(&["payments"]),
                    selector: None,
                }),
                "payments",
                &none,
                true,
            ),
            (
                "not listed",
                Some(AllowedNamespaces {
                    names: names(&["payments"]),
                    selector: None,
                }),
                "treasury",
                &vendor,
                false,
            ),
            (
                "names are exact, not prefixes",
                Some(AllowedNamespaces {
                    names: names(&["pay"]),
                    selector: None,
                }),
                "payments",
                &none,
                false,
            ),
            (
                "selected by label",
                Some(AllowedNamespaces {
                    names: vec![],
                    selector: match_labels(&[("otpilot.dev/vendor", "conduit")]),
                }),
                "treasury",
                &vendor,
                true,
            ),
            (
                "label with another value",
                Some(AllowedNamespaces {
                    names: vec![],
                    selector: match_labels(&[("otpilot.dev/vendor", "audd")]),
                }),
                "treasury",
                &vendor,
                false,
            ),
            (
                "empty selector selects all",
                Some(AllowedNamespaces {
                    names: vec![],
                    selector: Some(LabelSelector::default()),
                }),
                "anything",
                &none,
                true,
            ),
            (
                "name or selector",
                Some(AllowedNamespaces {
                    names: names(&["payments"]),
                    selector: match_labels(&[("x", "y")]),
                }),
                "payments",
                &none,
                true,
            ),
        ];
        for (case, allowed, namespace, labels, expected) in cases {
            assert_eq!(
                spec(allowed).allows_namespace(namespace, labels),
                Ok(expected),
                "{case}"
            );
        }
    }

    #[test]
    fn a_selector_that_cannot_be_evaluated_is_an_error_not_a_grant() {
        let selector = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: None,
            }]),
        };
        let allowed = AllowedNamespaces {
            names: vec![],
            selector: Some(selector),
        };
        let error = spec(Some(allowed))
            .allows_namespace("payments", &BTreeMap::new())
            .expect_err("In without values");
        assert!(error.to_string().contains("fix the selector"), "{error}");
    }
}
