//! The shared session's decisions, as pure functions: which mode to run in,
//! whether a holder still stands, what a new holder does first, and whether
//! a follower may serve what was published.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use otpilot_api::lease::{self, LeaseDecision};
use otpilot_api::session::SessionRecord;

use crate::policy::{self, Attempt, RenewPolicy};

/// How this replica gets its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Holds the Lease: logs in, refreshes, publishes.
    SharedHolder,
    /// Serves what the holder published.
    SharedFollower,
    /// Logs in on its own (no sharing configured, allowed or possible).
    Standalone,
}

impl Mode {
    /// Every mode (to zero the others in the metric).
    pub const ALL: [Mode; 3] = [Mode::SharedHolder, Mode::SharedFollower, Mode::Standalone];

    /// A bounded label for logs, `/readyz` and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::SharedHolder => "shared-holder",
            Mode::SharedFollower => "shared-follower",
            Mode::Standalone => "standalone",
        }
    }
}

/// What a first read of the Lease or the session Secret answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It is there and readable.
    Found,
    /// HTTP 401 or 403: this identity may not use it.
    Forbidden,
    /// HTTP 404: the operator has not created it (yet).
    Missing,
    /// Anything else (the API server unreachable, a 5xx), in words.
    Failed(String),
}

/// Whether to share, from what the start-up checks found; when not, why
/// (said in the log, `/readyz` and the metric).
pub fn choose_mode(
    credential: Option<&str>,
    key: Result<(), &str>,
    identity: Result<(), &str>,
    lease: &Probe,
    secret: &Probe,
    lease_name: &str,
    secret_name: &str,
) -> Result<(), String> {
    let Some(credential) = credential else {
        return Err("no shared session configured (--session-credential unset)".into());
    };
    if let Err(why) = key {
        return Err(format!(
            "no session key to seal the shared session of {credential} with ({why}); the \
             operator writes it to the runtime Secret (an older operator does not)"
        ));
    }
    if let Err(why) = identity {
        return Err(format!(
            "no Kubernetes identity to share the session of {credential} with ({why})"
        ));
    }
    for (what, probe) in [
        (format!("Lease {lease_name}"), lease),
        (format!("Secret {secret_name}"), secret),
    ] {
        match probe {
            Probe::Found => {}
            Probe::Forbidden => {
                return Err(format!(
                    "this ServiceAccount may not use {what} (forbidden): the operator grants it \
                     to the ServiceAccounts of injected pods"
                ));
            }
            Probe::Missing => {
                return Err(format!(
                    "{what} does not exist: the operator creates it for ApiCredential {credential}"
                ));
            }
            Probe::Failed(why) => return Err(format!("failed to read {what}: {why}")),
        }
    }
    Ok(())
}

/// Whether the start-up checks are worth repeating: the session objects are
/// missing or forbidden, which is what a sidecar sees when it starts before
/// the operator has granted its Pod's ServiceAccount (the grant follows the
/// stored Pod). An unreachable API server is not waited for.
pub fn grant_may_be_on_its_way(lease: &Probe, secret: &Probe) -> bool {
    let pending = |p: &Probe| matches!(p, Probe::Forbidden | Probe::Missing);
    let failed = |p: &Probe| matches!(p, Probe::Failed(_));
    (pending(lease) || pending(secret)) && !failed(lease) && !failed(secret)
}

/// The longest claim a holder is believed for, whatever the Lease says:
/// a holder that wrote an hour-long duration is still taken over from
/// within five minutes of its last renewal.
pub const MAX_LEASE_SECONDS: i64 = 300;

/// What the Lease as found means for this replica. Like
/// [`otpilot_api::lease::decide`], but another holder is deferred to only
/// when its last renewal carries a proof made with the session key
/// (`proven`: only sidecars have the key, so an app container writing the
/// Lease is taken over from at once), and for at most
/// [`MAX_LEASE_SECONDS`] from its renewal.
pub fn trusted_decision(
    spec: Option<&LeaseSpec>,
    proven: bool,
    me: &str,
    now: Timestamp,
) -> LeaseDecision {
    match lease::decide(spec, me, now) {
        LeaseDecision::Wait { .. } if !proven => LeaseDecision::Take,
        LeaseDecision::Wait { holder, until } => {
            let renewed = spec
                .and_then(|s| s.renew_time.as_ref().or(s.acquire_time.as_ref()))
                .map_or(now, |t| t.0);
            let cap = renewed + SignedDuration::from_secs(MAX_LEASE_SECONDS);
            let until = until.min(cap);
            if until <= now {
                LeaseDecision::Take
            } else {
                LeaseDecision::Wait { holder, until }
            }
        }
        other => other,
    }
}

