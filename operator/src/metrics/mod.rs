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

use crate::readiness::WebhookCertificate;

type Labels = Vec<(&'static str, &'static str)>;
/// `namespace` and `name` of an ApiCredential.
type CredentialLabels = Vec<(&'static str, String)>;
/// Labels with an owned value (a namespace), or none.
type OwnedLabels = Vec<(&'static str, String)>;

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
    webhook_denials: Family<OwnedLabels, Counter>,
    /// The namespaces that label refusals so far (bounded, see
    /// [`denial_namespace`]).
    denial_namespaces: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Registered only when this replica serves the webhook.
    webhook_certificate_valid: Gauge,
    webhook_certificate_expiry: Family<OwnedLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(false)
    }
}

impl Metrics {
    /// Every metric; the webhook certificate's only when `webhook` (an
    /// operator without `--webhook-addr` exports no such series).
    pub fn new(webhook: bool) -> Self {
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
        let webhook_denials = Family::<OwnedLabels, Counter>::default();
        registry.register(
            "webhook_denials",
            "Pods the injection webhook refused, by the Pod's namespace and reason",
            webhook_denials.clone(),
        );
        let webhook_certificate_valid = Gauge::default();
        let webhook_certificate_expiry = Family::<OwnedLabels, Gauge>::default();
        if webhook {
            registry.register(
                "webhook_certificate_valid",
                "1 while the webhook's serving certificate loads and is within its validity, else 0 (TLS handshakes fail; /readyz fails)",
                webhook_certificate_valid.clone(),
            );
            registry.register(
                "webhook_certificate_expiry_timestamp_seconds",
                "notAfter of the webhook's serving certificate, Unix seconds (absent: none loads)",
                webhook_certificate_expiry.clone(),
            );
        }
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
            denial_namespaces: std::sync::Mutex::default(),
            webhook_certificate_valid,
            webhook_certificate_expiry,
        }
    }
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

    /// Counts a Pod the injection webhook refused, labelled with the Pod's
    /// namespace (so the alert reaches the team whose Pod it was) and the
    /// reason (a bounded set).
    pub fn webhook_denied(&self, namespace: &str, reason: &'static str) {
        let namespace = match self.denial_namespaces.lock() {
            Ok(mut seen) => denial_namespace(&mut seen, namespace),
            Err(_) => String::new(),
        };
        self.webhook_denials
            .get_or_create(&vec![
                ("namespace", namespace),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    /// Records the webhook's serving certificate as `/readyz` last found it.
    pub fn webhook_certificate(&self, certificate: &WebhookCertificate) {
        if *certificate == WebhookCertificate::NotServed {
            return;
        }
        let valid = matches!(certificate, WebhookCertificate::Current { .. });
        self.webhook_certificate_valid.set(i64::from(valid));
        set_or_remove(
            &self.webhook_certificate_expiry,
            &Vec::new(),
            certificate.not_after().map(|t| t.as_second()),
        );
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// At most this many namespaces label webhook refusals.
pub const MAX_DENIAL_NAMESPACES: usize = 1000;

/// The `namespace` label of a refusal. The webhook answers anyone who
/// reaches its port, and a made-up review can name any namespace: only a
/// valid namespace name labels a series, and only the first
/// [`MAX_DENIAL_NAMESPACES`] of them, so no caller grows the series without
/// bound. Others get `""` (still counted by reason).
fn denial_namespace(seen: &mut std::collections::HashSet<String>, namespace: &str) -> String {
    let valid = !namespace.is_empty()
        && namespace.len() <= 63
        && namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !namespace.starts_with('-')
        && !namespace.ends_with('-');
    if !valid {
        return String::new();
    }
    if seen.contains(namespace) || seen.len() < MAX_DENIAL_NAMESPACES {
        seen.insert(namespace.to_owned());
        return namespace.to_owned();
    }
    String::new()
}

/// A gauge that exists only while there is a value: an absent series, not a
/// made-up 0, when a credential has no certificate or no recovery codes.
fn set_or_remove(family: &Family<OwnedLabels, Gauge>, labels: &OwnedLabels, value: Option<i64>) {
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
mod tests;
