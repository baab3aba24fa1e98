//! The `<name>-runtime` Secret: the contract between the operator (which
//! writes it) and the sidecar (which reads it from a mounted Secret volume).
//!
//! One key per value, so the client certificate is the conventional
//! `tls.crt` / `tls.key` pair and a person can see what is there with
//! `kubectl get secret -o yaml` without decoding a blob. Every key is
//! documented in `docs/runtime-secret.md`; [`LAYOUT_VERSION`] changes only
//! when a reader of the previous version would misread the new one.
//!
//! The password and API key are *not* here: they stay in the Secrets the
//! user named and are mounted beside this one, so a leaked runtime Secret is
//! not a whole identity. The recovery codes are not here either (they are in
//! `<name>-recovery`, which is never mounted).

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::api_credential::EnrollmentState;
use crate::profile::TotpAlgorithm;
use crate::session_key::{SessionKey, SessionKeyError};

/// The layout this crate writes and reads.
pub const LAYOUT_VERSION: u32 = 1;

/// Secret data keys (also the file names in a mounted Secret volume).
pub mod keys {
    /// Decimal layout version ([`super::LAYOUT_VERSION`]).
    pub const LAYOUT_VERSION: &str = "layout-version";
    /// `Pending` while enrollment is under way, `Enrolled` once the vendor
    /// confirmed the seed. A sidecar logs in only when `Enrolled`.
    pub const ENROLLMENT_STATE: &str = "enrollment-state";
    /// The vendor's API base URL.
    pub const BASE_URL: &str = "base-url";
    /// The account's username at the vendor.
    pub const USERNAME: &str = "username";
    /// Name of the profile (built-in or ClusterMfaProfile), for logs.
    pub const PROFILE_NAME: &str = "profile-name";
    /// The resolved profile, as YAML in the `ClusterMfaProfile` spec format.
    pub const PROFILE: &str = "profile.yaml";
    /// The ApiCredential's `spec.variables`, as a JSON object of strings.
    pub const VARIABLES: &str = "variables.json";
    /// The enrolled TOTP secret, base32 without padding.
    pub const TOTP_SECRET: &str = "totp-secret";
    /// The TOTP parameters the vendor verifies with (overrides applied), as
    /// JSON `{"algorithm":"SHA1","digits":6,"period":30}`.
    pub const TOTP_PARAMS: &str = "totp-params.json";
    /// Decimal time step of the last code the operator sent: a sidecar never
    /// sends a code from this step or an earlier one.
    pub const LAST_CODE_STEP: &str = "last-code-step";
    /// The client certificate chain (PEM), when the credential uses mTLS.
    pub const TLS_CRT: &str = "tls.crt";
    /// The client private key (PEM, PKCS#8), when the credential uses mTLS.
    pub const TLS_KEY: &str = "tls.key";
    /// CA certificates (PEM) that sign the vendor's server certificate,
    /// when it is not publicly trusted.
    pub const SERVER_CA: &str = "ca.crt";
    /// The credential's session key, 64 hex digits: sidecars seal the shared
    /// session and prove their Lease renewals with it
    /// ([`crate::session_key`]). Generated once by the operator and kept
    /// across writes; not part of [`super::RuntimeBundle`] (the operator's
    /// enrollment never needs it).
    pub const SESSION_KEY: &str = "session-key";
}

/// The value to store under [`keys::SESSION_KEY`] on a write of the runtime
/// Secret: the one already there when it reads as a key (never rotated
/// silently: sidecars would stop opening each other's sessions), otherwise
/// a fresh one. `None` only when the system's random generator fails.
pub fn session_key_value(existing: Option<&[u8]>) -> Option<Vec<u8>> {
    if let Some(existing) = existing
        && SessionKey::from_text(existing).is_ok()
    {
        return Some(existing.to_vec());
    }
    SessionKey::generate()
        .ok()
        .map(|key| key.to_text().expose_secret().as_bytes().to_vec())
}

/// The session key in a runtime Secret's data (or mounted files): `None`
/// when absent (an operator older than this sidecar wrote it).
pub fn session_key_of(
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Option<SessionKey>, SessionKeyError> {
    data.get(keys::SESSION_KEY)
        .map(|v| SessionKey::from_text(v))
        .transpose()
}

/// TOTP parameters as stored in [`keys::TOTP_PARAMS`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredTotpParams {
    /// HMAC algorithm.
    pub algorithm: TotpAlgorithm,
    /// Digits per code.
    pub digits: u8,
    /// Seconds per time step.
    pub period: u64,
}

