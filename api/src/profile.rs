//! The declarative MFA profile format: the spec of `ClusterMfaProfile`, and
//! the format of the built-in profiles shipped as YAML.
//!
//! A profile lists, for each flow (`enroll`, `login`, `refresh`,
//! `recoveryLogin`, `disable`), the HTTP steps that run it. Every string in a
//! step is a template (Jinja syntax, rendered by minijinja) over named values.

// Implementation notes (not user documentation, hence `//`):
// - The schema must stay a Kubernetes *structural* schema: no untagged enums,
//   no `oneOf` of differently typed variants. Alternatives are plain structs
//   with optional fields that the engine validates at load time; free-form
//   JSON bodies use `crate::schema::any_json`.
// - `deny_unknown_fields` turns typos in hand-written YAML into load errors;
//   the API server prunes unknown fields of custom resources anyway.
// - No I/O and no validation here: the engine (`otpilot-profile`) validates.
//   A few of its structural checks (a flow has steps, an extraction has one
//   source, statuses are HTTP statuses, the token lifetime's range) are also
//   schema rules, so that the API server refuses such a ClusterMfaProfile at
//   apply time with the same words. Rules stay O(1) boolean tests: the API
//   server refuses a CRD whose estimated CEL cost (rules inside unbounded
//   lists and maps) exceeds its budget, and `body` (free-form JSON) is
//   invisible to CEL, so "body and form" is left to the engine.

use std::collections::BTreeMap;

use kube_derive::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A vendor's multi-factor authentication flows, each a list of HTTP steps.
///
/// Templates may use these values: `username`, `password`, `api_key`,
/// `totp_secret`, `totp` (the current one-time code, computed when a step
/// uses it), `recovery_code` (recoveryLogin only), `access_token` and
/// `refresh_token` (refresh only), the profile's `variables` and
/// `secretValues`, and every value extracted by an earlier step of the same
/// flow.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileSpec {
    /// Human-readable vendor name, for people reading the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,

    /// TOTP parameters of the vendor, used unless the enrollment response
    /// carries an otpauth URI that says otherwise.
    #[serde(default)]
    pub totp: TotpDefaults,

    /// Named constants available to every template (for example an
    /// organisation id or a client id). Values given by an ApiCredential
    /// override these defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,

    /// Names of vendor secrets beyond the password and the API key that the
    /// templates use (e.g. Conduit's `client_secret`). An ApiCredential
    /// gives their values (`spec.secretValues`, one Secret key each); a
    /// value it does not give renders as an empty string, and a header that
    /// renders empty is not sent, so a profile can send a vendor secret only
    /// to deployments that need it. Secret values never appear in logs,
    /// errors or status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_values: Vec<String>,

    /// Headers sent with every request of every flow (templates). A step's
    /// own headers override these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,

    /// Lifetime of an access token in seconds (1 to 366 days). How it
    /// combines with an extracted `expires_at` and the JWT's `exp` claim is
    /// `tokenExpiry`'s choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 31_622_400))]
    pub token_lifetime_seconds: Option<u64>,

    /// Which source decides when an access token expires: `firstFound`
    /// (default: an extracted `expires_at`, else the JWT's `exp` unless it
    /// is more than 366 days ahead, else `tokenLifetimeSeconds`),
    /// `earliest` (the earliest of all three that are known, for a vendor
    /// whose `exp` may be wrong), or `configured` (`tokenLifetimeSeconds`
    /// only).
    #[serde(default, skip_serializing_if = "is_default")]
    pub token_expiry: TokenExpiry,

    /// How an access token is presented to the vendor's API. Default:
    /// `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub token_presentation: TokenPresentation,

    /// Bounds on what the engine accepts from the vendor and spends on the
    /// profile's templates. Defaults suit every built-in profile.
    #[serde(default, skip_serializing_if = "is_default")]
    pub limits: Limits,

    /// Turns on MFA for the account: obtains a TOTP secret (extract
    /// `totp_secret`), proves it with a code, and collects recovery codes
    /// (extract `recovery_codes`).
    pub enroll: Flow,

    /// Logs in with the TOTP code; must extract `access_token`, and may
    /// extract `refresh_token`, `expires_at`, `refresh_expires_at`.
    pub login: Flow,

    /// Exchanges the refresh token for new tokens. Omit when the vendor has
    /// no refresh: the session is then renewed by logging in again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Flow>,

    /// Logs in with a recovery code (`recovery_code`) instead of a TOTP code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_login: Option<Flow>,

    /// Turns MFA off for the account (used when an ApiCredential with
    /// `deletionPolicy: Disable` is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable: Option<Flow>,
}

