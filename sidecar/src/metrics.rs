//! Prometheus metrics, `otpilot_sidecar_*`. Labels are bounded: flow names,
//! failure classes and status classes, never error text or values.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

/// A flow and why it failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// `login` or `refresh`.
    pub flow: &'static str,
    /// A [`crate::policy::FailureClass`] label, or an input problem.
    pub reason: &'static str,
}

/// One flow.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlowLabels {
    /// `login` or `refresh`.
    pub flow: &'static str,
}

/// The session mode.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabels {
    /// `shared-holder`, `shared-follower` or `standalone`.
    pub mode: &'static str,
}

/// A proxied request's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyLabels {
    /// `2xx`, `4xx`, `5xx`..., or `error` when the vendor was not reached.
    pub status: &'static str,
}

/// A local request refused before it was answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// `api` (`/token`) or `proxy`.
    pub server: &'static str,
    /// `host` (not a loopback `Host`) or `header` (the token request header missing).
    pub reason: &'static str,
}

/// A supervised task.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// `reload`, `session`, `api`, `admin` or `proxy`.
    pub task: &'static str,
}

/// Every metric of the sidecar.
pub struct Metrics {
    registry: Registry,
    /// Successful logins.
    pub logins: Counter,
    /// Successful refreshes.
    pub refreshes: Counter,
    /// Failed flows by reason.
    pub failures: Family<FailureLabels, Counter>,
    /// Input sets refused.
    pub input_reloads_refused: Counter,
    /// Input sets taken into use.
    pub input_reloads: Counter,
    /// Seconds until the served token expires (set at scrape time).
    pub token_expiry_seconds: Gauge<f64, AtomicU64>,
    /// Duration of whole login / refresh flows against the vendor.
    pub flow_duration: Family<FlowLabels, Histogram>,
    /// Proxied requests by status class.
    pub proxy_requests: Family<ProxyLabels, Counter>,
    /// Time to the upstream response headers of proxied requests.
    pub proxy_upstream_duration: Histogram,
    /// 1 for the current session mode, 0 for the others.
    pub session_mode: Family<ModeLabels, Gauge>,
    /// Local requests refused by `Host` or missing header.
    pub refused_requests: Family<RefusedLabels, Counter>,
    /// The vendor's clock minus ours, as the engine last measured it from
    /// the vendor's `Date` headers (absent until measured).
    pub vendor_clock_offset_seconds: Gauge<f64, AtomicU64>,
    /// Supervised tasks that ended before shutdown (the process exits next).
    pub task_exits: Family<TaskLabels, Counter>,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
    .into_iter()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("otpilot_sidecar");
        let logins = Counter::default();
        registry.register("logins", "Successful TOTP logins", logins.clone());
        let refreshes = Counter::default();
        registry.register("refreshes", "Successful token refreshes", refreshes.clone());
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "failures",
            "Failed logins and refreshes by bounded reason",
            failures.clone(),
        );
        let input_reloads = Counter::default();
        registry.register(
            "input_reloads",
            "Input sets (runtime Secret, password, API key) taken into use",
            input_reloads.clone(),
        );
        let input_reloads_refused = Counter::default();
        registry.register(
            "input_reloads_refused",
            "Input sets refused because they did not parse; the last good set stays in use",
            input_reloads_refused.clone(),
        );
        let token_expiry_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "token_expiry",
            "Seconds until the served token expires (negative or absent: none held)",
            Unit::Seconds,
            token_expiry_seconds.clone(),
        );
        let flow_duration = Family::<FlowLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register_with_unit(
            "vendor_flow_duration",
            "Duration of login and refresh flows against the vendor",
            Unit::Seconds,
            flow_duration.clone(),
        );
        let proxy_requests = Family::<ProxyLabels, Counter>::default();
        registry.register(
            "proxy_requests",
            "Requests forwarded by the proxy, by upstream status class",
            proxy_requests.clone(),
        );
        let proxy_upstream_duration = Histogram::new(latency_buckets());
        registry.register_with_unit(
            "proxy_upstream_duration",
            "Time from forwarding a request to the vendor's response headers",
            Unit::Seconds,
            proxy_upstream_duration.clone(),
        );
        let session_mode = Family::<ModeLabels, Gauge>::default();
        registry.register(
            "session_mode",
            "1 for how this replica gets its token (shared-holder, shared-follower, standalone)",
            session_mode.clone(),
        );
        let refused_requests = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "refused_requests",
            "Requests to /token or the proxy refused unanswered: a Host that is not loopback, or the token request header missing",
            refused_requests.clone(),
        );
        let vendor_clock_offset_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "vendor_clock_offset",
            "The vendor's clock minus ours, measured from its Date headers; TOTP codes are computed on the vendor's time",
            Unit::Seconds,
            vendor_clock_offset_seconds.clone(),
        );
        let task_exits = Family::<TaskLabels, Counter>::default();
        registry.register(
            "task_exits",
            "Supervised tasks that returned or panicked before shutdown; the sidecar then fails /healthz and exits non-zero",
            task_exits.clone(),
        );
        Self {
            registry,
            logins,
            refreshes,
            failures,
            input_reloads_refused,
            input_reloads,
            token_expiry_seconds,
            flow_duration,
            proxy_requests,
            proxy_upstream_duration,
            session_mode,
            refused_requests,
            vendor_clock_offset_seconds,
            task_exits,
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The status class label of an HTTP status.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_prefixed_and_carry_units() {
        let m = Metrics::new();
        m.logins.inc();
        m.failures
            .get_or_create(&FailureLabels {
                flow: "login",
                reason: "locked_out",
            })
            .inc();
        let text = m.encode().expect("encode");
        assert!(text.contains("otpilot_sidecar_logins_total 1"), "{text}");
        assert!(
            text.contains(r#"otpilot_sidecar_failures_total{flow="login",reason="locked_out"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("otpilot_sidecar_token_expiry_seconds"),
            "{text}"
        );
    }
}
