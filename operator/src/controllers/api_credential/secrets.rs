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
use otpilot_api::runtime_secret::{self, RuntimeBundle};
use secrecy::{ExposeSecret, SecretString};

use crate::context::FIELD_MANAGER;

/// Keys of the recovery Secret.
pub mod recovery_keys {
    /// The enrollment checkpoint record (versioned JSON), while enrolling.
    pub const ENROLLMENT_CHECKPOINT: &str = "enrollment-checkpoint";
    /// Unused recovery codes, one per line.
    pub const RECOVERY_CODES: &str = "recovery-codes";
    /// The `otpilot.dev/reenroll` value a re-enrollment under way acts on.
    pub const REENROLL_REQUEST: &str = "reenroll-request";
    /// Where that re-enrollment is: `disable` (the old secret may still be
    /// on) or `enroll` (the enroll flow runs, with its checkpoint).
    pub const REENROLL_PHASE: &str = "reenroll-phase";
    /// The last `otpilot.dev/reenroll` value carried out, so a crash before
    /// the status write does not re-enroll twice for one request.
    pub const REENROLL_HANDLED: &str = "reenroll-handled";
    /// A TOTP secret the vendor refused, once the decision about it was
    /// made (a recovery code spent, or none to spend): never decided twice.
    pub const REFUSED_TOTP_SECRET: &str = "refused-totp-secret";
}

/// Where a re-enrollment under way is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReenrollPhase {
    /// MFA is being turned off with the old secret.
    Disable,
    /// The enroll flow runs (its checkpoint is stored with this mark).
    Enroll,
}

impl ReenrollPhase {
    fn as_str(self) -> &'static str {
        match self {
            ReenrollPhase::Disable => "disable",
            ReenrollPhase::Enroll => "enroll",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "disable" => Some(ReenrollPhase::Disable),
            "enroll" => Some(ReenrollPhase::Enroll),
            _ => None,
        }
    }
}

/// A re-enrollment under way: which request, and how far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReenrollMark {
    pub request: String,
    pub phase: ReenrollPhase,
}

/// The mark's request when a recovery code, not a person, started it.
pub const RECOVERY_REENROLL: &str = "otpilot.dev/recovery-code";

/// The re-enrollment bookkeeping of the recovery Secret.
#[derive(Debug, Clone, Default)]
pub struct ReenrollRecord {
    pub under_way: Option<ReenrollMark>,
    pub handled: Option<String>,
    /// The runtime Secret's TOTP secret, when the vendor refused it and the
    /// operator acted on that (see `seed_check`).
    pub refused_secret: Option<SecretString>,
}

impl ReenrollRecord {
    /// The record once the re-enrollment under way finished (pure).
    pub fn finished(&self) -> Self {
        ReenrollRecord {
            under_way: None,
            // A re-enrollment after a recovery code answers no request.
            handled: self
                .under_way
                .as_ref()
                .map(|m| m.request.clone())
                .filter(|r| r != RECOVERY_REENROLL)
                .or_else(|| self.handled.clone()),
            // A new secret now: the refused one is history.
            refused_secret: None,
        }
    }

