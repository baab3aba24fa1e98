//! Loading a profile: YAML to [`ProfileSpec`] with file/line and field path
//! on error, then the consistency checks of [`crate::check`].

use std::collections::BTreeMap;

use otpilot_api::profile::{Flow, ProfileSpec};

pub use crate::check::StepInfo;
use crate::check::{flow_of, validate};
use crate::error::{FlowKind, LoadError, Problem};
use crate::presentation::TokenPresentation;

/// A validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    origin: String,
    spec: ProfileSpec,
    steps: BTreeMap<FlowKind, Vec<StepInfo>>,
    presentation: TokenPresentation,
}

impl Profile {
    /// Parses and validates a profile from YAML. `origin` names it in
    /// errors (a file name).
    pub fn from_yaml(origin: &str, yaml: &str) -> Result<Self, LoadError> {
        let options = serde_saphyr::options! { with_snippet: false };
        let mut path = String::new();
        let parsed = serde_saphyr::with_deserializer_from_str_with_options(yaml, options, |de| {
            serde_path_to_error::deserialize::<_, ProfileSpec>(de).map_err(|e| {
                path = match e.path().to_string() {
                    p if p == "." => String::new(),
                    p => p,
                };
                e.into_inner()
            })
        });
        let spec = parsed.map_err(|inner| {
            let message = strip_path_prefix(&strip_location(&inner.to_string()), &path);
            let (line, column) = inner
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .unwrap_or((0, 0));
            LoadError::Parse {
                origin: origin.to_owned(),
                line,
                column,
                path: path.clone(),
                message,
            }
        })?;
        Self::from_spec(origin, spec)
    }

    /// Validates a profile already deserialised (a `ClusterMfaProfile`).
    pub fn from_spec(origin: &str, spec: ProfileSpec) -> Result<Self, LoadError> {
        let mut problems = Vec::new();
        let steps = validate(&spec, &mut problems);
        let presentation = TokenPresentation::from_spec(&spec.token_presentation)
            .map_err(|message| {
                let (field, message) = message.split_once(": ").unwrap_or(("", message));
                problems.push(Problem {
                    path: format!("tokenPresentation.{field}"),
                    message: message.to_owned(),
                });
            })
            .unwrap_or_default();
        if problems.is_empty() {
            Ok(Self {
                origin: origin.to_owned(),
                spec,
                steps,
                presentation,
            })
        } else {
            Err(LoadError::Invalid {
                origin: origin.to_owned(),
                problems,
            })
        }
    }

    /// Where the profile came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The profile as written.
    pub fn spec(&self) -> &ProfileSpec {
        &self.spec
    }

    /// A flow, if the profile has it.
    pub fn flow(&self, kind: FlowKind) -> Option<&Flow> {
        flow_of(&self.spec, kind)
    }

    /// Whether the profile has a flow.
    pub fn has_flow(&self, kind: FlowKind) -> bool {
        self.flow(kind).is_some()
    }

    /// How the access token is presented to the vendor's API.
    pub fn token_presentation(&self) -> &TokenPresentation {
        &self.presentation
    }

    /// Why a caller's secret value names cannot be used with this profile,
    /// if they cannot: the first name the profile does not declare (most
    /// likely misspelt, which would leave the vendor secret unsent), with
    /// the names it declares.
    pub fn undeclared_secret_value<'n>(
        &self,
        mut names: impl Iterator<Item = &'n str>,
    ) -> Option<String> {
        let declared = &self.spec.secret_values;
        let name = names.find(|n| !declared.iter().any(|d| d == n))?;
        let known = if declared.is_empty() {
            "it uses none".to_owned()
        } else {
            format!("it uses {}", declared.join(", "))
        };
        Some(format!(
            "the profile has no secret value named '{name}' ({known})"
        ))
    }

    /// What validation learnt about a flow's steps.
    pub fn step_info(&self, kind: FlowKind) -> &[StepInfo] {
        self.steps.get(&kind).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A YAML library may append " at line X column Y" to messages; the
/// location is reported separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A YAML library may prefix messages with its own path, the field path or
/// (for an unknown key) its parent; the path is reported apart.
fn strip_path_prefix(message: &str, path: &str) -> String {
    match message.split_once(": ") {
        Some((prefix, rest)) if !prefix.contains(' ') && path.starts_with(prefix) => {
            rest.to_owned()
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod path_prefix_tests {
    use super::strip_path_prefix;

    #[test]
    fn a_path_prefix_in_the_message_is_removed_once() {
        let cases = [
            (
                "enroll.steps[2]: unknown field `respones`",
                "enroll.steps[2].respones",
                "unknown field `respones`",
            ),
            (
                "login.steps[0].method: unknown variant `FETCH`",
                "login.steps[0].method",
                "unknown variant `FETCH`",
            ),
            ("missing field `login`", "", "missing field `login`"),
            (
                "invalid type: expected a map",
                "enroll",
                "invalid type: expected a map",
            ),
        ];
        for (message, path, want) in cases {
            assert_eq!(strip_path_prefix(message, path), want, "{message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::tests::MINIMAL;

    #[test]
    fn malformed_yaml_is_reported_with_line_and_path() {
        let yaml = MINIMAL.replace(
            "method: POST\n      path: /login",
            "method: FETCH\n      path: /login",
        );
        let err = Profile::from_yaml("acme.yaml", &yaml).expect_err("bad method");
        let text = err.to_string();
        assert!(
            text.starts_with("acme.yaml:13:15: login.steps[0].method: unknown variant `FETCH`"),
            "{text}"
        );

        let err = Profile::from_yaml("acme.yaml", "enroll: [").expect_err("bad yaml");
        assert!(matches!(err, LoadError::Parse { line: 1, .. }), "{err}");
    }

    #[test]
    fn misspelt_field_is_named_once_with_its_path() {
        let yaml = MINIMAL.replacen("path: /login", "pth: /login", 1);
        let err = Profile::from_yaml("acme.yaml", &yaml).expect_err("unknown field");
        let text = err.to_string();
        assert!(
            text.contains(": login.steps[0].pth: unknown field `pth`, expected one of"),
            "{text}"
        );
        assert_eq!(text.matches("login.steps[0]").count(), 1, "{text}");
    }
}
