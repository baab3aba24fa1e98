//! When a session's access token expires, from the sources a profile may
//! have: an extracted `expires_at`, the JWT's `exp`, the configured
//! lifetime. A pure decision.

use std::time::{Duration, SystemTime};

use otpilot_api::profile::TokenExpiry;

/// A JWT `exp` further ahead than this is ignored by `firstFound`: a
/// vendor that wrote milliseconds where seconds belong.
pub const IMPLAUSIBLE_JWT_EXP: Duration = Duration::from_secs(366 * 24 * 3600);

/// The expiry the profile's `tokenExpiry` picks from the known sources, or
/// `None` when none applies.
pub fn decide(
    policy: TokenExpiry,
    extracted: Option<SystemTime>,
    jwt_exp: Option<SystemTime>,
    configured: Option<SystemTime>,
    now: SystemTime,
) -> Option<SystemTime> {
    match policy {
        TokenExpiry::FirstFound => {
            let plausible_jwt = jwt_exp.filter(|exp| {
                now.checked_add(IMPLAUSIBLE_JWT_EXP)
                    .is_none_or(|limit| *exp <= limit)
            });
            extracted.or(plausible_jwt).or(configured)
        }
        TokenExpiry::Earliest => [extracted, jwt_exp, configured].into_iter().flatten().min(),
        TokenExpiry::Configured => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn the_profile_says_which_expiry_source_wins() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = |s: u64| Some(now + Duration::from_secs(s));
        // Conduit v0.15: exp − iat = 3,600,000 s, the session lasts 300 s.
        let bogus = at(3_600_000);
        let absurd = at(400 * 86_400);
        type Case = (
            &'static str,
            TokenExpiry,
            Option<SystemTime>,
            Option<SystemTime>,
            Option<SystemTime>,
            Option<SystemTime>,
        );
        let cases: Vec<Case> = vec![
            (
                "first found: extracted",
                TokenExpiry::FirstFound,
                at(60),
                at(90),
                at(300),
                at(60),
            ),
            (
                "first found: jwt",
                TokenExpiry::FirstFound,
                None,
                at(90),
                at(300),
                at(90),
            ),
            (
                "first found: trusts a 41-day exp",
                TokenExpiry::FirstFound,
                None,
                bogus,
                at(300),
                bogus,
            ),
            (
                "first found: skips an absurd exp",
                TokenExpiry::FirstFound,
                None,
                absurd,
                at(300),
                at(300),
            ),
            (
                "first found: nothing",
                TokenExpiry::FirstFound,
                None,
                None,
                None,
                None,
            ),
            (
                "earliest: configured beats a bogus exp",
                TokenExpiry::Earliest,
                None,
                bogus,
                at(300),
                at(300),
            ),
            (
                "earliest: a shorter exp beats configured",
                TokenExpiry::Earliest,
                None,
                at(5),
                at(300),
                at(5),
            ),
            (
                "earliest: extracted counts",
                TokenExpiry::Earliest,
                at(30),
                at(90),
                at(300),
                at(30),
            ),
            (
                "configured only",
                TokenExpiry::Configured,
                at(30),
                at(90),
                at(300),
                at(300),
            ),
            (
                "configured missing",
                TokenExpiry::Configured,
                at(30),
                at(90),
                None,
                None,
            ),
        ];
        for (what, policy, extracted, jwt, configured, want) in cases {
            assert_eq!(
                decide(policy, extracted, jwt, configured, now),
                want,
                "{what}"
            );
        }
    }
}
