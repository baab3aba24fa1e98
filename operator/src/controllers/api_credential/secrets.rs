//! The credential's own Secrets: `<name>-runtime` (mounted by sidecars, the
//! layout of `otpilot_api::runtime_secret`) and `<name>-recovery` (never
//! mounted: the enrollment checkpoint while enrollment runs, and the
//! recovery codes). Both owned by the ApiCredential (garbage-collected with
//! it) and labelled so that only they are cached by the operator.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::api_credential::EnrollmentState;
use otpilot_api::labels;
use otpilot_api::runtime_secret::RuntimeBundle;
use secrecy::{ExposeSecret, SecretString};

use crate::context::FIELD_MANAGER;

/// Keys of the recovery Secret.
pub mod recovery_keys {
    /// The enrollment checkpoint record (versioned JSON), while enrolling.
    pub const ENROLLMENT_CHECKPOINT: &str = "enrollment-checkpoint";
    /// Unused recovery codes, one per line.
    pub const RECOVERY_CODES: &str = "recovery-codes";
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("failed to read Secret {name}: {source}")]
    Read {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to write Secret {name}: {source}")]
    Write {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// What the credential's Secrets hold now. `Debug` shows no secret.
#[derive(Debug, Default)]
pub struct Stored {
    /// The runtime Secret, parsed; `None` when absent or unreadable.
    pub runtime: Option<RuntimeBundle>,
    /// Why a runtime Secret that exists could not be read.
    pub runtime_error: Option<String>,
    /// The enrollment checkpoint record, when an enrollment is under way.
    pub checkpoint: Option<SecretString>,
    /// Recovery codes held.
    pub recovery_codes: Vec<SecretString>,
}

impl Stored {
    pub fn enrollment_state(&self) -> Option<EnrollmentState> {
        self.runtime.as_ref().map(|r| r.enrollment_state)
    }
}

pub async fn read(api: &Api<Secret>, credential: &str) -> Result<Stored, SecretsError> {
    let get = |name: String| async move {
        api.get_opt(&name)
            .await
            .map_err(|source| SecretsError::Read { name, source })
    };
    let runtime = get(labels::runtime_secret_name(credential)).await?;
    let recovery = get(labels::recovery_secret_name(credential)).await?;
    let (runtime, runtime_error) = match runtime.map(|s| RuntimeBundle::from_data(&data_of(&s))) {
        None => (None, None),
        Some(Ok(bundle)) => (Some(bundle), None),
        Some(Err(error)) => (None, Some(error.to_string())),
    };
    let recovery_data = recovery.as_ref().map(data_of).unwrap_or_default();
    let text = |key: &str| {
        recovery_data
            .get(key)
            .and_then(|v| String::from_utf8(v.clone()).ok())
            .filter(|s| !s.trim().is_empty())
    };
    Ok(Stored {
        runtime,
        runtime_error,
        checkpoint: text(recovery_keys::ENROLLMENT_CHECKPOINT).map(SecretString::from),
        recovery_codes: text(recovery_keys::RECOVERY_CODES)
            .map(|t| parse_codes(&t))
            .unwrap_or_default(),
    })
}

fn data_of(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .as_ref()
        .map(|d| d.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
        .unwrap_or_default()
}

/// Recovery codes from the Secret's text: one per line, blanks ignored.
pub fn parse_codes(text: &str) -> Vec<SecretString> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| SecretString::from(l.to_owned()))
        .collect()
}

/// The text stored for recovery codes.
pub fn format_codes(codes: &[SecretString]) -> String {
    let mut out = String::new();
    for c in codes {
        out.push_str(c.expose_secret());
        out.push('\n');
    }
    out
}

/// A Secret owned by the credential, with otpilot's labels (pure).
pub fn owned_secret(
    credential: &ApiCredential,
    name: String,
    kind: &str,
    data: BTreeMap<String, Vec<u8>>,
) -> Secret {
    let labels = BTreeMap::from([
        (
            labels::MANAGED_BY.to_owned(),
            labels::MANAGED_BY_VALUE.to_owned(),
        ),
        (labels::CREDENTIAL.to_owned(), credential.name_any()),
        (labels::SECRET_KIND.to_owned(), kind.to_owned()),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: credential.namespace(),
            labels: Some(labels),
            owner_references: credential.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        ..Secret::default()
    }
}

/// The recovery Secret's data (pure): the checkpoint while enrolling, and
/// the recovery codes once any are known.
pub fn recovery_data(
    checkpoint: Option<&SecretString>,
    codes: &[SecretString],
) -> BTreeMap<String, Vec<u8>> {
    let mut data = BTreeMap::new();
    if let Some(c) = checkpoint {
        data.insert(
            recovery_keys::ENROLLMENT_CHECKPOINT.to_owned(),
            c.expose_secret().as_bytes().to_vec(),
        );
    }
    if !codes.is_empty() {
        data.insert(
            recovery_keys::RECOVERY_CODES.to_owned(),
            format_codes(codes).into_bytes(),
        );
    }
    data
}

/// Server-side apply: keys this manager wrote before and omits now are
/// removed (that is how the checkpoint goes away after enrollment).
pub async fn apply(api: &Api<Secret>, secret: &Secret) -> Result<(), SecretsError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let mut body = serde_json::to_value(secret).unwrap_or_default();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("apiVersion".into(), "v1".into());
        obj.insert("kind".into(), "Secret".into());
    }
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| SecretsError::Write { name, source })?;
    Ok(())
}

pub async fn write_recovery(
    api: &Api<Secret>,
    credential: &ApiCredential,
    checkpoint: Option<&SecretString>,
    codes: &[SecretString],
) -> Result<(), SecretsError> {
    let secret = owned_secret(
        credential,
        labels::recovery_secret_name(&credential.name_any()),
        labels::kinds::RECOVERY,
        recovery_data(checkpoint, codes),
    );
    apply(api, &secret).await
}

pub async fn write_runtime(
    api: &Api<Secret>,
    credential: &ApiCredential,
    bundle: &RuntimeBundle,
) -> Result<(), SecretsError> {
    let secret = owned_secret(
        credential,
        labels::runtime_secret_name(&credential.name_any()),
        labels::kinds::RUNTIME,
        bundle.to_data(),
    );
    apply(api, &secret).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_round_trip_one_per_line() {
        let codes = vec![SecretString::from("a1b2"), SecretString::from("c3d4")];
        let text = format_codes(&codes);
        assert_eq!(text, "a1b2\nc3d4\n");
        let back: Vec<String> = parse_codes(&format!("\n{text}\n  \n"))
            .iter()
            .map(|c| c.expose_secret().to_owned())
            .collect();
        assert_eq!(back, ["a1b2", "c3d4"]);
    }

    #[test]
    fn recovery_data_drops_the_checkpoint_once_enrollment_is_done() {
        let cp = SecretString::from("{\"version\":1}");
        let codes = vec![SecretString::from("x")];
        let during = recovery_data(Some(&cp), &[]);
        assert_eq!(
            during.keys().collect::<Vec<_>>(),
            [recovery_keys::ENROLLMENT_CHECKPOINT]
        );
        let after = recovery_data(None, &codes);
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            [recovery_keys::RECOVERY_CODES]
        );
    }
}