/// Bounds on what one vendor answer may cost the process that reads it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// The largest response body, in bytes, read from the vendor (1 KiB to
    /// 4 MiB; default 1 MiB). A larger answer fails the step with
    /// `VendorResponseTooLarge` without being read further.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 4_194_304))]
    pub max_response_bytes: Option<u64>,
}

impl Limits {
    /// The default cap on a vendor's response body: 1 MiB.
    pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1024 * 1024;
    /// The largest cap a profile may set: 4 MiB (parsed JSON takes up to
    /// ~16 times its text, and the operator's memory is shared).
    pub const MAX_MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;
    /// The smallest cap a profile may set: 1 KiB.
    pub const MIN_MAX_RESPONSE_BYTES: u64 = 1024;

    /// The cap in force, clamped to the allowed range (a profile loaded
    /// from a file skips the API server's schema check).
    pub fn max_response_bytes(&self) -> u64 {
        self.max_response_bytes
            .unwrap_or(Self::DEFAULT_MAX_RESPONSE_BYTES)
            .clamp(Self::MIN_MAX_RESPONSE_BYTES, Self::MAX_MAX_RESPONSE_BYTES)
    }
}

/// Which source decides when an access token expires.
// Each variant's `//` comment is its doc: a `///` doc on a unit variant would change the
// generated CRD schema (schemars turns a documented enum's plain `enum` list into a `oneOf`).
#[allow(missing_docs)]
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum TokenExpiry {
    // An extracted `expires_at`, else a plausible JWT `exp`, else
    // `tokenLifetimeSeconds`.
    #[default]
    FirstFound,
    // The earliest of those that are known.
    Earliest,
    // `tokenLifetimeSeconds` only.
    Configured,
}

/// How an access token is sent to the vendor's API: in `header`, as
/// `<scheme> <token>`, or the bare token when `scheme` is empty.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenPresentation {
    /// The request header. Default `Authorization`.
    #[serde(default = "default_token_header")]
    pub header: String,
    /// The scheme before the token, e.g. `Bearer` (default) or `jwt`; empty
    /// for the bare token (a custom header such as `X-Auth-Token`).
    #[serde(default = "default_token_scheme")]
    pub scheme: String,
}

impl Default for TokenPresentation {
    fn default() -> Self {
        Self {
            header: default_token_header(),
            scheme: default_token_scheme(),
        }
    }
}

fn default_token_header() -> String {
    "Authorization".to_owned()
}

fn default_token_scheme() -> String {
    "Bearer".to_owned()
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// TOTP parameters (RFC 6238).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TotpDefaults {
    /// HMAC algorithm: `SHA1` (default), `SHA256` or `SHA512`.
    #[serde(default)]
    pub algorithm: TotpAlgorithm,
    /// Number of digits of a code, 6 to 8. Default 6.
    #[serde(default = "default_digits")]
    #[schemars(range(min = 6, max = 8))]
    pub digits: u8,
    /// Length of a time step in seconds. Default 30.
    #[serde(default = "default_period")]
    #[schemars(range(min = 1))]
    pub period: u64,
}

impl Default for TotpDefaults {
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::default(),
            digits: default_digits(),
            period: default_period(),
        }
    }
}

fn default_digits() -> u8 {
    6
}

fn default_period() -> u64 {
    30
}

