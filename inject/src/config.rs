//! What an installation decides about injection (chart values, passed to the
//! operator): the sidecar image, its resources, what to do with a credential
//! that is not Ready yet.

use serde::{Deserialize, Serialize};

/// Where the sidecar binary sits in its image (see sidecar/Dockerfile).
pub const DEFAULT_SIDECAR_BINARY: &str = "/usr/local/bin/otpilot-sidecar";

/// Injection settings of one installation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InjectConfig {
    /// The sidecar image, e.g. `ghcr.io/otpilot/otpilot-sidecar:0.1.0` or by digest.
    pub sidecar_image: String,
    /// `imagePullPolicy` of the sidecar container; the kubelet's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Absolute path of the sidecar binary inside the image: exec probes run
    /// it directly (distroless images have no shell and no PATH lookup to rely on).
    #[serde(default = "default_sidecar_binary")]
    pub sidecar_binary: String,
    /// Whether a Pod may pick its own sidecar image with
    /// `otpilot.dev/sidecar-image`. Off by default: the image receives the
    /// credential's secrets, so platform teams decide which one runs.
    #[serde(default)]
    pub allow_image_override: bool,
    /// What to do with a Pod whose ApiCredential exists but is not Ready.
    #[serde(default)]
    pub when_not_ready: WhenNotReady,
    /// Requests and limits of the sidecar container.
    #[serde(default)]
    pub resources: SidecarResources,
}

fn default_sidecar_binary() -> String {
    DEFAULT_SIDECAR_BINARY.to_owned()
}

impl InjectConfig {
    /// Defaults for everything but the image.
    pub fn new(sidecar_image: impl Into<String>) -> Self {
        InjectConfig {
            sidecar_image: sidecar_image.into(),
            image_pull_policy: None,
            sidecar_binary: default_sidecar_binary(),
            allow_image_override: false,
            when_not_ready: WhenNotReady::default(),
            resources: SidecarResources::default(),
        }
    }
}

/// What to do with a Pod whose ApiCredential is not Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum WhenNotReady {
    /// Refuse the Pod with a message naming the credential and why it is not
    /// Ready. Controllers (Deployments, Jobs) retry with backoff, so the Pod
    /// appears once the credential is Ready.
    #[default]
    Refuse,
    /// Inject anyway: the sidecar's startup probe holds the app containers
    /// back until it has a token. The Pod is admitted with a warning.
    Inject,
}

/// Requests and limits of the sidecar container, as Kubernetes quantities.
// The defaults are a first estimate (a Rust process with a small HTTP
// server and TLS client); to be revisited with the sidecar's measured RSS
// and CPU in BENCHMARKS.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarResources {
    #[serde(default = "default_cpu_request")]
    pub cpu_request: String,
    #[serde(default = "default_memory_request")]
    pub memory_request: String,
    /// No CPU limit by default: throttling a token refresh delays every
    /// request the application makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    #[serde(default = "default_memory_limit")]
    pub memory_limit: String,
}

fn default_cpu_request() -> String {
    "10m".to_owned()
}

fn default_memory_request() -> String {
    "16Mi".to_owned()
}

fn default_memory_limit() -> String {
    "64Mi".to_owned()
}

impl Default for SidecarResources {
    fn default() -> Self {
        SidecarResources {
            cpu_request: default_cpu_request(),
            memory_request: default_memory_request(),
            cpu_limit: None,
            memory_limit: default_memory_limit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_json_fills_defaults_and_rejects_unknown_fields() {
        let config: InjectConfig =
            serde_json::from_str(r#"{"sidecarImage":"img:1","whenNotReady":"Inject"}"#)
                .expect("minimal config parses");
        assert_eq!(config.resources, SidecarResources::default());
        assert_eq!(config.sidecar_binary, DEFAULT_SIDECAR_BINARY);
        assert_eq!(config.when_not_ready, WhenNotReady::Inject);
        assert!(!config.allow_image_override);

        let typo =
            serde_json::from_str::<InjectConfig>(r#"{"sidecarImage":"i","whenNotReddy":"Inject"}"#);
        assert!(
            typo.is_err(),
            "a misspelt field is an error, not a silent default"
        );
    }
}
