//! The Pod annotations that ask for and tune injection, parsed and checked
//! (`values`: the rules of each value).

#[cfg(test)]
mod tests;
mod values;

pub(crate) use values::paths_overlap;
use values::{credential_name, image, port, token_file};

use std::collections::BTreeMap;

use otpilot_api::sidecar::{DEFAULT_ADMIN_PORT, DEFAULT_API_PORT, DEFAULT_PROXY_PORT};

use crate::config::InjectConfig;

/// Names the ApiCredential (in the Pod's namespace) whose sidecar to inject.
pub const INJECT: &str = otpilot_api::labels::INJECT_ANNOTATION;
/// Set by the webhook on Pods it injected (value: the credential's name):
/// a Pod carrying it is never injected twice.
pub const INJECTED: &str = "otpilot.dev/injected";
/// Port of the sidecar's local API (`/token`, probes) on 127.0.0.1.
pub const API_PORT: &str = "otpilot.dev/api-port";
/// Port of the sidecar's authenticating proxy on 127.0.0.1.
pub const PROXY_PORT: &str = "otpilot.dev/proxy-port";
/// Port of the sidecar's admin listener (`/healthz`, `/readyz`, `/metrics`)
/// on the Pod IP, for the kubelet's probes and Prometheus.
pub const ADMIN_PORT: &str = "otpilot.dev/admin-port";
/// Whether the Pod's readiness follows the sidecar's token: `token` (the
/// Pod leaves its Services while the sidecar holds no usable token) or
/// `none` (the default: the sidecar's token does not affect the Pod's
/// readiness once the startup probe passed).
pub const READINESS: &str = "otpilot.dev/readiness";
/// Absolute path where the sidecar also writes the current token; its
/// directory becomes an in-memory volume, read-only in the app containers.
pub const TOKEN_FILE: &str = "otpilot.dev/token-file";
/// A sidecar image for this Pod, when the installation allows overrides.
pub const SIDECAR_IMAGE: &str = "otpilot.dev/sidecar-image";
/// `"true"`: the sidecar's proxy answers only requests carrying the same
/// header `/token` requires (`Otpilot-Request: true`); `"false"` or absent:
/// transparent proxying (the default).
pub const PROXY_REQUIRE_HEADER: &str = "otpilot.dev/proxy-require-header";

/// The sidecar runs as non-root: it cannot bind a privileged port.
pub(crate) const LOWEST_PORT: u16 = 1024;
pub(crate) const MAX_PATH_LEN: usize = 1024;

/// What a Pod's annotations ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectRequest {
    /// The ApiCredential's name (same namespace as the Pod).
    pub credential: String,
    /// Port of the sidecar's local API (`/token`), on the Pod's loopback.
    pub api_port: u16,
    /// Port of the sidecar's authenticating proxy, on the Pod's loopback.
    pub proxy_port: u16,
    /// Port of the sidecar's admin listener, on the Pod IP.
    pub admin_port: u16,
    /// Whether the Pod's readiness follows the sidecar's.
    pub readiness: Readiness,
    /// Where the sidecar also writes the token, if asked.
    pub token_file: Option<TokenFile>,
    /// The image to run instead of the installation's (only when allowed).
    pub image: Option<String>,
    /// The proxy requires the token request header ([`PROXY_REQUIRE_HEADER`]).
    pub proxy_require_header: bool,
}

/// Values of [`READINESS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Readiness {
    /// `none`: once started, the Pod's readiness is the app's alone; a
    /// vendor outage does not pull a Pod that serves other traffic from
    /// its Services.
    #[default]
    None,
    /// `token`: the sidecar gets a readiness probe on `/readyz`; the Pod
    /// is not Ready while the sidecar holds no token it may serve.
    Token,
}

/// Where the token file goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenFile {
    /// Absolute path of the file.
    pub path: String,
    /// Its directory: the mount point of the shared in-memory volume.
    pub dir: String,
}

