//! The shared session of one ApiCredential's replicas: the contract between
//! the operator (which creates the session Secret, the Lease, and the Role
//! and RoleBinding that let workloads use exactly those two) and the
//! sidecars (one holds the Lease and publishes; the others watch the Secret).
//!
//! The record's values are sealed together with the credential's session
//! key ([`crate::session_key`]), which only sidecars hold
//! (`docs/shared-session.md` documents every key). A Secret the operator
//! just created has only [`keys::LAYOUT_VERSION`]: "no session published yet".

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use secrecy::{ExposeSecret, SecretString};

use crate::session_key::{SessionKey, SessionKeyError};

/// The layout this crate writes and reads: 2 seals the whole record
/// (version 1, plaintext keys, is recognised only to be refused).
pub const LAYOUT_VERSION: u32 = 2;

/// Secret data keys.
pub mod keys {
    /// Decimal layout version ([`super::LAYOUT_VERSION`]).
    pub const LAYOUT_VERSION: &str = "layout-version";
    /// The vendor's access token.
    pub const ACCESS_TOKEN: &str = "access-token";
    /// Its scheme (`Bearer`, `jwt`); absent for a vendor that takes the bare token.
    pub const TOKEN_TYPE: &str = "token-type";
    /// When the access token was obtained, Unix milliseconds (decimal).
    pub const OBTAINED_AT: &str = "obtained-at-ms";
    /// When the access token expires, Unix milliseconds (decimal).
    pub const EXPIRES_AT: &str = "expires-at-ms";
    /// The refresh token, when the vendor gave one.
    pub const REFRESH_TOKEN: &str = "refresh-token";
    /// When the refresh token expires, Unix milliseconds, when known.
    pub const REFRESH_EXPIRES_AT: &str = "refresh-expires-at-ms";
    /// The last TOTP time step used by any holder: the next holder never
    /// sends a code from it or an earlier step.
    pub const LAST_CODE_STEP: &str = "last-code-step";
    /// The Lease holder identity that published this session.
    pub const HOLDER: &str = "holder";
    /// Layout 2: the id of the session key that sealed [`SEALED_SESSION`]
    /// (public, derived one-way from the key).
    pub const KEY_ID: &str = "key-id";
    /// Layout 2: all of the keys above (but `layout-version`) as a JSON
    /// object, sealed (nonce, ciphertext, tag). The only place they are.
    pub const SEALED_SESSION: &str = "sealed-session";
}

/// Name of an ApiCredential's session Secret.
pub fn session_secret_name(credential: &str) -> String {
    format!("{credential}-session")
}

/// Name of an ApiCredential's session Lease (`coordination.k8s.io`).
pub fn session_lease_name(credential: &str) -> String {
    format!("{credential}-session")
}

/// Name of the Role and RoleBinding that let workloads use the session.
pub fn session_role_name(credential: &str) -> String {
    format!("otpilot-session-{credential}")
}

/// What the workload's ServiceAccount may do: read, watch and update
/// exactly this credential's session Secret and Lease. No `create`: the
/// operator creates both, so nothing else in the namespace is reachable.
pub fn session_role_rules(credential: &str) -> Vec<PolicyRule> {
    let verbs = vec!["get".to_owned(), "watch".to_owned(), "update".to_owned()];
    // `list` with a field selector on the name is how a watch starts
    // (kube-runtime's watcher lists, then watches); RBAC matches
    // resourceNames on list only with a metadata.name field selector.
    let with_list = {
        let mut v = verbs.clone();
        v.push("list".to_owned());
        v
    };
    vec![
        PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".to_owned()]),
            resource_names: Some(vec![session_secret_name(credential)]),
            verbs: with_list,
            ..PolicyRule::default()
        },
        PolicyRule {
            api_groups: Some(vec!["coordination.k8s.io".to_owned()]),
            resources: Some(vec!["leases".to_owned()]),
            resource_names: Some(vec![session_lease_name(credential)]),
            verbs,
            ..PolicyRule::default()
        },
    ]
}

/// The RoleBinding's reference to the Role.
pub fn session_role_ref(credential: &str) -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".to_owned()),
        kind: "Role".to_owned(),
        name: session_role_name(credential),
    }
}

/// A ServiceAccount as a RoleBinding subject.
pub fn service_account_subject(namespace: &str, name: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".to_owned(),
        name: name.to_owned(),
        namespace: Some(namespace.to_owned()),
        api_group: None,
    }
}

