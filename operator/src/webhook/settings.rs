//! The injection settings file, read once at start.

use std::path::Path;

use otpilot_inject::{ConfigError, InjectConfig};

/// The sidecar image when no settings file says otherwise: the release
/// matching this operator.
pub fn default_sidecar_image() -> String {
    format!(
        "ghcr.io/otpilot/otpilot-sidecar:{}",
        env!("CARGO_PKG_VERSION")
    )
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("failed to read the injection settings {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("failed to use the injection settings {path} (fix the chart's inject values)")]
    Invalid {
        path: String,
        #[source]
        source: ConfigError,
    },
}

/// Reads `path` (absent path or file: the defaults). A bad file stops the
/// operator with a message naming the field, instead of injecting Pods the
/// API server would refuse.
pub fn load_inject_config(path: Option<&Path>) -> Result<InjectConfig, SettingsError> {
    let Some(path) = path else {
        return Ok(InjectConfig::new(default_sidecar_image()));
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map_err(|source| SettingsError::Invalid {
            path: path.display().to_string(),
            source,
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(InjectConfig::new(default_sidecar_image()))
        }
        Err(source) => Err(SettingsError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The settings in `text`; serde's message (naming the field) is kept in
/// the error's Display so the operator's log shows it.
fn parse(text: &str) -> Result<InjectConfig, ConfigError> {
    InjectConfig::from_json(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_chain(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    #[test]
    fn settings_files_are_read_or_refused_naming_the_field() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cases: [(&str, Option<&str>, Result<&str, &str>); 5] = [
            ("absent file", None, Ok("ghcr.io/otpilot/otpilot-sidecar:")),
            (
                "valid",
                Some(r#"{"sidecarImage":"registry.example/sidecar:1"}"#),
                Ok("registry.example/sidecar:1"),
            ),
            (
                "unknown field",
                Some(r#"{"sidecarImage":"x:1","sidecarImg":"y"}"#),
                Err("sidecarImg"),
            ),
            (
                "invalid value",
                Some(r#"{"sidecarImage":"x:1","imagePullPolicy":"Sometimes"}"#),
                Err("imagePullPolicy"),
            ),
            ("not JSON", Some("sidecarImage: x"), Err("expected value")),
        ];
        for (name, content, want) in cases {
            let path = dir.path().join(format!("{name}.json"));
            if let Some(content) = content {
                std::fs::write(&path, content).expect("write settings");
            }
            match (load_inject_config(Some(&path)), want) {
                (Ok(config), Ok(image)) => {
                    assert!(
                        config.sidecar_image.starts_with(image),
                        "{name}: {config:?}"
                    )
                }
                (Err(error), Err(needle)) => {
                    let text = error_chain(&error);
                    assert!(text.contains(needle), "{name}: {text}");
                    assert!(text.contains(&path.display().to_string()), "{name}: {text}");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn no_settings_flag_means_the_defaults() {
        let config = load_inject_config(None).expect("defaults");
        assert_eq!(config.sidecar_image, default_sidecar_image());
    }
}
