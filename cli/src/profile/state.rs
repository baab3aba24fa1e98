//! The `profile try` state file: what one flow leaves for the next (the
//! enrolled TOTP secret, recovery codes, the session) and an interrupted
//! enrollment's checkpoint. It holds secrets, so it is written with mode
//! 0600, through a temporary file renamed over it (never half written).

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use otpilot_api::profile::TotpAlgorithm;
use otpilot_profile::{TotpKey, TotpParams};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

/// The format this build reads and writes.
const VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct State {
    pub version: u32,
    /// The base URL the state belongs to: a state file is one account at
    /// one vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<StoredTotp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery_codes: Vec<String>,
    /// The time step of the last code sent (never sent again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_code_step: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<StoredSession>,
    /// An enrollment stopped part-way: the engine's checkpoint record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_enroll: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoredTotp {
    pub secret: String,
    pub algorithm: TotpAlgorithm,
    pub digits: u8,
    pub period: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoredSession {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix seconds.
    pub expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_at: Option<u64>,
}

impl StoredTotp {
    pub fn from_key(key: &TotpKey) -> Self {
        let p = key.params();
        Self {
            secret: key.secret_base32().expose_secret().to_owned(),
            algorithm: p.algorithm,
            digits: p.digits,
            period: p.period,
        }
    }

    pub fn to_key(&self) -> anyhow::Result<TotpKey> {
        TotpKey::from_base32(
            &self.secret,
            TotpParams {
                algorithm: self.algorithm,
                digits: self.digits,
                period: self.period,
            },
        )
        .context("the state file's TOTP secret is not valid")
    }
}

pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub fn from_unix_seconds(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

impl State {
    /// An empty state (a first run, or no `--state`).
    pub fn new() -> Self {
        Self {
            version: VERSION,
            ..Self::default()
        }
    }

    /// The state in `path`, or an empty one when the file does not exist.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        // serde_json's messages may quote a value: report the position only.
        let state: Self = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a profile try state file ({:?} error at line {} column {})",
                path.display(),
                e.classify(),
                e.line(),
                e.column()
            )
        })?;
        if state.version != VERSION {
            bail!(
                "{} has state format version {}; this build reads {VERSION}",
                path.display(),
                state.version
            );
        }
        Ok(state)
    }

    /// Writes the state with mode 0600.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "state".to_owned());
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // An older temporary file keeps its mode on open: set it anew.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("acme.state");
        let fresh = State::read(&path).expect("missing file: empty state");
        assert!(fresh.totp.is_none());
        let state = State {
            version: VERSION,
            recovery_codes: vec!["RC-1".into()],
            last_code_step: Some(7),
            ..State::default()
        };
        state.write(&path).expect("write");
        state.write(&path).expect("write again");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = State::read(&path).expect("read");
        assert_eq!(back.recovery_codes, vec!["RC-1".to_owned()]);
        assert_eq!(back.last_code_step, Some(7));

        std::fs::write(&path, "{\"version\": \"SECRETVALUE\"}").expect("write");
        let err = State::read(&path).expect_err("refused").to_string();
        assert!(!err.contains("SECRETVALUE"), "{err}");
    }
}
