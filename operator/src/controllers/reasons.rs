//! Condition reasons the operator needs beyond `otpilot_api::conditions::reasons`.
// Kept here rather than in api/ while the api crate's condition set is being
// extended on another branch; to be moved there when both land.

/// The ClusterMfaProfile has a built-in profile's name; ApiCredentials use the built-in.
pub const SHADOWS_BUILTIN: &str = "ShadowsBuiltinProfile";
/// The credential uses no client certificate.
pub const CERTIFICATE_NOT_REQUIRED: &str = "NotRequired";
/// The server CA ConfigMap is missing.
pub const CONFIG_MAP_NOT_FOUND: &str = "ConfigMapNotFound";
/// The vendor refused the password, API key or account.
pub const CREDENTIALS_REJECTED: &str = "CredentialsRejected";
/// The stored enrollment checkpoint cannot be read.
pub const CHECKPOINT_UNREADABLE: &str = "CheckpointUnreadable";
/// A Kubernetes API call failed.
pub const KUBERNETES_ERROR: &str = "KubernetesError";
/// The profile has no flow the credential needs.
pub const FLOW_MISSING: &str = "ProfileFlowMissing";
