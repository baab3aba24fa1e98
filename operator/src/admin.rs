//! The admin server on its own port: `/healthz` (the process runs),
//! `/readyz` (see [`crate::readiness`]: connected to the API server and,
//! with the webhook on, a current serving certificate), `/metrics`
//! (Prometheus).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::readiness::{self, WebhookCertificate};

#[derive(Clone)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    /// Connected to the API server, and the webhook (if served) listening.
    pub connected: Arc<AtomicBool>,
    /// `--webhook-cert-dir` when the webhook is served.
    pub webhook_cert_dir: Option<PathBuf>,
}

impl AdminState {
    /// The serving certificate as a handshake now finds it, also recorded
    /// in the metrics.
    fn webhook_certificate(&self) -> WebhookCertificate {
        let certificate =
            readiness::inspect(self.webhook_cert_dir.as_deref(), jiff::Timestamp::now());
        self.metrics.webhook_certificate(&certificate);
        certificate
    }
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let certificate = state.webhook_certificate();
    match readiness::verdict(state.connected.load(Ordering::Relaxed), &certificate) {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    state.webhook_certificate();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
