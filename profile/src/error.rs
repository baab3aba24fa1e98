//! Errors of loading a profile and of running a flow. None of them holds a
//! secret value: they name values, never show them.

use std::fmt;
use std::time::Duration;

pub use crate::flow_kind::FlowKind;

/// One problem found in a profile: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path, e.g. `login.steps[1].body.code`.
    pub path: String,
    /// What is wrong, e.g. `undefined value 'otp'`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A profile that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The YAML does not parse or does not fit the format.
    #[error("{origin}:{line}:{column}: {path}{sep}{message}", sep = if path.is_empty() { "" } else { ": " })]
    Parse {
        /// File name or other origin.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Field path where deserialisation stopped (may be empty).
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The profile parses but is inconsistent.
    #[error("{origin}: {}", join(problems))]
    Invalid {
        /// File name or resource name.
        origin: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

impl LoadError {
    /// Whether a problem is a template over the engine's rendering bounds
    /// (fuel, output size, refused constructs).
    pub fn is_template_too_expensive(&self) -> bool {
        match self {
            LoadError::Invalid { problems, .. } => problems
                .iter()
                .any(|p| p.message.starts_with(crate::template::TOO_EXPENSIVE)),
            LoadError::Parse { .. } => false,
        }
    }
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Which step of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRef {
    /// 0-based index, as in field paths.
    pub index: usize,
    /// The step's name, if it has one.
    pub name: Option<String>,
}

impl fmt::Display for StepRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "steps[{}] '{name}'", self.index),
            None => write!(f, "steps[{}]", self.index),
        }
    }
}

/// A flow that failed: which flow, which step, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{flow} {}{kind}", step.as_ref().map(|s| format!("{s}: ")).unwrap_or_else(|| "flow: ".into()))]
pub struct FlowError {
    /// The flow.
    pub flow: FlowKind,
    /// The step, when the failure belongs to one.
    pub step: Option<StepRef>,
    /// Why.
    pub kind: FlowErrorKind,
}

impl FlowError {
    /// A short, bounded category for metrics and event reasons.
    pub fn category(&self) -> &'static str {
        self.kind.category()
    }
}

/// Why a flow failed, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowErrorKind {
    /// The profile lacks the flow.
    #[error("the profile has no such flow")]
    NotDefined,
    /// An input the step refers to was not given.
    #[error("needs the value '{name}', which was not provided{hint}")]
    MissingInput {
        /// The value's name.
        name: String,
        /// What to set.
        hint: String,
    },
    /// The TOTP overrides given cannot be used.
    #[error("the TOTP overrides (spec.totp) are not usable: {0}")]
    InvalidTotpOverrides(crate::totp::TotpError),
    /// A code is needed but no TOTP secret is known.
    #[error("needs a TOTP code, but no TOTP secret is known: enroll first, or provide the secret")]
    NoTotpSecret,
    /// A template failed to render.
    #[error("could not render {field}: {message}")]
    Render {
        /// Field path.
        field: String,
        /// Why (scrubbed of secrets).
        message: String,
    },
    /// A rendered header or URL is not valid.
    #[error("the rendered {field} is not valid: {message}")]
    InvalidRequest {
        /// Field path.
        field: String,
        /// Why.
        message: String,
    },
    /// The vendor could not be reached.
    #[error("could not reach the vendor after {attempts} attempt(s): {message}")]
    Transport {
        /// Attempts made.
        attempts: u32,
        /// Why (scrubbed, without URL).
        message: String,
    },
    /// The vendor answered with a status that means failure.
    #[error("the vendor answered HTTP {status}{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        /// HTTP status.
        status: u16,
        /// The profile's explanation or an excerpt of the body (scrubbed).
        detail: Option<String>,
    },
    /// The vendor said the code was wrong.
    #[error(
        "the vendor rejected the code (HTTP {status}): the stored TOTP secret may not be the one \
         the vendor has enrolled, a recovery code may be spent, or this machine's clock may be off"
    )]
    CodeRejected {
        /// HTTP status.
        status: u16,
    },
    /// The vendor kept saying the code was already used.
    #[error(
        "the vendor refused {tries} fresh code(s) as already used: another client may be logging \
         in with the same TOTP secret (share one session between replicas), or, where the vendor \
         does not tell used codes from wrong ones, the stored secret is not the enrolled one"
    )]
    CodeAlreadyUsed {
        /// Codes tried.
        tries: u32,
    },
    /// The vendor asked for the code in a header and refused it.
    #[error(
        "the vendor asked for the TOTP code in header {header} and refused it again (HTTP {status}): \
         the stored TOTP secret may not be the enrolled one"
    )]
    TotpHeaderRefused {
        /// Header name.
        header: String,
        /// HTTP status.
        status: u16,
    },
    /// Locked out or rate-limited for longer than the engine waits.
    #[error("the vendor has locked the account out or is rate-limiting it (HTTP {status}){}",
        retry_after.map(|d| format!("; try again in {} s", d.as_secs())).unwrap_or_default())]
    LockedOut {
        /// HTTP status.
        status: u16,
        /// What `Retry-After` said.
        retry_after: Option<Duration>,
    },
    /// The vendor kept answering that it is unavailable (502, 503, 504).
    #[error("the vendor was unavailable after {attempts} attempt(s) (last answer HTTP {status}){}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Unavailable {
        /// Requests made.
        attempts: u32,
        /// The last HTTP status.
        status: u16,
        /// The vendor's explanation (scrubbed).
        detail: Option<String>,
    },
    /// A step that is not safe to repeat failed in a way that leaves its
    /// effect at the vendor unknown; it was not sent again.
    #[error(
        "whether the step took effect at the vendor is unknown ({what}); it is not safe to \
         repeat, so it was not sent again: resume the flow from its checkpoint, where an \
         answer matching an alreadyDone rule counts as done"
    )]
    OutcomeUnknown {
        /// What happened, e.g. `HTTP 504` or `timed out` (scrubbed).
        what: String,
    },
    /// The vendor refused the refresh token (spent, expired or revoked).
    #[error(
        "the vendor refused the refresh token (HTTP {status}{}): it is spent or expired; log in again",
        detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    LoginRequired {
        /// HTTP status.
        status: u16,
        /// The vendor's explanation (scrubbed).
        detail: Option<String>,
    },
    /// The vendor's answer is larger than the profile allows; the rest of
    /// it was not read.
    #[error(
        "the vendor's answer (HTTP {status}) is larger than {limit_bytes} bytes, so it was not \
         read: check that spec.baseUrl points at the vendor's API, or raise the profile's \
         limits.maxResponseBytes if the vendor really answers that much"
    )]
    ResponseTooLarge {
        /// HTTP status of the answer.
        status: u16,
        /// The cap in force.
        limit_bytes: u64,
    },
    /// A value could not be extracted.
    #[error("could not read '{name}' from the response: {reason}")]
    Extract {
        /// The extraction's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The session's expiry is unknown.
    #[error(
        "cannot tell when the access token expires: extract expires_at, or set \
         tokenLifetimeSeconds in the profile"
    )]
    UnknownExpiry,
    /// The flow ended without a required result.
    #[error("the flow ended without extracting '{0}'")]
    MissingResult(String),
}

