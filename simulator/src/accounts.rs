//! The vendor's user database: credentials, TOTP enrollment, recovery codes,
//! the last accepted step (for replay protection), lock-out counters and the
//! live refresh tokens of each account.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::AccountSpec;
use crate::totp::{constant_time_eq, to_base32};

/// A TOTP secret created but not yet confirmed with a code.
#[derive(Clone)]
pub struct PendingSecret {
    /// Identifier of the secret (goaxr's `:secretId`).
    pub id: String,
    /// Raw secret bytes.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for PendingSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSecret")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// One account at the vendor.
#[derive(Clone)]
pub struct Account {
    /// Identifier used in vendor paths.
    pub id: String,
    /// Login name.
    pub username: String,
    password: String,
    api_key: String,
    /// The confirmed TOTP secret, once MFA is on.
    pub enrolled_secret: Option<Vec<u8>>,
    /// Identifier of the confirmed secret.
    pub enrolled_secret_id: Option<String>,
    /// A secret waiting for its first code.
    pub pending: Option<PendingSecret>,
    /// Recovery codes not used yet.
    pub recovery_codes: Vec<String>,
    /// Last TOTP step accepted for this account.
    pub last_step: Option<u64>,
    /// Consecutive wrong codes.
    pub failures: u32,
    /// When the lock-out ends (Unix ms), while locked.
    pub locked_until_ms: Option<u64>,
    /// Cryptr: a recovery code was used, so the user must enroll again.
    pub needs_reenrollment: bool,
    /// TOTP codes accepted (enrollment confirmations and logins).
    pub accepted_codes: u64,
    /// Refresh tokens exchanged successfully.
    pub refreshes: u64,
    /// Enrollments started (a secret handed out for confirmation).
    pub enrollments_started: u64,
    /// Enrollments confirmed (a pending secret turned into the enrolled one).
    pub enrollments_confirmed: u64,
    /// Wrong codes (TOTP or recovery) refused, lock-outs or not.
    pub refused_codes: u64,
    /// Lock-outs started.
    pub lockouts: u64,
    // Live refresh tokens (jti → exp, Unix s): one use each.
    refresh_tokens: HashMap<String, u64>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets (password, API key, TOTP seed, recovery codes) are
        // never printed.
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("enrolled", &self.is_enrolled())
            .field("recovery_codes_left", &self.recovery_codes.len())
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

impl Account {
    fn new(spec: &AccountSpec) -> Self {
        crate::ledger::record(crate::ledger::SecretKind::Password, &spec.password);
        crate::ledger::record(crate::ledger::SecretKind::ApiKey, &spec.api_key);
        Self {
            id: new_id(),
            username: spec.username.clone(),
            password: spec.password.clone(),
            api_key: spec.api_key.clone(),
            enrolled_secret: None,
            enrolled_secret_id: None,
            pending: None,
            recovery_codes: Vec::new(),
            last_step: None,
            failures: 0,
            locked_until_ms: None,
            needs_reenrollment: false,
            accepted_codes: 0,
            refreshes: 0,
            enrollments_started: 0,
            enrollments_confirmed: 0,
            refused_codes: 0,
            lockouts: 0,
            refresh_tokens: HashMap::new(),
        }
    }

    /// Whether `password` is this account's.
    pub fn password_matches(&self, password: &str) -> bool {
        constant_time_eq(self.password.as_bytes(), password.as_bytes())
    }

    /// Whether `api_key` is this account's.
    pub fn api_key_matches(&self, api_key: &str) -> bool {
        !self.api_key.is_empty() && constant_time_eq(self.api_key.as_bytes(), api_key.as_bytes())
    }

    /// Whether MFA is on.
    pub fn is_enrolled(&self) -> bool {
        self.enrolled_secret.is_some()
    }

    /// Turns the pending secret into the enrolled one.
    pub fn activate_pending(&mut self) -> bool {
        match self.pending.take() {
            Some(pending) => {
                self.enrolled_secret = Some(pending.secret);
                self.enrolled_secret_id = Some(pending.id);
                self.needs_reenrollment = false;
                self.enrollments_confirmed += 1;
                true
            }
            None => false,
        }
    }

