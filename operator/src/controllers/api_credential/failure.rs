//! Why enrollment did not finish, as condition reasons a person can act on.

use std::time::Duration;

use otpilot_api::conditions::reasons;
use otpilot_profile::{CheckpointRecordError, FlowError, FlowErrorKind};

use super::secrets::SecretsError;
use otpilot_api::conditions::reasons as local;

#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    #[error("{0}")]
    Flow(#[from] FlowError),
    #[error("failed to set up the HTTPS client for the vendor: {0}")]
    Client(#[from] otpilot_profile::ClientError),
    #[error(
        "failed to resume the interrupted enrollment: {source}. The vendor may already know the \
         TOTP secret stored in Secret {recovery} (key enrollment-checkpoint). Restore the profile \
         the enrollment started with, or reset MFA for the account at the vendor and then delete \
         that key so that enrollment starts again"
    )]
    Checkpoint {
        recovery: String,
        #[source]
        source: CheckpointRecordError,
    },
    #[error(
        "failed to read Secret {runtime}: {problem}. It may hold an enrolled TOTP secret, so no new \
         enrollment is started: repair the Secret, or reset MFA for the account at the vendor and \
         delete the Secret"
    )]
    RuntimeUnreadable { runtime: String, problem: String },
    #[error(
        "the vendor refuses codes from the TOTP secret in Secret {runtime} ({rejections} fresh \
         time steps, with the vendor's clock known). {what}"
    )]
    StoredSecretRefused {
        runtime: String,
        rejections: u32,
        /// What was done about it and what a person must do now.
        what: String,
    },
    #[error(
        "the vendor says MFA is already on for this account, and the TOTP secret of this \
         enrollment does not log in: the account was enrolled before (by another tool, or the \
         runtime Secret was deleted). No new enrollment is attempted. Log in with a recovery \
         code and reset MFA for the account at the vendor, then delete Secret {recovery} so that \
         enrollment starts again"
    )]
    AlreadyEnrolledAtVendor { recovery: String },
    #[error(
        "the vendor refused codes from the TOTP secret in Secret {runtime}, but its clock is \
         unknown (its answers carry no usable Date header), so it may be a clock problem: no \
         recovery code is spent and the secret is not tried again until the Secret changes or \
         the operator restarts. Check the node's clock (NTP); if the secret is wrong, annotate \
         the ApiCredential otpilot.dev/reenroll where its profile can re-enroll"
    )]
    SecretDoubted { runtime: String },
    #[error(
        "the vendor refuses the stored TOTP secret, and the recovery codes in Secret {recovery} \
         were issued by another vendor: {why}. No recovery code is spent and nothing is enrolled \
         at the vendor named now. Put spec.baseUrl and spec.serverCa back, or create a new \
         ApiCredential for the new vendor"
    )]
    RecoveryVendorMismatch { recovery: String, why: String },
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

impl EnrollmentError {
    /// The condition reason (bounded).
    pub fn reason(&self) -> &'static str {
        match self {
            EnrollmentError::Flow(e) => flow_reason(&e.kind),
            EnrollmentError::Client(_) => reasons::INVALID_SECRET,
            EnrollmentError::Checkpoint { source, .. } => match source {
                CheckpointRecordError::ProfileChanged { .. } => reasons::PROFILE_CHANGED,
                _ => local::CHECKPOINT_UNREADABLE,
            },
            EnrollmentError::RuntimeUnreadable { .. } => reasons::INVALID_SECRET,
            EnrollmentError::Secrets(_) => local::KUBERNETES_ERROR,
            EnrollmentError::StoredSecretRefused { .. }
            | EnrollmentError::AlreadyEnrolledAtVendor { .. } => reasons::REENROLL_REQUIRED,
            EnrollmentError::SecretDoubted { .. } => reasons::TOTP_REJECTED,
            EnrollmentError::RecoveryVendorMismatch { .. } => reasons::RECOVERY_VENDOR_MISMATCH,
        }
    }

    /// [`Self::reason`], refined with the profile: a refusal of the
    /// password, the API key or the caller's IP address told apart (see
    /// [`refusal_reason`]).
    pub fn reason_with(&self, profile: &otpilot_profile::Profile) -> &'static str {
        let EnrollmentError::Flow(FlowError {
            flow,
            step,
            kind: FlowErrorKind::Status { status, detail },
        }) = self
        else {
            return self.reason();
        };
        let refs = step
            .as_ref()
            .and_then(|s| profile.step_info(*flow).get(s.index))
            .map(|i| &i.refs);
        let uses = |name: &str| refs.is_some_and(|r| r.contains(name));
        refusal_reason(
            *status,
            detail.as_deref(),
            uses("password"),
            uses("api_key"),
        )
    }

    /// What `Retry-After` asked for, if the vendor said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            EnrollmentError::Flow(FlowError {
                kind: FlowErrorKind::LockedOut { retry_after, .. },
                ..
            }) => *retry_after,
            _ => None,
        }
    }

    /// Whether retrying without a change of input can help.
    pub fn needs_a_person(&self) -> bool {
        matches!(
            self,
            EnrollmentError::Checkpoint { .. }
                | EnrollmentError::RuntimeUnreadable { .. }
                | EnrollmentError::StoredSecretRefused { .. }
                | EnrollmentError::AlreadyEnrolledAtVendor { .. }
                | EnrollmentError::SecretDoubted { .. }
                | EnrollmentError::RecoveryVendorMismatch { .. }
        )
    }
}

