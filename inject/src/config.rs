//! What an installation decides about injection (chart values, passed to the
//! operator): the sidecar image, its resources, what to do with a credential
//! that is not Ready yet.

use serde::{Deserialize, Serialize};

/// Where the sidecar binary sits in its image (see scripts/images.sh).
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
    /// Pull Secrets added to every injected Pod (those it does not name
    /// already), so its node can pull the sidecar image from a private
    /// registry. Each must exist in the Pod's namespace: a Pod can only
    /// name its own namespace's Secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    /// An HTTP(S) proxy for every vendor call of the injected sidecars
    /// (`--egress-proxy`); unset: direct. No credentials in it: the chart
    /// has no way to give sidecars a proxy password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_proxy: Option<String>,
    /// Hosts those sidecars reach directly (`--egress-no-proxy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_no_proxy: Option<String>,
}

fn default_sidecar_binary() -> String {
    DEFAULT_SIDECAR_BINARY.to_owned()
}

/// Settings that cannot be used. Messages name the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read the injection settings (JSON, fields of InjectConfig)")]
    /// The settings are not valid JSON for InjectConfig.
    Parse(#[source] serde_json::Error),
    #[error("injection setting {field} is {value:?}: {expected}")]
    /// A setting the API server would refuse in every Pod.
    Invalid {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
}

impl InjectConfig {
    /// Reads and checks settings in their JSON form (the chart's
    /// `inject.json`). Unknown fields are errors.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config: InjectConfig = serde_json::from_str(text).map_err(ConfigError::Parse)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: values the API server would refuse in every
    /// injected Pod, found once at startup instead.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, value: &str, expected| ConfigError::Invalid {
            field,
            value: value.to_owned(),
            expected,
        };
        if self.sidecar_image.trim().is_empty()
            || self.sidecar_image.chars().any(char::is_whitespace)
        {
            return Err(invalid(
                "sidecarImage",
                &self.sidecar_image,
                "an image reference",
            ));
        }
        if !self.sidecar_binary.starts_with('/') {
            return Err(invalid(
                "sidecarBinary",
                &self.sidecar_binary,
                "an absolute path",
            ));
        }
        if let Some(policy) = &self.image_pull_policy
            && !["Always", "IfNotPresent", "Never"].contains(&policy.as_str())
        {
            return Err(invalid(
                "imagePullPolicy",
                policy,
                "Always, IfNotPresent or Never",
            ));
        }
        if let Some(proxy) = &self.egress_proxy
            && !is_plain_proxy_url(proxy)
        {
            // Never echo the value: it might carry a password.
            return Err(invalid(
                "egressProxy",
                "(not shown)",
                "http://host:port or https://host:port, without credentials",
            ));
        }
        let r = &self.resources;
        let quantities = [
            ("resources.cpuRequest", Some(&r.cpu_request)),
            ("resources.memoryRequest", Some(&r.memory_request)),
            ("resources.cpuLimit", r.cpu_limit.as_ref()),
            ("resources.memoryLimit", Some(&r.memory_limit)),
        ];
        for (field, value) in quantities {
            if let Some(value) = value
                && !is_quantity(value)
            {
                return Err(invalid(
                    field,
                    value,
                    "a Kubernetes quantity, e.g. 10m or 64Mi",
                ));
            }
        }
        Ok(())
    }

    /// Defaults for everything but the image.
    pub fn new(sidecar_image: impl Into<String>) -> Self {
        InjectConfig {
            sidecar_image: sidecar_image.into(),
            image_pull_policy: None,
            sidecar_binary: default_sidecar_binary(),
            allow_image_override: false,
            when_not_ready: WhenNotReady::default(),
            resources: SidecarResources::default(),
            image_pull_secrets: Vec::new(),
            egress_proxy: None,
            egress_no_proxy: None,
        }
    }
}

/// `http(s)://host[:port][/]`, with no user or password in it.
fn is_plain_proxy_url(text: &str) -> bool {
    let Some(rest) = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    !authority.is_empty() && !authority.contains('@') && !text.chars().any(char::is_whitespace)
}

/// What to do with a Pod whose ApiCredential is not Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum WhenNotReady {
    /// Refuse the Pod with a message naming the credential (not why it is
    /// not Ready: the message is the same as for a missing credential). Controllers (Deployments, Jobs) retry with backoff, so the Pod
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
/// The injected sidecar's resource requests and limits (Kubernetes quantities).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarResources {
    /// CPU request.
    #[serde(default = "default_cpu_request")]
    pub cpu_request: String,
    /// Memory request.
    #[serde(default = "default_memory_request")]
    pub memory_request: String,
    /// No CPU limit by default: throttling a token refresh delays every
    /// request the application makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    /// Memory limit.
    #[serde(default = "default_memory_limit")]
    pub memory_limit: String,
}

/// The shape of a Kubernetes quantity: a decimal number and an optional
/// suffix (m, k, M, G, T, P, E, Ki..Ei, or an exponent).
fn is_quantity(value: &str) -> bool {
    let number_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(number_end);
    let number_ok =
        !number.is_empty() && number.chars().filter(|c| *c == '.').count() <= 1 && number != ".";
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || (suffix.len() > 1
        && (suffix.starts_with('e') || suffix.starts_with('E'))
        && suffix[1..].chars().all(|c| c.is_ascii_digit()));
    number_ok && suffix_ok
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
        let config = InjectConfig::from_json(r#"{"sidecarImage":"img:1","whenNotReady":"Inject"}"#)
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

    #[test]
    fn settings_the_api_server_would_refuse_are_refused_at_startup_naming_the_field() {
        let cases = [
            (r#"{"sidecarImage":""}"#, "sidecarImage"),
            (r#"{"sidecarImage":"a b"}"#, "sidecarImage"),
            (
                r#"{"sidecarImage":"i","sidecarBinary":"otpilot-sidecar"}"#,
                "sidecarBinary",
            ),
            (
                r#"{"sidecarImage":"i","imagePullPolicy":"Sometimes"}"#,
                "imagePullPolicy",
            ),
            (
                r#"{"sidecarImage":"i","resources":{"cpuRequest":""}}"#,
                "resources.cpuRequest",
            ),
            (
                r#"{"sidecarImage":"i","resources":{"memoryLimit":"64MB"}}"#,
                "resources.memoryLimit",
            ),
            (
                r#"{"sidecarImage":"i","resources":{"cpuLimit":"."}}"#,
                "resources.cpuLimit",
            ),
            (
                r#"{"sidecarImage":"i","egressProxy":"proxy:3128"}"#,
                "egressProxy",
            ),
            (
                r#"{"sidecarImage":"i","egressProxy":"http://u:hunter2@proxy:3128"}"#,
                "egressProxy",
            ),
        ];
        for (json, field) in cases {
            let error = InjectConfig::from_json(json).expect_err(json);
            assert!(error.to_string().contains(field), "{json}: {error}");
            assert!(!error.to_string().contains("hunter2"), "{json}: {error}");
        }
    }

    #[test]
    fn kubernetes_quantities_are_recognised() {
        for good in [
            "10m", "16Mi", "1", "0.5", "1.5Gi", "2k", "1e3", "64Mi", "100M",
        ] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "m", "64MB", "1.2.3", "ten", "-1", "1 Gi", "1e"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
