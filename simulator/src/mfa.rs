//! Checking a second factor the way every vendor here does: lock-out first,
//! then TOTP with the vendor's window and replay protection, then (where
//! the vendor allows it) a recovery code in place of the TOTP code.

use crate::accounts::Account;
use crate::state::AppState;
use crate::totp::{self, Rejection};

/// Which secret to check the code against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    /// The confirmed secret (login).
    Enrolled,
    /// The secret being enrolled (confirmation).
    Pending,
}

/// A code that was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A TOTP code for this step.
    Totp {
        /// The step, now the account's last accepted step.
        step: u64,
    },
    /// A recovery code, now used up.
    Recovery {
        /// Recovery codes left.
        left: usize,
    },
}

/// A code that was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many wrong codes: try again after this many seconds.
    Locked {
        /// Seconds until the lock lifts (at least 1).
        retry_after_secs: u64,
    },
    /// Wrong code.
    Invalid,
    /// Right code, already used (RFC 6238 §5.2).
    Reused,
    /// There is no secret to check against.
    NotEnrolled,
}

/// Refuses with `Locked` while the account is locked; clears an expired lock.
pub fn check_lock(state: &AppState, account: &mut Account) -> Result<(), Refused> {
    let now = state.now_ms();
    match account.locked_until_ms {
        Some(until) if until > now => Err(Refused::Locked {
            retry_after_secs: (until - now).div_ceil(1000).max(1),
        }),
        Some(_) => {
            account.locked_until_ms = None;
            account.failures = 0;
            Ok(())
        }
        None => Ok(()),
    }
}

/// Checks `code` for `account`. Replays are refused but do not count
/// toward lock-out (a well-behaved client can race itself); wrong codes do,
/// and the one that reaches the threshold starts the lock.
pub fn check_code(
    state: &AppState,
    account: &mut Account,
    against: Against,
    code: &str,
    allow_recovery: bool,
) -> Result<Accepted, Refused> {
    check_lock(state, account)?;
    let secret = match against {
        Against::Enrolled => account.enrolled_secret.clone(),
        Against::Pending => account.pending.as_ref().map(|p| p.secret.clone()),
    }
    .ok_or(Refused::NotEnrolled)?;
    let config = &state.config;
    let result = totp::verify(
        &secret,
        &config.totp,
        state.totp_now_secs(),
        config.effective_skew_steps(),
        account.last_step,
        config.replay_protection,
        code,
    );
    match result {
        Ok(step) => {
            account.last_step = Some(account.last_step.map_or(step, |last| last.max(step)));
            account.failures = 0;
            account.accepted_codes += 1;
            Ok(Accepted::Totp { step })
        }
        Err(Rejection::Reused) => Err(Refused::Reused),
        Err(Rejection::Invalid) => {
            if allow_recovery && account.take_recovery_code(code, config.vendor.recovery_match()) {
                account.failures = 0;
                return Ok(Accepted::Recovery {
                    left: account.recovery_codes.len(),
                });
            }
            record_failure(state, account);
            Err(Refused::Invalid)
        }
    }
}

/// Checks a recovery code alone (Conduit's `/twoFa/recover`), with the
/// same lock-out accounting as TOTP codes.
pub fn check_recovery(
    state: &AppState,
    account: &mut Account,
    code: &str,
) -> Result<usize, Refused> {
    check_lock(state, account)?;
    if !account.is_enrolled() {
        return Err(Refused::NotEnrolled);
    }
    if account.take_recovery_code(code, state.config.vendor.recovery_match()) {
        account.failures = 0;
        return Ok(account.recovery_codes.len());
    }
    record_failure(state, account);
    Err(Refused::Invalid)
}

