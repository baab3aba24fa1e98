//! When to send a TOTP code: never twice in one time step, and not in the
//! last seconds of a step.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;

use crate::totp::TotpKey;

/// A source of time and a way to wait, injectable for tests.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The system clock and tokio's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// How close to the end of a step a code is no longer sent: 5 s, or a
/// quarter of the period for short periods (tests use 1–3 s periods).
pub fn safety_margin_ms(period_s: u64) -> u64 {
    (period_s.saturating_mul(1000) / 4).min(5_000)
}

/// What to do now about sending a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePlan {
    /// Send the code of this time step now.
    Send {
        /// The time step.
        step: u64,
    },
    /// Wait this long, then plan again.
    Wait {
        /// Milliseconds to wait.
        ms: u64,
    },
}

/// How uncertain a clock offset learnt from `Date` headers is: they have
/// whole seconds, so the vendor's time is known to about half a second.
pub const VENDOR_TIME_UNCERTAINTY_MS: u64 = 600;

/// Decides whether a code can be sent at `now_ms`, given the last step
/// already used for this secret. `extra_guard_ms` keeps that much more
/// clear of a step's start, for a time only known to that precision (the
/// vendor's, estimated).
pub fn plan_code_with_guard(
    now_ms: u64,
    period_s: u64,
    last_used: Option<u64>,
    margin_ms: u64,
    extra_guard_ms: u64,
) -> CodePlan {
    let period_ms = period_s.max(1).saturating_mul(1000);
    let step = now_ms / period_ms;
    // A little past the boundary, so that a verifier whose clock is a hair
    // behind ours has also moved on.
    let guard_ms = (period_ms / 50).min(100) + extra_guard_ms;
    if let Some(last) = last_used
        && last >= step
    {
        let next_start = last.saturating_add(1).saturating_mul(period_ms);
        return CodePlan::Wait {
            ms: next_start.saturating_sub(now_ms) + guard_ms,
        };
    }
    let step_end = step.saturating_add(1).saturating_mul(period_ms);
    let remaining = step_end.saturating_sub(now_ms);
    if remaining < margin_ms {
        return CodePlan::Wait {
            ms: remaining + guard_ms,
        };
    }
    CodePlan::Send { step }
}

/// The time step to mark used when a flow is resumed from a checkpoint:
/// the last step the checkpoint recorded, and, when the step to run next
/// may send a code, the step current now as well. The interrupted process
/// may have sent a code of the current step just before it stopped, too
/// late to record it; sending that step again would be a replay (RFC 6238
/// §5.2) that a strict vendor refuses or counts toward a lock-out.
pub fn used_step_on_resume(
    recorded: Option<u64>,
    current: u64,
    next_step_sends_code: bool,
) -> Option<u64> {
    let assumed = next_step_sends_code.then_some(current);
    match (recorded, assumed) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A code to send, and the step it belongs to.
#[derive(Debug)]
pub struct Code {
    /// The time step.
    pub step: u64,
    /// The code.
    pub code: SecretString,
    /// The step marked used before this one was claimed, to give the claim
    /// back with [`CodeTimer::release`].
    pub previous: Option<u64>,
}

/// Remembers, per secret, the last time step whose code was sent, and hands
/// out codes only from later steps. Share one per process (an `Arc`), so
/// that every flow of every engine on the same secret respects it.
pub struct CodeTimer {
    clock: Arc<dyn Clock>,
    used: Mutex<HashMap<[u8; 32], u64>>,
}

impl std::fmt::Debug for CodeTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeTimer").finish_non_exhaustive()
    }
}

impl CodeTimer {
    /// A timer on the given clock.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The last time step used for this secret, if any.
    pub fn last_used(&self, key: &TotpKey) -> Option<u64> {
        self.lock().get(&key.fingerprint()).copied()
    }

    /// Records that a step was used elsewhere (for example the enrollment
    /// code, persisted by the operator), so that it is never used again.
    pub fn mark_used(&self, key: &TotpKey, step: u64) {
        let mut used = self.lock();
        let entry = used.entry(key.fingerprint()).or_insert(step);
        *entry = (*entry).max(step);
    }

