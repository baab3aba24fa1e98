//! Condition types and reasons, as constants so the operator, tests and docs
//! agree on the exact strings users see in `kubectl describe`.

/// The client certificate is issued, valid and stored in the runtime Secret.
pub const CERTIFICATE_READY: &str = "CertificateReady";
/// TOTP is enrolled at the vendor and the seed is stored.
pub const ENROLLED: &str = "Enrolled";
/// Everything a sidecar needs is in place.
pub const READY: &str = "Ready";
/// A `ClusterMfaProfile` parsed and passed load-time validation.
pub const VALID: &str = "Valid";
/// A `ClientCA`'s certificate is close to expiry (True): vendors must be
/// given its successor.
pub const EXPIRING: &str = "Expiring";

/// Every condition type, for tests and bounded metric labels.
pub const ALL_TYPES: &[&str] = &[CERTIFICATE_READY, ENROLLED, READY, VALID, EXPIRING];

/// Condition reasons (PascalCase, bounded set: also used as Event reasons
/// and metric labels).
pub mod reasons {
    // Certificates and CAs.
    pub const ISSUED: &str = "Issued";
    pub const RENEWING: &str = "Renewing";
    /// Issuing or signing a certificate failed.
    pub const ISSUE_FAILED: &str = "IssueFailed";
    pub const CA_NOT_FOUND: &str = "ClientCANotFound";
    pub const CA_NOT_READY: &str = "ClientCANotReady";
    /// The imported CA was refused (not a CA, wrong key, expired, ...).
    pub const CA_INVALID: &str = "ClientCAInvalid";
    pub const GENERATED: &str = "Generated";
    pub const IMPORTED: &str = "Imported";
    /// The ClientCA does not allow the ApiCredential's namespace.
    pub const NAMESPACE_NOT_ALLOWED: &str = "NamespaceNotAllowed";
    /// A certificate (client or CA) is within its warning window.
    pub const CERTIFICATE_EXPIRING: &str = "CertificateExpiring";
    pub const CERTIFICATE_EXPIRED: &str = "CertificateExpired";
    /// The vendor refused the client certificate in the TLS handshake:
    /// usually the ClientCA is not registered with the vendor.
    pub const CLIENT_CERTIFICATE_REJECTED: &str = "ClientCertificateRejected";

    // Inputs.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// The Secret exists but lacks the referenced key.
    pub const SECRET_KEY_MISSING: &str = "SecretKeyMissing";
    pub const INVALID_SECRET: &str = "InvalidSecret";
    /// The profile needs a value the ApiCredential does not give.
    pub const MISSING_INPUT: &str = "MissingInput";
    pub const PROFILE_NOT_FOUND: &str = "ProfileNotFound";
    pub const PROFILE_INVALID: &str = "ProfileInvalid";
    pub const PROFILE_ACCEPTED: &str = "ProfileAccepted";
    /// The profile changed while an enrollment was pending.
    pub const PROFILE_CHANGED: &str = "ProfileChanged";

    // Enrollment and the vendor.
    pub const ENROLLMENT_PENDING: &str = "EnrollmentPending";
    pub const ENROLLMENT_COMPLETE: &str = "EnrollmentComplete";
    /// An enrollment stopped part-way (e.g. the operator restarted) and is
    /// being resumed from its checkpoint.
    pub const ENROLLMENT_INTERRUPTED: &str = "EnrollmentInterrupted";
    pub const REENROLL_REQUIRED: &str = "ReenrollRequired";
    pub const WRONG_PASSWORD: &str = "WrongPassword";
    pub const API_KEY_REJECTED: &str = "ApiKeyRejected";
    /// The vendor refused the TOTP codes made from the stored secret.
    pub const TOTP_REJECTED: &str = "TotpRejected";
    /// The vendor refused the caller's IP address (allow-list).
    pub const IP_NOT_ALLOWED: &str = "IpNotAllowed";
    pub const LOCKED_OUT: &str = "LockedOut";
    pub const VENDOR_REJECTED: &str = "VendorRejected";
    pub const VENDOR_UNREACHABLE: &str = "VendorUnreachable";
    /// The vendor answered something the profile cannot read.
    pub const VENDOR_INVALID_RESPONSE: &str = "VendorInvalidResponse";
    /// The vendor's clock and ours differ by more than the threshold.
    pub const CLOCK_SKEW: &str = "ClockSkew";
    pub const RECOVERY_CODES_LOW: &str = "RecoveryCodesLow";
    pub const RECOVERY_CODES_EXHAUSTED: &str = "RecoveryCodesExhausted";
    /// The operator logged in with a recovery code.
    pub const RECOVERED_WITH_RECOVERY_CODE: &str = "RecoveredWithRecoveryCode";

    // Deletion.
    /// deletionPolicy Disable: MFA is being turned off at the vendor.
    pub const DISABLING: &str = "Disabling";
    pub const DISABLE_FAILED: &str = "DisableFailed";

    pub const RECONCILED: &str = "Reconciled";

