//! The session's decisions, as pure functions: when to renew a token,
//! whether a token may still be served, and what to do after a failure.
//! The driver (`session.rs`) only does I/O and follows these answers.

use std::time::{Duration, SystemTime};

use otpilot_profile::{FlowError, FlowErrorKind, FlowKind};

/// Tunables of [`renew_at`] and [`serve_until`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewPolicy {
    /// Renew when this much of the token's life remains, at least...
    pub min_lead: Duration,
    /// ...or when `1/lead_divisor` of its life remains, whichever is larger.
    pub lead_divisor: u32,
    /// A fixed lead instead (`spec.token.refreshBefore`), when given.
    pub refresh_before: Option<Duration>,
    /// A token is not served in its last moments: this much, at most...
    pub serve_margin: Duration,
}

impl Default for RenewPolicy {
    fn default() -> Self {
        Self {
            min_lead: Duration::from_secs(60),
            lead_divisor: 3,
            refresh_before: None,
            serve_margin: Duration::from_secs(5),
        }
    }
}

/// When to renew a token obtained at `obtained_at` that expires at
/// `expires_at`. `jitter` (uniform in [0, 1)) moves the instant earlier by
/// up to a quarter of the lead, so that replicas started together spread out.
/// The lead never exceeds half the token's life, so that a token shorter
/// than `min_lead` is still used for a while instead of renewed in a loop.
pub fn renew_at(
    obtained_at: SystemTime,
    expires_at: SystemTime,
    policy: &RenewPolicy,
    jitter: f64,
) -> SystemTime {
    let life = expires_at
        .duration_since(obtained_at)
        .unwrap_or(Duration::ZERO);
    let wanted = policy
        .refresh_before
        .unwrap_or_else(|| (life / policy.lead_divisor.max(1)).max(policy.min_lead));
    let lead = wanted
        .mul_f64(1.0 + jitter.clamp(0.0, 1.0) / 4.0)
        .min(life / 2);
    expires_at
        .checked_sub(lead)
        .unwrap_or(obtained_at)
        .max(obtained_at)
}

/// The last instant a token may be handed out: its expiry minus a margin of
/// `serve_margin` or a fifth of its life, whichever is smaller (a client
/// needs a moment to use what it receives).
pub fn serve_until(
    obtained_at: SystemTime,
    expires_at: SystemTime,
    policy: &RenewPolicy,
) -> SystemTime {
    let life = expires_at
        .duration_since(obtained_at)
        .unwrap_or(Duration::ZERO);
    let margin = policy.serve_margin.min(life / 5);
    expires_at.checked_sub(margin).unwrap_or(obtained_at)
}

/// Which flow to run next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Exchange the refresh token.
    Refresh,
    /// Log in with password, API key and a TOTP code.
    Login,
}

impl Attempt {
    /// A bounded label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Attempt::Refresh => "refresh",
            Attempt::Login => "login",
        }
    }
}

/// The next flow after a success: refresh when the vendor has a refresh
/// flow and gave a refresh token that outlives the renewal instant;
/// otherwise log in again.
pub fn next_after_success(
    has_refresh_flow: bool,
    has_refresh_token: bool,
    refresh_expires_at: Option<SystemTime>,
    renew_at: SystemTime,
) -> Attempt {
    let refresh_alive = refresh_expires_at.is_none_or(|t| t > renew_at);
    if has_refresh_flow && has_refresh_token && refresh_alive {
        Attempt::Refresh
    } else {
        Attempt::Login
    }
}

/// Why a flow failed, reduced to what decides the next move. Also the
/// bounded `reason` label of the failure metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The vendor refused the refresh token (revoked, rotated, expired).
    RefreshRejected,
    /// The vendor refused a code as already used.
    CodeAlreadyUsed,
    /// Locked out or rate-limited, with the wait the vendor asked for.
    LockedOut(Option<Duration>),
    /// The vendor could not be reached or was unavailable.
    Unreachable,
    /// The vendor refused the code or the credentials.
    Rejected,
    /// The profile or the inputs are wrong: retrying will not help until
    /// the inputs change.
    Misconfigured,
    /// The vendor answered something else unexpected.
    Other,
}

