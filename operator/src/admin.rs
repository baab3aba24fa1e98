//! The admin server on its own port: `/healthz` (the process runs),
//! `/readyz` (connected to the API server and, when this replica serves the
//! webhook, holding a serving certificate valid now), `/metrics`
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

#[derive(Clone)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
    /// The webhook's certificate directory, when this replica serves it.
    pub webhook_cert_dir: Option<PathBuf>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// A replica whose webhook cannot complete a TLS handshake must not be an
/// endpoint of the webhook's Service: the API server would fail Pod
/// creations on it. The webhook reads each credential with a GET per
/// review, so there is no cache to wait for.
async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    if !state.ready.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not connected to the API server yet\n".to_owned(),
        );
    }
    if let Some(dir) = &state.webhook_cert_dir
        && let Err(why) = crate::webhook::serving_certificate_current(dir, jiff::Timestamp::now())
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the webhook has no serving certificate valid now: {why}\n"),
        );
    }
    (StatusCode::OK, "ready\n".to_owned())
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
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