    /// Starts enrolling `secret`. A new secret starts a new replay history.
    pub fn set_pending(&mut self, id: String, secret: Vec<u8>) {
        // Every vendor's seed passes here, whoever generated it.
        crate::ledger::record(
            crate::ledger::SecretKind::TotpSeed,
            &crate::totp::to_base32(&secret),
        );
        self.pending = Some(PendingSecret { id, secret });
        self.enrollments_started += 1;
        if !self.is_enrolled() {
            self.last_step = None;
        }
    }

    /// Turns MFA off and forgets secrets and recovery codes.
    pub fn disable_mfa(&mut self) {
        self.enrolled_secret = None;
        self.enrolled_secret_id = None;
        self.pending = None;
        self.recovery_codes.clear();
        self.needs_reenrollment = false;
    }

    /// Records a refresh token as live.
    pub fn remember_refresh(&mut self, jti: String, exp: u64, now: u64) {
        // Forget expired ones so the map does not grow without bound.
        self.refresh_tokens.retain(|_, e| *e > now);
        self.refresh_tokens.insert(jti, exp);
    }

    /// Uses up a refresh token; false when it was already used or unknown.
    pub fn take_refresh(&mut self, jti: &str) -> bool {
        self.refresh_tokens.remove(jti).is_some()
    }

    /// Consumes a recovery code. Codes compare exactly as issued, after
    /// the one normalisation a vendor documents (`matching`): no case- or
    /// dash-folding that would hide a client mangling its codes.
    pub fn take_recovery_code(&mut self, code: &str, matching: RecoveryMatch) -> bool {
        let wanted = matching.normalize(code);
        if wanted.is_empty() {
            return false;
        }
        let found = self
            .recovery_codes
            .iter()
            .position(|c| constant_time_eq(matching.normalize(c).as_bytes(), wanted.as_bytes()));
        match found {
            Some(i) => {
                self.recovery_codes.remove(i);
                true
            }
            None => false,
        }
    }

    /// What the admin API shows.
    pub fn state(&self) -> AccountState {
        AccountState {
            id: self.id.clone(),
            username: self.username.clone(),
            enrolled: self.is_enrolled(),
            totp_secret_base32: self.enrolled_secret.as_deref().map(to_base32),
            pending_totp_secret_base32: self.pending.as_ref().map(|p| to_base32(&p.secret)),
            recovery_codes_left: self.recovery_codes.len(),
            last_accepted_step: self.last_step,
            failed_attempts: self.failures,
            locked_until_unix_ms: self.locked_until_ms,
            needs_reenrollment: self.needs_reenrollment,
            live_refresh_tokens: self.refresh_tokens.len(),
            accepted_codes: self.accepted_codes,
            refreshes: self.refreshes,
            enrollments_started: self.enrollments_started,
            enrollments_confirmed: self.enrollments_confirmed,
            refused_codes: self.refused_codes,
            lockouts: self.lockouts,
        }
    }
}

/// How a vendor compares a recovery code with the ones it issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMatch {
    /// Byte for byte.
    Exact,
    /// Without spaces: Conduit hands out `"3892 3664"` and documents
    /// `"38923664"` as what recovery takes.
    IgnoreSpaces,
}

impl RecoveryMatch {
    fn normalize(self, code: &str) -> String {
        match self {
            RecoveryMatch::Exact => code.to_owned(),
            RecoveryMatch::IgnoreSpaces => code.chars().filter(|c| *c != ' ').collect(),
        }
    }
}

/// An account as the admin API reports it (test material: includes the
/// TOTP secret, which is the point of a simulator).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccountState {
    /// Identifier used in vendor paths.
    pub id: String,
    /// Login name.
    pub username: String,
    /// MFA on.
    pub enrolled: bool,
    /// The secret the vendor verifies codes with (base32), once enrolled.
    pub totp_secret_base32: Option<String>,
    /// A secret created but not confirmed yet.
    pub pending_totp_secret_base32: Option<String>,
    /// Recovery codes still usable.
    pub recovery_codes_left: usize,
    /// Last TOTP step accepted (RFC 6238 §5.2).
    pub last_accepted_step: Option<u64>,
    /// Consecutive wrong codes so far.
    pub failed_attempts: u32,
    /// End of the lock-out, while locked.
    pub locked_until_unix_ms: Option<u64>,
    /// Cryptr: must enroll again after a recovery code.
    pub needs_reenrollment: bool,
    /// Refresh tokens issued and not yet used or expired.
    pub live_refresh_tokens: usize,
    /// TOTP codes accepted so far (enrollment confirmations and logins):
    /// how many TOTP logins clients made.
    #[serde(default)]
    pub accepted_codes: u64,
    /// Refresh tokens exchanged successfully so far.
    #[serde(default)]
    pub refreshes: u64,
    /// Enrollments started (a secret handed out for confirmation): more
    /// than one for one identity is a second enrollment.
    #[serde(default)]
    pub enrollments_started: u64,
    /// Enrollments confirmed (MFA turned on with a new secret).
    #[serde(default)]
    pub enrollments_confirmed: u64,
    /// Wrong codes (TOTP or recovery) refused so far; replays not counted.
    #[serde(default)]
    pub refused_codes: u64,
    /// Lock-outs started so far.
    #[serde(default)]
    pub lockouts: u64,
}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    /// The username is taken.
    #[error("an account named {0:?} already exists")]
    Duplicate(String),
    /// An empty username or password.
    #[error("username and password must not be empty")]
    Empty,
}