/// Whether a transport failure is the vendor's TLS stack refusing our
/// client certificate (pure): the alerts a server sends for an unknown
/// issuer, a bad or missing certificate.
pub fn is_client_certificate_refusal(message: &str) -> bool {
    const ALERTS: &[&str] = &[
        "alert: UnknownCA",
        "alert: BadCertificate",
        "alert: CertificateRequired",
        "alert: CertificateUnknown",
        "alert: UnsupportedCertificate",
        "alert: CertificateExpired",
        "alert: CertificateRevoked",
    ];
    ALERTS.iter().any(|a| message.contains(a))
}

/// Words with which vendors (or the proxy in front of them) refuse a
/// caller's address. No vendor document shows its answer (AUDD's only says
/// the IP must be whitelisted first), so this is read from the text.
const IP_REFUSAL_WORDS: &[&str] = &[
    "whitelist",
    "allowlist",
    "allow-list",
    "allow list",
    "ip address",
    "ip not allowed",
    "ip_not_allowed",
    "not allowed from",
];

/// Which input an HTTP refusal is about (pure): the caller's IP address
/// when the answer says so; for 401/403 the password or the API key when
/// the refused step sends only one of them, or when the answer names one;
/// otherwise the credentials as a whole.
pub fn refusal_reason(
    status: u16,
    detail: Option<&str>,
    uses_password: bool,
    uses_api_key: bool,
) -> &'static str {
    let text = detail.unwrap_or_default().to_ascii_lowercase();
    let says = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if matches!(status, 401 | 403) && says(IP_REFUSAL_WORDS) {
        return reasons::IP_NOT_ALLOWED;
    }
    if !matches!(status, 401 | 403) {
        return reasons::VENDOR_REJECTED;
    }
    let key = says(&[
        "api key",
        "api_key",
        "apikey",
        "client_secret",
        "invalid_client",
    ]);
    let password = says(&["password", "invalid_credentials"]);
    match (uses_password, uses_api_key) {
        (true, false) => reasons::WRONG_PASSWORD,
        (false, true) => reasons::API_KEY_REJECTED,
        (true, true) if key && !password => reasons::API_KEY_REJECTED,
        (true, true) if password && !key => reasons::WRONG_PASSWORD,
        _ => local::CREDENTIALS_REJECTED,
    }
}

/// Whether `reason` says the vendor refused an input only a person can fix.
pub fn refused_input(reason: &str) -> bool {
    [
        reasons::WRONG_PASSWORD,
        reasons::API_KEY_REJECTED,
        reasons::IP_NOT_ALLOWED,
        local::CREDENTIALS_REJECTED,
    ]
    .contains(&reason)
}

/// The condition message: the failure, plus what to do where the reason
/// alone does not say it.
pub fn message(error: &EnrollmentError, reason: &str) -> String {
    let text = error.to_string();
    let fix = match reason {
        reasons::VENDOR_UNREACHABLE if says_timed_out(&text) => {
            "The vendor did not answer within the operator's vendor timeout: check that it is \
             up and reachable; if it is only slow, raise the operator's --vendor-timeout-seconds \
             (OTPILOT_VENDOR_TIMEOUT_SECONDS)"
        }
        reasons::CLIENT_CERTIFICATE_REJECTED => {
            "The vendor refused the client certificate in the TLS handshake: register the \
             ClientCA's certificate (its status.certificate) with the vendor"
        }
        reasons::WRONG_PASSWORD => {
            "The vendor refused the username or password: fix the password in the Secret \
             spec.passwordSecretRef names (or spec.username)"
        }
        reasons::API_KEY_REJECTED => {
            "The vendor refused the API key: fix it in the Secret spec.apiKeySecretRef names"
        }
        reasons::IP_NOT_ALLOWED => {
            "The vendor refuses the address this cluster connects from: ask the vendor to \
             allow-list the egress IP addresses of the operator and the sidecars (the nodes' \
             or the NAT gateway's)"
        }
        _ => return text,
    };
    format!("{text}. {fix}")
}

/// Whether a failure to reach the vendor was a call that got no answer in
/// time (pure): the transport's own words, after retries or after sending.
pub fn says_timed_out(message: &str) -> bool {
    message.contains("timed out")
}

