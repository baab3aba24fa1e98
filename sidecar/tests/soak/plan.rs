//! The soak's fault plan and its verdicts, as pure functions: which faults
//! come when (from a seed), and whether a 503 at a given moment was
//! justified by the faults around it.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// The simulator's access-token life in the soak.
pub const ACCESS_LIFE: Duration = Duration::from_secs(5);
/// The simulator's refresh-token life in the soak.
pub const REFRESH_LIFE: Duration = Duration::from_secs(15);
/// The lock-out the simulator imposes after `LOCKOUT_THRESHOLD` wrong codes.
pub const LOCKOUT_WINDOW: Duration = Duration::from_secs(4);
pub const LOCKOUT_THRESHOLD: u32 = 3;
/// The sidecar's first backoff wait (`policy::Backoff::default().base`).
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The TOTP period: the longest a login waits for a fresh code step.
pub const TOTP_PERIOD: Duration = Duration::from_secs(2);
/// Round trips of a login or refresh on a loaded 2-core machine.
pub const FLOW_SLACK: Duration = Duration::from_secs(3);

/// One kind of fault the soak injects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    /// Every (or a fraction of) vendor call answers this 5xx.
    VendorErrors { status: u16, fraction: f64 },
    /// Every vendor call is delayed this long.
    Latency { ms: u64 },
    /// The vendor refuses connections and answers 503: shorter than a token's life.
    Outage,
    /// Refresh tokens are refused: the sidecar must log in with a code.
    RefreshRejected,
    /// The vendor's TOTP clock is a step ahead (+1) or behind (-1).
    ClockSkew { steps: i64 },
    /// Wrong codes lock the account while refresh tokens are refused, so
    /// the sidecar's login meets the lock; it unlocks when the window passes.
    LockOut,
}

impl FaultKind {
    /// A bounded name for the counts.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::VendorErrors { .. } => "vendor_5xx",
            FaultKind::Latency { .. } => "latency",
            FaultKind::Outage => "outage",
            FaultKind::RefreshRejected => "refresh_rejected",
            FaultKind::ClockSkew { .. } => "clock_skew",
            FaultKind::LockOut => "lock_out",
        }
    }

    /// Whether the vendor may issue no token at all while it lasts. The
    /// others (latency under a second, a rejected refresh, a step of skew)
    /// leave a login possible, so they never justify a 503.
    pub fn blocks_issuance(self) -> bool {
        matches!(
            self,
            FaultKind::VendorErrors { .. } | FaultKind::Outage | FaultKind::LockOut
        )
    }
}

pub const KINDS: usize = 6;

/// A fault to inject `after` the previous one ended, for `length`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Planned {
    pub quiet_before: Duration,
    pub kind: FaultKind,
    pub length: Duration,
}

fn ms(rng: &mut StdRng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.random_range(lo..=hi))
}

/// The faults for a soak of `total`, one at a time with quiet between:
/// every kind once per round, in a shuffled order, so that even a short
/// soak meets each kind. The same seed gives the same plan.
pub fn plan(seed: u64, total: Duration) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut planned = Vec::new();
    let mut elapsed = Duration::ZERO;
    loop {
        let mut round: [usize; KINDS] = [0, 1, 2, 3, 4, 5];
        round.shuffle(&mut rng);
        for index in round {
            let quiet_before = ms(&mut rng, 3_000, 8_000);
            let (kind, length) = match index {
                0 => (
                    FaultKind::VendorErrors {
                        status: [500, 502, 503][rng.random_range(0..3)],
                        fraction: [0.5, 1.0][rng.random_range(0..2)],
                    },
                    ms(&mut rng, 1_000, 4_000),
                ),
                1 => (
                    FaultKind::Latency {
                        ms: rng.random_range(100..=800),
                    },
                    ms(&mut rng, 2_000, 8_000),
                ),
                // Shorter than the access token's life.
                2 => (FaultKind::Outage, ms(&mut rng, 1_000, 4_000)),
                3 => (FaultKind::RefreshRejected, ms(&mut rng, 2_000, 8_000)),
                4 => (
                    FaultKind::ClockSkew {
                        steps: [-1, 1][rng.random_range(0..2)],
                    },
                    ms(&mut rng, 4_000, 10_000),
                ),
                _ => (FaultKind::LockOut, LOCKOUT_WINDOW),
            };
            elapsed += quiet_before + length;
            if elapsed > total {
                return planned;
            }
            planned.push(Planned {
                quiet_before,
                kind,
                length,
            });
        }
    }
}