/// All accounts, keyed by id.
#[derive(Debug, Default)]
pub struct AccountStore {
    accounts: Mutex<HashMap<String, Account>>,
}

impl AccountStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        // A handler that panicked mid-update leaves plain data behind;
        // keep serving rather than poisoning every later request.
        self.accounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates an account; usernames are unique (case-insensitive).
    pub fn create(&self, spec: &AccountSpec) -> Result<AccountState, AccountError> {
        if spec.username.is_empty() || spec.password.is_empty() {
            return Err(AccountError::Empty);
        }
        let mut accounts = self.lock();
        if accounts
            .values()
            .any(|a| a.username.eq_ignore_ascii_case(&spec.username))
        {
            return Err(AccountError::Duplicate(spec.username.clone()));
        }
        let account = Account::new(spec);
        let state = account.state();
        accounts.insert(account.id.clone(), account);
        Ok(state)
    }

    /// Runs `f` on the account with this id.
    pub fn with_id<R>(&self, id: &str, f: impl FnOnce(&mut Account) -> R) -> Option<R> {
        self.lock().get_mut(id).map(f)
    }

    /// Runs `f` on the account with this username (case-insensitive).
    pub fn with_username<R>(&self, username: &str, f: impl FnOnce(&mut Account) -> R) -> Option<R> {
        self.lock()
            .values_mut()
            .find(|a| a.username.eq_ignore_ascii_case(username))
            .map(f)
    }

    /// The id of the account whose API key this is.
    pub fn id_for_api_key(&self, api_key: &str) -> Option<String> {
        self.lock()
            .values()
            .find(|a| a.api_key_matches(api_key))
            .map(|a| a.id.clone())
    }

    /// Every account's state, by username.
    pub fn list(&self) -> Vec<AccountState> {
        let mut all: Vec<_> = self.lock().values().map(Account::state).collect();
        all.sort_by(|a, b| a.username.cmp(&b.username));
        all
    }
}

/// A random UUID-shaped identifier (goaxr's paths use UUIDs).
pub fn new_id() -> String {
    let b: [u8; 16] = rand::rng().random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
    )
}

