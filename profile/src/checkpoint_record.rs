//! The persisted form of a [`Checkpoint`]: what the operator writes to the
//! runtime Secret between enrollment steps (and the CLI to its state file),
//! so a flow killed at any point resumes at the right step.
//!
//! Versioned, and carrying a digest of the profile it was taken with: a
//! profile edited between a crash and the resume is detected, never resumed
//! at a step index that now means something else.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use otpilot_api::profile::TotpAlgorithm;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::FlowKind;
use crate::executor::Checkpoint;
use crate::load::Profile;
use crate::totp::{TotpKey, TotpParams};

/// The record format this build writes and reads.
pub const RECORD_VERSION: u32 = 1;

/// Why a stored checkpoint cannot be resumed. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointRecordError {
    #[error("the stored checkpoint is not valid JSON of the expected shape: {0}")]
    /// Not the JSON shape of a checkpoint.
    Malformed(String),
    #[error("the stored checkpoint has format version {found}; this build reads {RECORD_VERSION}")]
    /// Written by a newer (or unknown) format version.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    #[error(
        "the stored checkpoint was taken with a different version of the profile \
         (digest {stored}, now {current}); the interrupted {flow} flow cannot be resumed step by step"
    )]
    /// The profile changed since the checkpoint was taken.
    ProfileChanged {
        /// The interrupted flow.
        flow: FlowKind,
        /// The profile digest the checkpoint recorded.
        stored: String,
        /// The profile's digest now.
        current: String,
    },
    #[error("the stored checkpoint's TOTP secret is invalid: {0}")]
    /// The stored TOTP secret does not parse.
    InvalidTotp(String),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Record {
    version: u32,
    profile_digest: String,
    flow: String,
    next_step: usize,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    values: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp: Option<RecordTotp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recovery_codes: Option<Vec<String>>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    times: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_code_step: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RecordTotp {
    secret: String,
    algorithm: TotpAlgorithm,
    digits: u8,
    period: u64,
}

/// A stable digest of a profile's spec (hex SHA-256 of its JSON form).
pub fn profile_digest(profile: &Profile) -> String {
    // serde_json writes struct fields in declaration order and maps in key
    // order (BTreeMap), so the same spec always gives the same bytes.
    let json = serde_json::to_vec(profile.spec()).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn flow_from_str(s: &str) -> Option<FlowKind> {
    FlowKind::ALL.into_iter().find(|f| f.as_str() == s)
}

impl Checkpoint {
    /// The checkpoint as JSON, for a Secret or a 0600 state file. The text
    /// holds secrets (the TOTP seed, recovery codes, tokens): store it only
    /// where those may live.
    pub fn to_record(&self, profile: &Profile) -> SecretString {
        let record = Record {
            version: RECORD_VERSION,
            profile_digest: profile_digest(profile),
            flow: self.flow.as_str().to_owned(),
            next_step: self.next_step,
            values: self
                .values
                .iter()
                .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
                .collect(),
            totp: self.totp.as_ref().map(|key| {
                let p = key.params();
                RecordTotp {
                    secret: key.secret_base32().expose_secret().to_owned(),
                    algorithm: p.algorithm,
                    digits: p.digits,
                    period: p.period,
                }
            }),
            recovery_codes: self
                .recovery_codes
                .as_ref()
                .map(|codes| codes.iter().map(|c| c.expose_secret().to_owned()).collect()),
            times: self
                .times
                .iter()
                .map(|(k, t)| {
                    let secs = t
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    (k.clone(), secs)
                })
                .collect(),
            last_code_step: self.last_code_step,
        };
        SecretString::from(serde_json::to_string(&record).unwrap_or_default())
    }

    /// Reads a checkpoint written by [`Checkpoint::to_record`] for `profile`.
    pub fn from_record(text: &str, profile: &Profile) -> Result<Self, CheckpointRecordError> {
        // Look at the version first, so a future format is reported as such
        // and not as "malformed".
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned = serde_json::from_str(text)
            .map_err(|e| CheckpointRecordError::Malformed(describe_json_error(&e)))?;
        if versioned.version != RECORD_VERSION {
            return Err(CheckpointRecordError::UnsupportedVersion {
                found: versioned.version,
            });
        }
        let record: Record = serde_json::from_str(text)
            .map_err(|e| CheckpointRecordError::Malformed(describe_json_error(&e)))?;
        let flow = flow_from_str(&record.flow).ok_or_else(|| {
            CheckpointRecordError::Malformed(format!("unknown flow {:?}", record.flow))
        })?;
        let current = profile_digest(profile);
        if record.profile_digest != current {
            return Err(CheckpointRecordError::ProfileChanged {
                flow,
                stored: record.profile_digest,
                current,
            });
        }
        let totp = record
            .totp
            .map(|t| {
                TotpKey::from_base32(
                    &t.secret,
                    TotpParams {
                        algorithm: t.algorithm,
                        digits: t.digits,
                        period: t.period,
                    },
                )
                .map_err(|e| CheckpointRecordError::InvalidTotp(e.to_string()))
            })
            .transpose()?;
        Ok(Checkpoint {
            flow,
            next_step: record.next_step,
            values: record
                .values
                .into_iter()
                .map(|(k, v)| (k, SecretString::from(v)))
                .collect(),
            totp,
            recovery_codes: record
                .recovery_codes
                .map(|codes| codes.into_iter().map(SecretString::from).collect()),
            times: record
                .times
                .into_iter()
                .map(|(k, s)| {
                    UNIX_EPOCH
                        .checked_add(Duration::from_secs(s))
                        .map(|t| (k, t))
                        .ok_or_else(|| {
                            CheckpointRecordError::Malformed("an instant out of range".to_owned())
                        })
                })
                .collect::<Result<_, _>>()?,
            last_code_step: record.last_code_step,
        })
    }
}

/// serde_json's error text quotes unexpected *values* in some cases
/// ("invalid type: string \"…\""); keep only the position.
fn describe_json_error(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            flow: FlowKind::Enroll,
            next_step: 1,
            values: BTreeMap::from([("token_id".to_owned(), SecretString::from("tok-1"))]),
            totp: Some(
                TotpKey::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", TotpParams::default())
                    .expect("valid"),
            ),
            recovery_codes: Some(vec![SecretString::from("RC-1")]),
            times: BTreeMap::from([("expires_at".to_owned(), UNIX_EPOCH + Duration::from_secs(7))]),
            last_code_step: Some(42),
        }
    }

    #[test]
    fn a_checkpoint_round_trips_through_its_record() {
        let profile = builtin::get("audd").expect("built in");
        let record = checkpoint().to_record(&profile);
        let back = Checkpoint::from_record(record.expose_secret(), &profile).expect("reads");
        assert_eq!(
            back.to_record(&profile).expose_secret(),
            record.expose_secret()
        );
        assert_eq!(back.next_step, 1);
        assert_eq!(back.last_code_step, Some(42));
    }

    #[test]
    fn a_record_taken_with_another_profile_is_refused() {
        let audd = builtin::get("audd").expect("built in");
        let goaxr = builtin::get("goaxr").expect("built in");
        let record = checkpoint().to_record(&audd);
        let err = Checkpoint::from_record(record.expose_secret(), &goaxr).expect_err("refused");
        assert!(
            matches!(err, CheckpointRecordError::ProfileChanged { .. }),
            "{err}"
        );
    }

    #[test]
    fn bad_records_are_refused_without_echoing_them() {
        let profile = builtin::get("audd").expect("built in");
        let cases = [
            ("not json", "SECRETVALUE"),
            ("future version", r#"{"version":99}"#),
            (
                "instant out of range",
                r#"{"version":1,"profileDigest":"DIGEST","flow":"enroll","nextStep":0,"times":{"expires_at":18446744073709551615}}"#,
            ),
            (
                "wrong type",
                r#"{"version":1,"profileDigest":"SECRETVALUE","flow":1,"nextStep":0}"#,
            ),
        ];
        let digest = profile_digest(&profile);
        for (name, text) in cases {
            let text = text.replace("DIGEST", &digest);
            let err = Checkpoint::from_record(&text, &profile).expect_err(name);
            assert!(!err.to_string().contains("SECRETVALUE"), "{name}: {err}");
        }
    }
}
