//! The local API on 127.0.0.1: `/token`, `/healthz`, `/readyz`, `/metrics`;
//! and the admin listener on the Pod IP, for the kubelet and Prometheus:
//! `/healthz`, `/readyz`, `/metrics` only, never `/token`. No CORS: a preflight gets 405 like any other method the API does not
//! serve, so a browser page can never read the token.
//!
//! Served by hyper without a router framework: `/token` is the hot path
//! (see BENCHMARKS.md), and four fixed paths need no routing table.
//! [`respond`] is a plain function, so tests call it without a socket.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use otpilot_api::sidecar::{TOKEN_REQUEST_HEADER, TOKEN_REQUEST_HEADER_VALUE};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::RefusedLabels;
use crate::state::Shared;

/// An answer of the local API.
pub type ApiResponse = Response<Full<Bytes>>;

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const GET_ONLY: HeaderValue = HeaderValue::from_static("GET, HEAD");

fn answer(status: StatusCode, content_type: HeaderValue, body: impl Into<Bytes>) -> ApiResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    response
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> ApiResponse {
    answer(status, TEXT, body)
}

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The local API on loopback: `/token` and the probes and metrics
    /// (kept there for tools that ask on loopback).
    Local,
    /// The admin listener on the Pod IP: probes and metrics, no `/token`.
    Admin,
}

/// The answer to one request.
pub fn respond<B>(shared: &Shared, request: &Request<B>, surface: Surface) -> ApiResponse {
    let path = request.uri().path();
    let known = match surface {
        Surface::Local => matches!(path, "/token" | "/healthz" | "/readyz" | "/metrics"),
        Surface::Admin => matches!(path, "/healthz" | "/readyz" | "/metrics"),
    };
    if !known {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response.headers_mut().insert(header::ALLOW, GET_ONLY);
        return response;
    }
    match path {
        "/token" => match crate::admission::admit(request, false) {
            Ok(()) => token(shared, request.headers()),
            Err(refusal) => {
                shared
                    .metrics
                    .refused_requests
                    .get_or_create(&RefusedLabels {
                        server: "api",
                        reason: refusal.as_str(),
                    })
                    .inc();
                text(
                    StatusCode::FORBIDDEN,
                    "failed to serve the token: the request's Host is not localhost, 127.0.0.1 or [::1] \
                     (it keeps DNS-rebinding pages from reading the token)\n",
                )
            }
        },
        "/healthz" => healthz(shared),
        "/readyz" => readyz(shared),
        _ => metrics(shared),
    }
}

/// Serves `surface` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    surface: Surface,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "failed to accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        // Connections are not watched for shutdown one by one: that would
        // poll a shared waiter list on every request. Answers here take
        // microseconds; open connections end with the process.
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let response = respond(&shared, &request, surface);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn wants_plain_text(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept.split(',').any(|t| {
                t.trim()
                    .split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "text/plain")
            })
        })
}

fn token(shared: &Shared, headers: &HeaderMap) -> ApiResponse {
    if !crate::admission::has_token_header(headers) {
        shared
            .metrics
            .refused_requests
            .get_or_create(&RefusedLabels {
                server: "api",
                reason: crate::admission::Refusal::Header.as_str(),
            })
            .inc();
        return text(StatusCode::FORBIDDEN, forbidden_message());
    }
    let now = SystemTime::now();
    let plain = wants_plain_text(headers);
    let body = shared.with_servable(now, |token| {
        if plain {
            (TEXT, token.plain.clone())
        } else {
            (JSON, token.json.clone())
        }
    });
    match body {
        Some((content_type, body)) => answer(StatusCode::OK, content_type, body),
        None => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", shared.describe_not_ready(now)),
        ),
    }
}

fn forbidden_message() -> String {
    format!(
        "failed to serve the token: the request lacks the header {TOKEN_REQUEST_HEADER}: {TOKEN_REQUEST_HEADER_VALUE} \
         (it keeps browsers and server-side request forgeries from reading the token)\n"
    )
}

/// Alive while every supervised task runs (see [`crate::supervise`]).
fn healthz(shared: &Shared) -> ApiResponse {
    match shared.failed_task() {
        None => text(StatusCode::OK, "ok\n"),
        Some(why) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not alive: {why}\n"),
        ),
    }
}

fn readyz(shared: &Shared) -> ApiResponse {
    let now = SystemTime::now();
    let mode = shared.session_mode();
    let mode = format!("session mode: {} ({})", mode.0.as_str(), mode.1);
    match shared.servable(now) {
        Some(_) => text(
            StatusCode::OK,
            format!("ready: holding an unexpired token\n{mode}\n"),
        ),
        None => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n{mode}\n", shared.describe_not_ready(now)),
        ),
    }
}