/// The enrolled TOTP seed ([`keys::TOTP_SECRET`]) and its parameters
/// ([`keys::TOTP_PARAMS`]). `Debug` shows no secret.
#[derive(Clone)]
pub struct StoredTotp {
    /// Base32 seed.
    pub secret: SecretString,
    /// What the vendor verifies with.
    pub params: StoredTotpParams,
}

impl std::fmt::Debug for StoredTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTotp")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Everything in a runtime Secret, parsed. `Debug` shows no secret.
#[derive(Clone)]
pub struct RuntimeBundle {
    /// Where enrollment stands (only `Pending` and `Enrolled` are written).
    pub enrollment_state: EnrollmentState,
    /// See [`keys::BASE_URL`].
    pub base_url: String,
    /// See [`keys::USERNAME`].
    pub username: String,
    /// See [`keys::PROFILE_NAME`].
    pub profile_name: String,
    /// See [`keys::PROFILE`] (YAML text; the engine's loader validates it).
    pub profile_yaml: String,
    /// See [`keys::VARIABLES`].
    pub variables: BTreeMap<String, String>,
    /// The enrolled seed and its parameters: present exactly when
    /// `enrollment_state` is `Enrolled`.
    pub totp: Option<StoredTotp>,
    /// See [`keys::LAST_CODE_STEP`].
    pub last_code_step: Option<u64>,
    /// See [`keys::TLS_CRT`].
    pub tls_crt: Option<String>,
    /// See [`keys::TLS_KEY`].
    pub tls_key: Option<SecretString>,
    /// See [`keys::SERVER_CA`].
    pub server_ca: Option<String>,
}

impl std::fmt::Debug for RuntimeBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBundle")
            .field("enrollment_state", &self.enrollment_state)
            .field("base_url", &self.base_url)
            .field("profile_name", &self.profile_name)
            .field("totp", &self.totp)
            .field("last_code_step", &self.last_code_step)
            .field("mtls", &self.tls_crt.is_some())
            .field("server_ca", &self.server_ca.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a runtime Secret could not be read. Messages name the key, never a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuntimeSecretError {
    #[error("runtime Secret has no key {0}")]
    /// A required key is absent.
    Missing(&'static str),
    #[error("runtime Secret key {key} is not valid UTF-8")]
    /// A key's value is not UTF-8.
    NotUtf8 {
        /// The key.
        key: &'static str,
    },
    #[error("runtime Secret key {key} is malformed: {reason}")]
    /// A key's value does not parse.
    Malformed {
        /// The key.
        key: &'static str,
        /// What is wrong (never the value).
        reason: String,
    },
    #[error(
        "runtime Secret layout version {found} is not supported (this build reads {LAYOUT_VERSION}); \
         run a sidecar of the operator's release"
    )]
    /// The layout version is not this build's.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    #[error("runtime Secret has {present} without {missing}")]
    /// One of a pair of keys without the other (`tls.crt` / `tls.key`).
    Unpaired {
        /// The key present.
        present: &'static str,
        /// The key missing.
        missing: &'static str,
    },
}