impl FailureClass {
    /// Bounded label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::RefreshRejected => "refresh_rejected",
            FailureClass::CodeAlreadyUsed => "code_already_used",
            FailureClass::LockedOut(_) => "locked_out",
            FailureClass::Unreachable => "vendor_unreachable",
            FailureClass::Rejected => "rejected",
            FailureClass::Misconfigured => "misconfigured",
            FailureClass::Other => "unexpected_response",
        }
    }
}

/// Classifies an engine error. Besides the engine's own "log in again"
/// (a 401 to a refresh, or a profile rule), any other 4xx to a refresh
/// also means the refresh token is no good: repeating it cannot help.
pub fn classify(error: &FlowError) -> FailureClass {
    match &error.kind {
        FlowErrorKind::LoginRequired { .. } => FailureClass::RefreshRejected,
        FlowErrorKind::Status { status, .. }
            if error.flow == FlowKind::Refresh && (400..500).contains(status) =>
        {
            FailureClass::RefreshRejected
        }
        FlowErrorKind::CodeAlreadyUsed { .. } => FailureClass::CodeAlreadyUsed,
        FlowErrorKind::LockedOut { retry_after, .. } => FailureClass::LockedOut(*retry_after),
        // An answer that never came: the vendor or the way to it is down.
        FlowErrorKind::Transport { .. }
        | FlowErrorKind::Unavailable { .. }
        | FlowErrorKind::OutcomeUnknown { .. } => FailureClass::Unreachable,
        FlowErrorKind::CodeRejected { .. }
        | FlowErrorKind::TotpHeaderRefused { .. }
        | FlowErrorKind::Status { .. } => FailureClass::Rejected,
        FlowErrorKind::NotDefined
        | FlowErrorKind::MissingInput { .. }
        | FlowErrorKind::InvalidTotpOverrides(_)
        | FlowErrorKind::NoTotpSecret
        | FlowErrorKind::Render { .. }
        | FlowErrorKind::InvalidRequest { .. } => FailureClass::Misconfigured,
        FlowErrorKind::Extract { .. }
        | FlowErrorKind::UnknownExpiry
        | FlowErrorKind::MissingResult(_)
        | FlowErrorKind::ResponseTooLarge { .. } => FailureClass::Other,
    }
}

/// Whether a failure of this class may be fixed by new inputs (a corrected
/// password, a re-enrolled seed, a renewed certificate), so that new inputs
/// are tried at once instead of after the backoff. Never for a lock-out:
/// the vendor's wait stands whatever the inputs.
pub fn new_inputs_may_fix(class: FailureClass) -> bool {
    matches!(
        class,
        FailureClass::Rejected | FailureClass::Misconfigured | FailureClass::Other
    )
}

/// Backoff bounds after failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextMove {
    /// The flow to run.
    pub attempt: Attempt,
    /// How long to wait first.
    pub wait: Duration,
}

