//! The vendor's clock, as its answers' `Date` headers show it: an estimate
//! of how far it is from ours, so TOTP codes are computed on the time the
//! vendor verifies them with. A node whose clock drifts, or a vendor that
//! accepts only the current step, then still agrees on the code.
//!
//! Each answer gives a sample: the `Date` (whole seconds, so the vendor's
//! time was in `[D, D + 1 s)`) against the midpoint of our send and receive
//! times. Samples whose round trip is too long to be precise are ignored,
//! and so are offsets beyond a bound (a broken or hostile `Date` must not
//! move codes far). Kept samples are smoothed. Pure, except for the lock.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Bounds and smoothing of the estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OffsetSettings {
    /// A sample whose round trip is longer is ignored: the vendor stamped
    /// its `Date` somewhere in it.
    pub max_round_trip: Duration,
    /// A sample further off than this is ignored.
    pub max_offset: Duration,
    /// Weight of a new sample in the smoothed estimate (0–1].
    pub smoothing: f64,
}

impl Default for OffsetSettings {
    fn default() -> Self {
        Self {
            max_round_trip: Duration::from_secs(2),
            max_offset: Duration::from_secs(10 * 60),
            smoothing: 0.3,
        }
    }
}

/// One answer's evidence: when we sent, when we had the answer, and the
/// vendor's `Date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetSample {
    /// When the request was sent (our clock).
    pub sent: SystemTime,
    /// When the answer was read (our clock).
    pub received: SystemTime,
    /// The answer's `Date` header.
    pub vendor_date: SystemTime,
}

/// Milliseconds the vendor's clock is ahead of ours (negative: behind)
/// according to one sample, or `None` when the sample is unusable.
pub fn sample_offset_ms(sample: OffsetSample, settings: &OffsetSettings) -> Option<i64> {
    let round_trip = sample.received.duration_since(sample.sent).ok()?;
    if round_trip > settings.max_round_trip {
        return None;
    }
    let midpoint = sample.sent + round_trip / 2;
    // `Date` has whole seconds: the vendor's time lay in [D, D + 1 s).
    let vendor = sample.vendor_date + Duration::from_millis(500);
    let offset = signed_ms(vendor, midpoint)?;
    (offset.unsigned_abs() <= settings.max_offset.as_millis() as u64).then_some(offset)
}

fn signed_ms(a: SystemTime, b: SystemTime) -> Option<i64> {
    match a.duration_since(b) {
        Ok(d) => i64::try_from(d.as_millis()).ok(),
        Err(e) => i64::try_from(e.duration().as_millis()).ok().map(|ms| -ms),
    }
}

/// The smoothed estimate after a new kept sample.
pub fn smoothed(previous: Option<f64>, sample_ms: i64, smoothing: f64) -> f64 {
    let sample = sample_ms as f64;
    match previous {
        None => sample,
        Some(prev) => prev + smoothing.clamp(0.0, 1.0) * (sample - prev),
    }
}

/// Whether a code the vendor refused deserves one more try on its time:
/// the answer taught us an offset (`offset_now_ms`) that puts the moment
/// the code was sent (`sent_ms`, our clock) in another time step than the
/// one the code was computed for, and that moved the estimate by at least
/// half a period (less is the `Date` header's own imprecision, not a
/// clock elsewhere). Once per step at most: the caller keeps count, so a
/// wrong secret costs one extra refusal, never a lock-out.
pub fn worth_a_retry_on_vendor_time(
    sent_ms: u64,
    sent_step: u64,
    period_s: u64,
    offset_used_ms: Option<i64>,
    offset_now_ms: Option<i64>,
) -> bool {
    let Some(now) = offset_now_ms else {
        return false;
    };
    let period_ms = period_s.max(1).saturating_mul(1000);
    let moved = now
        .saturating_sub(offset_used_ms.unwrap_or(0))
        .unsigned_abs();
    let vendor_ms = sent_ms.saturating_add_signed(now);
    moved >= period_ms / 2 && vendor_ms / period_ms != sent_step
}

/// The running estimate of one vendor's clock offset. Share one per vendor
/// base URL (an `Arc`) between the engines that talk to it.
#[derive(Debug, Default)]
pub struct VendorClock {
    settings: OffsetSettings,
    estimate_ms: Mutex<Option<f64>>,
}

impl VendorClock {
    /// An estimator with these bounds.
    pub fn new(settings: OffsetSettings) -> Self {
        Self {
            settings,
            estimate_ms: Mutex::new(None),
        }
    }

    /// Takes an answer into account; returns whether it was kept.
    pub fn observe(&self, sample: OffsetSample) -> bool {
        let Some(ms) = sample_offset_ms(sample, &self.settings) else {
            return false;
        };
        let mut estimate = self.lock();
        *estimate = Some(smoothed(*estimate, ms, self.settings.smoothing));
        true
    }

