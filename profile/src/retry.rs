//! Whether and when to try a step again: bounded attempts, backoff with
//! jitter, `Retry-After`. Pure functions.

use std::time::{Duration, SystemTime};

/// Bounds on retrying one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests per step at most, the first included, for transport errors,
    /// rate limits and gateway errors.
    pub max_attempts: u32,
    /// First backoff.
    pub base: Duration,
    /// Largest backoff.
    pub cap: Duration,
    /// The longest `Retry-After` honoured by waiting; longer ones fail the
    /// step (the caller reschedules).
    pub max_retry_after: Duration,
    /// Fresh codes tried after "code already used".
    pub max_code_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            max_code_retries: 2,
        }
    }
}

/// How long to wait before attempt number `attempts_made + 1`, or `None`
/// to give up. `jitter` is uniform in [0, 1).
pub fn retry_delay(
    policy: &RetryPolicy,
    attempts_made: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    if attempts_made >= policy.max_attempts {
        return None;
    }
    let jitter = jitter.clamp(0.0, 1.0);
    let exp = policy
        .base
        .saturating_mul(1u32 << attempts_made.saturating_sub(1).min(16))
        .min(policy.cap);
    match retry_after {
        Some(d) if d > policy.max_retry_after => None,
        // Honour the server, plus a little jitter so that many clients told
        // the same instant do not arrive together.
        Some(d) => Some(d + policy.base.mul_f64(jitter)),
        // "Equal jitter": half fixed, half random.
        None => Some(exp / 2 + exp.mul_f64(jitter / 2.0)),
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let zoned = jiff::fmt::rfc2822::parse(value).ok()?;
    let at = SystemTime::from(zoned.timestamp());
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn retries_are_bounded_backed_off_and_honour_retry_after() {
        let p = RetryPolicy::default();
        // (what, attempts made, Retry-After, jitter, expected delay)
        type Case = (&'static str, u32, Option<Duration>, f64, Option<Duration>);
        let cases: Vec<Case> = vec![
            (
                "first retry, no jitter",
                1,
                None,
                0.0,
                Some(Duration::from_millis(125)),
            ),
            (
                "first retry, max jitter",
                1,
                None,
                1.0,
                Some(Duration::from_millis(250)),
            ),
            (
                "second retry doubles",
                2,
                None,
                0.0,
                Some(Duration::from_millis(250)),
            ),
            (
                "third retry doubles again",
                3,
                None,
                0.0,
                Some(Duration::from_millis(500)),
            ),
            ("attempts exhausted", 4, None, 0.0, None),
            (
                "retry-after honoured",
                1,
                Some(Duration::from_secs(3)),
                0.0,
                Some(Duration::from_secs(3)),
            ),
            (
                "retry-after plus jitter",
                1,
                Some(Duration::from_secs(3)),
                0.5,
                Some(Duration::from_millis(3125)),
            ),
            (
                "retry-after too long: give up",
                1,
                Some(Duration::from_secs(3600)),
                0.0,
                None,
            ),
        ];
        for (what, made, ra, jitter, want) in cases {
            assert_eq!(retry_delay(&p, made, ra, jitter), want, "{what}");
        }
    }

    #[test]
    fn backoff_is_capped() {
        let p = RetryPolicy {
            max_attempts: 100,
            ..RetryPolicy::default()
        };
        assert_eq!(retry_delay(&p, 60, None, 1.0), Some(p.cap));
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let cases = [
            ("120", Some(Duration::from_secs(120))),
            (
                "Sun, 06 Nov 1994 08:49:47 GMT",
                Some(Duration::from_secs(10)),
            ),
            ("Sun, 06 Nov 1994 08:49:27 GMT", Some(Duration::ZERO)),
            ("soon", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_retry_after(value, now), want, "{value}");
        }
    }
}
