//! What the servers read and the session writes: the current token (swapped
//! atomically, pre-rendered so `/token` only copies bytes), why the sidecar
//! is not ready, and the vendor the proxy forwards to.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::body::Bytes;
use http::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Notify, watch};

use crate::metrics::{Metrics, ModeLabels};
use crate::sharing::decide::Mode;

/// Renewals forced by the proxy happen at most this often.
pub const FORCED_RENEWAL_MIN_INTERVAL: Duration = Duration::from_secs(5);

/// A token ready to hand out.
pub struct ServedToken {
    /// When the vendor stops accepting it.
    pub expires_at: SystemTime,
    /// When the sidecar stops handing it out.
    pub serve_until: SystemTime,
    /// `{token, tokenType, expiresAt}`.
    pub json: Bytes,
    /// The bare token.
    pub plain: Bytes,
    /// The header the proxy sets, and its value (sensitive).
    pub header: (HeaderName, HeaderValue),
    /// Increases with every new token.
    pub generation: u64,
}

impl std::fmt::Debug for ServedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedToken")
            .field("expires_at", &self.expires_at)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Why a token could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("failed to use the vendor's token: it holds characters an HTTP header cannot carry")]
    /// The token has characters an HTTP header cannot carry.
    NotAHeaderValue,
    #[error("failed to represent the token's expiry as a timestamp")]
    /// The expiry is out of the timestamp range.
    Expiry,
}

impl ServedToken {
    /// Renders `token` once, for every future request. `header` is how
    /// the vendor wants it presented; `token_type` its scheme (`Bearer`,
    /// `jwt`), `None` (JSON `null`) for a vendor that takes the bare token.
    pub fn render(
        token: &SecretString,
        header: Option<(HeaderName, HeaderValue)>,
        token_type: Option<&str>,
        expires_at: SystemTime,
        serve_until: SystemTime,
        generation: u64,
    ) -> Result<Self, RenderError> {
        let header = header.ok_or(RenderError::NotAHeaderValue)?;
        let expires = jiff::Timestamp::try_from(expires_at).map_err(|_| RenderError::Expiry)?;
        let json = serde_json::json!({
            "token": token.expose_secret(),
            "tokenType": token_type,
            "expiresAt": expires.to_string(),
        });
        Ok(Self {
            expires_at,
            serve_until,
            json: Bytes::from(json.to_string()),
            plain: Bytes::from(token.expose_secret().to_owned()),
            header,
            generation,
        })
    }

    /// Whether it may still be handed out at `now`.
    pub fn servable_at(&self, now: SystemTime) -> bool {
        now < self.serve_until
    }
}

/// The vendor the proxy forwards to, and how.
pub struct ProxyTarget {
    /// Base URL without a trailing `/`.
    pub base_url: String,
    /// The client with the credential's certificate.
    pub client: reqwest::Client,
}

/// State shared by the session, the local API and the proxy.
pub struct Shared {
    current: ArcSwapOption<ServedToken>,
    not_ready: ArcSwap<String>,
    proxy_target: ArcSwapOption<ProxyTarget>,
    generation: AtomicU64,
    new_token: watch::Sender<u64>,
    refresh_requested: Notify,
    last_forced_renewal: Mutex<Option<Instant>>,
    session_mode: ArcSwap<(Mode, String)>,
    failed_task: ArcSwapOption<String>,
    /// The metrics.
    pub metrics: Metrics,
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

impl Shared {
    /// Nothing held yet.
    pub fn new() -> Self {
        Self {
            current: ArcSwapOption::empty(),
            not_ready: ArcSwap::from_pointee("starting: no token yet".to_owned()),
            proxy_target: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            new_token: watch::channel(0).0,
            refresh_requested: Notify::new(),
            last_forced_renewal: Mutex::new(None),
            session_mode: ArcSwap::from_pointee((
                Mode::Standalone,
                "no shared session configured".to_owned(),
            )),
            failed_task: ArcSwapOption::empty(),
            metrics: Metrics::new(),
        }
    }

    /// Why the sidecar is no longer alive: a supervised task ended
    /// (`/healthz` fails from then on).
    pub fn set_failed_task(&self, description: String) {
        self.failed_task.store(Some(Arc::new(description)));
    }

    /// The task that ended, if one did.
    pub fn failed_task(&self) -> Option<Arc<String>> {
        self.failed_task.load_full()
    }