/// The move after `attempt` failed with `class`, the `failures`-th failure
/// in a row (1 for the first). `jitter` is uniform in [0, 1).
///
/// - a rejected refresh token → log in now (a fresh code is needed anyway);
/// - a code already used → log in now: the code timer already waits for
///   the next step;
/// - a lock-out → wait what the vendor asked (or back off), plus jitter;
/// - anything else → back off exponentially with "equal jitter", capped;
///   a refresh that keeps failing falls back to a login.
pub fn after_failure(
    attempt: Attempt,
    class: FailureClass,
    failures: u32,
    backoff: &Backoff,
    jitter: f64,
) -> NextMove {
    let jitter = jitter.clamp(0.0, 1.0);
    let exp = backoff
        .base
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(backoff.cap);
    let backed_off = exp / 2 + exp.mul_f64(jitter / 2.0);
    match class {
        FailureClass::RefreshRejected | FailureClass::CodeAlreadyUsed => NextMove {
            attempt: Attempt::Login,
            wait: Duration::ZERO,
        },
        FailureClass::LockedOut(retry_after) => NextMove {
            attempt,
            wait: match retry_after {
                Some(d) => d + backoff.base.mul_f64(jitter),
                None => backed_off,
            },
        },
        FailureClass::Unreachable => NextMove {
            // The refresh token may well still be good once the vendor is back.
            attempt,
            wait: backed_off,
        },
        FailureClass::Rejected | FailureClass::Misconfigured | FailureClass::Other => NextMove {
            attempt: Attempt::Login,
            wait: backed_off,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn renewal_comes_when_a_third_of_the_life_or_a_minute_remains() {
        let policy = RenewPolicy::default();
        let cases: &[(&str, u64, u64, f64, u64)] = &[
            // what, obtained, expires, jitter, renew at
            (
                "5-minute JWT: a third (100 s) is more than 60 s",
                0,
                300,
                0.0,
                200,
            ),
            ("1-hour token: a third remains", 0, 3600, 0.0, 2400),
            ("2-minute token: 60 s is more than a third", 0, 120, 0.0, 60),
            ("5-second test token: half its life at most", 0, 5, 0.0, 2),
            ("already expired token: renew now", 100, 50, 0.0, 100),
            (
                "full jitter renews a quarter of the lead earlier",
                0,
                300,
                0.999_999,
                175,
            ),
        ];
        for (what, obtained, expires, jitter, want) in cases {
            let got = renew_at(t(*obtained), t(*expires), &policy, *jitter);
            let got = got
                .duration_since(UNIX_EPOCH)
                .expect("after epoch")
                .as_secs();
            assert_eq!(got, *want, "{what}");
        }
    }

    #[test]
    fn refresh_before_overrides_the_default_lead() {
        let policy = RenewPolicy {
            refresh_before: Some(Duration::from_secs(30)),
            ..RenewPolicy::default()
        };
        assert_eq!(renew_at(t(0), t(300), &policy, 0.0), t(270));
        // Still never more than half the life.
        assert_eq!(renew_at(t(0), t(40), &policy, 0.0), t(20));
    }

    #[test]
    fn a_token_is_not_served_in_its_last_moments() {
        let policy = RenewPolicy::default();
        let cases: &[(&str, u64, u64, u64)] = &[
            ("5-minute token: 5 s margin", 0, 300, 295),
            ("5-second token: a fifth of its life", 0, 5, 4),
            ("expired on arrival: its expiry, already past", 10, 5, 5),
        ];
        for (what, obtained, expires, want) in cases {
            assert_eq!(
                serve_until(t(*obtained), t(*expires), &policy),
                t(*want),
                "{what}"
            );
        }
    }

    #[test]
    fn refresh_only_with_a_flow_and_a_living_refresh_token() {
        let renew = t(200);
        let cases: &[(&str, bool, bool, Option<u64>, Attempt)] = &[
            (
                "refresh token, no expiry known",
                true,
                true,
                None,
                Attempt::Refresh,
            ),
            (
                "refresh token outlives renewal",
                true,
                true,
                Some(900),
                Attempt::Refresh,
            ),
            (
                "refresh token dies first",
                true,
                true,
                Some(150),
                Attempt::Login,
            ),
            (
                "no refresh token (goaxr)",
                true,
                false,
                None,
                Attempt::Login,
            ),
            ("no refresh flow", false, true, None, Attempt::Login),
        ];
        for (what, flow, token, refresh_exp, want) in cases {
            assert_eq!(
                next_after_success(*flow, *token, refresh_exp.map(t), renew),
                *want,
                "{what}"
            );
        }
    }

    #[test]
    fn after_a_failure_the_session_falls_back_waits_or_backs_off() {
        let b = Backoff::default();
        let s = Duration::from_secs;
        let cases: &[(&str, Attempt, FailureClass, u32, f64, NextMove)] = &[
            (
                "refresh token rejected: log in now",
                Attempt::Refresh,
                FailureClass::RefreshRejected,
                1,
                0.5,
                NextMove {
                    attempt: Attempt::Login,
                    wait: s(0),
                },
            ),
            (
                "code already used: log in now, the timer waits a step",
                Attempt::Login,
                FailureClass::CodeAlreadyUsed,
                3,
                0.5,
                NextMove {
                    attempt: Attempt::Login,
                    wait: s(0),
                },
            ),
            (
                "lock-out: Retry-After plus jitter",
                Attempt::Login,
                FailureClass::LockedOut(Some(s(90))),
                1,
                0.5,
                NextMove {
                    attempt: Attempt::Login,
                    wait: Duration::from_millis(90_500),
                },
            ),
            (
                "vendor down on refresh: refresh again after backoff",
                Attempt::Refresh,
                FailureClass::Unreachable,
                1,
                0.0,
                NextMove {
                    attempt: Attempt::Refresh,
                    wait: Duration::from_millis(500),
                },
            ),
            (
                "vendor down, 4th failure: 8 s equal jitter",
                Attempt::Login,
                FailureClass::Unreachable,
                4,
                1.0,
                NextMove {
                    attempt: Attempt::Login,
                    wait: s(8),
                },
            ),
            (
                "backoff is capped",
                Attempt::Login,
                FailureClass::Unreachable,
                30,
                1.0,
                NextMove {
                    attempt: Attempt::Login,
                    wait: s(60),
                },
            ),
            (
                "odd refresh answer: log in after backoff",
                Attempt::Refresh,
                FailureClass::Other,
                1,
                0.0,
                NextMove {
                    attempt: Attempt::Login,
                    wait: Duration::from_millis(500),
                },
            ),
        ];
        for (what, attempt, class, failures, jitter, want) in cases {
            assert_eq!(
                after_failure(*attempt, *class, *failures, &b, *jitter),
                *want,
                "{what}"
            );
        }
    }

    #[test]
    fn new_inputs_are_tried_at_once_only_when_they_may_be_the_fix() {
        let cases = [
            (FailureClass::Rejected, true),
            (FailureClass::Misconfigured, true),
            (FailureClass::Other, true),
            (FailureClass::LockedOut(None), false),
            (FailureClass::Unreachable, false),
            (FailureClass::CodeAlreadyUsed, false),
            (FailureClass::RefreshRejected, false),
        ];
        for (class, want) in cases {
            assert_eq!(new_inputs_may_fix(class), want, "{class:?}");
        }
    }

    #[test]
    fn a_4xx_on_refresh_is_a_rejected_refresh_token_and_on_login_is_not() {
        let err = |flow, status| FlowError {
            flow,
            step: None,
            kind: FlowErrorKind::Status {
                status,
                detail: None,
            },
        };
        assert_eq!(
            classify(&err(FlowKind::Refresh, 401)),
            FailureClass::RefreshRejected
        );
        assert_eq!(
            classify(&err(FlowKind::Refresh, 400)),
            FailureClass::RefreshRejected
        );
        assert_eq!(
            classify(&err(FlowKind::Refresh, 500)),
            FailureClass::Rejected
        );
        assert_eq!(classify(&err(FlowKind::Login, 401)), FailureClass::Rejected);
        let login_required = FlowError {
            flow: FlowKind::Refresh,
            step: None,
            kind: FlowErrorKind::LoginRequired {
                status: 401,
                detail: None,
            },
        };
        assert_eq!(classify(&login_required), FailureClass::RefreshRejected);
    }
}