    /// The record with `mark` under way (pure).
    pub fn with(&self, mark: ReenrollMark) -> Self {
        ReenrollRecord {
            under_way: Some(mark),
            ..self.clone()
        }
    }
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
#[derive(Debug, Default, Clone)]
pub struct Stored {
    /// The runtime Secret, parsed; `None` when absent or unreadable.
    pub runtime: Option<RuntimeBundle>,
    /// Why a runtime Secret that exists could not be read.
    pub runtime_error: Option<String>,
    /// The enrollment checkpoint record, when an enrollment is under way.
    pub checkpoint: Option<SecretString>,
    /// Recovery codes held.
    pub recovery_codes: Vec<SecretString>,
    /// Re-enrollment on request: under way, and the last one done.
    pub reenroll: ReenrollRecord,
    /// The vendor that issued the recovery codes (see `recovery_vendor`).
    pub recovery_issuer: Option<String>,
    /// The metadata of those of the two Secrets nothing owns (restored from
    /// a backup): the pass adopts them (`adopt.rs`).
    pub unowned: Vec<ObjectMeta>,
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
    let unowned = [runtime.as_ref(), recovery.as_ref()]
        .into_iter()
        .flatten()
        .map(|s| s.metadata.clone())
        .filter(super::adopt::needs_adoption)
        .collect();
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
        reenroll: ReenrollRecord {
            under_way: text(recovery_keys::REENROLL_REQUEST).map(|request| ReenrollMark {
                request: request.trim().to_owned(),
                // A mark without a readable phase: from the disable step, which
                // looks before it acts again.
                phase: text(recovery_keys::REENROLL_PHASE)
                    .and_then(|p| ReenrollPhase::parse(&p))
                    .unwrap_or(ReenrollPhase::Disable),
            }),
            handled: text(recovery_keys::REENROLL_HANDLED).map(|t| t.trim().to_owned()),
            refused_secret: text(recovery_keys::REFUSED_TOTP_SECRET)
                .map(|t| SecretString::from(t.trim().to_owned())),
        },
        recovery_issuer: text(super::recovery_vendor::ISSUER_KEY),
        unowned,
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
    reenroll: &ReenrollRecord,
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
    if let Some(mark) = &reenroll.under_way {
        data.insert(
            recovery_keys::REENROLL_REQUEST.to_owned(),
            mark.request.clone().into_bytes(),
        );
        data.insert(
            recovery_keys::REENROLL_PHASE.to_owned(),
            mark.phase.as_str().as_bytes().to_vec(),
        );
    }
    if let Some(handled) = &reenroll.handled {
        data.insert(
            recovery_keys::REENROLL_HANDLED.to_owned(),
            handled.clone().into_bytes(),
        );
    }
    if let Some(refused) = &reenroll.refused_secret {
        data.insert(
            recovery_keys::REFUSED_TOTP_SECRET.to_owned(),
            refused.expose_secret().as_bytes().to_vec(),
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
    reenroll: &ReenrollRecord,
) -> Result<(), SecretsError> {
    let secret = owned_secret(
        credential,
        labels::recovery_secret_name(&credential.name_any()),
        labels::kinds::RECOVERY,
        recovery_data(checkpoint, codes, reenroll),
    );
    apply(api, &secret).await
}

pub async fn write_runtime(
    api: &Api<Secret>,
    credential: &ApiCredential,
    bundle: &RuntimeBundle,
) -> Result<(), SecretsError> {
    let name = labels::runtime_secret_name(&credential.name_any());
    let mut data = bundle.to_data();
    // The session key is made once and kept: the apply below replaces the
    // whole data, so the one already stored is carried over.
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|source| SecretsError::Read {
            name: name.clone(),
            source,
        })?
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove(runtime_secret::keys::SESSION_KEY));
    match runtime_secret::session_key_value(existing.as_ref().map(|v| v.0.as_slice())) {
        Some(key) => {
            data.insert(runtime_secret::keys::SESSION_KEY.to_owned(), key);
        }
        None => tracing::warn!(
            secret = %name,
            "failed to generate a session key; sidecars of this credential log in alone"
        ),
    }
    let secret = owned_secret(credential, name, labels::kinds::RUNTIME, data);
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
        let none = ReenrollRecord::default();
        let during = recovery_data(Some(&cp), &[], &none);
        assert_eq!(
            during.keys().collect::<Vec<_>>(),
            [recovery_keys::ENROLLMENT_CHECKPOINT]
        );
        let after = recovery_data(None, &codes, &none);
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            [recovery_keys::RECOVERY_CODES]
        );
    }

    #[test]
    fn a_finished_reenrollment_is_remembered_as_handled() {
        let mark = ReenrollMark {
            request: "r1".into(),
            phase: ReenrollPhase::Enroll,
        };
        let under_way = ReenrollRecord {
            under_way: Some(mark.clone()),
            handled: Some("r0".into()),
            refused_secret: Some(SecretString::from("OLDSEED")),
        };
        let data = recovery_data(None, &[], &under_way);
        assert_eq!(data[recovery_keys::REENROLL_REQUEST], b"r1");
        assert_eq!(data[recovery_keys::REENROLL_PHASE], b"enroll");
        assert_eq!(data[recovery_keys::REENROLL_HANDLED], b"r0");
        assert_eq!(data[recovery_keys::REFUSED_TOTP_SECRET], b"OLDSEED");
        let done = under_way.finished();
        assert_eq!(done.under_way, None);
        assert_eq!(done.handled.as_deref(), Some("r1"));
        let data = recovery_data(None, &[], &done);
        assert!(!data.contains_key(recovery_keys::REENROLL_REQUEST));
        assert!(!data.contains_key(recovery_keys::REENROLL_PHASE));
        assert!(!data.contains_key(recovery_keys::REFUSED_TOTP_SECRET));
        let by_recovery = ReenrollRecord {
            under_way: Some(ReenrollMark {
                request: RECOVERY_REENROLL.into(),
                phase: ReenrollPhase::Enroll,
            }),
            handled: Some("r0".into()),
            refused_secret: None,
        };
        assert_eq!(by_recovery.finished().handled.as_deref(), Some("r0"));
        assert_eq!(
            ReenrollRecord::default().with(mark.clone()).under_way,
            Some(mark)
        );
    }
}
