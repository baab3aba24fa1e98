//! How long to wait before trying a failed reconcile again.

use std::time::Duration;

/// First retry delay.
pub const BASE: Duration = Duration::from_secs(5);
/// No retry waits longer than this (unless the vendor asked for longer).
pub const CAP: Duration = Duration::from_secs(300);

/// The delay after `failed_attempts` consecutive failures (1 = the first):
/// doubling from [`BASE`] up to [`CAP`], and never shorter than what the
/// vendor asked for with `Retry-After` (a lock-out is waited out, not hammered).
pub fn retry_delay(failed_attempts: u32, retry_after: Option<Duration>) -> Duration {
    let exponent = failed_attempts.saturating_sub(1).min(16);
    let exponential = BASE.saturating_mul(1u32 << exponent).min(CAP);
    match retry_after {
        Some(wait) => exponential.max(wait),
        None => exponential,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_up_to_the_cap_and_honours_retry_after() {
        let s = Duration::from_secs;
        let cases = [
            (0, None, s(5)),
            (1, None, s(5)),
            (2, None, s(10)),
            (3, None, s(20)),
            (6, None, s(160)),
            (7, None, s(300)),
            (40, None, s(300)),
            (1, Some(s(2)), s(5)),
            (1, Some(s(900)), s(900)),
            (7, Some(s(60)), s(300)),
        ];
        for (attempts, retry_after, want) in cases {
            assert_eq!(
                retry_delay(attempts, retry_after),
                want,
                "attempts={attempts} retry_after={retry_after:?}"
            );
        }
    }
}