fn metrics(shared: &Shared) -> ApiResponse {
    let seconds = shared.current().map_or(0.0, |t| {
        match t.expires_at.duration_since(SystemTime::now()) {
            Ok(left) => left.as_secs_f64(),
            Err(past) => -past.duration().as_secs_f64(),
        }
    });
    shared.metrics.token_expiry_seconds.set(seconds);
    match shared.metrics.encode() {
        Ok(body) => answer(
            StatusCode::OK,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            body,
        ),
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to encode the metrics\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ServedToken;
    use http_body_util::BodyExt;
    use secrecy::SecretString;
    use std::time::Duration;

    type Body = ();

    fn with_token(expires_in: Duration) -> Arc<Shared> {
        let shared = Arc::new(Shared::new());
        let now = SystemTime::now();
        let t = ServedToken::render(
            &SecretString::from("the-token"),
            Some((
                header::AUTHORIZATION,
                HeaderValue::from_static("Bearer the-token"),
            )),
            Some("Bearer"),
            now + expires_in,
            now + expires_in,
            1,
        )
        .expect("render");
        shared.publish(t);
        shared
    }

    async fn call(shared: Arc<Shared>, req: Request<Body>) -> (StatusCode, String) {
        let res = respond(&shared, &req, Surface::Local);
        let status = res.status();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn get_token(accept: Option<&str>, header: bool) -> Request<Body> {
        let mut b = Request::get("/token").header(header::HOST, "127.0.0.1:8181");
        if header {
            b = b.header(TOKEN_REQUEST_HEADER, TOKEN_REQUEST_HEADER_VALUE);
        }
        if let Some(a) = accept {
            b = b.header(header::ACCEPT, a);
        }
        b.body(()).expect("request")
    }

    #[tokio::test]
    async fn token_requests_are_answered_by_header_and_accept() {
        let shared = with_token(Duration::from_secs(300));
        let cases: &[(&str, Option<&str>, bool, StatusCode, &str)] = &[
            (
                "no header: 403 naming it",
                None,
                false,
                StatusCode::FORBIDDEN,
                TOKEN_REQUEST_HEADER,
            ),
            (
                "json by default",
                None,
                true,
                StatusCode::OK,
                "\"token\":\"the-token\"",
            ),
            (
                "bare for text/plain",
                Some("text/plain"),
                true,
                StatusCode::OK,
                "the-token",
            ),
            (
                "json for application/json",
                Some("application/json"),
                true,
                StatusCode::OK,
                "tokenType",
            ),
        ];
        for (what, accept, header, status, contains) in cases {
            let (got, body) = call(shared.clone(), get_token(*accept, *header)).await;
            assert_eq!(got, *status, "{what}");
            assert!(body.contains(contains), "{what}: {body}");
            if !*header {
                assert!(!body.contains("the-token"), "{what}");
            }
        }
    }

    #[tokio::test]
    async fn a_foreign_host_gets_no_token_and_is_counted() {
        let shared = with_token(Duration::from_secs(300));
        for host in ["attacker.example", "attacker.example:8181", "10.0.0.5:8181"] {
            let req = Request::get("/token")
                .header(header::HOST, host)
                .header(TOKEN_REQUEST_HEADER, TOKEN_REQUEST_HEADER_VALUE)
                .body(())
                .expect("req");
            let (status, body) = call(shared.clone(), req).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{host}");
            assert!(!body.contains("the-token"), "{host}: {body}");
        }
        let text = shared.metrics.encode().expect("metrics");
        assert!(
            text.contains(
                r#"otpilot_sidecar_refused_requests_total{server="api",reason="host"} 3"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn no_token_is_served_once_it_lapsed_and_readiness_follows() {
        let shared = with_token(Duration::ZERO);
        let (status, body) = call(shared.clone(), get_token(None, true)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body.contains("the-token"), "{body}");
        let ready = Request::get("/readyz").body(()).expect("req");
        assert_eq!(
            call(shared.clone(), ready).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let live = Request::get("/healthz").body(()).expect("req");
        assert_eq!(call(shared.clone(), live).await.0, StatusCode::OK);
        let good = with_token(Duration::from_secs(60));
        let ready = Request::get("/readyz").body(()).expect("req");
        assert_eq!(call(good, ready).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_cors_preflight_is_not_answered() {
        let shared = with_token(Duration::from_secs(300));
        let req = Request::options("/token")
            .header(header::ORIGIN, "https://evil.example")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, TOKEN_REQUEST_HEADER)
            .body(())
            .expect("req");
        let res = respond(&shared, &req, Surface::Local);
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(
            res.headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_admin_surface_serves_probes_and_metrics_but_never_the_token() {
        let shared = with_token(Duration::from_secs(300));
        for path in ["/healthz", "/readyz", "/metrics"] {
            let req = Request::get(path).body(()).expect("req");
            let res = respond(&shared, &req, Surface::Admin);
            assert_eq!(res.status(), StatusCode::OK, "{path}");
        }
        let mut req = get_token(None, true);
        *req.uri_mut() = "/token".parse().expect("uri");
        let res = respond(&shared, &req, Surface::Admin);
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let body = res.into_body().collect().await.expect("body").to_bytes();
        assert!(!String::from_utf8_lossy(&body).contains("the-token"));
    }

    #[tokio::test]
    async fn healthz_fails_once_a_supervised_task_ended() {
        let shared = with_token(Duration::from_secs(300));
        let live = || Request::get("/healthz").body(()).expect("req");
        assert_eq!(call(shared.clone(), live()).await.0, StatusCode::OK);
        shared.set_failed_task("task session panicked".to_owned());
        for surface in [Surface::Local, Surface::Admin] {
            let res = respond(&shared, &live(), surface);
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{surface:?}");
        }
        let (_, body) = call(shared, live()).await;
        assert!(body.contains("task session panicked"), "{body}");
    }
}