fn record_failure(state: &AppState, account: &mut Account) {
    let config = &state.config;
    account.failures += 1;
    account.refused_codes += 1;
    if config.lockout_threshold > 0 && account.failures >= config.lockout_threshold {
        if account.locked_until_ms.is_none() {
            account.lockouts += 1;
        }
        let window = u64::try_from(config.lockout_window.as_millis()).unwrap_or(u64::MAX);
        account.locked_until_ms = Some(state.now_ms().saturating_add(window));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::accounts::{AccountStore, PendingSecret};
    use crate::clock::ManualClock;
    use crate::config::{AccountSpec, SimConfig, Vendor};
    use crate::faults::{FaultStore, Faults};
    use crate::tls::ClientCaStore;
    use crate::tokens::TokenIssuer;

    const SECRET: &[u8] = b"12345678901234567890";

    fn setup(config: SimConfig) -> (AppState, Arc<ManualClock>, String) {
        let clock = Arc::new(ManualClock::at_secs(59));
        let state = AppState {
            config: config
                .with_clock(clock.clone())
                .with_totp(crate::config::TotpAlgorithm::Sha1, 8),
            accounts: AccountStore::default(),
            tokens: TokenIssuer::new(),
            faults: FaultStore::default(),
            client_cas: Arc::new(ClientCaStore::default()),
            stats: crate::stats::StatsStore::default(),
        };
        let id = state
            .accounts
            .create(&AccountSpec::new("alice", "pw", "key"))
            .expect("create")
            .id;
        state.accounts.with_id(&id, |a| {
            a.pending = Some(PendingSecret {
                id: "s".into(),
                secret: SECRET.to_vec(),
            });
            a.activate_pending();
            a.recovery_codes = vec!["AAAAA-BBBBB".into()];
        });
        (state, clock, id)
    }

    fn check(state: &AppState, id: &str, code: &str) -> Result<Accepted, Refused> {
        state
            .accounts
            .with_id(id, |a| check_code(state, a, Against::Enrolled, code, true))
            .expect("account")
    }

    // RFC 6238 SHA1 8-digit code for t=59 (step 1).
    const CODE_T59: &str = "94287082";

    #[test]
    fn reused_code_in_same_step_is_rejected() {
        let (state, _, id) = setup(SimConfig::new(Vendor::Audd));
        assert_eq!(check(&state, &id, CODE_T59), Ok(Accepted::Totp { step: 1 }));
        assert_eq!(check(&state, &id, CODE_T59), Err(Refused::Reused));
    }

    #[test]
    fn reuse_is_accepted_with_replay_protection_off() {
        let (state, _, id) = setup(SimConfig::new(Vendor::Conduit).with_replay_protection(false));
        assert!(check(&state, &id, CODE_T59).is_ok());
        assert!(check(&state, &id, CODE_T59).is_ok());
    }

    #[test]
    fn recovery_code_is_accepted_once_in_place_of_totp() {
        let (state, _, id) = setup(SimConfig::new(Vendor::Audd));
        // Exactly as issued: a client that lower-cases its codes is refused.
        assert_eq!(check(&state, &id, "aaaaa-bbbbb"), Err(Refused::Invalid));
        assert_eq!(
            check(&state, &id, "AAAAA-BBBBB"),
            Ok(Accepted::Recovery { left: 0 })
        );
        assert_eq!(check(&state, &id, "AAAAA-BBBBB"), Err(Refused::Invalid));
    }

    #[test]
    fn the_admin_counts_enrollments_refusals_and_lock_outs() {
        let config = SimConfig::new(Vendor::Audd).with_lockout(2, Duration::from_secs(10));
        let (state, clock, id) = setup(config);
        let counts = |state: &AppState| {
            let a = state.accounts.with_id(&id, |a| a.state()).expect("account");
            (
                a.enrollments_started,
                a.enrollments_confirmed,
                a.refused_codes,
                a.lockouts,
            )
        };
        // setup() confirmed a secret without starting through set_pending.
        assert_eq!(counts(&state), (0, 1, 0, 0));
        state
            .accounts
            .with_id(&id, |a| a.set_pending("t".into(), SECRET.to_vec()));
        assert_eq!(counts(&state), (1, 1, 0, 0));
        assert_eq!(check(&state, &id, "00000000"), Err(Refused::Invalid));
        assert_eq!(check(&state, &id, "00000000"), Err(Refused::Invalid));
        // Refused while locked: not a wrong code, not a new lock-out.
        assert!(matches!(
            check(&state, &id, "00000000"),
            Err(Refused::Locked { .. })
        ));
        assert_eq!(counts(&state), (1, 1, 2, 1));
        clock.set_secs(59 + 10);
        assert_eq!(check(&state, &id, CODE_T59), Ok(Accepted::Totp { step: 1 }));
        assert_eq!(check(&state, &id, CODE_T59), Err(Refused::Reused));
        assert_eq!(counts(&state), (1, 1, 2, 1), "a replay is no wrong code");
    }

    #[test]
    fn wrong_codes_lock_the_account_until_the_window_passes() {
        let config = SimConfig::new(Vendor::Audd).with_lockout(2, Duration::from_secs(10));
        let (state, clock, id) = setup(config);
        assert_eq!(check(&state, &id, "00000000"), Err(Refused::Invalid));
        assert_eq!(check(&state, &id, "00000000"), Err(Refused::Invalid));
        assert_eq!(
            check(&state, &id, CODE_T59),
            Err(Refused::Locked {
                retry_after_secs: 10
            })
        );
        clock.advance(Duration::from_millis(9_500));
        assert_eq!(
            check(&state, &id, CODE_T59),
            Err(Refused::Locked {
                retry_after_secs: 1
            })
        );
        clock.set_secs(59 + 10);
        // Step 2 now; the step-1 code is still inside the ±1 window.
        assert_eq!(check(&state, &id, CODE_T59), Ok(Accepted::Totp { step: 1 }));
    }

    #[test]
    fn clock_skew_fault_moves_the_verifier_by_whole_steps() {
        let (state, _, id) = setup(SimConfig::new(Vendor::Conduit));
        state.faults.set(Faults {
            clock_skew_steps: 1,
            ..Faults::default()
        });
        // Conduit accepts only the current step: a one-step skew refuses it.
        assert_eq!(check(&state, &id, CODE_T59), Err(Refused::Invalid));
        state.faults.set(Faults::default());
        assert!(check(&state, &id, CODE_T59).is_ok());
    }

    #[test]
    fn confirmation_checks_the_pending_secret() {
        let (state, _, id) = setup(SimConfig::new(Vendor::Audd));
        let result = state
            .accounts
            .with_id(&id, |a| {
                check_code(&state, a, Against::Pending, CODE_T59, false)
            })
            .expect("account");
        assert_eq!(result, Err(Refused::NotEnrolled));
    }
}
