//! The shared session of one ApiCredential's replicas: the contract between
//! the operator (which creates the session Secret, the Lease, and the Role
//! and RoleBinding that let workloads use exactly those two) and the
//! sidecars (one holds the Lease and publishes; the others watch the Secret).
//!
//! One key per value, like the runtime Secret (`docs/shared-session.md`
//! documents every key). A Secret the operator just created has only
//! [`keys::LAYOUT_VERSION`]: "no session published yet".

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use secrecy::{ExposeSecret, SecretString};

/// The layout this crate writes and reads.
pub const LAYOUT_VERSION: u32 = 1;

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
}

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
    /// The Secret's data, key by key.
    pub fn to_data(&self) -> BTreeMap<String, Vec<u8>> {
        let mut data = empty_data();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_owned(), v.as_bytes().to_vec());
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

    /// Parses a Secret's data: `Ok(None)` when nothing is published yet.
    /// Unknown keys are ignored (newer writers within one layout version).
    pub fn from_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Option<Self>, SessionSecretError> {
        let malformed =
            |key: &'static str, reason: String| SessionSecretError::Malformed { key, reason };
        let text = |key: &'static str| -> Result<Option<&str>, SessionSecretError> {
            data.get(key)
                .map(|v| std::str::from_utf8(v).map_err(|_| malformed(key, "not UTF-8".into())))
                .transpose()
        };
        let required = |key: &'static str| -> Result<&str, SessionSecretError> {
            text(key)?.ok_or(SessionSecretError::Missing(key))
        };
        let number = |key: &'static str| -> Result<Option<u64>, SessionSecretError> {
            text(key)?
                .map(|s| {
                    s.trim()
                        .parse::<u64>()
                        .map_err(|e| malformed(key, e.to_string()))
                })
                .transpose()
        };
        let time = |key: &'static str| -> Result<Option<SystemTime>, SessionSecretError> {
            Ok(number(key)?.map(|ms| UNIX_EPOCH + Duration::from_millis(ms)))
        };
        let version: u32 = required(keys::LAYOUT_VERSION)?
            .trim()
            .parse()
            .map_err(|e: std::num::ParseIntError| malformed(keys::LAYOUT_VERSION, e.to_string()))?;
        if version != LAYOUT_VERSION {
            return Err(SessionSecretError::UnsupportedVersion { found: version });
        }
        let Some(access) = text(keys::ACCESS_TOKEN)? else {
            return Ok(None);
        };
        if access.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            access_token: SecretString::from(access.to_owned()),
            token_type: text(keys::TOKEN_TYPE)?.map(str::to_owned),
            obtained_at: time(keys::OBTAINED_AT)?
                .ok_or(SessionSecretError::Missing(keys::OBTAINED_AT))?,
            expires_at: time(keys::EXPIRES_AT)?
                .ok_or(SessionSecretError::Missing(keys::EXPIRES_AT))?,
            refresh_token: text(keys::REFRESH_TOKEN)?
                .filter(|r| !r.is_empty())
                .map(|r| SecretString::from(r.to_owned())),
            refresh_expires_at: time(keys::REFRESH_EXPIRES_AT)?,
            last_code_step: number(keys::LAST_CODE_STEP)?,
            holder: text(keys::HOLDER)?.unwrap_or_default().to_owned(),
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

    #[test]
    fn a_record_round_trips_and_debug_shows_no_token() {
        let back = SessionRecord::from_data(&record().to_data())
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
    fn an_empty_or_unpublished_secret_is_no_session_and_bad_ones_name_the_key() {
        assert!(
            SessionRecord::from_data(&empty_data())
                .expect("ok")
                .is_none()
        );
        let mut bad = record().to_data();
        bad.insert(keys::EXPIRES_AT.into(), b"soon".to_vec());
        assert!(matches!(
            SessionRecord::from_data(&bad),
            Err(SessionSecretError::Malformed {
                key: keys::EXPIRES_AT,
                ..
            })
        ));
        let mut newer = record().to_data();
        newer.insert(keys::LAYOUT_VERSION.into(), b"2".to_vec());
        assert_eq!(
            SessionRecord::from_data(&newer).err(),
            Some(SessionSecretError::UnsupportedVersion { found: 2 })
        );
        assert_eq!(
            SessionRecord::from_data(&BTreeMap::new()).err(),
            Some(SessionSecretError::Missing(keys::LAYOUT_VERSION))
        );
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