/// What is wrong with a JSON value, by kind and position only: serde_json's
/// own message quotes the offending value (`invalid type: string "…"`,
/// `unknown variant `…``), which may be a seed pasted into the wrong key.
fn json_problem(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "could not be read",
        serde_json::error::Category::Syntax => "is not valid JSON",
        serde_json::error::Category::Data => "does not have the expected fields and types",
        serde_json::error::Category::Eof => "ends too early",
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

impl RuntimeBundle {
    /// The Secret's data (or a mounted volume's files), key by key.
    pub fn to_data(&self) -> BTreeMap<String, Vec<u8>> {
        let mut data = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_owned(), v.as_bytes().to_vec());
        };
        put(keys::LAYOUT_VERSION, &LAYOUT_VERSION.to_string());
        put(
            keys::ENROLLMENT_STATE,
            enrollment_state_name(self.enrollment_state),
        );
        put(keys::BASE_URL, &self.base_url);
        put(keys::USERNAME, &self.username);
        put(keys::PROFILE_NAME, &self.profile_name);
        put(keys::PROFILE, &self.profile_yaml);
        put(
            keys::VARIABLES,
            &serde_json::to_string(&self.variables).unwrap_or_else(|_| "{}".into()),
        );
        if let Some(totp) = &self.totp {
            put(keys::TOTP_SECRET, totp.secret.expose_secret());
            put(
                keys::TOTP_PARAMS,
                &serde_json::to_string(&totp.params).unwrap_or_default(),
            );
        }
        if let Some(step) = self.last_code_step {
            put(keys::LAST_CODE_STEP, &step.to_string());
        }
        if let Some(crt) = &self.tls_crt {
            put(keys::TLS_CRT, crt);
        }
        if let Some(key) = &self.tls_key {
            put(keys::TLS_KEY, key.expose_secret());
        }
        if let Some(ca) = &self.server_ca {
            put(keys::SERVER_CA, ca);
        }
        data
    }

    /// Parses a Secret's data (or a mounted volume's files). Unknown keys
    /// are ignored, so an older reader accepts a newer writer's additions
    /// within one layout version.
    pub fn from_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, RuntimeSecretError> {
        let text = |key: &'static str| -> Result<Option<&str>, RuntimeSecretError> {
            data.get(key)
                .map(|v| std::str::from_utf8(v).map_err(|_| RuntimeSecretError::NotUtf8 { key }))
                .transpose()
        };
        let required = |key: &'static str| -> Result<&str, RuntimeSecretError> {
            text(key)?.ok_or(RuntimeSecretError::Missing(key))
        };
        let malformed =
            |key: &'static str, reason: String| RuntimeSecretError::Malformed { key, reason };

        let version: u32 = required(keys::LAYOUT_VERSION)?
            .trim()
            .parse()
            .map_err(|e: std::num::ParseIntError| malformed(keys::LAYOUT_VERSION, e.to_string()))?;
        if version != LAYOUT_VERSION {
            return Err(RuntimeSecretError::UnsupportedVersion { found: version });
        }
        let enrollment_state = match required(keys::ENROLLMENT_STATE)?.trim() {
            "NotStarted" => EnrollmentState::NotStarted,
            "Pending" => EnrollmentState::Pending,
            "Enrolled" => EnrollmentState::Enrolled,
            // The value is not shown: a seed pasted into the wrong key
            // would end up in the sidecar's log and readiness answer.
            _ => {
                return Err(malformed(
                    keys::ENROLLMENT_STATE,
                    "expected NotStarted, Pending or Enrolled".into(),
                ));
            }
        };
        let variables = match text(keys::VARIABLES)? {
            Some(v) => {
                serde_json::from_str(v).map_err(|e| malformed(keys::VARIABLES, json_problem(&e)))?
            }
            None => BTreeMap::new(),
        };
        let totp = if enrollment_state == EnrollmentState::Enrolled {
            let secret = required(keys::TOTP_SECRET)?.trim();
            if secret.is_empty() {
                return Err(malformed(keys::TOTP_SECRET, "empty".into()));
            }
            let params = serde_json::from_str(required(keys::TOTP_PARAMS)?)
                .map_err(|e| malformed(keys::TOTP_PARAMS, json_problem(&e)))?;
            Some(StoredTotp {
                secret: SecretString::from(secret.to_owned()),
                params,
            })
        } else {
            None
        };
        let last_code_step = text(keys::LAST_CODE_STEP)?
            .map(|s| {
                s.trim()
                    .parse::<u64>()
                    .map_err(|e| malformed(keys::LAST_CODE_STEP, e.to_string()))
            })
            .transpose()?;
        let tls_crt = text(keys::TLS_CRT)?.map(str::to_owned);
        let tls_key = text(keys::TLS_KEY)?.map(|k| SecretString::from(k.to_owned()));
        match (&tls_crt, &tls_key) {
            (Some(_), None) => {
                return Err(RuntimeSecretError::Unpaired {
                    present: keys::TLS_CRT,
                    missing: keys::TLS_KEY,
                });
            }
            (None, Some(_)) => {
                return Err(RuntimeSecretError::Unpaired {
                    present: keys::TLS_KEY,
                    missing: keys::TLS_CRT,
                });
            }
            _ => {}
        }
        Ok(Self {
            enrollment_state,
            base_url: required(keys::BASE_URL)?.trim().to_owned(),
            username: required(keys::USERNAME)?.to_owned(),
            profile_name: required(keys::PROFILE_NAME)?.trim().to_owned(),
            profile_yaml: required(keys::PROFILE)?.to_owned(),
            variables,
            totp,
            last_code_step,
            tls_crt,
            tls_key,
            server_ca: text(keys::SERVER_CA)?.map(str::to_owned),
        })
    }
}

