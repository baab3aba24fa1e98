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

/// Condition reasons (PascalCase, bounded set: also used as Event reasons
/// and metric labels).
pub mod reasons {
    pub const ISSUED: &str = "Issued";
    pub const RENEWING: &str = "Renewing";
    pub const CA_NOT_FOUND: &str = "ClientCANotFound";
    pub const CA_NOT_READY: &str = "ClientCANotReady";
    pub const GENERATED: &str = "Generated";
    pub const IMPORTED: &str = "Imported";
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    pub const INVALID_SECRET: &str = "InvalidSecret";
    pub const PROFILE_NOT_FOUND: &str = "ProfileNotFound";
    pub const PROFILE_INVALID: &str = "ProfileInvalid";
    pub const PROFILE_ACCEPTED: &str = "ProfileAccepted";
    pub const ENROLLMENT_PENDING: &str = "EnrollmentPending";
    pub const ENROLLMENT_COMPLETE: &str = "EnrollmentComplete";
    pub const VENDOR_REJECTED: &str = "VendorRejected";
    pub const VENDOR_UNREACHABLE: &str = "VendorUnreachable";
    pub const RECONCILED: &str = "Reconciled";
}
