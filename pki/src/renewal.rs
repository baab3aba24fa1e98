//! When to renew a certificate: one pure decision.

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// What to do about a certificate at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Keep it; renew at `renew_at`.
    Valid {
        /// When to renew.
        renew_at: Timestamp,
    },
    /// Issue a new one now (the old one still works, except for `NotYetValid`).
    RenewNow {
        /// Why now.
        reason: RenewReason,
    },
    /// It has expired: issue a new one; nothing can use the old one.
    Expired,
}

/// Why a certificate that has not expired must be renewed now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenewReason {
    /// The renewal time (renewBefore ahead of expiry) has come.
    RenewalTimeReached,
    /// The clock is before the certificate's notBefore: peers with a correct
    /// clock would refuse it, and a clock that jumped back must not leave
    /// the credential without a usable certificate.
    NotYetValid,
    /// notAfter is not after notBefore: the certificate is unusable.
    EmptyValidity,
}

impl fmt::Display for RenewReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RenewalTimeReached => "the renewal time has come",
            Self::NotYetValid => {
                "the certificate is not valid yet (its notBefore is in the future)"
            }
            Self::EmptyValidity => "the certificate's notAfter is not after its notBefore",
        })
    }
}

/// Decides whether a certificate valid from `not_before` to `not_after`
/// needs renewing at `now`, renewing `renew_before` ahead of expiry. A
/// `renew_before` as long as the lifetime or longer would renew forever, so
/// (as cert-manager does) the certificate is then renewed at two thirds of
/// its lifetime instead.
pub fn renewal(
    not_before: Timestamp,
    not_after: Timestamp,
    renew_before: Duration,
    now: Timestamp,
) -> Renewal {
    if now >= not_after {
        return Renewal::Expired;
    }
    if not_after <= not_before {
        return Renewal::RenewNow {
            reason: RenewReason::EmptyValidity,
        };
    }
    if now < not_before {
        return Renewal::RenewNow {
            reason: RenewReason::NotYetValid,
        };
    }
    let lifetime = not_before.duration_until(not_after);
    let renew_before = SignedDuration::try_from(renew_before).unwrap_or(SignedDuration::MAX);
    let lead = if renew_before >= lifetime {
        lifetime / 3
    } else {
        renew_before
    };
    // Cannot fail: not_after - lead lies between not_before and not_after.
    let renew_at = not_after.checked_sub(lead).unwrap_or(not_before);
    if now >= renew_at {
        Renewal::RenewNow {
            reason: RenewReason::RenewalTimeReached,
        }
    } else {
        Renewal::Valid { renew_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("test timestamp")
    }

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86400);

    #[test]
    fn renewal_decisions() {
        use RenewReason::*;
        use Renewal::*;
        let nb = "2026-01-01T00:00:00Z";
        let na = "2026-01-31T00:00:00Z"; // 30 days
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str, Duration, &str, Renewal)] = &[
            ("well inside the lifetime: renew renewBefore ahead of expiry",
             nb, na, 10 * DAY, "2026-01-05T00:00:00Z", Valid { renew_at: at("2026-01-21T00:00:00Z") }),
            ("one second before the renewal time",
             nb, na, 10 * DAY, "2026-01-20T23:59:59Z", Valid { renew_at: at("2026-01-21T00:00:00Z") }),
            ("exactly at the renewal time",
             nb, na, 10 * DAY, "2026-01-21T00:00:00Z", RenewNow { reason: RenewalTimeReached }),
            ("between the renewal time and expiry",
             nb, na, 10 * DAY, "2026-01-30T00:00:00Z", RenewNow { reason: RenewalTimeReached }),
            ("exactly at notAfter it has expired",
             nb, na, 10 * DAY, na, Expired),
            ("long after notAfter",
             nb, na, 10 * DAY, "2027-01-01T00:00:00Z", Expired),
            ("renewBefore longer than the lifetime: renew at two thirds",
             nb, na, 60 * DAY, "2026-01-05T00:00:00Z", Valid { renew_at: at("2026-01-21T00:00:00Z") }),
            ("renewBefore equal to the lifetime: renew at two thirds",
             nb, na, 30 * DAY, "2026-01-21T00:00:00Z", RenewNow { reason: RenewalTimeReached }),
            ("an absurd renewBefore does not overflow",
             nb, na, Duration::MAX, "2026-01-05T00:00:00Z", Valid { renew_at: at("2026-01-21T00:00:00Z") }),
            ("zero renewBefore: renew only at expiry",
             nb, na, Duration::ZERO, "2026-01-30T23:59:59Z", Valid { renew_at: at(na) }),
            ("the clock is before notBefore",
             nb, na, 10 * DAY, "2025-12-31T23:00:00Z", RenewNow { reason: NotYetValid }),
            ("a certificate of no lifetime",
             na, na, HOUR, "2026-01-05T00:00:00Z", RenewNow { reason: EmptyValidity }),
            ("notAfter before notBefore",
             na, nb, HOUR, "2026-01-05T00:00:00Z", Expired),
            ("a short-lived certificate with the default renewBefore of 720h",
             "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", 720 * HOUR, "2026-01-01T00:30:00Z",
             Valid { renew_at: at("2026-01-01T00:40:00Z") }),
        ];
        for (name, not_before, not_after, renew_before, now, expected) in cases {
            assert_eq!(
                renewal(at(not_before), at(not_after), *renew_before, at(now)),
                *expected,
                "{name}"
            );
        }
    }
}