    // Also used by the operator (formerly its own list).
    /// The ClusterMfaProfile has a built-in profile's name; ApiCredentials use the built-in.
    pub const SHADOWS_BUILTIN: &str = "ShadowsBuiltinProfile";
    /// The credential uses no client certificate.
    pub const CERTIFICATE_NOT_REQUIRED: &str = "NotRequired";
    /// The server CA ConfigMap is missing.
    pub const CONFIG_MAP_NOT_FOUND: &str = "ConfigMapNotFound";
    /// The vendor refused the password, API key or account, and its answer
    /// does not say which.
    pub const CREDENTIALS_REJECTED: &str = "CredentialsRejected";
    /// The stored enrollment checkpoint cannot be read.
    pub const CHECKPOINT_UNREADABLE: &str = "CheckpointUnreadable";
    /// A Kubernetes API call failed.
    pub const KUBERNETES_ERROR: &str = "KubernetesError";
    /// The profile has no flow the credential needs.
    pub const FLOW_MISSING: &str = "ProfileFlowMissing";

    // Event reasons of the renew / re-enroll requests.
    /// A new client certificate was issued on request.
    pub const CERTIFICATE_RENEWED: &str = "CertificateRenewed";
    /// A renew request for a credential without a client certificate.
    pub const RENEW_NOT_APPLICABLE: &str = "RenewNotApplicable";
    /// The vendor's profile gives no way to turn MFA over to a new secret.
    pub const REENROLL_UNSUPPORTED: &str = "ReenrollUnsupported";
    /// A re-enroll request for a credential that is not enrolled yet.
    pub const REENROLL_NOT_NEEDED: &str = "ReenrollNotNeeded";
    /// MFA was turned over to a new TOTP secret on request.
    pub const REENROLLED: &str = "Reenrolled";

    /// Every reason, for tests and bounded metric labels.
    pub const ALL: &[&str] = &[
        ISSUED,
        RENEWING,
        ISSUE_FAILED,
        CA_NOT_FOUND,
        CA_NOT_READY,
        CA_INVALID,
        GENERATED,
        IMPORTED,
        NAMESPACE_NOT_ALLOWED,
        CERTIFICATE_EXPIRING,
        CERTIFICATE_EXPIRED,
        CLIENT_CERTIFICATE_REJECTED,
        SECRET_NOT_FOUND,
        SECRET_KEY_MISSING,
        INVALID_SECRET,
        MISSING_INPUT,
        PROFILE_NOT_FOUND,
        PROFILE_INVALID,
        PROFILE_ACCEPTED,
        PROFILE_CHANGED,
        ENROLLMENT_PENDING,
        ENROLLMENT_COMPLETE,
        ENROLLMENT_INTERRUPTED,
        REENROLL_REQUIRED,
        WRONG_PASSWORD,
        API_KEY_REJECTED,
        TOTP_REJECTED,
        IP_NOT_ALLOWED,
        LOCKED_OUT,
        VENDOR_REJECTED,
        VENDOR_UNREACHABLE,
        VENDOR_INVALID_RESPONSE,
        CLOCK_SKEW,
        RECOVERY_CODES_LOW,
        RECOVERY_CODES_EXHAUSTED,
        RECOVERED_WITH_RECOVERY_CODE,
        DISABLING,
        DISABLE_FAILED,
        RECONCILED,
        SHADOWS_BUILTIN,
        CERTIFICATE_NOT_REQUIRED,
        CONFIG_MAP_NOT_FOUND,
        CREDENTIALS_REJECTED,
        CHECKPOINT_UNREADABLE,
        KUBERNETES_ERROR,
        FLOW_MISSING,
        CERTIFICATE_RENEWED,
        RENEW_NOT_APPLICABLE,
        REENROLL_UNSUPPORTED,
        REENROLL_NOT_NEEDED,
        REENROLLED,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    // metav1.Condition's own rules: reason `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`,
    // at most 1024 characters; type a qualified name of at most 316. Ours are
    // stricter: PascalCase letters and digits, so they read well as Event
    // reasons and metric labels.
    fn is_pascal_case(text: &str) -> bool {
        text.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && text.chars().all(|c| c.is_ascii_alphanumeric())
            && text.len() <= 64
    }

    #[test]
    fn reasons_and_types_are_unique_pascal_case_words() {
        for list in [reasons::ALL, ALL_TYPES] {
            let mut seen = std::collections::BTreeSet::new();
            for item in list {
                assert!(is_pascal_case(item), "{item}");
                assert!(seen.insert(*item), "{item} is listed twice");
            }
        }
    }

    #[test]
    fn every_reason_constant_is_in_the_list() {
        let source = include_str!("conditions.rs");
        let module = &source[source.find("pub mod reasons").expect("module")..];
        let declared = module
            .lines()
            .filter(|line| line.trim_start().starts_with("pub const ") && line.contains(": &str ="))
            .count();
        assert_eq!(
            declared,
            reasons::ALL.len(),
            "add the new reason to reasons::ALL"
        );
    }
}
