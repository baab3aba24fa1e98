//! What every reconcile shares: the client, metrics, the Event recorder, the process-wide TOTP code timer, and the
//! count of consecutive failures per object (for backoff).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Recorder;
use otpilot_profile::CodeTimer;
use secrecy::{ExposeSecret, SecretString};

use crate::metrics::Metrics;

/// What the vendor said about a stored TOTP secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedCheck {
    /// A login with it worked.
    Works,
    /// Codes from `steps` fresh steps were refused so far; `clock_known`:
    /// the vendor's clock was known for them.
    Refused { steps: u32, clock_known: bool },
    /// Refused, but the vendor's clock is unknown: not tried again.
    Doubted,
}

/// Field manager of every write the operator makes (server-side apply).
pub const FIELD_MANAGER: &str = "otpilot-operator";

pub struct Context {
    pub client: Client,
    /// The operator's own namespace: ClientCA key Secrets and ConfigMaps.
    pub namespace: String,
    /// The only namespace whose ApiCredentials are reconciled, if set.
    pub watch_namespace: Option<String>,
    /// The namespaces where RBAC grants Secrets (`--secret-namespaces`);
    /// empty: every namespace.
    pub secret_namespaces: Vec<String>,
    /// Label selector limiting the ClientCAs reconciled, if set.
    pub client_ca_selector: Option<String>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// One per process: no two flows on one seed send codes of one step.
    pub timer: Arc<CodeTimer>,
    /// The limit on one vendor call.
    pub vendor_timeout: Duration,
    /// How vendors are reached: directly or through a proxy.
    pub egress: otpilot_profile::Egress,
    failures: Mutex<HashMap<String, u32>>,
    /// Per credential, the TOTP secret last checked at the vendor and what
    /// was found: refusals add up across passes, so a check interrupted by
    /// an outage never sends more wrong codes in total than one decision
    /// needs.
    seed_checks: Mutex<HashMap<String, (SecretString, SeedCheck)>>,
}

impl Context {
    pub fn new(
        client: Client,
        namespace: String,
        watch_namespace: Option<String>,
        client_ca_selector: Option<String>,
        metrics: Arc<Metrics>,
        recorder: Recorder,
        timer: Arc<CodeTimer>,
    ) -> Self {
        Self {
            client,
            namespace,
            watch_namespace,
            secret_namespaces: Vec::new(),
            client_ca_selector,
            metrics,
            recorder,
            timer,
            vendor_timeout: otpilot_profile::HttpSettings::default().request_timeout,
            egress: otpilot_profile::Egress::default(),
            failures: Mutex::new(HashMap::new()),
            seed_checks: Mutex::new(HashMap::new()),
        }
    }

    /// The same context with `timeout` as the limit on one vendor call.
    pub fn with_vendor_timeout(mut self, timeout: Duration) -> Self {
        self.vendor_timeout = timeout;
        self
    }

    /// The same context with Secrets granted in `namespaces` only.
    pub fn with_secret_namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.secret_namespaces = namespaces;
        self
    }

    /// The same context reaching vendors as `egress` says.
    pub fn with_egress(mut self, egress: otpilot_profile::Egress) -> Self {
        self.egress = egress;
        self
    }

    /// Records one more consecutive failure of `key`; returns the count.
    pub fn failed(&self, key: &str) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// What the checks of `seed` for `key` found so far (`None`: not
    /// checked, or the credential holds another secret now).
    pub fn seed_check(&self, key: &str, seed: &SecretString) -> Option<SeedCheck> {
        let seeds = self.seed_checks.lock().unwrap_or_else(|e| e.into_inner());
        seeds
            .get(key)
            .filter(|(s, _)| s.expose_secret() == seed.expose_secret())
            .map(|(_, check)| *check)
    }

    /// Records what the vendor said about `seed` for `key`.
    pub fn record_seed_check(&self, key: &str, seed: SecretString, check: SeedCheck) {
        let mut seeds = self.seed_checks.lock().unwrap_or_else(|e| e.into_inner());
        seeds.insert(key.to_owned(), (seed, check));
    }

    /// Forgets `key`'s failures after a success.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(key);
    }
}
