//! The Pod annotations that ask for and tune injection, parsed and checked.

use std::collections::BTreeMap;

use otpilot_api::sidecar::{DEFAULT_ADMIN_PORT, DEFAULT_API_PORT, DEFAULT_PROXY_PORT};

use crate::config::InjectConfig;
use crate::sidecar::SIDECAR_MOUNT_PATHS;

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
const LOWEST_PORT: u16 = 1024;
const MAX_PATH_LEN: usize = 1024;

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

fn credential_name(value: &str) -> Result<String, AnnotationError> {
    let trimmed = value.trim();
    if trimmed.contains('/') {
        return Err(AnnotationError::CrossNamespace {
            value: value.to_owned(),
        });
    }
    if !is_dns_subdomain(trimmed) {
        return Err(AnnotationError::InvalidCredentialName {
            value: value.to_owned(),
        });
    }
    Ok(trimmed.to_owned())
}

/// RFC 1123 subdomain, the rule for ApiCredential names.
fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes.first() != Some(&b'-')
                && bytes.last() != Some(&b'-')
        })
}

fn port(
    annotations: &BTreeMap<String, String>,
    annotation: &'static str,
    default: u16,
) -> Result<u16, AnnotationError> {
    let Some(value) = annotations.get(annotation) else {
        return Ok(default);
    };
    match value.trim().parse::<u16>() {
        Ok(port) if port >= LOWEST_PORT => Ok(port),
        _ => Err(AnnotationError::InvalidPort {
            annotation,
            value: value.clone(),
        }),
    }
}

fn token_file(value: &str) -> Result<TokenFile, AnnotationError> {
    let invalid = |why| AnnotationError::InvalidTokenFile {
        value: value.to_owned(),
        why,
    };
    if value.len() > MAX_PATH_LEN {
        return Err(invalid("the path is longer than 1024 characters"));
    }
    let Some(relative) = value.strip_prefix('/') else {
        return Err(invalid(
            "use an absolute path, e.g. /var/run/otpilot/token/token",
        ));
    };
    let parts: Vec<&str> = relative.split('/').collect();
    if parts
        .iter()
        .any(|part| part.is_empty() || *part == "." || *part == "..")
    {
        return Err(invalid(
            "use a plain absolute path (no '.', '..', '//' or trailing '/')",
        ));
    }
    if parts.iter().any(|part| part.chars().any(char::is_control)) {
        return Err(invalid("the path contains control characters"));
    }
    // The directory is mounted over whatever the image has there, read-only
    // in app containers: a top-level one (/tmp, /etc) would break the app.
    if parts.len() < 3 {
        return Err(invalid(
            "its directory is mounted read-only over the app's: use a dedicated directory at \
             least two levels deep, e.g. /var/run/otpilot/token/token",
        ));
    }
    let dir = format!("/{}", parts[..parts.len() - 1].join("/"));
    if SIDECAR_MOUNT_PATHS
        .iter()
        .any(|mount| paths_overlap(&dir, mount))
    {
        return Err(invalid(
            "its directory overlaps one of the sidecar's own mounts under /var/run/otpilot \
             (runtime, password, api-key, secret-values): use e.g. /var/run/otpilot/token/token",
        ));
    }
    Ok(TokenFile {
        path: value.to_owned(),
        dir,
    })
}

/// Whether one directory is the other or contains it.
pub(crate) fn paths_overlap(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches('/');
    let b = b.trim_end_matches('/');
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}