/// A fault as it was actually in force, measured from the soak's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Applied {
    pub kind: FaultKind,
    pub from: Duration,
    pub until: Duration,
}

/// How long after a blocking fault of `length` ends a 503 is still
/// justified. The sidecar backs off exponentially from `BACKOFF_BASE` with
/// equal jitter: the waits before the last failure inside the fault sum to
/// at least half of the next-to-last bound, so the last wait is at most
/// `2 × length + BACKOFF_BASE`. Then the login may wait one TOTP period
/// for a fresh step and needs its round trips.
pub fn recovery(length: Duration) -> Duration {
    length * 2 + BACKOFF_BASE + TOTP_PERIOD + FLOW_SLACK
}

/// The blocking fault that justifies a 503 to a request sent at `sent` and
/// answered at `received`: one whose span, extended by its recovery,
/// overlaps the request. `None`: the 503 was not justified.
pub fn justifying_fault(
    sent: Duration,
    received: Duration,
    applied: &[Applied],
) -> Option<Applied> {
    applied.iter().copied().find(|a| {
        a.kind.blocks_issuance()
            && received >= a.from
            && sent <= a.until + recovery(a.until.saturating_sub(a.from))
    })
}

/// The last instant the sidecar may serve a token (its own rule,
/// `policy::serve_until`: expiry minus the smaller of 5 s and a fifth of
/// the life), from the token's `iat` and `exp` (Unix seconds).
pub fn servable_until_unix(iat: u64, exp: u64) -> f64 {
    let life = exp.saturating_sub(iat) as f64;
    exp as f64 - (5.0_f64).min(life / 5.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn the_same_seed_gives_the_same_plan_and_every_kind_appears() {
        let a = plan(42, s(120));
        assert_eq!(a, plan(42, s(120)));
        assert_ne!(a, plan(43, s(120)));
        let names: std::collections::BTreeSet<_> = a.iter().map(|p| p.kind.name()).collect();
        assert_eq!(names.len(), KINDS, "{names:?}");
        let planned: Duration = a.iter().map(|p| p.quiet_before + p.length).sum();
        assert!(planned <= s(120));
        for p in &a {
            if p.kind == FaultKind::Outage {
                assert!(
                    p.length < ACCESS_LIFE,
                    "an outage shorter than a token's life"
                );
            }
        }
    }

    #[test]
    fn a_503_is_justified_only_around_a_blocking_fault() {
        let outage = Applied {
            kind: FaultKind::Outage,
            from: s(10),
            until: s(13),
        };
        let skew = Applied {
            kind: FaultKind::ClockSkew { steps: 1 },
            from: s(30),
            until: s(40),
        };
        // recovery(3 s) = 6 + 1 + 2 + 3 = 12 s: justified until 25 s.
        let cases = [
            ("before the outage", 5, 6, None),
            ("answered as it began", 9, 10, Some(outage)),
            ("during it", 11, 11, Some(outage)),
            ("while recovering", 24, 25, Some(outage)),
            ("sent at the recovery's end", 25, 26, Some(outage)),
            ("after the recovery", 26, 26, None),
            ("a step of skew justifies nothing", 31, 31, None),
        ];
        for (case, sent, received, want) in cases {
            assert_eq!(
                justifying_fault(s(sent), s(received), &[outage, skew]),
                want,
                "{case}"
            );
        }
    }

    #[test]
    fn tokens_are_servable_until_the_sidecars_margin() {
        let cases = [
            ("5 s token: a 1 s margin", 100, 105, 104.0),
            ("5 min token: a 5 s margin", 100, 400, 395.0),
            ("no life: nothing", 100, 100, 100.0),
        ];
        for (case, iat, exp, want) in cases {
            assert_eq!(servable_until_unix(iat, exp), want, "{case}");
        }
    }
}
