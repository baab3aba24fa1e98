//! What every reconcile shares: the client, metrics, the Event recorder, the process-wide TOTP code timer, and the
//! count of consecutive failures per object (for backoff).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Client;
use kube::runtime::events::Recorder;
use otpilot_profile::CodeTimer;
use secrecy::{ExposeSecret, SecretString};

use crate::metrics::Metrics;

/// Field manager of every write the operator makes (server-side apply).
pub const FIELD_MANAGER: &str = "otpilot-operator";

pub struct Context {
    pub client: Client,
    /// The operator's own namespace: ClientCA key Secrets and ConfigMaps.
    pub namespace: String,
    /// The only namespace whose ApiCredentials are reconciled, if set.
    pub watch_namespace: Option<String>,
    /// Label selector limiting the ClientCAs reconciled, if set.
    pub client_ca_selector: Option<String>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// One per process: no two flows on one seed send codes of one step.
    pub timer: Arc<CodeTimer>,
    failures: Mutex<HashMap<String, u32>>,
    /// Per credential, the TOTP secret last checked at the vendor and
    /// whether it worked: it is not checked again until the runtime Secret
    /// holds another one (a refused secret is never tried again and again).
    seed_verdicts: Mutex<HashMap<String, (SecretString, bool)>>,
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
            client_ca_selector,
            metrics,
            recorder,
            timer,
            failures: Mutex::new(HashMap::new()),
            seed_verdicts: Mutex::new(HashMap::new()),
        }
    }

    /// Records one more consecutive failure of `key`; returns the count.
    pub fn failed(&self, key: &str) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// What the last check of `seed` for `key` found: `Some(true)` the
    /// vendor accepted it, `Some(false)` it refused it, `None` not checked.
    pub fn seed_verdict(&self, key: &str, seed: &SecretString) -> Option<bool> {
        let seeds = self.seed_verdicts.lock().unwrap_or_else(|e| e.into_inner());
        seeds
            .get(key)
            .filter(|(s, _)| s.expose_secret() == seed.expose_secret())
            .map(|(_, works)| *works)
    }

    /// Records what the vendor said about `seed` for `key`.
    pub fn record_seed_verdict(&self, key: &str, seed: SecretString, works: bool) {
        let mut seeds = self.seed_verdicts.lock().unwrap_or_else(|e| e.into_inner());
        seeds.insert(key.to_owned(), (seed, works));
    }

    /// Forgets `key`'s failures after a success.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(key);
    }
}