/// HMAC algorithm of a TOTP code.
// Each variant's `//` comment is its doc: a `///` doc on a unit variant would change the
// generated CRD schema (schemars turns a documented enum's plain `enum` list into a `oneOf`).
#[allow(missing_docs)]
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TotpAlgorithm {
    // HMAC-SHA1, what nearly every vendor uses.
    #[default]
    #[serde(rename = "SHA1")]
    Sha1,
    // HMAC-SHA256.
    #[serde(rename = "SHA256")]
    Sha256,
    // HMAC-SHA512.
    #[serde(rename = "SHA512")]
    Sha512,
}

/// One flow: HTTP steps run in order. Values extracted by a step are
/// available to the steps after it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Flow {
    /// The steps, in order.
    #[schemars(length(min = 1))]
    pub steps: Vec<Step>,

    /// `enroll` only: generate the TOTP secret here, before the first step,
    /// instead of taking it from a response. For vendors that accept a
    /// secret the client chooses (send it with `{{ totp_secret }}`); the
    /// secret is then part of the enrollment's checkpoint before any call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_secret: Option<GenerateSecret>,

    /// `enroll` only: running this flow while MFA is on replaces the active
    /// secret once the new one is confirmed, and the old one keeps working
    /// until then (Cryptr's `force_enroll`). The operator re-enrolls such a
    /// vendor by enrolling again; others need a `disable` flow first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaces_active_secret: bool,
}

/// A TOTP secret generated locally from the operating system's random
/// source.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateSecret {
    /// Length of the secret in bytes, 16 to 64. Default 20 (160 bits, as
    /// RFC 4226 recommends).
    #[serde(default = "default_secret_bytes")]
    #[schemars(range(min = 16, max = 64))]
    pub bytes: u8,
}

impl Default for GenerateSecret {
    fn default() -> Self {
        Self {
            bytes: default_secret_bytes(),
        }
    }
}

fn default_secret_bytes() -> u8 {
    20
}

/// One HTTP request and what to make of its response.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// Short name used in logs and error messages. Defaults to the step's
    /// position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// HTTP method: `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: HttpMethod,

    /// Path appended to the credential's base URL (template), for example
    /// `/v2/users/{{ username | urlencode }}/otp`.
    pub path: String,

    /// Query parameters (templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,

    /// Request headers (templates), for example
    /// `Authorization: "Bearer {{ access_token }}"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,

    /// JSON request body. Every string in it is a template; numbers,
    /// booleans and nulls are sent as written. Mutually exclusive with `form`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_json")]
    pub body: Option<serde_json::Value>,

    /// Form request body (`application/x-www-form-urlencoded`), field to
    /// template. Mutually exclusive with `body`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<BTreeMap<String, String>>,

    /// How to read the response status, checked in order; the first rule
    /// that matches decides. When none matches: 2xx is success, 429 and 503
    /// are retried after `Retry-After`, 423 is a lock-out, 502 and 504 are
    /// retried with backoff, anything else fails the step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<ResponseRule>,

    /// Whether sending this request twice is harmless. Set `false` on a
    /// step with a side effect at the vendor (create a secret, enable,
    /// verify): after an answer that leaves its effect unknown (a timeout,
    /// a connection lost after sending, any 5xx) it is not sent again; the
    /// flow fails as "outcome unknown" and is resumed later, where a rule
    /// with outcome `alreadyDone` recognises the vendor's "already done"
    /// answer. Default true.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub safe_to_repeat: bool,

    /// Values to take from a successful response, by name. Well-known
    /// names: `totp_secret` (with `as: base32Secret` or `as: otpauthUri`),
    /// `recovery_codes` (with `as: recoveryCodes`), `access_token`,
    /// `refresh_token`, `expires_at`, `refresh_expires_at`,
    /// `reenroll_required`. Any other name becomes a value for later steps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extract: BTreeMap<String, Extraction>,
}