/// The condition reason for a flow failure (pure).
pub fn flow_reason(kind: &FlowErrorKind) -> &'static str {
    match kind {
        FlowErrorKind::Transport { message, .. } if is_client_certificate_refusal(message) => {
            reasons::CLIENT_CERTIFICATE_REJECTED
        }
        // An ambiguous answer to a step not safe to repeat: the next pass
        // resumes from the checkpoint and resolves it by looking.
        FlowErrorKind::Transport { .. }
        | FlowErrorKind::Unavailable { .. }
        | FlowErrorKind::OutcomeUnknown { .. } => reasons::VENDOR_UNREACHABLE,
        FlowErrorKind::LoginRequired { .. } => reasons::VENDOR_REJECTED,
        FlowErrorKind::ResponseTooLarge { .. } => reasons::VENDOR_RESPONSE_TOO_LARGE,
        FlowErrorKind::Status {
            status: 401 | 403, ..
        } => local::CREDENTIALS_REJECTED,
        FlowErrorKind::Status { .. } => reasons::VENDOR_REJECTED,
        FlowErrorKind::CodeRejected { .. }
        | FlowErrorKind::TotpHeaderRefused { .. }
        | FlowErrorKind::CodeAlreadyUsed { .. } => reasons::TOTP_REJECTED,
        FlowErrorKind::LockedOut { .. } => reasons::LOCKED_OUT,
        FlowErrorKind::NotDefined => local::FLOW_MISSING,
        FlowErrorKind::MissingInput { .. } => reasons::MISSING_INPUT,
        FlowErrorKind::InvalidTotpOverrides(_) => reasons::INVALID_SECRET,
        FlowErrorKind::NoTotpSecret
        | FlowErrorKind::Render { .. }
        | FlowErrorKind::InvalidRequest { .. } => reasons::PROFILE_INVALID,
        FlowErrorKind::Extract { .. }
        | FlowErrorKind::UnknownExpiry
        | FlowErrorKind::MissingResult(_) => reasons::VENDOR_INVALID_RESPONSE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_alerts_about_the_client_certificate_are_told_apart_from_outages() {
        let cases = [
            ("connection error: received fatal alert: UnknownCA", true),
            ("received fatal alert: CertificateRequired", true),
            ("received fatal alert: BadCertificate", true),
            ("tcp connect error: Connection refused", false),
            ("invalid peer certificate: UnknownIssuer", false),
        ];
        for (message, want) in cases {
            assert_eq!(is_client_certificate_refusal(message), want, "{message}");
        }
    }

    #[test]
    fn timeouts_are_told_apart_from_other_outages() {
        let cases = [
            (
                "could not reach the vendor after 4 attempt(s): timed out: operation timed out",
                true,
            ),
            (
                "whether the step took effect is unknown (timed out after sending)",
                true,
            ),
            (
                "could not reach the vendor after 4 attempt(s): could not connect: refused",
                false,
            ),
            ("the vendor answered HTTP 503: error: unavailable", false),
        ];
        for (message, want) in cases {
            assert_eq!(says_timed_out(message), want, "{message}");
        }
    }

    #[test]
    fn refusals_name_the_input_to_fix() {
        let cases = [
            // AUDD sends both: the answer says which.
            (
                401,
                Some("invalid_api_key: the API key is not valid"),
                true,
                true,
                "ApiKeyRejected",
            ),
            (
                401,
                Some("invalid_credentials: username or password is incorrect"),
                true,
                true,
                "WrongPassword",
            ),
            (401, None, true, true, "CredentialsRejected"),
            // A step that sends only one of them.
            (401, None, true, false, "WrongPassword"),
            (401, Some("invalid_client"), false, true, "ApiKeyRejected"),
            (403, None, false, false, "CredentialsRejected"),
            // The caller's address, whatever the step sends.
            (
                403,
                Some("Forbidden: your IP address is not whitelisted"),
                true,
                true,
                "IpNotAllowed",
            ),
            (401, Some("ip_not_allowed"), false, true, "IpNotAllowed"),
            (400, Some("whitelist"), true, true, "VendorRejected"),
        ];
        for (status, detail, password, key, want) in cases {
            assert_eq!(
                refusal_reason(status, detail, password, key),
                want,
                "{status} {detail:?} {password} {key}"
            );
        }
    }

    #[test]
    fn flow_failures_map_to_actionable_reasons() {
        let cases = [
            (
                FlowErrorKind::Transport {
                    attempts: 3,
                    message: "refused".into(),
                },
                "VendorUnreachable",
            ),
            (
                FlowErrorKind::Status {
                    status: 401,
                    detail: None,
                },
                "CredentialsRejected",
            ),
            (
                FlowErrorKind::Status {
                    status: 400,
                    detail: None,
                },
                "VendorRejected",
            ),
            (
                FlowErrorKind::LockedOut {
                    status: 429,
                    retry_after: None,
                },
                "LockedOut",
            ),
            (FlowErrorKind::CodeRejected { status: 401 }, "TotpRejected"),
            (FlowErrorKind::NotDefined, "ProfileFlowMissing"),
            (FlowErrorKind::UnknownExpiry, "VendorInvalidResponse"),
            (
                FlowErrorKind::ResponseTooLarge {
                    status: 200,
                    limit_bytes: 1 << 20,
                },
                "VendorResponseTooLarge",
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(flow_reason(&kind), want, "{kind:?}");
        }
    }
}
