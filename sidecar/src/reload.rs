//! Watches the input files and hands each new, valid set to the session.
//! Polling (every second or two) rather than inotify: a Secret volume's
//! rotation is a symlink swap inside a directory the kubelet owns, which
//! polling sees on every filesystem and every kernel.

use std::sync::Arc;
use std::time::Duration;

use otpilot_profile::CodeTimer;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::inputs::{self, ClientSettings, Prepared, RawInputs, Sources};
use crate::state::{ProxyTarget, Shared};

/// How to watch.
#[derive(Debug, Clone)]
pub struct ReloadConfig {
    /// The files.
    pub sources: Sources,
    /// How often to look.
    pub interval: Duration,
    /// How the engine's and the proxy's clients are built.
    pub client: ClientSettings,
}

/// Reads the inputs every `interval` until cancelled, publishing each new
/// set that parses; a set that does not parse is logged (naming the key or
/// file, never a value) and the last good one stays in use.
pub async fn watch_inputs(
    config: ReloadConfig,
    timer: Arc<CodeTimer>,
    shared: Arc<Shared>,
    tx: watch::Sender<Option<Arc<Prepared>>>,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_raw: Option<RawInputs> = None;
    let mut last_read_error: Option<String> = None;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let sources = config.sources.clone();
        let read = match tokio::task::spawn_blocking(move || inputs::read(&sources)).await {
            Ok(read) => read,
            Err(join) => {
                tracing::error!(error = %join, "failed to read the inputs: the reader task died");
                continue;
            }
        };
        let raw = match read {
            Ok(raw) => raw,
            Err(error) => {
                // A rotation in progress can remove files under us: say it once.
                let text = error.to_string();
                if last_read_error.as_deref() != Some(&text) {
                    tracing::warn!(error = %text, "failed to read the inputs; keeping the last good set");
                    if tx.borrow().is_none() {
                        shared.set_not_ready_reason(format!("no usable inputs: {text}"));
                    }
                }
                last_read_error = Some(text);
                continue;
            }
        };
        last_read_error = None;
        if last_raw.as_ref() == Some(&raw) {
            continue;
        }
        let first = last_raw.is_none();
        match inputs::prepare(&raw, &timer, &config.client) {
            Ok(prepared) => {
                tracing::info!(
                    profile = %prepared.profile_name,
                    base_url = %prepared.base_url,
                    enrollment_state = ?prepared.enrollment_state,
                    first,
                    "inputs loaded"
                );
                shared.metrics.input_reloads.inc();
                shared.set_proxy_target(ProxyTarget {
                    base_url: prepared.base_url.clone(),
                    client: prepared.proxy_client.clone(),
                });
                tx.send_replace(Some(Arc::new(prepared)));
            }
            Err(error) => {
                shared.metrics.input_reloads_refused.inc();
                if tx.borrow().is_some() {
                    tracing::warn!(error = %error, "refusing the new inputs; the last good set stays in use");
                } else {
                    tracing::error!(error = %error, "refusing the inputs; no token until they are fixed");
                    shared.set_not_ready_reason(format!("inputs refused: {error}"));
                }
            }
        }
        last_raw = Some(raw);
    }
}
