//! `POST /inject` over HTTPS: read the AdmissionReview, look the
//! ApiCredential up in the Pod's namespace, answer with
//! `otpilot_inject::review` and count refusals.
//!
//! A pure function of the request (`sideEffects: None`): anything that
//! reaches this port can send a made-up review, so nothing here writes to
//! the API server. The session grants follow the Pods the API server
//! stored (`controllers::session_grants`); a refused Pod's controller
//! records its own `FailedCreate` Event with the refusal's message.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use otpilot_api::ApiCredential;
use otpilot_inject::review::{CredentialLookup, credential_to_look_up, decide, respond};
use otpilot_inject::{Decision, InjectConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct WebhookState {
    pub client: Client,
    pub config: Arc<InjectConfig>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/inject", post(inject))
        .with_state(state)
}

async fn inject(State(state): State<WebhookState>, body: Bytes) -> impl IntoResponse {
    let response = match serde_json::from_slice::<AdmissionReview<Pod>>(&body) {
        Err(error) => AdmissionResponse::invalid(error),
        Ok(review) => answer(&state, review).await,
    };
    let body = serde_json::to_vec(&response.into_review()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body)
}

async fn answer(state: &WebhookState, review: AdmissionReview<Pod>) -> AdmissionResponse {
    let lookup = match credential_to_look_up(&review) {
        None => CredentialLookup::NotNeeded,
        Some(key) => {
            // Always the Pod's own namespace: a Pod never reaches another
            // namespace's credential.
            let api = Api::<ApiCredential>::namespaced(state.client.clone(), &key.namespace);
            match api.get_opt(&key.name).await {
                Ok(Some(credential)) => CredentialLookup::Found(Box::new(credential)),
                Ok(None) => CredentialLookup::NotFound,
                Err(error) => CredentialLookup::Failed(error.to_string()),
            }
        }
    };
    let request: AdmissionRequest<Pod> = match review.try_into() {
        Ok(request) => request,
        Err(error) => return AdmissionResponse::invalid(error),
    };
    let mut decision = decide(&request, &lookup, &state.config);
    if let CredentialLookup::Found(credential) = &lookup {
        // Reads the named Secrets' metadata only: still no write.
        decision = super::borrowed::check(&state.client, credential, decision).await;
    }
    if let Decision::Deny { reason, message } = &decision {
        state.metrics.webhook_denied(
            request.namespace.as_deref().unwrap_or_default(),
            reason.as_str(),
        );
        tracing::info!(
            namespace = request.namespace.as_deref().unwrap_or_default(),
            reason = reason.as_str(),
            message,
            "refused a Pod"
        );
    }
    respond(&request, decision)
}

/// Serves the webhook until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: WebhookState,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let service = TowerToHyperService::new(router(state));
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "failed to accept a webhook connection");
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        let (acceptor, service, shutdown) = (acceptor.clone(), service.clone(), shutdown.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(error) => {
                    tracing::debug!(%error, %peer, "webhook TLS handshake failed");
                    return;
                }
            };
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(error = %error, %peer, "webhook connection ended");
                    }
                }
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                }
            }
        });
    }
}