    /// Waits until a fresh step with enough time left, marks it used, and
    /// returns its code.
    pub async fn next_code(&self, key: &TotpKey) -> Code {
        self.next_code_on_vendor_time(key, None).await
    }

    /// [`CodeTimer::next_code`] on the vendor's time when its offset is
    /// known: this clock moved by `offset_ms` (how far the vendor's clock
    /// is ahead of ours, see [`crate::VendorClock`]), keeping 0.6 s
    /// more clear of a step's start (the estimate's precision). Steps and
    /// codes are the vendor's.
    pub async fn next_code_on_vendor_time(&self, key: &TotpKey, offset_ms: Option<i64>) -> Code {
        let period = key.params().period;
        let margin = safety_margin_ms(period);
        let extra_guard = offset_ms.map_or(0, |_| VENDOR_TIME_UNCERTAINTY_MS);
        let fp = key.fingerprint();
        loop {
            let now = unix_millis(crate::vendor_clock::shifted(
                self.clock.now(),
                offset_ms.unwrap_or(0),
            ));
            // Decide and claim under the lock, so two concurrent callers
            // cannot both take the same step.
            let plan = {
                let mut used = self.lock();
                let previous = used.get(&fp).copied();
                let plan = plan_code_with_guard(now, period, previous, margin, extra_guard);
                if let CodePlan::Send { step } = plan {
                    used.insert(fp, step);
                }
                (plan, previous)
            };
            match plan {
                (CodePlan::Send { step }, previous) => {
                    return Code {
                        step,
                        code: key.code_for_step(step),
                        previous,
                    };
                }
                (CodePlan::Wait { ms }, _) => {
                    tracing::debug!(wait_ms = ms, "waiting for a fresh TOTP time step");
                    self.clock.sleep(Duration::from_millis(ms)).await;
                }
            }
        }
    }