    /// The current token, if one is servable at `now`.
    pub fn servable(&self, now: SystemTime) -> Option<Arc<ServedToken>> {
        self.current
            .load_full()
            .filter(|token| token.servable_at(now))
    }

    /// Applies `f` to the current token if it is servable at `now`, without
    /// touching its reference count (the `/token` hot path).
    pub fn with_servable<R>(
        &self,
        now: SystemTime,
        f: impl FnOnce(&ServedToken) -> R,
    ) -> Option<R> {
        let guard = self.current.load();
        guard.as_deref().filter(|t| t.servable_at(now)).map(f)
    }

    /// The current token, servable or not (for metrics and readiness text).
    pub fn current(&self) -> Option<Arc<ServedToken>> {
        self.current.load_full()
    }

    /// The next generation number.
    pub fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Publishes a new token.
    pub fn publish(&self, token: ServedToken) {
        let generation = token.generation;
        self.current.store(Some(Arc::new(token)));
        self.new_token.send_replace(generation);
    }

    /// Waits for tokens newer than what was seen.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.new_token.subscribe()
    }

    /// Why the sidecar would not be ready without a servable token.
    pub fn not_ready_reason(&self) -> Arc<String> {
        self.not_ready.load_full()
    }

    /// Why no token is served at `now`, in words for `/readyz` and `/token`.
    pub fn describe_not_ready(&self, now: SystemTime) -> String {
        let reason = self.not_ready_reason();
        match self.current() {
            Some(token) if !token.servable_at(now) => {
                let expired = jiff::Timestamp::try_from(token.expires_at)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|_| "an unrepresentable time".to_owned());
                format!(
                    "no valid token: the last one expires at {expired} and is no longer served; {reason}"
                )
            }
            _ => reason.as_str().to_owned(),
        }
    }

    /// Records why no token is coming (or that one is on its way).
    pub fn set_not_ready_reason(&self, reason: String) {
        self.not_ready.store(Arc::new(reason));
    }

    /// The proxy's target.
    pub fn proxy_target(&self) -> Option<Arc<ProxyTarget>> {
        self.proxy_target.load_full()
    }

    /// Points the proxy at a (possibly new) vendor or certificate.
    pub fn set_proxy_target(&self, target: ProxyTarget) {
        self.proxy_target.store(Some(Arc::new(target)));
    }

    /// The vendor refused the token of `refused_generation`: asks the
    /// session for a new one now, at most once per
    /// [`FORCED_RENEWAL_MIN_INTERVAL`] (an endpoint that answers 401 for
    /// reasons of its own must not make the sidecar hammer the login).
    /// Returns whether a newer token is coming or already here.
    pub fn request_renewal(&self, refused_generation: u64) -> bool {
        let current = self.current().map(|t| t.generation);
        if current.is_some_and(|g| g > refused_generation) {
            return true;
        }
        let mut last = self
            .last_forced_renewal
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < FORCED_RENEWAL_MIN_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        self.refresh_requested.notify_one();
        true
    }

    /// How the token is obtained (shared or standalone) and why.
    pub fn session_mode(&self) -> Arc<(Mode, String)> {
        self.session_mode.load_full()
    }

    /// Records the session mode, also in the metric.
    pub fn set_session_mode(&self, mode: Mode, reason: String) {
        for m in Mode::ALL {
            self.metrics
                .session_mode
                .get_or_create(&ModeLabels { mode: m.as_str() })
                .set(i64::from(m == mode));
        }
        self.session_mode.store(Arc::new((mode, reason)));
    }

    /// Completes when someone asked for a new token.
    pub async fn refresh_requested(&self) {
        self.refresh_requested.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_rendered_token_is_json_and_plain_and_stops_being_servable_at_its_margin() {
        let exp = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let header = (
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok-en"),
        );
        let t = ServedToken::render(
            &SecretString::from("tok\"en"),
            Some(header),
            Some("Bearer"),
            exp,
            exp - Duration::from_secs(5),
            1,
        )
        .expect("renders");
        let v: serde_json::Value = serde_json::from_slice(&t.json).expect("json");
        assert_eq!(v["token"], "tok\"en");
        assert_eq!(v["tokenType"], "Bearer");
        assert_eq!(v["expiresAt"], "2027-01-15T08:00:00Z");
        assert_eq!(&t.plain[..], b"tok\"en");
        assert!(t.servable_at(exp - Duration::from_secs(6)));
        assert!(!t.servable_at(exp - Duration::from_secs(5)));
    }
}
