//! The secret ledger, a test tool: when `OTPILOT_SECRET_LEDGER` names a
//! file, every secret the simulator knows or issues (account passwords and
//! API keys, client secrets, TOTP seeds, recovery codes, tokens) is appended
//! to it, one `kind<TAB>value` line each, so that a scan after the whole
//! test run (`scripts/secret-scan.py`) can look for each value in the logs,
//! Events, status and metrics the run produced. Off (and free) otherwise;
//! a simulator serving real users has no reason to set it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The variable naming the ledger file.
pub const LEDGER_ENV: &str = "OTPILOT_SECRET_LEDGER";

/// What a ledger line holds (the scan reports the kind, never the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// An account's password.
    Password,
    /// An account's API key.
    ApiKey,
    /// An OAuth client secret.
    ClientSecret,
    /// Base32 text, as the vendor hands it out.
    TotpSeed,
    /// A recovery (backup) code.
    RecoveryCode,
    /// An access or refresh token the simulator issued.
    Token,
}

impl SecretKind {
    fn as_str(self) -> &'static str {
        match self {
            SecretKind::Password => "password",
            SecretKind::ApiKey => "api-key",
            SecretKind::ClientSecret => "client-secret",
            SecretKind::TotpSeed => "totp-seed",
            SecretKind::RecoveryCode => "recovery-code",
            SecretKind::Token => "token",
        }
    }
}

/// An append-only ledger file.
#[derive(Debug, Clone)]
pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    /// A ledger appending to `path` (created when missing).
    pub fn at(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_owned(),
        }
    }

    /// Appends `value`. One `write` per line on a file opened for append,
    /// so lines from several test processes never interleave. A value with
    /// a line break (none here) is recorded line by line. Failing to write
    /// panics: a scan with a silently short ledger would prove nothing.
    pub fn record(&self, kind: SecretKind, value: &str) {
        let mut text = String::new();
        for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
            text.push_str(kind.as_str());
            text.push('\t');
            text.push_str(line);
            text.push('\n');
        }
        if text.is_empty() {
            return;
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(text.as_bytes()));
        if let Err(error) = written {
            panic!(
                "cannot append to the secret ledger {}: {error}",
                self.path.display()
            );
        }
    }
}

/// The process's ledger, from `OTPILOT_SECRET_LEDGER` (read once).
fn global() -> Option<&'static Ledger> {
    static LEDGER: OnceLock<Option<Ledger>> = OnceLock::new();
    LEDGER
        .get_or_init(|| {
            std::env::var_os(LEDGER_ENV)
                .filter(|p| !p.is_empty())
                .map(Ledger::at)
        })
        .as_ref()
}

/// Records `value` in the process's ledger, when there is one.
pub fn record(kind: SecretKind, value: &str) {
    if let Some(ledger) = global() {
        ledger.record(kind, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_appended_one_line_each_with_their_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::at(dir.path().join("ledger"));
        ledger.record(SecretKind::Password, "pw one");
        ledger.record(SecretKind::Token, "a.b.c");
        ledger.record(SecretKind::RecoveryCode, "");
        ledger.record(SecretKind::TotpSeed, "AAAA\nBBBB\n");
        let text = std::fs::read_to_string(dir.path().join("ledger")).expect("read");
        assert_eq!(
            text,
            "password\tpw one\ntoken\ta.b.c\ntotp-seed\tAAAA\ntotp-seed\tBBBB\n"
        );
    }
}
