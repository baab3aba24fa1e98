//! Prometheus metrics, `otpilot_operator_*`. Labels come from bounded sets
//! (controller names, error categories, outcomes): never object names or
//! error text.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    reconcile_errors: Family<Labels, Counter>,
    enrollments: Family<Labels, Counter>,
    leader: Gauge,
    webhook_denials: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("otpilot_operator");
        let reconciles = Family::<Labels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciliations run, by controller",
            reconciles.clone(),
        );
        let reconcile_errors = Family::<Labels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed, by controller and error category",
            reconcile_errors.clone(),
        );
        let enrollments = Family::<Labels, Counter>::default();
        registry.register(
            "enrollments",
            "Enrollment attempts finished, by outcome (the failure category or Enrolled)",
            enrollments.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "Whether this replica holds the leader Lease (1) or waits for it (0)",
            leader.clone(),
        );
        let webhook_denials = Family::<Labels, Counter>::default();
        registry.register(
            "webhook_denials",
            "Pods the injection webhook refused, by reason",
            webhook_denials.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_errors,
            enrollments,
            leader,
            webhook_denials,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, controller: &'static str) {
        self.reconciles
            .get_or_create(&vec![("controller", controller)])
            .inc();
    }

    pub fn reconcile_failed(&self, controller: &'static str, category: &'static str) {
        self.reconcile_errors
            .get_or_create(&vec![("controller", controller), ("category", category)])
            .inc();
    }

    pub fn enrollment_finished(&self, outcome: &'static str) {
        self.enrollments
            .get_or_create(&vec![("outcome", outcome)])
            .inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    pub fn webhook_denied(&self, reason: &'static str) {
        self.webhook_denials
            .get_or_create(&vec![("reason", reason)])
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_carry_the_prefix_and_bounded_labels() {
        let metrics = Metrics::default();
        metrics.reconciled("apicredential");
        metrics.reconcile_failed("apicredential", "SecretNotFound");
        metrics.enrollment_finished("Enrolled");
        metrics.set_leader(true);
        metrics.webhook_denied("CredentialNotFound");
        let text = metrics.render();
        for want in [
            "otpilot_operator_reconciles_total{controller=\"apicredential\"} 1",
            "otpilot_operator_reconcile_errors_total{controller=\"apicredential\",category=\"SecretNotFound\"} 1",
            "otpilot_operator_enrollments_total{outcome=\"Enrolled\"} 1",
            "otpilot_operator_leader 1",
            "otpilot_operator_webhook_denials_total{reason=\"CredentialNotFound\"} 1",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