/// Recovery-code formats, one per vendor.
#[derive(Debug, Clone, Copy)]
pub enum RecoveryFormat {
    /// AUDD/FusionAuth: `XXXXX-XXXXX`.
    FusionAuth,
    /// Conduit: `"dddd dddd"`.
    Conduit,
    /// Ours (goaxr, Cryptr): `xxxx-xxxx-xxxx`, lowercase alphanumerics.
    Groups,
}

/// `n` fresh recovery codes.
pub fn recovery_codes(format: RecoveryFormat, n: usize) -> Vec<String> {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    const LOWER: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let mut pick = |alphabet: &[u8], len: usize| -> String {
        (0..len)
            .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
            .collect()
    };
    let codes: Vec<String> = (0..n)
        .map(|_| match format {
            RecoveryFormat::FusionAuth => format!("{}-{}", pick(UPPER, 5), pick(UPPER, 5)),
            RecoveryFormat::Conduit => {
                format!("{} {}", pick(b"0123456789", 4), pick(b"0123456789", 4))
            }
            RecoveryFormat::Groups => {
                format!("{}-{}-{}", pick(LOWER, 4), pick(LOWER, 4), pick(LOWER, 4))
            }
        })
        .collect();
    for code in &codes {
        crate::ledger::record(crate::ledger::SecretKind::RecoveryCode, code);
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_alice() -> (AccountStore, String) {
        let store = AccountStore::default();
        let state = store
            .create(&AccountSpec::new("alice", "pw", "key"))
            .expect("create");
        (store, state.id)
    }

    #[test]
    fn usernames_are_unique_regardless_of_case() {
        let (store, _) = store_with_alice();
        assert_eq!(
            store.create(&AccountSpec::new("ALICE", "x", "y")),
            Err(AccountError::Duplicate("ALICE".into()))
        );
    }

    #[test]
    fn recovery_codes_are_single_use_and_compared_without_spaces() {
        let (store, id) = store_with_alice();
        let take = |code: &str| {
            store.with_id(&id, |a| {
                a.take_recovery_code(code, RecoveryMatch::IgnoreSpaces)
            })
        };
        store.with_id(&id, |a| {
            a.recovery_codes = vec!["3892 3664".into(), "1111 2222".into()]
        });
        assert_eq!(take("38923664"), Some(true));
        assert_eq!(take("3892 3664"), Some(false));
        assert_eq!(take("1111-2222"), Some(false), "dashes are not spaces");
        assert_eq!(store.with_id(&id, |a| a.recovery_codes.len()), Some(1));
    }

    #[test]
    fn recovery_codes_match_exactly_as_issued() {
        let (store, id) = store_with_alice();
        store.with_id(&id, |a| a.recovery_codes = vec!["ABCDE-FGHJK".into()]);
        let take =
            |code: &str| store.with_id(&id, |a| a.take_recovery_code(code, RecoveryMatch::Exact));
        for mangled in [
            "abcde-fghjk",
            "ABCDEFGHJK",
            "ABCDE FGHJK",
            " ABCDE-FGHJK",
            "",
        ] {
            assert_eq!(take(mangled), Some(false), "{mangled:?}");
        }
        assert_eq!(take("ABCDE-FGHJK"), Some(true));
    }

    #[test]
    fn refresh_tokens_work_once() {
        let (store, id) = store_with_alice();
        store.with_id(&id, |a| a.remember_refresh("j1".into(), 100, 10));
        assert_eq!(store.with_id(&id, |a| a.take_refresh("j1")), Some(true));
        assert_eq!(store.with_id(&id, |a| a.take_refresh("j1")), Some(false));
    }

    #[test]
    fn recovery_code_formats_match_the_vendor_documents() {
        for code in recovery_codes(RecoveryFormat::Conduit, 10) {
            assert_eq!(code.len(), 9);
            assert_eq!(code.as_bytes()[4], b' ');
        }
        for code in recovery_codes(RecoveryFormat::FusionAuth, 10) {
            assert_eq!(code.len(), 11);
            assert_eq!(code.as_bytes()[5], b'-');
        }
    }

    #[test]
    fn ids_are_uuid_shaped() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