impl Default for Step {
    fn default() -> Self {
        Self {
            name: None,
            method: HttpMethod::default(),
            path: String::new(),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            body: None,
            form: None,
            responses: Vec::new(),
            safe_to_repeat: true,
            extract: BTreeMap::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// HTTP method of a step.
// Each variant's `//` comment is its doc: a `///` doc on a unit variant would change the
// generated CRD schema (schemars turns a documented enum's plain `enum` list into a `oneOf`).
#[allow(missing_docs)]
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    // GET
    #[default]
    Get,
    // POST
    Post,
    // PUT
    Put,
    // PATCH
    Patch,
    // DELETE
    Delete,
}

/// A rule that classifies a response.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseRule {
    /// HTTP statuses this rule matches. Empty matches every status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(range(min = 100, max = 599)))]
    pub status: Vec<u16>,

    /// Further condition on the JSON response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<BodyMatch>,

    /// What the response means: `success` (extract and go on),
    /// `retryWithTotpHeader` (send the request again with the current TOTP
    /// code in `header`, as Acreto's 424 asks), `codeAlreadyUsed` (wait for
    /// the next time step and send a fresh code), `codeRejected` (the code
    /// was wrong: the stored secret may not be the enrolled one, or the clock
    /// is off), `lockedOut` (wait for `Retry-After`), `fail` (explained by
    /// `message`), `alreadyDone` (the step's effect already happened, e.g.
    /// "already enabled": success, without the values the answer lacks),
    /// `loginRequired` (refresh only: the refresh token is spent or
    /// expired, so log in again).
    pub outcome: Outcome,

    /// For `retryWithTotpHeader`: the header that carries the code
    /// (default `X-OTP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,

    /// For `fail`: an explanation shown to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A condition on the JSON response body.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BodyMatch {
    /// JSON pointer (RFC 6901) into the response body, e.g. `/code`.
    pub pointer: String,
    /// The JSON value expected there, e.g. `16432` or `false`.
    #[schemars(schema_with = "crate::schema::any_json")]
    pub equals: serde_json::Value,
}

/// What a response means.
// Each variant's `//` comment is its doc: a `///` doc on a unit variant would change the
// generated CRD schema (schemars turns a documented enum's plain `enum` list into a `oneOf`).
#[allow(missing_docs)]
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    // The step succeeded; extraction runs.
    #[default]
    Success,
    // Send the same request again with the current TOTP code in `header`
    // (Acreto answers 424 this way).
    RetryWithTotpHeader,
    // The code was already used in this time step: wait for the next step
    // and send a fresh code.
    CodeAlreadyUsed,
    // The code was wrong: the stored TOTP secret may not be the one the
    // vendor knows, or the clock is off.
    CodeRejected,
    // Too many attempts: wait for `Retry-After` before trying again.
    LockedOut,
    // Any other failure, explained by `message`.
    Fail,
    // What the step does is already done at the vendor (e.g. "MFA already
    // enabled", when a step is sent again after a crash): counts as
    // success; extractions the answer lacks are skipped.
    AlreadyDone,
    // refresh only: the refresh token is spent or expired; log in again.
    LoginRequired,
}

/// Where a value comes from in a response, and how to read it. Exactly one
/// of `pointer`, `header` and `value` is set.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("has(self.pointer) ? !(has(self.header) || has(self.value)) : has(self.header) != has(self.value)").message("set exactly one of pointer, header and value"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Extraction {
    /// JSON pointer (RFC 6901) into the response body, e.g.
    /// `/secret/otpauth_url`; the empty string is the whole body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,

    /// Response header to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,

    /// A template to render instead of reading the response, e.g. a fixed
    /// lifetime `"600"` with `as: expiresIn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,

    /// How to interpret the value: `string` (default; numbers and booleans
    /// become text), `base32Secret` (a TOTP secret; case and spaces are
    /// forgiven), `otpauthUri` (an `otpauth://totp/...` URI, or a QR-chart
    /// link whose `chl` parameter holds one; sets secret and TOTP
    /// parameters), `recoveryCodes` (a JSON array of strings or one string
    /// with a code per line), and expiries: `expiresIn` (seconds from now),
    /// `epochSeconds`, `epochMillis`, `rfc3339`, `jwtExp` (the `exp` claim
    /// of a JWT).
    #[serde(default, rename = "as")]
    pub kind: ValueKind,

    /// For `recoveryCodes`: remove whitespace inside each code (a vendor
    /// that shows `"3892 3664"` but accepts `38923664`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strip_spaces: bool,

    /// When true, a missing value is not an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,

    /// A second place to read the value from, used when the first has
    /// nothing or what it has cannot be read as its kind (goaxr: the
    /// `otpauth_url` when it is a real otpauth URI, else the base32
    /// `secret`). When neither can be read, the step fails with both
    /// reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<ExtractionFallback>,
}

