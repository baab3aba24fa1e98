//! Named pause points for crash tests: when `OTPILOT_FAILPOINT` names a
//! point, the process logs `failpoint reached` and stops there for good, so
//! a test can SIGKILL it at exactly that moment and restart it.
//!
//! Compiled only into debug builds (which `cargo test` uses); a release
//! build has no failpoints and ignores the variable.

/// Pauses forever at `name` if the environment asks for it.
#[cfg(debug_assertions)]
pub async fn point(name: &str) {
    if std::env::var("OTPILOT_FAILPOINT").is_ok_and(|wanted| wanted == name) {
        tracing::warn!(failpoint = name, "failpoint reached");
        std::future::pending::<()>().await;
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub async fn point(_name: &str) {}
