//! The simulator's notion of "now": real time in the binary, a hand-driven
//! clock in unit tests, so TOTP steps and token expiry can be tested without
//! sleeping.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Whole seconds since the Unix epoch.
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock before 1970 is a broken machine; treat it as the epoch
        // rather than panicking inside a request.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: Mutex<u64>,
}

impl ManualClock {
    /// A clock standing at `unix_secs`.
    pub fn at_secs(unix_secs: u64) -> Self {
        Self {
            now_ms: Mutex::new(unix_secs.saturating_mul(1000)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now_ms.lock().unwrap_or_else(|e| e.into_inner());
        *now = now.saturating_add(u64::try_from(by.as_millis()).unwrap_or(u64::MAX));
    }

    /// Sets the clock to an absolute time.
    pub fn set_secs(&self, unix_secs: u64) {
        *self.now_ms.lock().unwrap_or_else(|e| e.into_inner()) = unix_secs.saturating_mul(1000);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.now_ms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::at_secs(100);
        assert_eq!(clock.now_secs(), 100);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now_ms(), 101_500);
        assert_eq!(clock.now_secs(), 101);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_secs() > 1_577_836_800);
    }
}