    /// Gives back the claim of `code`, when the vendor refused it as a code
    /// of another time (its clock is elsewhere) so that the step never
    /// counted: the next code may then be of an earlier step on the
    /// vendor's time. Only if no later step was claimed since.
    pub fn release(&self, key: &TotpKey, code: &Code) {
        let mut used = self.lock();
        let fp = key.fingerprint();
        if used.get(&fp) == Some(&code.step) {
            match code.previous {
                Some(previous) => used.insert(fp, previous),
                None => used.remove(&fp),
            };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], u64>> {
        // A poisoned map of step numbers is still correct data.
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A clock for tests: time moves only when someone sleeps or advances it.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves time forward.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.advance(duration);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::totp::TotpParams;
    use secrecy::ExposeSecret;

    #[test]
    fn margin_is_five_seconds_or_a_quarter_period() {
        let cases = [
            (30, 5_000),
            (60, 5_000),
            (20, 5_000),
            (10, 2_500),
            (2, 500),
            (1, 250),
        ];
        for (period, want) in cases {
            assert_eq!(safety_margin_ms(period), want, "period {period}");
        }
    }

    #[test]
    fn plan_sends_waits_for_next_step_or_for_enough_time_left() {
        // period 30 s, margin 5 s, guard 100 ms.
        let cases: &[(&str, u64, Option<u64>, CodePlan)] = &[
            (
                "fresh secret, start of step",
                60_000,
                None,
                CodePlan::Send { step: 2 },
            ),
            (
                "fresh secret, mid step",
                75_000,
                None,
                CodePlan::Send { step: 2 },
            ),
            (
                "only 4 s left: wait for next",
                86_000,
                None,
                CodePlan::Wait { ms: 4_100 },
            ),
            (
                "exactly margin left: send",
                85_000,
                None,
                CodePlan::Send { step: 2 },
            ),
            (
                "step already used: wait for next",
                70_000,
                Some(2),
                CodePlan::Wait { ms: 20_100 },
            ),
            (
                "older step used: send",
                70_000,
                Some(1),
                CodePlan::Send { step: 2 },
            ),
            (
                "clock went back: wait past the used step",
                70_000,
                Some(3),
                CodePlan::Wait { ms: 50_100 },
            ),
        ];
        for (what, now, last, want) in cases {
            assert_eq!(
                plan_code_with_guard(*now, 30, *last, 5_000, 0),
                *want,
                "{what}"
            );
        }
    }

    #[test]
    fn resuming_marks_the_recorded_step_and_the_current_one_when_a_code_is_next() {
        // (what, recorded, current, next step sends a code, step marked used)
        let cases = [
            ("nothing recorded, no code next", None, 100, false, None),
            (
                "nothing recorded, code next: the crash may have sent one",
                None,
                100,
                true,
                Some(100),
            ),
            (
                "recorded step kept even when no code is next",
                Some(98),
                100,
                false,
                Some(98),
            ),
            (
                "recorded older than now, code next",
                Some(98),
                100,
                true,
                Some(100),
            ),
            (
                "recorded ahead of now (clock went back)",
                Some(103),
                100,
                true,
                Some(103),
            ),
        ];
        for (what, recorded, current, code_next, want) in cases {
            assert_eq!(
                used_step_on_resume(recorded, current, code_next),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn an_estimated_vendor_time_keeps_further_from_the_step_start() {
        // 30 s period, 5 s margin; the guard grows from 100 ms to 700 ms.
        let cases = [
            (
                "waits past the boundary",
                70_000,
                Some(2),
                600,
                CodePlan::Wait { ms: 20_700 },
            ),
            (
                "too little left",
                86_000,
                None,
                600,
                CodePlan::Wait { ms: 4_700 },
            ),
            ("plenty left", 75_000, None, 600, CodePlan::Send { step: 2 }),
        ];
        for (what, now, last, extra, want) in cases {
            assert_eq!(
                plan_code_with_guard(now, 30, last, 5_000, extra),
                want,
                "{what}"
            );
        }
    }

    fn key(period: u64) -> TotpKey {
        TotpKey::from_base32(
            "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
            TotpParams {
                period,
                ..TotpParams::default()
            },
        )
        .expect("key")
    }

    #[tokio::test]
    async fn timer_never_hands_out_the_same_step_twice() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000_000_020));
        let timer = CodeTimer::new(Arc::new(clock.clone()));
        let k = key(30);
        let a = timer.next_code(&k).await;
        let b = timer.next_code(&k).await;
        assert_eq!(b.step, a.step + 1);
        assert_ne!(a.code.expose_secret(), b.code.expose_secret());
        assert_eq!(timer.last_used(&k), Some(b.step));
    }

    #[tokio::test]
    async fn a_released_claim_lets_an_earlier_vendor_step_go_unless_claimed_since() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000_000_020));
        let timer = CodeTimer::new(Arc::new(clock.clone()));
        let k = key(30);
        timer.mark_used(&k, 5);
        let refused = timer.next_code(&k).await;
        assert_eq!(refused.previous, Some(5));
        timer.release(&k, &refused);
        assert_eq!(timer.last_used(&k), Some(5), "back to what it was");
        // The vendor is two steps behind: its step is free again.
        let behind = timer.next_code_on_vendor_time(&k, Some(-60_000)).await;
        assert_eq!(behind.step, refused.step - 2);

        // A later claim in between is never given back.
        let first = timer.next_code(&k).await;
        let later = timer.next_code(&k).await;
        timer.release(&k, &first);
        assert_eq!(timer.last_used(&k), Some(later.step));
    }

    #[tokio::test]
    async fn code_marked_used_elsewhere_is_not_reused() {
        // The operator's enrollment code used step N: the first login waits.
        let start = UNIX_EPOCH + Duration::from_secs(1_000_000_020);
        let clock = ManualClock::new(start);
        let timer = CodeTimer::new(Arc::new(clock.clone()));
        let k = key(30);
        let now_step = k.step_at(1_000_000_020);
        timer.mark_used(&k, now_step);
        let code = timer.next_code(&k).await;
        assert_eq!(code.step, now_step + 1);
        assert!(clock.now() > start);
    }

    #[tokio::test]
    async fn timer_waits_when_the_step_is_nearly_over() {
        // 29 s into a 30 s step: wait ~1 s for the next one.
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(30 * 1000 + 29));
        let timer = CodeTimer::new(Arc::new(clock.clone()));
        let code = timer.next_code(&key(30)).await;
        assert_eq!(code.step, 1001);
    }
}
