//! `POST /inject` over HTTPS: read the AdmissionReview, look the
//! ApiCredential up in the Pod's namespace, answer with
//! `otpilot_inject::review`, count refusals and put an Event on the refused
//! Pod's controller.

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
use kube::runtime::events::{Event, EventType, Recorder};
use otpilot_api::ApiCredential;
use otpilot_inject::review::{CredentialLookup, credential_to_look_up, decide, respond};
use otpilot_inject::{Decision, InjectConfig, refusal_event_target};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::controllers::session_access;
use crate::metrics::Metrics;

/// How long admission waits for the shared session's objects.
const SESSION_ACCESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Clone)]
pub struct WebhookState {
    pub client: Client,
    pub config: Arc<InjectConfig>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
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
        decision = super::borrowed::check(&state.client, credential, decision).await;
    }
    if let (Decision::Allow { patch, .. }, CredentialLookup::Found(credential)) =
        (&decision, &lookup)
        && !patch.is_empty()
        && !request.dry_run
    {
        grant_session_access(state, credential, &request).await;
    }
    if let Decision::Deny { reason, message } = &decision {
        state.metrics.webhook_denied(reason.as_str());
        tracing::info!(
            namespace = request.namespace.as_deref().unwrap_or_default(),
            reason = reason.as_str(),
            message,
            "refused a Pod"
        );
        if let Some(target) = refusal_event_target(&request) {
            let event = Event {
                type_: EventType::Warning,
                reason: reason.as_str().to_owned(),
                note: Some(truncate(message, 1000)),
                action: "InjectSidecar".to_owned(),
                secondary: None,
            };
            // The Event is best effort: the refusal itself must not wait on it.
            let recorder = state.recorder.clone();
            tokio::spawn(async move {
                if let Err(error) = recorder.publish(&event, &target).await {
                    tracing::warn!(%error, "failed to record the refusal Event");
                }
            });
        }
    }
    respond(&request, decision)
}

/// Lets the Pod's ServiceAccount share the credential's session before its
/// sidecar starts. Bounded and best effort: on failure the Pod is admitted
/// all the same, and its sidecar logs in alone and says why.
async fn grant_session_access(
    state: &WebhookState,
    credential: &ApiCredential,
    request: &AdmissionRequest<Pod>,
) {
    let service_account = request
        .object
        .as_ref()
        .and_then(|pod| pod.spec.as_ref())
        .and_then(|spec| spec.service_account_name.clone())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let granted = tokio::time::timeout(
        SESSION_ACCESS_TIMEOUT,
        session_access::grant(&state.client, credential, &service_account),
    )
    .await;
    let credential_name = credential.metadata.name.as_deref().unwrap_or_default();
    match granted {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(
            credential = credential_name,
            service_account,
            %error,
            "failed to grant the shared session; the sidecar will log in alone"
        ),
        Err(_) => tracing::warn!(
            credential = credential_name,
            service_account,
            "granting the shared session timed out; the sidecar will log in alone"
        ),
    }
}

/// At most `max` bytes, cut on a character boundary (Event notes are
/// limited to 1 kB).
fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_notes_are_cut_on_a_character_boundary() {
        let cases = [("short", 10, "short"), ("abcdef", 3, "abc"), ("aé", 2, "a")];
        for (text, max, want) in cases {
            assert_eq!(truncate(text, max), want, "{text} {max}");
        }
    }
}