/// A published session. `Debug` shows no token.
#[derive(Clone)]
pub struct SessionRecord {
    /// See [`keys::ACCESS_TOKEN`].
    pub access_token: SecretString,
    /// See [`keys::TOKEN_TYPE`].
    pub token_type: Option<String>,
    /// See [`keys::OBTAINED_AT`].
    pub obtained_at: SystemTime,
    /// See [`keys::EXPIRES_AT`].
    pub expires_at: SystemTime,
    /// See [`keys::REFRESH_TOKEN`].
    pub refresh_token: Option<SecretString>,
    /// See [`keys::REFRESH_EXPIRES_AT`].
    pub refresh_expires_at: Option<SystemTime>,
    /// See [`keys::LAST_CODE_STEP`].
    pub last_code_step: Option<u64>,
    /// See [`keys::HOLDER`].
    pub holder: String,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("token_type", &self.token_type)
            .field("obtained_at", &self.obtained_at)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("last_code_step", &self.last_code_step)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

/// Why a session Secret could not be read. Messages name the key, never a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionSecretError {
    #[error("session Secret has no key {0}")]
    /// A required key is absent.
    Missing(&'static str),
    #[error("session Secret key {key} is malformed: {reason}")]
    /// A key's value does not parse.
    Malformed {
        /// The key.
        key: &'static str,
        /// What is wrong (never the value).
        reason: String,
    },
    #[error(
        "session Secret layout version {found} is not supported (this build reads {LAYOUT_VERSION}); \
         run sidecars of one release"
    )]
    /// The layout version is not this build's.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    #[error(
        "session Secret holds an unsealed session (layout version 1, written by an older sidecar); \
         ignoring it: this build only trusts sessions sealed with the credential's session key"
    )]
    /// A plaintext session from an older release: anyone with the Pod's
    /// ServiceAccount could have written it.
    Unsealed,
    #[error(
        "session Secret's sealed session does not open with this sidecar's session key (key id {key_id}); \
         ignoring it: it was written with another key or by something that has no key"
    )]
    /// The sealed value does not open: forged, corrupted, or another key.
    NotOpened {
        /// The id of the key tried (public, derived one-way).
        key_id: String,
    },
    #[error("session Secret is larger than {limit} bytes; ignoring it")]
    /// More data than any sidecar writes: not parsed at all.
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// The most a sidecar writes to the session Secret (all keys and values):
/// anything larger is not parsed.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;
/// The longest holder identity read (a Pod name is at most 253 characters).
pub const MAX_HOLDER_LEN: usize = 253;

fn millis(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string()
}

/// The data of a session Secret nobody has published to yet.
pub fn empty_data() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([(
        keys::LAYOUT_VERSION.to_owned(),
        LAYOUT_VERSION.to_string().into_bytes(),
    )])
}

