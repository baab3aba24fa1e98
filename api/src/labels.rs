//! Labels, annotations and finalizers otpilot puts on the objects it owns.
//! Constants, so the operator, the sidecar, the webhook and the tests agree.

/// `app.kubernetes.io/managed-by` on every object the operator creates.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "otpilot";
/// The ApiCredential (name) a Secret, Lease or Role belongs to.
pub const CREDENTIAL: &str = "otpilot.dev/credential";
/// The ClientCA (name) a Secret or ConfigMap belongs to.
pub const CLIENT_CA: &str = "otpilot.dev/client-ca";
/// What an owned Secret holds: see [`kinds`].
pub const SECRET_KIND: &str = "otpilot.dev/secret-kind";

/// Values of [`SECRET_KIND`].
pub mod kinds {
    /// `<name>-runtime`: mounted into workloads.
    pub const RUNTIME: &str = "runtime";
    /// `<name>-recovery`: never mounted.
    pub const RECOVERY: &str = "recovery";
    /// A ClientCA's private key, in the operator's namespace.
    pub const CA_KEY: &str = "ca-key";
    /// `<name>-session`: the replicas' shared session (`docs/shared-session.md`).
    pub const SESSION: &str = "session";
}

/// The finalizer that turns MFA off at the vendor (deletionPolicy Disable).
pub const CLEANUP_FINALIZER: &str = "otpilot.dev/cleanup";

/// Pod annotation naming the ApiCredential whose sidecar to inject.
pub const INJECT_ANNOTATION: &str = "otpilot.dev/inject";

/// Label the webhook puts on every Pod it injects (value [`INJECTED_LABEL_VALUE`]),
/// so a PodMonitor or a label selector finds injected Pods. The annotation
/// of the same key carries the credential's name.
pub const INJECTED_LABEL: &str = "otpilot.dev/injected";
/// The value of [`INJECTED_LABEL`].
pub const INJECTED_LABEL_VALUE: &str = "true";

/// ApiCredential annotation asking the operator to issue a new client
/// certificate now. The value is a request id (`kubectl otpilot renew` sets
/// an RFC 3339 time); the operator honours each value once and records it in
/// `status.handledRenewRequest`.
pub const RENEW_CERTIFICATE_ANNOTATION: &str = "otpilot.dev/renew-certificate";

/// ApiCredential annotation asking the operator to turn MFA over to a new
/// TOTP secret (re-enroll). Honoured once per value, recorded in
/// `status.handledReenrollRequest`.
pub const REENROLL_ANNOTATION: &str = "otpilot.dev/reenroll";

/// Name of an ApiCredential's runtime Secret.
pub fn runtime_secret_name(credential: &str) -> String {
    format!("{credential}-runtime")
}

/// Name of an ApiCredential's recovery Secret.
pub fn recovery_secret_name(credential: &str) -> String {
    format!("{credential}-recovery")
}
