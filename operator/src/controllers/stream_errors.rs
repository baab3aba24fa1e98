//! What a controller's output stream says besides reconcile results: a
//! watch the API server refuses (RBAC, a missing CRD) or that keeps
//! failing. Silently dropped, such a failure leaves a controller that looks
//! healthy and never hears of the objects it should react to.

use kube::runtime::controller;

/// Logs a failed watch or queue (reconcile failures are logged by each
/// controller's error policy, with the object).
pub fn log<E: std::error::Error>(
    controller: &'static str,
    error: &controller::Error<E, kube::runtime::watcher::Error>,
) {
    if let controller::Error::QueueError(watch) = error {
        tracing::warn!(controller, error = %watch, "watch failed; retrying with backoff");
    }
}