/// A published `last-code-step` a new holder may honour: at most one step
/// ahead of now (a clock slightly ahead). A value further ahead would stop
/// every code until then, so it is ignored.
pub fn usable_code_step(step: Option<u64>, now_unix_s: u64, period_s: u64) -> Option<u64> {
    step.filter(|s| *s <= now_unix_s / period_s.max(1) + 1)
}

/// Whether a holder whose last successful renewal was `since_renewal` ago
/// may keep refreshing: it stops well before the Lease could be taken
/// (two thirds of its duration), so two refreshers never overlap.
pub fn holder_stands(since_renewal: Duration, lease_duration: Duration) -> bool {
    since_renewal < lease_duration.mul_f64(2.0 / 3.0)
}

/// How often every replica tries the Lease: a quarter of its duration (a
/// holder renews several times before it could lapse), at most 2 s (a
/// follower notices a released or lapsed Lease within seconds), at least
/// 250 ms (the API server is shared).
pub fn attempt_every(lease_duration: Duration) -> Duration {
    (lease_duration / 4).clamp(Duration::from_millis(250), Duration::from_secs(2))
}

/// What a new holder does first, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Takeover {
    /// Refresh with the published refresh token, or log in.
    pub attempt: Attempt,
    /// When (now, or the published token's renewal time).
    pub at: SystemTime,
}

/// A new holder continues the published session: it refreshes (no TOTP
/// login) while the published refresh token is alive, and waits for the
/// published token's renewal time when that token is still good.
pub fn takeover(
    published: Option<&SessionRecord>,
    has_refresh_flow: bool,
    now: SystemTime,
    renew: &RenewPolicy,
    jitter: f64,
) -> Takeover {
    let Some(record) = published else {
        return Takeover {
            attempt: Attempt::Login,
            at: now,
        };
    };
    let renew_at = policy::renew_at(record.obtained_at, record.expires_at, renew, jitter);
    let refresh_alive = record.refresh_expires_at.is_none_or(|t| t > now);
    let attempt = if has_refresh_flow && record.refresh_token.is_some() && refresh_alive {
        Attempt::Refresh
    } else {
        Attempt::Login
    };
    Takeover {
        attempt,
        at: renew_at.max(now),
    }
}

