//! Reading a profile from a file (a bare profile or a `ClusterMfaProfile`
//! manifest) or a built-in name, with every problem as `file:line: path:
//! message`.

use std::path::Path;
use std::sync::Arc;

use otpilot_api::profile::ProfileSpec;
use otpilot_profile::{LoadError, Profile, builtin};
use serde::Deserialize;

use super::locate::line_of;

/// A profile that cannot be used: one line per problem.
#[derive(Debug)]
pub struct Problems(pub Vec<String>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for Problems {}

/// The profile at `arg`: a file, else a built-in profile's name.
pub fn load_arg(arg: &str) -> Result<Arc<Profile>, Problems> {
    let path = Path::new(arg);
    if !path.exists()
        && let Some(loaded) = builtin::load(arg)
    {
        return loaded
            .map(Arc::new)
            .map_err(|e| Problems(vec![e.to_string()]));
    }
    load_file(path).map(Arc::new)
}

pub fn load_file(path: &Path) -> Result<Profile, Problems> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let hint = if builtin::names().any(|n| n == origin) {
            ""
        } else {
            " (built-in profiles: audd, goaxr, conduit, acreto, cryptr)"
        };
        Problems(vec![format!("{origin}: cannot read: {e}{hint}")])
    })?;
    load_text(&origin, &text)
}

/// Whether the YAML is a `ClusterMfaProfile` manifest.
fn is_manifest(text: &str) -> bool {
    serde_saphyr::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str().map(str::to_owned)))
        .is_some_and(|k| k == "ClusterMfaProfile")
}

pub fn load_text(origin: &str, text: &str) -> Result<Profile, Problems> {
    let (result, prefix) = if is_manifest(text) {
        (manifest(origin, text), "spec.")
    } else {
        (Profile::from_yaml(origin, text), "")
    };
    result.map_err(|e| Problems(describe(&e, text, prefix)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[allow(dead_code)]
    api_version: String,
    spec: ProfileSpec,
}

/// A manifest's spec, parsed as `Profile::from_yaml` parses a bare one.
fn manifest(origin: &str, text: &str) -> Result<Profile, LoadError> {
    let options = serde_saphyr::options! { with_snippet: false };
    let mut path = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, Manifest>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    match parsed {
        Ok(m) => Profile::from_spec(origin, m.spec),
        Err(inner) => {
            let (line, column) = inner
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .unwrap_or((0, 0));
            let message = inner.to_string();
            let message = message
                .rfind(" at line ")
                .map_or(message.as_str(), |i| &message[..i])
                .to_owned();
            let message = match message.split_once(": ") {
                Some((p, rest)) if !p.contains(' ') && path.starts_with(p) => rest.to_owned(),
                _ => message,
            };
            Err(LoadError::Parse {
                origin: origin.to_owned(),
                line,
                column,
                path: if path == "." { String::new() } else { path },
                message,
            })
        }
    }
}

/// One line per problem, each with the file and line where it is.
pub fn describe(error: &LoadError, text: &str, prefix: &str) -> Vec<String> {
    match error {
        LoadError::Parse { .. } => vec![error.to_string()],
        LoadError::Invalid { origin, problems } => problems
            .iter()
            .map(|p| {
                let path = format!("{prefix}{}", p.path);
                match line_of(text, &path) {
                    Some(line) => format!("{origin}:{line}: {path}: {}", p.message),
                    None => format!("{origin}: {path}: {}", p.message),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = include_str!("../../../profile/profiles/audd.yaml");

    #[test]
    fn problems_carry_file_line_and_path() {
        let manifest = format!(
            "apiVersion: otpilot.dev/v1alpha1\nkind: ClusterMfaProfile\nmetadata:\n  name: acme\nspec:\n{}",
            GOOD.lines().map(|l| format!("  {l}\n")).collect::<String>()
        );
        assert!(load_text("good.yaml", GOOD).is_ok());
        assert!(
            load_text("manifest.yaml", &manifest)
                .map_err(|e| e.to_string())
                .is_ok()
        );

        // A template naming a value nothing defines: found after parsing,
        // reported on its line.
        let broken = GOOD.replacen("{{ totp }}", "{{ otp }}", 1);
        let line = broken
            .lines()
            .position(|l| l.contains("{{ otp }}"))
            .expect("replaced")
            + 1;
        let problems = load_text("broken.yaml", &broken).expect_err("refused").0;
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("broken.yaml:{line}: ")) && p.contains("otp")),
            "{problems:?}"
        );

        let bad_manifest = manifest.replacen("method: POST", "method: FETCH", 1);
        let problems = load_text("m.yaml", &bad_manifest).expect_err("refused").0;
        assert!(
            problems[0].starts_with("m.yaml:")
                && problems[0].contains("spec.")
                && problems[0].contains("FETCH"),
            "{problems:?}"
        );
    }
}
