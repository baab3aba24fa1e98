//! What the webhook answers.

use json_patch::PatchOperation;

/// The outcome of [`crate::mutate`].
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Admit the Pod with these patch operations (none: untouched), and show
    /// these warnings to whoever created it.
    Allow {
        /// JSON patch operations on the Pod.
        patch: Vec<PatchOperation>,
        /// Admission warnings for the Pod's creator.
        warnings: Vec<String>,
    },
    /// Refuse the Pod. The message names what to fix; it never holds secret
    /// material (only names and annotation values).
    Deny {
        /// Why, for the refusal Event.
        reason: DenyReason,
        /// What to fix.
        message: String,
    },
}

impl Decision {
    /// Admit the Pod unchanged.
    pub fn untouched() -> Self {
        Decision::Allow {
            patch: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn deny(reason: DenyReason, message: impl Into<String>) -> Self {
        Decision::Deny {
            reason,
            message: message.into(),
        }
    }
}

/// Why a Pod was refused: a bounded set, for metric labels and Event reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// An `otpilot.dev/*` annotation has a value that cannot be used.
    InvalidAnnotation,
    /// The annotation (or the looked-up credential) points at another namespace.
    CrossNamespace,
    /// No ApiCredential of that name in the Pod's namespace.
    CredentialNotFound,
    /// The ApiCredential exists but is not Ready (and the installation refuses those).
    CredentialNotReady,
    /// The ApiCredential names a Secret that must never be mounted into a Pod.
    ForbiddenSecret,
    /// The Pod already uses a name, port or path the sidecar needs.
    Conflict,
    /// The Pod's settings would expose the sidecar's token (hostNetwork),
    /// its memory and files (hostPID), or cannot run it (a non-Linux Pod).
    UnsafePod,
    /// The credential could not be looked up (API server error).
    LookupFailed,
    /// The admission request could not be read.
    InvalidRequest,
}

impl DenyReason {
    /// PascalCase name, used as Event reason and metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::InvalidAnnotation => "InvalidAnnotation",
            DenyReason::CrossNamespace => "CrossNamespace",
            DenyReason::CredentialNotFound => "CredentialNotFound",
            DenyReason::CredentialNotReady => "CredentialNotReady",
            DenyReason::ForbiddenSecret => "ForbiddenSecret",
            DenyReason::Conflict => "Conflict",
            DenyReason::UnsafePod => "UnsafePod",
            DenyReason::LookupFailed => "LookupFailed",
            DenyReason::InvalidRequest => "InvalidRequest",
        }
    }
}