/// Whether a follower may serve `record` at `now` (same margin as a holder).
pub fn servable(record: &SessionRecord, now: SystemTime, renew: &RenewPolicy) -> bool {
    now < policy::serve_until(record.obtained_at, record.expires_at, renew)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use std::time::UNIX_EPOCH;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn only_a_missing_or_forbidden_session_is_waited_for() {
        let failed = Probe::Failed("connection refused".into());
        let cases = [
            (Probe::Found, Probe::Found, false),
            (Probe::Forbidden, Probe::Forbidden, true),
            (Probe::Missing, Probe::Missing, true),
            (Probe::Found, Probe::Forbidden, true),
            (Probe::Missing, Probe::Found, true),
            (failed.clone(), Probe::Forbidden, false),
            (Probe::Missing, failed.clone(), false),
            (failed.clone(), failed, false),
        ];
        for (lease, secret, wait) in cases {
            assert_eq!(
                grant_may_be_on_its_way(&lease, &secret),
                wait,
                "{lease:?} {secret:?}"
            );
        }
    }

    fn record(obtained: u64, expires: u64, refresh: Option<u64>) -> SessionRecord {
        SessionRecord {
            access_token: SecretString::from("t"),
            token_type: Some("Bearer".into()),
            obtained_at: at(obtained),
            expires_at: at(expires),
            refresh_token: refresh.map(|_| SecretString::from("r")),
            refresh_expires_at: refresh.map(at),
            last_code_step: Some(7),
            holder: "a".into(),
        }
    }

    #[test]
    fn the_mode_falls_back_with_a_reason_for_each_missing_piece() {
        use Probe::*;
        let f = |cred, id, lease: Probe, secret: Probe| {
            choose_mode(cred, Ok(()), id, &lease, &secret, "c-session", "c-session")
        };
        let cases = [
            (
                "off",
                f(None, Ok(()), Found, Found),
                Some("no shared session configured"),
            ),
            (
                "no identity",
                f(Some("c"), Err("no token"), Found, Found),
                Some("no Kubernetes identity"),
            ),
            (
                "lease forbidden",
                f(Some("c"), Ok(()), Forbidden, Found),
                Some("may not use Lease c-session"),
            ),
            (
                "secret forbidden",
                f(Some("c"), Ok(()), Found, Forbidden),
                Some("may not use Secret c-session"),
            ),
            (
                "lease missing",
                f(Some("c"), Ok(()), Missing, Found),
                Some("Lease c-session does not exist"),
            ),
            (
                "api down",
                f(Some("c"), Ok(()), Failed("timeout".into()), Found),
                Some("failed to read Lease"),
            ),
            ("all there", f(Some("c"), Ok(()), Found, Found), None),
            (
                "no session key",
                choose_mode(
                    Some("c"),
                    Err("no file"),
                    Ok(()),
                    &Found,
                    &Found,
                    "c-session",
                    "c-session",
                ),
                Some("no session key"),
            ),
        ];
        for (name, got, want) in cases {
            match (got, want) {
                (Ok(()), None) => {}
                (Err(reason), Some(part)) => assert!(reason.contains(part), "{name}: {reason}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn only_a_proven_holder_is_deferred_to_and_not_for_long() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
        let t = |s: i64| Timestamp::from_second(s).expect("valid");
        let held = |holder: &str, renewed: i64, duration: i32| LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(t(renewed))),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        };
        let now = t(10_000);
        let wait = |until| LeaseDecision::Wait {
            holder: "other".into(),
            until: t(until),
        };
        let cases = [
            (
                "proven, fresh",
                held("other", 9_995, 10),
                true,
                wait(10_005),
            ),
            (
                "forged (no proof), fresh",
                held("other", 9_995, 10),
                false,
                LeaseDecision::Take,
            ),
            (
                "forged with a year-long duration",
                held("other", 9_999, 31_536_000),
                false,
                LeaseDecision::Take,
            ),
            (
                "proven but claims an hour: five minutes at most",
                held("other", 9_900, 3_600),
                true,
                wait(10_200),
            ),
            (
                "proven long claim, past five minutes",
                held("other", 9_000, 3_600),
                true,
                LeaseDecision::Take,
            ),
            (
                "ours, unproven",
                held("me", 9_995, 10),
                false,
                LeaseDecision::Renew,
            ),
            (
                "expired",
                held("other", 9_000, 10),
                true,
                LeaseDecision::Take,
            ),
        ];
        for (name, spec, proven, want) in cases {
            assert_eq!(
                trusted_decision(Some(&spec), proven, "me", now),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn a_code_step_far_ahead_is_ignored() {
        // now = step 1000 at 30 s.
        let now = 30_000;
        let cases = [
            (None, None),
            (Some(999), Some(999)),
            (Some(1_000), Some(1_000)),
            (Some(1_001), Some(1_001)),
            (Some(1_002), None),
            (Some(u64::MAX), None),
        ];
        for (step, want) in cases {
            assert_eq!(usable_code_step(step, now, 30), want, "{step:?}");
        }
        assert_eq!(usable_code_step(Some(5), 0, 0), None, "period 0 is 1 s");
    }

    #[test]
    fn the_lease_is_tried_often_enough_and_not_too_often() {
        let cases = [(1, 250), (2, 500), (4, 1000), (10, 2000), (60, 2000)];
        for (lease, every_ms) in cases {
            assert_eq!(
                attempt_every(Duration::from_secs(lease)),
                Duration::from_millis(every_ms),
                "{lease}"
            );
        }
    }

    #[test]
    fn a_holder_stops_well_before_its_lease_can_be_taken() {
        let lease = Duration::from_secs(9);
        let cases = [(0, true), (5, true), (6, false), (9, false), (60, false)];
        for (since, stands) in cases {
            assert_eq!(
                holder_stands(Duration::from_secs(since), lease),
                stands,
                "{since}"
            );
        }
    }

    #[test]
    fn a_new_holder_refreshes_while_it_can_and_waits_for_a_good_token() {
        let renew = RenewPolicy {
            min_lead: Duration::from_secs(1),
            ..RenewPolicy::default()
        };
        let cases = [
            ("nothing published", None, true, 100, Attempt::Login, 100),
            // 90 s token: renew 30 s before expiry (a third), jitter 0.
            (
                "good token, live refresh",
                Some(record(100, 190, Some(400))),
                true,
                110,
                Attempt::Refresh,
                160,
            ),
            (
                "token past renewal",
                Some(record(100, 190, Some(400))),
                true,
                170,
                Attempt::Refresh,
                170,
            ),
            (
                "refresh token expired",
                Some(record(100, 190, Some(150))),
                true,
                160,
                Attempt::Login,
                160,
            ),
            (
                "no refresh flow",
                Some(record(100, 190, Some(400))),
                false,
                110,
                Attempt::Login,
                160,
            ),
            (
                "no refresh token",
                Some(record(100, 190, None)),
                true,
                110,
                Attempt::Login,
                160,
            ),
        ];
        for (name, published, flow, now, attempt, due) in cases {
            let got = takeover(published.as_ref(), flow, at(now), &renew, 0.0);
            assert_eq!(
                got,
                Takeover {
                    attempt,
                    at: at(due)
                },
                "{name}"
            );
        }
    }

    #[test]
    fn a_follower_serves_only_until_the_margin() {
        let renew = RenewPolicy::default();
        let r = record(100, 200, None);
        assert!(servable(&r, at(150), &renew));
        assert!(servable(&r, at(194), &renew));
        assert!(!servable(&r, at(195), &renew));
        assert!(!servable(&r, at(300), &renew));
    }
}
