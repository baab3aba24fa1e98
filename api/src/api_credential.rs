//! `ApiCredential`: one machine identity at one vendor.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{CertificateSubject, ConfigMapKeyRef, KeyAlgorithm, SecretKeyRef, SecretValue};
use crate::duration::Duration;
use crate::profile::TotpAlgorithm;

/// The CEL rule that keeps `spec.baseUrl` and `spec.serverCa` as they were
/// once `status.enrollment` says the vendor confirmed a seed (`Enrolled`,
/// `ReenrollRequired`, `Disabled`; the operator never reports `Failed` or
/// `LockedOut` for an enrolled credential). Before that, during a first
/// enrollment, a wrong address stays fixable; the recovery-code issuer check
/// (`operator/src/controllers/api_credential/recovery_vendor.rs`) covers
/// what the rule cannot.
pub const VENDOR_LOCKED_RULE: &str = "!has(oldSelf.status) || !has(oldSelf.status.enrollment) \
     || !(oldSelf.status.enrollment in ['Enrolled', 'ReenrollRequired', 'Disabled']) \
     || (self.spec.baseUrl == oldSelf.spec.baseUrl \
         && has(self.spec.serverCa) == has(oldSelf.spec.serverCa) \
         && (!has(self.spec.serverCa) || self.spec.serverCa == oldSelf.spec.serverCa))";

/// What the API server answers to an edit [`VENDOR_LOCKED_RULE`] refuses.
pub const VENDOR_LOCKED_MESSAGE: &str = "spec.baseUrl and spec.serverCa cannot change once \
     the credential is enrolled: the TOTP secret and recovery codes belong to the vendor that issued \
     them. To use another vendor or host, create a new ApiCredential (see docs/troubleshooting.md, \
     'baseUrl cannot change')";

/// A machine identity at a third-party API that demands MFA. The operator
/// issues its client certificate, enrolls TOTP at the vendor and keeps the
/// seed and recovery codes in Secrets; a sidecar in each workload pod logs in
/// and serves a fresh bearer token on localhost.
// clippy reads each printcolumn's `type_ = ...` as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    // The root-level rule below makes the derive put `KubeSchema` (from
    // `kube`, here kube_derive) and an `x_kube` attribute on the root struct.
    crates(kube_core = "::kube_core", kube = "::kube_derive"),
    attr = "x_kube(crates(kube_core = \"::kube_core\"))",
    group = "otpilot.dev",
    version = "v1alpha1",
    kind = "ApiCredential",
    plural = "apicredentials",
    shortname = "apicred",
    category = "otpilot",
    namespaced,
    status = "ApiCredentialStatus",
    derive = "PartialEq",
    doc = "A machine identity at a third-party API that demands MFA.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Profile", type_ = "string", json_path = ".spec.profile"),
    printcolumn(
        name = "Enrolled",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Enrolled\")].status"
    ),
    // `type: date` would print the age of the timestamp, and the API server
    // prints `<invalid>` for every future time: an expiry is shown as its
    // RFC 3339 text instead.
    printcolumn(
        name = "Cert-Expires",
        type_ = "string",
        json_path = ".status.certificateNotAfter"
    ),
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
    ),
    // Once enrolled, the TOTP secret and the recovery codes
    // belong to the vendor that issued them: an edit of the vendor's
    // address would send the password, live codes and, after refusals, a
    // recovery code to another host. Root level, so the rule can read
    // `status` (the API server keeps the stored status on a spec update).
    validation = Rule::new(VENDOR_LOCKED_RULE).message(VENDOR_LOCKED_MESSAGE)
)]
#[x_kube(validation = Rule::new("!has(self.secretValues) || !has(self.variables) || self.secretValues.all(v, !(v.name in self.variables))").message("a secretValues name may not also be a key of variables"))]
#[serde(rename_all = "camelCase")]
pub struct ApiCredentialSpec {
    /// The vendor profile: a built-in name (audd, goaxr, conduit, acreto,
    /// cryptr) or the name of a ClusterMfaProfile.
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("profile must be a built-in profile name or a ClusterMfaProfile name (lowercase letters, digits, '-' and '.')"))]
    #[schemars(length(min = 1, max = 253))]
    pub profile: String,

    /// The vendor's API base URL, e.g. https://api.vendor.example/v1.
    // The doc is the CRD field's description: plain text for `kubectl explain`.
    #[allow(rustdoc::bare_urls)]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() == 'https'").message("baseUrl must be an https:// URL"))]
    pub base_url: String,

    /// CA certificate that signs the vendor's server certificate, when it is
    /// not publicly trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ca: Option<ConfigMapKeyRef>,

    /// The account's username (or user id) at the vendor.
    #[schemars(length(min = 1, max = 512))]
    pub username: String,

    /// Secret key holding the account's password (first factor). Omit for
    /// vendors whose profile uses no password; a profile that needs one
    /// then reports a MissingInput condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,

    /// Secret key holding the vendor API key, for vendors that require one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,

    /// Further vendor secrets the profile uses (e.g. a client secret), each
    /// a template value named `name`, read from a Secret key. They are
    /// treated like the password: never in status, Events, logs or metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub secret_values: Vec<SecretValue>,

    /// The client certificate for mutual TLS, issued by a ClientCA. Omit for
    /// vendors that do not use mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificateSpec>,

    /// Overrides of the TOTP parameters the vendor profile or enrollment gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<TotpOverrides>,

    /// Values for the profile's variables (e.g. an organisation's domain in
    /// the vendor's URLs), overriding the profile's defaults. Not for
    /// secrets: these are visible to anyone who can read the resource.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,

    /// When to refresh the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenSpec>,

    /// What happens at the vendor when this resource is deleted: Retain
    /// leaves MFA enrolled (the seed and recovery codes stay in their
    /// Secrets); Disable turns MFA off at the vendor first.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// The client certificate to issue.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("duration(self.renewBefore) < duration(self.duration)").message("renewBefore must be shorter than duration"))]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificateSpec {
    /// Name of the ClientCA that issues the certificate.
    #[schemars(length(min = 1, max = 253))]
    pub ca_ref: String,
    /// Subject of the client certificate.
    pub subject: CertificateSubject,
    /// Key algorithm of the client key.
    #[serde(default)]
    pub key_algorithm: KeyAlgorithm,
    /// Validity of each issued certificate.
    #[serde(default = "default_certificate_duration")]
    pub duration: Duration,
    /// How long before expiry a new certificate is issued.
    #[serde(default = "default_certificate_renew_before")]
    pub renew_before: Duration,
}

