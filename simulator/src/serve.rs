//! The HTTPS accept loop: TLS handshake per connection, the peer's
//! certificate chain handed to handlers as a request extension, and a
//! graceful stop on cancellation.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::state::SharedState;

/// The client certificate chain of the connection a request came on
/// (empty when the client sent none).
#[derive(Debug, Clone, Default)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

impl PeerCertificates {
    /// Whether the client authenticated with a certificate.
    pub fn present(&self) -> bool {
        !self.0.is_empty()
    }
}

/// The `Date` header (RFC 9110 IMF-fixdate) of `unix_ms`.
pub fn http_date(unix_ms: u64) -> Option<String> {
    let ms = i64::try_from(unix_ms).ok()?;
    let ts = jiff::Timestamp::from_millisecond(ms).ok()?;
    Some(ts.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

/// Middleware: every answer carries `Date` from the vendor's clock, moved
/// by the clock-skew fault, as a vendor whose clock is off would send it
/// (hyper adds its own only when none is set). Clients estimate the
/// vendor's clock offset from it.
pub async fn vendor_date(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if let Some(value) = http_date(state.vendor_now_ms()).and_then(|d| d.parse().ok()) {
        response.headers_mut().insert(http::header::DATE, value);
    }
    response
}

/// Serves `router` over TLS on `listener` until `cancel` fires, then lets
/// open connections finish for up to five seconds.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    state: SharedState,
    cancel: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    // Out of file descriptors and the like: back off briefly.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if state.faults.is_down() {
            // The "down" fault: the connection is closed before TLS.
            drop(tcp);
            continue;
        }
        let acceptor = acceptor.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(error) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
            };
            let certs = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            let peer_certs = PeerCertificates(Arc::new(certs));
            let service =
                hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                    request.extensions_mut().insert(peer_certs.clone());
                    router.clone().oneshot(request)
                });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("connections still open after 5 s; dropping them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_imf_fixdate() {
        assert_eq!(
            http_date(784_111_777_000).as_deref(),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        assert_eq!(http_date(u64::MAX), None);
    }
}
