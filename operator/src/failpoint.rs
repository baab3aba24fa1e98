//! Named pause points for crash and fault tests: when `OTPILOT_FAILPOINT`
//! names a point, the process logs `failpoint reached` and stops there for
//! good, so a test can SIGKILL it at exactly that moment and restart it.
//! With `OTPILOT_FAILPOINT_PAUSE_MS` set, it stops only that long and goes
//! on: a test breaks something (the vendor, the API server) at that moment
//! and the same process meets the fault.
//!
//! Compiled only into debug builds (which `cargo test` uses); a release
//! build has no failpoints and ignores the variables.

/// Pauses at `name` if the environment asks for it.
#[cfg(debug_assertions)]
pub async fn point(name: &str) {
    if std::env::var("OTPILOT_FAILPOINT").is_ok_and(|wanted| wanted == name) {
        tracing::warn!(failpoint = name, "failpoint reached");
        match std::env::var("OTPILOT_FAILPOINT_PAUSE_MS")
            .ok()
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            Some(ms) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
            None => std::future::pending::<()>().await,
        }
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub async fn point(_name: &str) {}