/// An annotation that cannot be used. Messages name the annotation and say
/// what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    #[error(
        "annotation {INJECT}={value:?} names a credential in another namespace: a Pod can only use \
         an ApiCredential in its own namespace; create one here and name it without '/'"
    )]
    /// The credential named is in another namespace.
    CrossNamespace {
        /// The annotation's value.
        value: String,
    },
    #[error(
        "annotation {INJECT}={value:?} is not an ApiCredential name: use the name of an \
         ApiCredential in the Pod's namespace (lowercase letters, digits, '-' and '.')"
    )]
    /// The value is not a valid ApiCredential name.
    InvalidCredentialName {
        /// The annotation's value.
        value: String,
    },
    #[error(
        "annotation {annotation}={value:?} is not a usable port: use a number from \
         {LOWEST_PORT} to 65535 (the sidecar runs as non-root)"
    )]
    /// A port annotation is not a usable port.
    InvalidPort {
        /// The annotation.
        annotation: &'static str,
        /// Its value.
        value: String,
    },
    #[error(
        "annotations {first} and {second} both use port {port} (explicitly or by default): give \
         the sidecar's API, proxy and admin listener different ports"
    )]
    /// Two of the sidecar's listeners would share a port.
    SamePorts {
        /// The first annotation.
        first: &'static str,
        /// The second annotation.
        second: &'static str,
        /// The port both ask for.
        port: u16,
    },
    #[error("annotation {READINESS}={value:?} is not \"token\" or \"none\"")]
    /// The readiness mode is neither `token` nor `none`.
    InvalidReadiness {
        /// The annotation's value.
        value: String,
    },
    #[error("annotation {TOKEN_FILE}={value:?} is not usable: {why}")]
    /// The token file path cannot be used.
    InvalidTokenFile {
        /// The annotation's value.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    #[error(
        "annotation {SIDECAR_IMAGE} is not allowed by this installation (the chart's \
         webhook.allowSidecarImageOverride is false): remove it to use the installation's sidecar"
    )]
    /// The installation does not allow a sidecar image override.
    ImageOverrideNotAllowed,
    #[error("annotation {SIDECAR_IMAGE}={value:?} is not an image reference")]
    /// The image override is not an image reference.
    InvalidImage {
        /// The annotation's value.
        value: String,
    },
    #[error("annotation {PROXY_REQUIRE_HEADER}={value:?} is not \"true\" or \"false\"")]
    /// The proxy header switch is neither `true` nor `false`.
    InvalidProxyRequireHeader {
        /// The annotation's value.
        value: String,
    },
}

/// Parses the injection annotations. `None` when the Pod does not ask for
/// injection at all.
pub fn parse(
    annotations: &BTreeMap<String, String>,
    config: &InjectConfig,
) -> Result<Option<InjectRequest>, AnnotationError> {
    let Some(value) = annotations.get(INJECT) else {
        return Ok(None);
    };
    let credential = credential_name(value)?;
    let api_port = port(annotations, API_PORT, DEFAULT_API_PORT)?;
    let proxy_port = port(annotations, PROXY_PORT, DEFAULT_PROXY_PORT)?;
    let admin_port = port(annotations, ADMIN_PORT, DEFAULT_ADMIN_PORT)?;
    let ports = [
        (API_PORT, api_port),
        (PROXY_PORT, proxy_port),
        (ADMIN_PORT, admin_port),
    ];
    for (i, (first, port)) in ports.iter().enumerate() {
        if let Some((second, _)) = ports[i + 1..].iter().find(|(_, p)| p == port) {
            return Err(AnnotationError::SamePorts {
                first,
                second,
                port: *port,
            });
        }
    }
    let readiness = match annotations.get(READINESS).map(|v| v.trim()) {
        None | Some("none") => Readiness::None,
        Some("token") => Readiness::Token,
        Some(other) => {
            return Err(AnnotationError::InvalidReadiness {
                value: other.to_owned(),
            });
        }
    };
    let token_file = annotations
        .get(TOKEN_FILE)
        .map(|value| token_file(value))
        .transpose()?;
    let image = annotations
        .get(SIDECAR_IMAGE)
        .map(|value| image(value, config))
        .transpose()?;
    let proxy_require_header = match annotations.get(PROXY_REQUIRE_HEADER).map(|v| v.trim()) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(AnnotationError::InvalidProxyRequireHeader {
                value: other.to_owned(),
            });
        }
    };
    Ok(Some(InjectRequest {
        credential,
        api_port,
        proxy_port,
        admin_port,
        readiness,
        token_file,
        image,
        proxy_require_header,
    }))
}

/// The credential a Pod's annotations name, when the name is valid.
pub fn requested_credential(annotations: &BTreeMap<String, String>) -> Option<String> {
    annotations
        .get(INJECT)
        .and_then(|value| credential_name(value).ok())
}