    /// Milliseconds the vendor's clock is ahead of ours (negative: behind),
    /// once an answer has shown it.
    pub fn offset_ms(&self) -> Option<i64> {
        self.lock().map(|ms| ms.round() as i64)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<f64>> {
        self.estimate_ms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `now` moved by `offset_ms`, saturating at the epoch.
pub fn shifted(now: SystemTime, offset_ms: i64) -> SystemTime {
    let by = Duration::from_millis(offset_ms.unsigned_abs());
    if offset_ms >= 0 {
        now.checked_add(by).unwrap_or(now)
    } else {
        now.checked_sub(by)
            .filter(|t| *t >= std::time::UNIX_EPOCH)
            .unwrap_or(std::time::UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at_ms(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn a_sample_is_the_date_against_the_midpoint_of_the_round_trip() {
        let s = OffsetSettings::default();
        let t0 = 1_700_000_000_000;
        // (what, sent, received, Date (whole seconds), offset)
        let cases: Vec<(&str, u64, u64, u64, Option<i64>)> = vec![
            ("same clock", t0, t0 + 200, t0, Some(400)),
            ("vendor 60 s ahead", t0, t0 + 200, t0 + 60_000, Some(60_400)),
            (
                "vendor 60 s behind",
                t0,
                t0 + 200,
                t0 - 60_000,
                Some(-59_600),
            ),
            ("round trip too long", t0, t0 + 2_001, t0, None),
            ("round trip at the limit", t0, t0 + 2_000, t0, Some(-500)),
            ("answer before the request", t0 + 10, t0, t0, None),
            ("beyond the bound", t0, t0 + 200, t0 + 601_000, None),
            ("hostile date far in the past", t0, t0 + 200, 0, None),
        ];
        for (what, sent, received, date, want) in cases {
            let sample = OffsetSample {
                sent: at_ms(sent),
                received: at_ms(received),
                vendor_date: at_ms(date),
            };
            assert_eq!(sample_offset_ms(sample, &s), want, "{what}");
        }
    }

    #[test]
    fn the_estimate_is_smoothed() {
        let cases = [
            ("first sample taken as is", None, 1_000, 0.3, 1_000.0),
            ("moves part of the way", Some(1_000.0), 2_000, 0.3, 1_300.0),
            (
                "smoothing 1 follows the sample",
                Some(1_000.0),
                2_000,
                1.0,
                2_000.0,
            ),
            (
                "out-of-range smoothing is clamped",
                Some(1_000.0),
                2_000,
                7.0,
                2_000.0,
            ),
        ];
        for (what, prev, sample, smoothing, want) in cases {
            let got = smoothed(prev, sample, smoothing);
            assert!((got - want).abs() < 1e-9, "{what}: {got}");
        }
    }

    #[test]
    fn the_estimator_keeps_only_usable_samples_and_converges() {
        let clock = VendorClock::default();
        assert_eq!(clock.offset_ms(), None);
        let t0 = 1_700_000_000_000;
        let slow = OffsetSample {
            sent: at_ms(t0),
            received: at_ms(t0 + 5_000),
            vendor_date: at_ms(t0 + 60_000),
        };
        assert!(!clock.observe(slow));
        assert_eq!(clock.offset_ms(), None);
        for i in 0..30 {
            let sent = t0 + i * 1_000;
            assert!(clock.observe(OffsetSample {
                sent: at_ms(sent),
                received: at_ms(sent + 100),
                // The vendor is 60.3 s ahead; Date truncates to seconds.
                vendor_date: at_ms((sent + 50 + 60_300) / 1000 * 1000),
            }));
        }
        let offset = clock.offset_ms().expect("estimated");
        assert!((59_500..=61_000).contains(&offset), "{offset}");
    }

    #[test]
    fn a_refused_code_is_retried_only_when_the_vendor_clock_is_a_step_elsewhere() {
        // 30 s steps; the code of step 10 was sent at 305 s on our clock.
        let cases = [
            (
                "vendor 2 steps ahead, first answer",
                None,
                Some(60_000),
                true,
            ),
            (
                "vendor 2 steps behind, first answer",
                None,
                Some(-60_000),
                true,
            ),
            ("nothing learnt", None, None, false),
            ("a second of Date noise", None, Some(900), false),
            (
                "same step on the vendor's time",
                Some(-60_000),
                Some(-61_000),
                false,
            ),
            (
                "estimate moved half a step, same step",
                None,
                Some(16_000),
                false,
            ),
            (
                "estimate moved, now another step",
                Some(0),
                Some(26_000),
                true,
            ),
            (
                "already on the vendor's time",
                Some(60_000),
                Some(60_400),
                false,
            ),
        ];
        for (what, used, now, want) in cases {
            let sent_step = (305_000u64.saturating_add_signed(used.unwrap_or(0))) / 30_000;
            assert_eq!(
                worth_a_retry_on_vendor_time(305_000, sent_step, 30, used, now),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn shifting_saturates_instead_of_panicking() {
        assert_eq!(shifted(at_ms(1_000), -5_000), UNIX_EPOCH);
        assert_eq!(shifted(at_ms(1_000), 500), at_ms(1_500));
        assert_eq!(shifted(at_ms(1_000), -500), at_ms(500));
    }
}
