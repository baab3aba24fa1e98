//! A credential cannot borrow otpilot's own Secrets: the password, API key
//! and secret values it names are mounted into the Pod (and sent to the
//! credential's `baseUrl`), so none of them may be another credential's
//! runtime, recovery or session Secret or a ClientCA's key. Decided from
//! each named Secret's metadata (labels, owner references), which the
//! caller reads; nothing here does I/O.
//!
//! Serving it: after [`crate::review::decide`] allowed a Pod with a patch,
//! GET the metadata of each Secret [`named_secrets`] lists (in the Pod's
//! namespace), then pass the decision through [`refuse_borrowed`].

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use otpilot_api::ApiCredential;
use otpilot_api::owned_secret::otpilot_owned;

use crate::decision::{Decision, DenyReason};

/// Suffixes of the names otpilot gives its own Secrets (`<credential>-runtime`,
/// `-recovery`, `-session`, `<clientca>-ca-key`): a Secret that does not
/// exist yet but is named like one may be created by the operator later,
/// labelled, after the Pod was admitted.
const OWNED_SUFFIXES: &[&str] = &["-runtime", "-recovery", "-session", "-ca-key"];

/// The Secrets `credential` names as inputs, as (field, Secret name).
pub fn named_secrets(credential: &ApiCredential) -> Vec<(&'static str, String)> {
    let spec = &credential.spec;
    let named = [
        spec.password_secret_ref
            .as_ref()
            .map(|r| ("passwordSecretRef", r.name.clone())),
        spec.api_key_secret_ref
            .as_ref()
            .map(|r| ("apiKeySecretRef", r.name.clone())),
    ];
    named
        .into_iter()
        .flatten()
        .chain(
            spec.secret_values
                .iter()
                .map(|v| ("secretValues", v.secret_key_ref.name.clone())),
        )
        .collect()
}

/// What the caller's GET of one named Secret's metadata found.
#[derive(Clone, Debug)]
pub enum SecretMeta {
    /// It exists, with this metadata.
    Found(Box<ObjectMeta>),
    /// There is none by that name.
    NotFound,
    /// The API server could not answer (the text holds no secret: an API
    /// error).
    Failed(String),
}

/// `decision`, or a refusal when one of `named` (field, Secret name, what
/// its lookup found) is otpilot's own Secret. A lookup that failed refuses
/// too: the Pod would otherwise mount a Secret nobody checked.
pub fn refuse_borrowed(
    decision: Decision,
    credential: &str,
    named: &[(&'static str, String, SecretMeta)],
) -> Decision {
    if !matches!(decision, Decision::Allow { .. }) {
        return decision;
    }
    for (field, name, meta) in named {
        let why = match meta {
            SecretMeta::Found(meta) => otpilot_owned(meta),
            SecretMeta::NotFound => OWNED_SUFFIXES
                .iter()
                .find(|s| name.ends_with(*s))
                .map(|s| format!("it does not exist and is named like otpilot's own ({s})")),
            SecretMeta::Failed(error) => {
                return Decision::deny(
                    DenyReason::ForbiddenSecret,
                    format!(
                        "failed to check Secret {name} (spec.{field} of ApiCredential \
                         {credential}) before mounting it: {error}"
                    ),
                );
            }
        };
        if let Some(why) = why {
            return Decision::deny(
                DenyReason::ForbiddenSecret,
                format!(
                    "ApiCredential {credential} names Secret {name} in spec.{field}, but {why}: \
                     otpilot's own Secrets are never mounted as an input; keep the password, API \
                     key and secret values in a Secret of their own"
                ),
            );
        }
    }
    decision
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use otpilot_api::labels;

    use super::*;

    fn labelled(pairs: &[(&str, &str)]) -> SecretMeta {
        SecretMeta::Found(Box::new(ObjectMeta {
            labels: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ObjectMeta::default()
        }))
    }

    #[test]
    fn only_otpilot_secrets_or_their_names_are_refused() {
        let allow = Decision::untouched();
        let cases: Vec<(&str, &str, SecretMeta, Option<&str>)> = vec![
            ("a user's Secret", "vendor-login", labelled(&[]), None),
            (
                "a user's Secret, absent",
                "vendor-login",
                SecretMeta::NotFound,
                None,
            ),
            (
                "another credential's recovery",
                "other-recovery",
                labelled(&[(labels::SECRET_KIND, "recovery")]),
                Some("otpilot's recovery Secret"),
            ),
            (
                "otpilot's label, innocent name",
                "vendor-login",
                labelled(&[(labels::MANAGED_BY, "otpilot")]),
                Some("managed by otpilot"),
            ),
            (
                "a ClientCA key",
                "vendor-ca-ca-key",
                labelled(&[(labels::CLIENT_CA, "vendor-ca")]),
                Some("ClientCA vendor-ca"),
            ),
            (
                "a session Secret not created yet",
                "other-session",
                SecretMeta::NotFound,
                Some("named like otpilot's own"),
            ),
            (
                "the lookup failed",
                "vendor-login",
                SecretMeta::Failed("forbidden".into()),
                Some("failed to check Secret vendor-login"),
            ),
        ];
        for (what, name, meta, want) in cases {
            let got = refuse_borrowed(
                allow.clone(),
                "bot",
                &[("passwordSecretRef", name.to_owned(), meta)],
            );
            match (want, &got) {
                (None, Decision::Allow { .. }) => {}
                (Some(words), Decision::Deny { reason, message }) => {
                    assert_eq!(*reason, DenyReason::ForbiddenSecret, "{what}");
                    assert!(message.contains(words), "{what}: {message}");
                    assert!(
                        message.contains("spec.passwordSecretRef"),
                        "{what}: {message}"
                    );
                }
                _ => panic!("{what}: {got:?}"),
            }
        }
    }

    #[test]
    fn a_refusal_already_made_stands() {
        let deny = Decision::deny(DenyReason::Conflict, "volume name taken");
        let got = refuse_borrowed(deny.clone(), "bot", &[]);
        assert_eq!(got, deny);
    }
}