fn default_certificate_duration() -> Duration {
    Duration::new("2160h")
}

fn default_certificate_renew_before() -> Duration {
    Duration::new("720h")
}

/// TOTP parameters. Each field, when set, wins over what the vendor
/// advertised at enrollment and over the profile's defaults; use it when a
/// vendor advertises parameters it does not actually use.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct TotpOverrides {
    /// HMAC algorithm: SHA1, SHA256 or SHA512.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<TotpAlgorithm>,
    /// Number of digits in a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 6, max = 8))]
    pub digits: Option<u8>,
    /// Length of a time step, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 300))]
    pub period: Option<u32>,
}

/// Bearer-token handling.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct TokenSpec {
    /// Refresh the access token this long before it expires (at most at
    /// half its life). The webhook passes it to the sidecars of Pods it
    /// injects from then on (`--refresh-before`); without `spec.token` they
    /// refresh when a third of the token's life or 60s remain, whichever is
    /// larger.
    #[serde(default = "default_refresh_before")]
    pub refresh_before: Duration,
}

fn default_refresh_before() -> Duration {
    Duration::new("60s")
}

/// What happens at the vendor when an ApiCredential is deleted.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Leave MFA enrolled at the vendor; keep the seed and recovery codes.
    #[default]
    Retain,
    /// Turn MFA off at the vendor before the resource goes away.
    Disable,
}

/// Observed state of an ApiCredential. Never holds secret material.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct ApiCredentialStatus {
    /// Current state, as conditions keyed by type (CertificateReady,
    /// Enrolled, Ready), each with a reason and a message saying what to do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// When the current client certificate expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_not_after: Option<Time>,
    /// When the operator will issue the next client certificate
    /// (renewBefore ahead of certificateNotAfter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_time: Option<Time>,
    /// Where TOTP enrollment stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment: Option<EnrollmentState>,
    /// How many unused recovery codes the operator holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_codes_remaining: Option<u32>,
    /// Names of the Secrets this credential owns (never their contents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<OwnedSecrets>,
    /// When the last attempt (certificate, enrollment or vendor call) failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,
    /// Consecutive failed attempts since the last success; 0 or absent
    /// when the last attempt succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_attempts: Option<u32>,
    /// When the operator will try again after a failure (it backs off
    /// exponentially and honours the vendor's Retry-After and lock-out
    /// times).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_time: Option<Time>,
    /// The vendor's clock minus this cluster's, in seconds, as last
    /// measured from the vendor's Date headers. TOTP codes are computed on
    /// the vendor's time; a large offset means a node clock or the vendor's
    /// is wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_seconds: Option<i64>,
    /// The value of the `otpilot.dev/renew-certificate` annotation the
    /// operator last acted on. A request is honoured once: when the
    /// annotation differs from this, a new client certificate is issued and
    /// this field set to the annotation's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_renew_request: Option<String>,
    /// The value of the `otpilot.dev/reenroll` annotation the operator last
    /// acted on (once per value, as for handledRenewRequest): MFA is turned
    /// over to a new TOTP secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_reenroll_request: Option<String>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A step of the enrollment state machine. Each is persisted before the
/// vendor call that depends on it, so enrollment resumes after a crash.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnrollmentState {
    /// No TOTP secret has been stored yet (the Enrolled condition says why,
    /// when a first attempt failed).
    NotStarted,
    /// A TOTP secret is stored and the vendor has been (or is being) asked to enable it.
    Pending,
    /// The vendor confirmed the TOTP secret; recovery codes are stored.
    Enrolled,
    /// MFA was turned off at the vendor (deletionPolicy Disable).
    Disabled,
    /// Enrollment failed in a way retrying alone will not fix; the Enrolled
    /// condition says what to change.
    Failed,
    /// The vendor locked the account out; the operator waits until
    /// nextRetryTime before it calls the vendor again.
    LockedOut,
    /// The stored TOTP secret no longer works or the vendor demands a new
    /// enrollment (e.g. after a login with a recovery code); the operator
    /// enrolls again.
    ReenrollRequired,
}

/// Names of the Secrets an ApiCredential owns.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct OwnedSecrets {
    /// Mounted into workloads: base URL, profile, TOTP seed, client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Never mounted: the recovery codes, read only by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<String>,
}