impl SessionRecord {
    /// The record's values, key by key, before sealing (the keys of
    /// layout version 1, without `layout-version`).
    fn fields(&self) -> BTreeMap<String, String> {
        let mut data = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_owned(), v.to_owned());
        };
        put(keys::ACCESS_TOKEN, self.access_token.expose_secret());
        if let Some(t) = &self.token_type {
            put(keys::TOKEN_TYPE, t);
        }
        put(keys::OBTAINED_AT, &millis(self.obtained_at));
        put(keys::EXPIRES_AT, &millis(self.expires_at));
        if let Some(r) = &self.refresh_token {
            put(keys::REFRESH_TOKEN, r.expose_secret());
        }
        if let Some(t) = self.refresh_expires_at {
            put(keys::REFRESH_EXPIRES_AT, &millis(t));
        }
        if let Some(step) = self.last_code_step {
            put(keys::LAST_CODE_STEP, &step.to_string());
        }
        put(keys::HOLDER, &self.holder);
        data
    }

    /// The Secret's data: every value of the record sealed together under
    /// `key` for `scope` (the credential's `namespace/name`), so an app
    /// container that can read the Secret gets ciphertext only, and one
    /// that writes it cannot make a sidecar accept anything.
    pub fn seal(
        &self,
        key: &SessionKey,
        scope: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, SessionKeyError> {
        // Every value is UTF-8 text, so the JSON of the map cannot fail.
        let plaintext = serde_json::to_vec(&self.fields()).unwrap_or_default();
        let mut data = empty_data();
        data.insert(keys::KEY_ID.to_owned(), key.id().into_bytes());
        data.insert(
            keys::SEALED_SESSION.to_owned(),
            key.seal(scope, &plaintext)?,
        );
        Ok(data)
    }

    /// Reads a session Secret's data sealed by [`Self::seal`]: `Ok(None)`
    /// when nothing is published yet. Sizes are checked before anything is
    /// parsed; a plaintext (older) or unopenable value is an error the
    /// caller treats as "no session".
    pub fn open(
        data: &BTreeMap<String, Vec<u8>>,
        key: &SessionKey,
        scope: &str,
    ) -> Result<Option<Self>, SessionSecretError> {
        let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_SECRET_BYTES {
            return Err(SessionSecretError::TooLarge {
                limit: MAX_SECRET_BYTES,
            });
        }
        let version = data
            .get(keys::LAYOUT_VERSION)
            .ok_or(SessionSecretError::Missing(keys::LAYOUT_VERSION))?;
        let version: u32 = std::str::from_utf8(version)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| SessionSecretError::Malformed {
                key: keys::LAYOUT_VERSION,
                reason: "not a decimal number".into(),
            })?;
        match version {
            1 if data.get(keys::ACCESS_TOKEN).is_some_and(|v| !v.is_empty()) => {
                return Err(SessionSecretError::Unsealed);
            }
            1 => return Ok(None),
            LAYOUT_VERSION => {}
            found => return Err(SessionSecretError::UnsupportedVersion { found }),
        }
        let Some(sealed) = data.get(keys::SEALED_SESSION).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let plaintext = key
            .open(scope, sealed)
            .ok_or_else(|| SessionSecretError::NotOpened { key_id: key.id() })?;
        let fields: BTreeMap<String, String> =
            serde_json::from_slice(&plaintext).map_err(|_| SessionSecretError::Malformed {
                key: keys::SEALED_SESSION,
                reason: "the opened value is not a JSON object of strings".into(),
            })?;
        Self::from_fields(&fields)
    }

    fn from_fields(data: &BTreeMap<String, String>) -> Result<Option<Self>, SessionSecretError> {
        let malformed =
            |key: &'static str, reason: String| SessionSecretError::Malformed { key, reason };
        let text = |key: &'static str| data.get(key).map(String::as_str);
        let number = |key: &'static str| -> Result<Option<u64>, SessionSecretError> {
            text(key)
                .map(|s| {
                    s.trim()
                        .parse::<u64>()
                        .map_err(|e| malformed(key, e.to_string()))
                })
                .transpose()
        };
        let time = |key: &'static str| -> Result<Option<SystemTime>, SessionSecretError> {
            number(key)?
                .map(|ms| {
                    UNIX_EPOCH
                        .checked_add(Duration::from_millis(ms))
                        .ok_or_else(|| malformed(key, "out of range".into()))
                })
                .transpose()
        };
        let Some(access) = text(keys::ACCESS_TOKEN).filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let holder = text(keys::HOLDER).unwrap_or_default();
        if holder.len() > MAX_HOLDER_LEN {
            return Err(malformed(keys::HOLDER, "longer than a Pod name".into()));
        }
        Ok(Some(Self {
            access_token: SecretString::from(access.to_owned()),
            token_type: text(keys::TOKEN_TYPE).map(str::to_owned),
            obtained_at: time(keys::OBTAINED_AT)?
                .ok_or(SessionSecretError::Missing(keys::OBTAINED_AT))?,
            expires_at: time(keys::EXPIRES_AT)?
                .ok_or(SessionSecretError::Missing(keys::EXPIRES_AT))?,
            refresh_token: text(keys::REFRESH_TOKEN)
                .filter(|r| !r.is_empty())
                .map(|r| SecretString::from(r.to_owned())),
            refresh_expires_at: time(keys::REFRESH_EXPIRES_AT)?,
            last_code_step: number(keys::LAST_CODE_STEP)?,
            holder: holder.to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SessionRecord {
        SessionRecord {
            access_token: SecretString::from("at-1"),
            token_type: Some("Bearer".into()),
            obtained_at: UNIX_EPOCH + Duration::from_millis(1_800_000_000_000),
            expires_at: UNIX_EPOCH + Duration::from_millis(1_800_000_300_000),
            refresh_token: Some(SecretString::from("rt-1")),
            refresh_expires_at: Some(UNIX_EPOCH + Duration::from_millis(1_800_000_900_000)),
            last_code_step: Some(900_000_000),
            holder: "pod-a".into(),
        }
    }

    fn key() -> SessionKey {
        SessionKey::from_text(&[b'7'; 64]).expect("key")
    }

    #[test]
    fn a_sealed_record_round_trips_shows_no_token_and_debug_shows_none() {
        let data = record().seal(&key(), "ns/c").expect("seals");
        for value in data.values() {
            let text = String::from_utf8_lossy(value);
            assert!(!text.contains("at-1") && !text.contains("rt-1"), "{text}");
        }
        let back = SessionRecord::open(&data, &key(), "ns/c")
            .expect("parses")
            .expect("published");
        assert_eq!(back.access_token.expose_secret(), "at-1");
        assert_eq!(back.refresh_token.expect("rt").expose_secret(), "rt-1");
        assert_eq!(back.expires_at, record().expires_at);
        assert_eq!(back.last_code_step, Some(900_000_000));
        assert_eq!(back.holder, "pod-a");
        let shown = format!("{:?}", record());
        assert!(
            !shown.contains("at-1") && !shown.contains("rt-1"),
            "{shown}"
        );
    }

    #[test]
    fn only_a_sealed_session_of_this_key_and_credential_is_a_session() {
        let other = SessionKey::from_text(&[b'8'; 64]).expect("key");
        let sealed = record().seal(&key(), "ns/c").expect("seals");
        let plaintext_v1: BTreeMap<String, Vec<u8>> = record()
            .fields()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .chain([(keys::LAYOUT_VERSION.to_owned(), b"1".to_vec())])
            .collect();
        let mut garbage = sealed.clone();
        garbage.insert(keys::SEALED_SESSION.into(), b"not sealed at all".to_vec());
        let mut huge = sealed.clone();
        huge.insert("padding".into(), vec![b'0'; MAX_SECRET_BYTES]);
        let mut newer = sealed.clone();
        newer.insert(keys::LAYOUT_VERSION.into(), b"3".to_vec());
        let v1_empty = BTreeMap::from([(keys::LAYOUT_VERSION.to_owned(), b"1".to_vec())]);
        let open = |d: &BTreeMap<String, Vec<u8>>, k: &SessionKey, scope| {
            SessionRecord::open(d, k, scope).map(|r| r.is_some())
        };
        let cases = [
            ("sealed", open(&sealed, &key(), "ns/c"), Ok(true)),
            ("empty", open(&empty_data(), &key(), "ns/c"), Ok(false)),
            ("empty v1", open(&v1_empty, &key(), "ns/c"), Ok(false)),
            (
                "plaintext from an older sidecar",
                open(&plaintext_v1, &key(), "ns/c"),
                Err(SessionSecretError::Unsealed),
            ),
            (
                "another key",
                open(&sealed, &other, "ns/c"),
                Err(SessionSecretError::NotOpened { key_id: other.id() }),
            ),
            (
                "another credential",
                open(&sealed, &key(), "ns/d"),
                Err(SessionSecretError::NotOpened { key_id: key().id() }),
            ),
            (
                "garbage",
                open(&garbage, &key(), "ns/c"),
                Err(SessionSecretError::NotOpened { key_id: key().id() }),
            ),
            (
                "huge",
                open(&huge, &key(), "ns/c"),
                Err(SessionSecretError::TooLarge {
                    limit: MAX_SECRET_BYTES,
                }),
            ),
            (
                "newer layout",
                open(&newer, &key(), "ns/c"),
                Err(SessionSecretError::UnsupportedVersion { found: 3 }),
            ),
            (
                "no version",
                open(&BTreeMap::new(), &key(), "ns/c"),
                Err(SessionSecretError::Missing(keys::LAYOUT_VERSION)),
            ),
        ];
        for (what, got, want) in cases {
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn a_sealed_but_bad_value_names_the_key_not_the_value() {
        let mut fields = record().fields();
        fields.insert(keys::EXPIRES_AT.into(), "soon-at-1".into());
        let err = SessionRecord::from_fields(&fields).expect_err("malformed");
        assert!(matches!(
            err,
            SessionSecretError::Malformed {
                key: keys::EXPIRES_AT,
                ..
            }
        ));
        assert!(!err.to_string().contains("at-1"), "{err}");
    }

    #[test]
    fn the_role_names_only_this_credentials_objects_and_never_create() {
        let rules = session_role_rules("billing");
        for rule in &rules {
            assert_eq!(
                rule.resource_names.as_deref(),
                Some(&["billing-session".to_owned()][..])
            );
            assert!(!rule.verbs.iter().any(|v| v == "create" || v == "delete"));
        }
    }
}