/// Where [`Extraction::fallback`] reads. Exactly one of `pointer` and
/// `header` is set.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[x_kube(validation = Rule::new("has(self.pointer) != has(self.header)").message("set exactly one of pointer and header"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtractionFallback {
    /// JSON pointer (RFC 6901) into the response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,

    /// Response header to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,

    /// How to interpret the value (as for the extraction itself).
    #[serde(default, rename = "as")]
    pub kind: ValueKind,
}

/// How to interpret an extracted value.
// Each variant's `//` comment is its doc: a `///` doc on a unit variant would change the
// generated CRD schema (schemars turns a documented enum's plain `enum` list into a `oneOf`).
#[allow(missing_docs)]
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum ValueKind {
    // A string (numbers and booleans are converted to text).
    #[default]
    String,
    // A base32 TOTP secret (case and spaces are forgiven); only for
    // `totp_secret`.
    Base32Secret,
    // An `otpauth://totp/...` URI, or a QR-chart link whose `chl`
    // parameter holds one; sets the secret and TOTP parameters. Only for
    // `totp_secret`.
    OtpauthUri,
    // Recovery codes: a JSON array of strings, or one string with a code
    // per line. Only for `recovery_codes`.
    RecoveryCodes,
    // An expiry given as seconds from now.
    ExpiresIn,
    // An expiry given as a Unix time in seconds.
    EpochSeconds,
    // An expiry given as a Unix time in milliseconds.
    EpochMillis,
    // An expiry given as an RFC 3339 timestamp.
    Rfc3339,
    // A JWT whose `exp` claim is the expiry.
    JwtExp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_profile_gets_rfc_default_totp_parameters() {
        let spec: ProfileSpec =
            serde_saphyr::from_str("enroll: {steps: []}\nlogin: {steps: []}\n").expect("parses");
        assert_eq!(spec.totp, TotpDefaults::default());
        assert_eq!(spec.totp.digits, 6);
        assert_eq!(spec.totp.period, 30);
        assert!(spec.refresh.is_none());
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_saphyr::from_str::<ProfileSpec>(
            "enroll: {steps: []}\nlogin: {steps: [{method: GET, path: /, bdy: {}}]}\n",
        )
        .expect_err("typo must fail");
        assert!(err.to_string().contains("bdy"), "{err}");
    }

    #[test]
    fn step_round_trips_in_camel_case() {
        let yaml = r#"
method: POST
path: /login
body: {code: "{{ totp }}", n: 1}
responses:
  - status: [424]
    outcome: retryWithTotpHeader
    header: X-OTP
extract:
  expires_at: {pointer: /expiry, as: expiresIn}
  recovery_codes: {pointer: /codes, as: recoveryCodes, stripSpaces: true}
"#;
        let step: Step = serde_saphyr::from_str(yaml).expect("parses");
        assert_eq!(step.method, HttpMethod::Post);
        assert_eq!(step.responses[0].outcome, Outcome::RetryWithTotpHeader);
        assert!(step.extract["recovery_codes"].strip_spaces);
        let json = serde_json::to_value(&step).expect("serializes");
        assert_eq!(json["extract"]["expires_at"]["as"], "expiresIn");
        assert_eq!(json["extract"]["recovery_codes"]["stripSpaces"], true);
    }

    // A structural schema has a `type` on every node except where
    // `x-kubernetes-preserve-unknown-fields` says anything goes, and no
    // `oneOf`/`anyOf` with differing types.
    #[test]
    fn schema_is_structural() {
        let schema = schemars::schema_for!(ProfileSpec);
        let value = serde_json::to_value(&schema).expect("schema serializes");
        let text = value.to_string();
        assert!(!text.contains("\"oneOf\""), "no oneOf: {text}");
        assert!(text.contains("x-kubernetes-preserve-unknown-fields"));
    }
}