impl FlowErrorKind {
    /// A short, bounded category for metrics and event reasons.
    pub fn category(&self) -> &'static str {
        match self {
            FlowErrorKind::NotDefined => "FlowNotDefined",
            FlowErrorKind::MissingInput { .. } => "MissingInput",
            FlowErrorKind::NoTotpSecret => "NoTotpSecret",
            FlowErrorKind::InvalidTotpOverrides(_) => "InvalidInput",
            FlowErrorKind::Render { .. } | FlowErrorKind::InvalidRequest { .. } => "ProfileError",
            FlowErrorKind::Transport { .. } | FlowErrorKind::Unavailable { .. } => {
                "VendorUnreachable"
            }
            FlowErrorKind::Status { .. } => "VendorError",
            FlowErrorKind::CodeRejected { .. } | FlowErrorKind::TotpHeaderRefused { .. } => {
                "CodeRejected"
            }
            FlowErrorKind::CodeAlreadyUsed { .. } => "CodeAlreadyUsed",
            FlowErrorKind::LockedOut { .. } => "LockedOut",
            FlowErrorKind::OutcomeUnknown { .. } => "OutcomeUnknown",
            FlowErrorKind::LoginRequired { .. } => "LoginRequired",
            FlowErrorKind::ResponseTooLarge { .. } => "VendorResponseTooLarge",
            FlowErrorKind::Extract { .. }
            | FlowErrorKind::UnknownExpiry
            | FlowErrorKind::MissingResult(_) => "UnexpectedResponse",
        }
    }
}

/// The HTTP client could not be built from its settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// A PEM input is unusable.
    #[error("the {what} is not usable: {reason}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// rustls or reqwest refused the configuration.
    #[error("failed to build the HTTPS client: {0}")]
    Build(String),
    /// The proxy setting is unusable.
    #[error("the egress proxy is not usable: {0}")]
    Proxy(String),
    /// The base URL is unusable.
    #[error("the base URL is not usable: {0}")]
    BaseUrl(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_error_names_flow_and_step() {
        let err = FlowError {
            flow: FlowKind::Login,
            step: Some(StepRef {
                index: 1,
                name: Some("verify".into()),
            }),
            kind: FlowErrorKind::CodeRejected { status: 421 },
        };
        let text = err.to_string();
        assert!(
            text.starts_with("login steps[1] 'verify': the vendor rejected the code (HTTP 421)"),
            "{text}"
        );
        assert_eq!(err.category(), "CodeRejected");
    }

    #[test]
    fn parse_error_shows_file_line_and_path() {
        let err = LoadError::Parse {
            origin: "acme.yaml".into(),
            line: 7,
            column: 3,
            path: "login.steps[0].method".into(),
            message: "unknown variant `FETCH`".into(),
        };
        assert_eq!(
            err.to_string(),
            "acme.yaml:7:3: login.steps[0].method: unknown variant `FETCH`"
        );
    }
}
