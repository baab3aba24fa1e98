//! The rules of each annotation's value: credential names, ports, token
//! file paths, images.

use std::collections::BTreeMap;

use super::{AnnotationError, LOWEST_PORT, MAX_PATH_LEN, TokenFile};
use crate::config::InjectConfig;
use crate::sidecar::SIDECAR_MOUNT_PATHS;

pub(super) fn credential_name(value: &str) -> Result<String, AnnotationError> {
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

pub(super) fn port(
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

pub(super) fn token_file(value: &str) -> Result<TokenFile, AnnotationError> {
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

pub(super) fn image(value: &str, config: &InjectConfig) -> Result<String, AnnotationError> {
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
