//! Prometheus metrics, `otpilot_operator_*`. Labels come from bounded sets:
//! controller names, error categories, outcomes, and, for the per-credential
//! gauges, the ApiCredential's namespace and name (bounded by the objects in
//! the cluster, as cert-manager labels its certificate metrics; never error
//! text). The chart's PrometheusRule reads the per-credential gauges, so an
//! alert names the credential and can be routed to the team that owns it.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;
/// `namespace` and `name` of an ApiCredential.
type CredentialLabels = Vec<(&'static str, String)>;

/// What one credential's gauges show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CredentialFigures {
    /// Whether its Ready condition is True.
    pub ready: bool,
    /// Client certificate notAfter, Unix seconds.
    pub certificate_not_after: Option<i64>,
    /// Recovery codes held, for an enrolled credential of a vendor that has them.
    pub recovery_codes: Option<u32>,
    /// The vendor's clock minus ours, seconds, once measured.
    pub clock_offset_seconds: Option<i64>,
}

/// The label set of the credential `namespace/name` (the controller's key).
fn credential_labels(key: &str) -> CredentialLabels {
    let (namespace, name) = key.split_once('/').unwrap_or(("", key));
    vec![
        ("namespace", namespace.to_owned()),
        ("name", name.to_owned()),
    ]
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    reconcile_errors: Family<Labels, Counter>,
    enrollments: Family<Labels, Counter>,
    leader: Gauge,
    credential_ready: Family<CredentialLabels, Gauge>,
    certificate_expiry: Family<CredentialLabels, Gauge>,
    recovery_codes: Family<CredentialLabels, Gauge>,
    clock_offset: Family<CredentialLabels, Gauge>,
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
        let credential_ready = Family::<CredentialLabels, Gauge>::default();
        registry.register(
            "credential_ready",
            "1 while the ApiCredential's Ready condition is True, else 0",
            credential_ready.clone(),
        );
        let certificate_expiry = Family::<CredentialLabels, Gauge>::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "notAfter of the ApiCredential's client certificate, Unix seconds (absent: none issued)",
            certificate_expiry.clone(),
        );
        let recovery_codes = Family::<CredentialLabels, Gauge>::default();
        registry.register(
            "recovery_codes_remaining",
            "Unused recovery codes held for the ApiCredential (absent: none issued by the vendor)",
            recovery_codes.clone(),
        );
        let clock_offset = Family::<CredentialLabels, Gauge>::default();
        registry.register(
            "vendor_clock_offset_seconds",
            "The vendor's clock minus ours, seconds, as last measured for the ApiCredential (status.clockOffsetSeconds)",
            clock_offset.clone(),
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
            credential_ready,
            certificate_expiry,
            recovery_codes,
            clock_offset,
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

    /// Sets a credential's gauges (`key` is `namespace/name`); `None`
    /// removes its series (the credential is gone).
    pub fn credential(&self, key: &str, figures: Option<CredentialFigures>) {
        let labels = credential_labels(key);
        let Some(f) = figures else {
            self.credential_ready.remove(&labels);
            self.certificate_expiry.remove(&labels);
            self.recovery_codes.remove(&labels);
            self.clock_offset.remove(&labels);
            return;
        };
        self.credential_ready
            .get_or_create(&labels)
            .set(i64::from(f.ready));
        set_or_remove(&self.certificate_expiry, &labels, f.certificate_not_after);
        set_or_remove(
            &self.recovery_codes,
            &labels,
            f.recovery_codes.map(i64::from),
        );
        set_or_remove(&self.clock_offset, &labels, f.clock_offset_seconds);
    }

    /// Counts a Pod the injection webhook refused (reason: a bounded set).
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

/// A gauge that exists only while there is a value: an absent series, not a
/// made-up 0, when a credential has no certificate or no recovery codes.
fn set_or_remove(
    family: &Family<CredentialLabels, Gauge>,
    labels: &CredentialLabels,
    value: Option<i64>,
) {
    match value {
        Some(v) => {
            family.get_or_create(labels).set(v);
        }
        None => {
            family.remove(labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_has_its_own_series_until_it_is_gone() {
        let metrics = Metrics::default();
        let figures = CredentialFigures {
            ready: true,
            certificate_not_after: Some(1_900_000_000),
            recovery_codes: Some(2),
            clock_offset_seconds: Some(-4),
        };
        metrics.credential("payments/bot", Some(figures));
        metrics.credential("ci/builder", Some(CredentialFigures::default()));
        let text = metrics.render();
        for want in [
            r#"otpilot_operator_credential_ready{namespace="payments",name="bot"} 1"#,
            r#"otpilot_operator_certificate_expiry_timestamp_seconds{namespace="payments",name="bot"} 1900000000"#,
            r#"otpilot_operator_recovery_codes_remaining{namespace="payments",name="bot"} 2"#,
            r#"otpilot_operator_vendor_clock_offset_seconds{namespace="payments",name="bot"} -4"#,
            r#"otpilot_operator_credential_ready{namespace="ci",name="builder"} 0"#,
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
        // No certificate, no codes, no offset measured: no series, not a 0.
        assert!(!text.contains(r#"certificate_expiry_timestamp_seconds{namespace="ci""#));
        assert!(!text.contains(r#"recovery_codes_remaining{namespace="ci""#));

        metrics.credential("payments/bot", None);
        let text = metrics.render();
        assert!(!text.contains(r#"name="bot""#), "{text}");
        assert!(text.contains(r#"name="builder""#));
    }

    /// Every metric the chart's PrometheusRule reads is one the operator
    /// exports: an alert on a misspelt metric never fires.
    #[test]
    fn every_metric_the_shipped_alerts_read_is_exported() {
        let rules = include_str!("../../charts/otpilot/templates/prometheusrule.yaml");
        let metrics = Metrics::default();
        metrics.credential(
            "ns/name",
            Some(CredentialFigures {
                ready: true,
                certificate_not_after: Some(1),
                recovery_codes: Some(1),
                clock_offset_seconds: Some(1),
            }),
        );
        metrics.webhook_denied("CredentialNotFound");
        let text = metrics.render();
        let mut read = 0;
        for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("otpilot_operator_") {
                read += 1;
                assert!(
                    text.lines().any(|l| l.starts_with(&format!("{word}{{"))
                        || l.starts_with(&format!("{word} "))),
                    "the PrometheusRule reads {word}, which the operator does not export:\n{text}"
                );
            }
        }
        assert!(read >= 5, "found {read} metric names in the PrometheusRule");
    }

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