fn image(value: &str, config: &InjectConfig) -> Result<String, AnnotationError> {
    if !config.allow_image_override {
        return Err(AnnotationError::ImageOverrideNotAllowed);
    }
    let value = value.trim();
    if value.is_empty()
        || value.len() > 512
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AnnotationError::InvalidImage {
            value: value.to_owned(),
        });
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn config() -> InjectConfig {
        InjectConfig::new("sidecar:1")
    }

    fn overrides_allowed() -> InjectConfig {
        InjectConfig {
            allow_image_override: true,
            ..config()
        }
    }

    #[test]
    fn a_pod_without_the_inject_annotation_asks_for_nothing() {
        let other = annotations(&[(API_PORT, "9000"), ("unrelated", "x")]);
        assert_eq!(parse(&other, &config()), Ok(None));
    }

    #[test]
    fn defaults_come_from_the_shared_constants() {
        let request = parse(&annotations(&[(INJECT, "vendor")]), &config())
            .expect("valid")
            .expect("asks for injection");
        assert_eq!(
            request,
            InjectRequest {
                credential: "vendor".into(),
                api_port: DEFAULT_API_PORT,
                proxy_port: DEFAULT_PROXY_PORT,
                admin_port: DEFAULT_ADMIN_PORT,
                readiness: Readiness::None,
                token_file: None,
                image: None,
                proxy_require_header: false,
            }
        );
    }

    #[test]
    fn every_accepted_annotation_is_read() {
        let request = parse(
            &annotations(&[
                (INJECT, " payments.audd "),
                (API_PORT, "9001"),
                (PROXY_PORT, "9002"),
                (ADMIN_PORT, "9003"),
                (READINESS, "token"),
                (TOKEN_FILE, "/var/run/otpilot/token/token"),
                (SIDECAR_IMAGE, "registry.local/sidecar@sha256:abc"),
                (PROXY_REQUIRE_HEADER, "true"),
            ]),
            &overrides_allowed(),
        )
        .expect("valid")
        .expect("asks for injection");
        assert_eq!(
            request,
            InjectRequest {
                credential: "payments.audd".into(),
                api_port: 9001,
                proxy_port: 9002,
                admin_port: 9003,
                readiness: Readiness::Token,
                token_file: Some(TokenFile {
                    path: "/var/run/otpilot/token/token".into(),
                    dir: "/var/run/otpilot/token".into(),
                }),
                image: Some("registry.local/sidecar@sha256:abc".into()),
                proxy_require_header: true,
            }
        );
    }

    #[test]
    fn invalid_values_are_refused_with_a_message_naming_the_annotation() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[(INJECT, "")], INJECT),
            (&[(INJECT, "Vendor")], INJECT),
            (&[(INJECT, "-vendor")], INJECT),
            (&[(INJECT, "vendor_1")], INJECT),
            (&[(INJECT, "other-ns/vendor")], INJECT),
            (&[(INJECT, "/vendor")], INJECT),
            (&[(INJECT, "v"), (API_PORT, "http")], API_PORT),
            (
                &[(INJECT, "v"), (PROXY_REQUIRE_HEADER, "yes")],
                PROXY_REQUIRE_HEADER,
            ),
            (&[(INJECT, "v"), (API_PORT, "0")], API_PORT),
            (&[(INJECT, "v"), (API_PORT, "80")], API_PORT),
            (&[(INJECT, "v"), (API_PORT, "65536")], API_PORT),
            (&[(INJECT, "v"), (PROXY_PORT, "-1")], PROXY_PORT),
            (
                &[(INJECT, "v"), (API_PORT, "9000"), (PROXY_PORT, "9000")],
                PROXY_PORT,
            ),
            (&[(INJECT, "v"), (PROXY_PORT, "8181")], PROXY_PORT),
            (&[(INJECT, "v"), (ADMIN_PORT, "8181")], ADMIN_PORT),
            (&[(INJECT, "v"), (ADMIN_PORT, "8182")], ADMIN_PORT),
            (&[(INJECT, "v"), (ADMIN_PORT, "80")], ADMIN_PORT),
            (
                &[(INJECT, "v"), (PROXY_PORT, "9000"), (ADMIN_PORT, "9000")],
                ADMIN_PORT,
            ),
            (&[(INJECT, "v"), (READINESS, "always")], READINESS),
            (&[(INJECT, "v"), (READINESS, "Token")], READINESS),
            (&[(INJECT, "v"), (TOKEN_FILE, "token")], TOKEN_FILE),
            (&[(INJECT, "v"), (TOKEN_FILE, "/token")], TOKEN_FILE),
            (&[(INJECT, "v"), (TOKEN_FILE, "/tmp/token")], TOKEN_FILE),
            (
                &[(INJECT, "v"), (TOKEN_FILE, "/var/run/../token")],
                TOKEN_FILE,
            ),
            (&[(INJECT, "v"), (TOKEN_FILE, "/var/run/t/")], TOKEN_FILE),
            (&[(INJECT, "v"), (TOKEN_FILE, "/var//run/t")], TOKEN_FILE),
            (
                &[(INJECT, "v"), (TOKEN_FILE, "/var/run/otpilot/runtime/t")],
                TOKEN_FILE,
            ),
            (
                &[(INJECT, "v"), (TOKEN_FILE, "/var/run/otpilot/t")],
                TOKEN_FILE,
            ),
            (
                &[(INJECT, "v"), (TOKEN_FILE, "/var/run/otpilot/password/x/t")],
                TOKEN_FILE,
            ),
            (&[(INJECT, "v"), (SIDECAR_IMAGE, "evil:1")], SIDECAR_IMAGE),
        ];
        for (pairs, annotation) in cases {
            let error = parse(&annotations(pairs), &config())
                .expect_err(&format!("{pairs:?} must be refused"));
            assert!(
                error.to_string().contains(annotation),
                "{pairs:?}: message {error:?} does not name {annotation}"
            );
        }
    }

    #[test]
    fn a_namespaced_credential_reference_is_a_cross_namespace_error() {
        assert!(matches!(
            parse(&annotations(&[(INJECT, "team-b/vendor")]), &config()),
            Err(AnnotationError::CrossNamespace { .. })
        ));
    }

    #[test]
    fn an_image_override_needs_the_installation_to_allow_it_and_a_real_reference() {
        let pairs = annotations(&[(INJECT, "v"), (SIDECAR_IMAGE, "mine:2")]);
        assert_eq!(
            parse(&pairs, &config()),
            Err(AnnotationError::ImageOverrideNotAllowed)
        );
        for bad in ["", "  ", "a b", "x\ny"] {
            let pairs = annotations(&[(INJECT, "v"), (SIDECAR_IMAGE, bad)]);
            assert!(
                matches!(
                    parse(&pairs, &overrides_allowed()),
                    Err(AnnotationError::InvalidImage { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn overlapping_paths_are_detected_both_ways() {
        let table = [
            ("/a/b", "/a/b", true),
            ("/a/b/c", "/a/b", true),
            ("/a", "/a/b", true),
            ("/a/bc", "/a/b", false),
            ("/a/b", "/a/bc", false),
            ("/x/y", "/a/b", false),
        ];
        for (a, b, overlap) in table {
            assert_eq!(paths_overlap(a, b), overlap, "{a} vs {b}");
        }
    }
}
