//! Prometheus metrics, `otpilot_operator_*`. Labels come from bounded sets
//! (controller names, error categories, outcomes): never object names or
//! error text.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

/// Fewer recovery codes than this is "low".
pub const RECOVERY_CODES_LOW: u32 = 3;

/// What one credential contributes to the fleet-wide gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CredentialFigures {
    /// Client certificate notAfter, Unix seconds.
    pub certificate_not_after: Option<i64>,
    /// Recovery codes held, for an enrolled credential of a vendor that has them.
    pub recovery_codes: Option<u32>,
    /// The vendor's clock minus ours, seconds, once measured.
    pub clock_offset_seconds: Option<i64>,
}

/// The largest vendor clock offset of the fleet, in absolute seconds (pure).
pub fn largest_clock_offset(figures: impl Iterator<Item = CredentialFigures>) -> Option<i64> {
    figures
        .filter_map(|f| f.clock_offset_seconds.map(i64::abs))
        .max()
}

/// The fleet-wide figures (pure): earliest certificate expiry, fewest
/// recovery codes, and how many credentials run low on codes.
pub fn fleet(figures: impl Iterator<Item = CredentialFigures>) -> (Option<i64>, Option<u32>, i64) {
    let mut earliest = None;
    let mut fewest = None;
    let mut low = 0;
    for f in figures {
        if let Some(t) = f.certificate_not_after {
            earliest = Some(earliest.map_or(t, |e: i64| e.min(t)));
        }
        if let Some(n) = f.recovery_codes {
            fewest = Some(fewest.map_or(n, |e: u32| e.min(n)));
            if n < RECOVERY_CODES_LOW {
                low += 1;
            }
        }
    }
    (earliest, fewest, low)
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    reconcile_errors: Family<Labels, Counter>,
    enrollments: Family<Labels, Counter>,
    leader: Gauge,
    earliest_certificate_expiry: Gauge,
    fewest_recovery_codes: Gauge,
    recovery_codes_low: Gauge,
    largest_clock_offset: Gauge,
    // Keyed by namespace/name; only aggregates are exported (bounded labels).
    credentials: std::sync::Mutex<std::collections::HashMap<String, CredentialFigures>>,
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
        let earliest_certificate_expiry = Gauge::default();
        registry.register(
            "client_certificate_earliest_expiry_timestamp_seconds",
            "notAfter of the client certificate that expires first, Unix seconds (absent: none issued)",
            earliest_certificate_expiry.clone(),
        );
        let fewest_recovery_codes = Gauge::default();
        registry.register(
            "recovery_codes_fewest",
            "Fewest unused recovery codes held for any enrolled credential",
            fewest_recovery_codes.clone(),
        );
        let recovery_codes_low = Gauge::default();
        registry.register(
            "credentials_recovery_codes_low",
            "Enrolled credentials holding fewer than 3 unused recovery codes",
            recovery_codes_low.clone(),
        );
        let largest_clock_offset = Gauge::default();
        registry.register(
            "vendor_clock_offset_max_abs_seconds",
            "Largest distance between a vendor's clock and ours, seconds, over the credentials (status.clockOffsetSeconds)",
            largest_clock_offset.clone(),
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
            earliest_certificate_expiry,
            fewest_recovery_codes,
            recovery_codes_low,
            largest_clock_offset,
            credentials: Default::default(),
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

    /// Records a credential's figures (`None` when it is gone) and updates
    /// the fleet-wide gauges.
    pub fn credential(&self, key: &str, figures: Option<CredentialFigures>) {
        let mut all = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        match figures {
            Some(f) => {
                all.insert(key.to_owned(), f);
            }
            None => {
                all.remove(key);
            }
        }
        let (earliest, fewest, low) = fleet(all.values().copied());
        self.earliest_certificate_expiry.set(earliest.unwrap_or(0));
        self.fewest_recovery_codes.set(fewest.map_or(-1, i64::from));
        self.recovery_codes_low.set(low);
        self.largest_clock_offset
            .set(largest_clock_offset(all.values().copied()).unwrap_or(0));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_figures_are_the_earliest_expiry_and_fewest_codes() {
        let f = |t: Option<i64>, n: Option<u32>| CredentialFigures {
            certificate_not_after: t,
            recovery_codes: n,
            clock_offset_seconds: None,
        };
        let cases = [
            (vec![], (None, None, 0)),
            (
                vec![f(Some(50), Some(10)), f(Some(20), None)],
                (Some(20), Some(10), 0),
            ),
            (
                vec![f(None, Some(2)), f(None, Some(7)), f(None, Some(0))],
                (None, Some(0), 2),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(fleet(input.into_iter()), want);
        }
    }

    #[test]
    fn the_largest_clock_offset_is_the_largest_distance_either_way() {
        let f = |o: Option<i64>| CredentialFigures {
            clock_offset_seconds: o,
            ..CredentialFigures::default()
        };
        let cases = [
            (vec![], None),
            (vec![f(None)], None),
            (vec![f(Some(3)), f(Some(-20)), f(None)], Some(20)),
            (vec![f(Some(-1)), f(Some(4))], Some(4)),
        ];
        for (input, want) in cases {
            assert_eq!(largest_clock_offset(input.into_iter()), want);
        }
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