fn enrollment_state_name(state: EnrollmentState) -> &'static str {
    match state {
        EnrollmentState::Enrolled => "Enrolled",
        EnrollmentState::Pending => "Pending",
        // A disabled credential's runtime Secret holds no usable seed.
        EnrollmentState::NotStarted | EnrollmentState::Disabled => "NotStarted",
        // Status-only states: the operator writes the runtime Secret with
        // NotStarted, Pending or Enrolled. Should one reach here, the safe
        // reading for a sidecar is "no seed to log in with".
        EnrollmentState::Failed
        | EnrollmentState::LockedOut
        | EnrollmentState::ReenrollRequired => "NotStarted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> RuntimeBundle {
        RuntimeBundle {
            enrollment_state: EnrollmentState::Enrolled,
            base_url: "https://api.vendor.example/v1".into(),
            username: "bot".into(),
            profile_name: "audd".into(),
            profile_yaml: "enroll: {steps: []}\n".into(),
            variables: BTreeMap::from([("org".into(), "acme".into())]),
            totp: Some(StoredTotp {
                secret: SecretString::from("JBSWY3DPEHPK3PXP".to_owned()),
                params: StoredTotpParams {
                    algorithm: TotpAlgorithm::Sha1,
                    digits: 6,
                    period: 30,
                },
            }),
            last_code_step: Some(59_000_000),
            tls_crt: Some("-----BEGIN CERTIFICATE-----\n".into()),
            tls_key: Some(SecretString::from(
                "-----BEGIN PRIVATE KEY-----\n".to_owned(),
            )),
            server_ca: None,
        }
    }

    #[test]
    fn a_bundle_round_trips_through_secret_data() {
        let data = bundle().to_data();
        let back = RuntimeBundle::from_data(&data).expect("parses");
        assert_eq!(back.to_data(), data);
    }

    #[test]
    fn a_credential_not_yet_enrolled_has_no_seed_and_still_parses() {
        let mut b = bundle();
        b.enrollment_state = EnrollmentState::NotStarted;
        b.totp = None;
        let back = RuntimeBundle::from_data(&b.to_data()).expect("parses");
        assert!(back.totp.is_none());
        assert_eq!(back.enrollment_state, EnrollmentState::NotStarted);
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", bundle());
        assert!(!shown.contains("JBSWY3DP"), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }

    #[test]
    fn malformed_data_is_refused_naming_the_key() {
        type Edit = fn(&mut BTreeMap<String, Vec<u8>>);
        let cases: &[(&str, Edit, RuntimeSecretError)] = &[
            (
                "no totp secret",
                |d| {
                    d.remove(keys::TOTP_SECRET);
                },
                RuntimeSecretError::Missing(keys::TOTP_SECRET),
            ),
            (
                "future layout",
                |d| {
                    d.insert(keys::LAYOUT_VERSION.into(), b"2".to_vec());
                },
                RuntimeSecretError::UnsupportedVersion { found: 2 },
            ),
            (
                "certificate without key",
                |d| {
                    d.remove(keys::TLS_KEY);
                },
                RuntimeSecretError::Unpaired {
                    present: keys::TLS_CRT,
                    missing: keys::TLS_KEY,
                },
            ),
            (
                "binary username",
                |d| {
                    d.insert(keys::USERNAME.into(), vec![0xff, 0xfe]);
                },
                RuntimeSecretError::NotUtf8 {
                    key: keys::USERNAME,
                },
            ),
        ];
        for (name, edit, expected) in cases {
            let mut data = bundle().to_data();
            edit(&mut data);
            let got = RuntimeBundle::from_data(&data).err();
            assert_eq!(got.as_ref(), Some(expected), "{name}");
        }
    }

    #[test]
    fn the_session_key_is_kept_across_writes_and_made_once() {
        let first = session_key_value(None).expect("generated");
        let key = session_key_of(&BTreeMap::from([(keys::SESSION_KEY.into(), first.clone())]))
            .expect("reads")
            .expect("present");
        assert_eq!(session_key_value(Some(&first)), Some(first.clone()));
        assert_ne!(session_key_value(None), Some(first.clone()), "random");
        let repaired = session_key_value(Some(b"not a key")).expect("generated");
        assert!(SessionKey::from_text(&repaired).is_ok());
        assert!(matches!(session_key_of(&BTreeMap::new()), Ok(None)));
        assert!(!format!("{key:?}").contains(std::str::from_utf8(&first).expect("hex")));
        // The bundle ignores the key: older readers are unaffected.
        let mut data = bundle().to_data();
        data.insert(keys::SESSION_KEY.into(), first);
        assert!(RuntimeBundle::from_data(&data).is_ok());
    }

    #[test]
    fn a_bad_last_code_step_names_the_key_not_the_value() {
        let mut data = bundle().to_data();
        data.insert(keys::LAST_CODE_STEP.into(), b"JBSWY3DP".to_vec());
        let err = RuntimeBundle::from_data(&data).expect_err("refused");
        let text = err.to_string();
        assert!(text.contains(keys::LAST_CODE_STEP), "{text}");
        assert!(!text.contains("JBSWY3DP"), "{text}");
    }
}
