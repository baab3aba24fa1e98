//! The local API on 127.0.0.1: `/token`, `/healthz`, `/readyz`, `/metrics`.
//! No CORS: a preflight gets 405 like any other unrouted method, so a
//! browser page can never read the token.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use otpilot_api::sidecar::{TOKEN_REQUEST_HEADER, TOKEN_REQUEST_HEADER_VALUE};

use crate::state::Shared;

/// The router, without a socket (tests call it directly).
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/token", get(token))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, TEXT),
            (header::CACHE_CONTROL, NO_STORE),
        ],
        body.into(),
    )
        .into_response()
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

// Takes the request whole: the `HeaderMap` extractor would clone every header.
async fn token(State(shared): State<Arc<Shared>>, request: axum::extract::Request) -> Response {
    let headers = request.headers();
    let asked = headers
        .get(TOKEN_REQUEST_HEADER)
        .is_some_and(|v| v.as_bytes() == TOKEN_REQUEST_HEADER_VALUE.as_bytes());
    if !asked {
        return text(StatusCode::FORBIDDEN, const_format_forbidden());
    }
    let Some(token) = shared.servable(SystemTime::now()) else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", shared.describe_not_ready(SystemTime::now())),
        );
    };
    let (content_type, body) = if wants_plain_text(headers) {
        (TEXT, token.plain.clone())
    } else {
        (JSON, token.json.clone())
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, NO_STORE),
        ],
        body,
    )
        .into_response()
}

fn const_format_forbidden() -> String {
    format!(
        "failed to serve the token: the request lacks the header {TOKEN_REQUEST_HEADER}: {TOKEN_REQUEST_HEADER_VALUE} \
         (it keeps browsers and server-side request forgeries from reading the token)\n"
    )
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match shared.servable(SystemTime::now()) {
        Some(_) => text(StatusCode::OK, "ready: holding an unexpired token\n"),
        None => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: {}\n",
                shared.describe_not_ready(SystemTime::now())
            ),
        ),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let seconds = shared.current().map_or(0.0, |t| {
        match t.expires_at.duration_since(SystemTime::now()) {
            Ok(left) => left.as_secs_f64(),
            Err(past) => -past.duration().as_secs_f64(),
        }
    });
    shared.metrics.token_expiry_seconds.set(seconds);
    match shared.metrics.encode() {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            body,
        )
            .into_response(),
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to encode the metrics\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presentation::Presentation;
    use crate::state::ServedToken;
    use axum::body::to_bytes;
    use axum::http::Request;
    use secrecy::SecretString;
    use std::time::Duration;
    use tower::ServiceExt;

    fn with_token(expires_in: Duration) -> Arc<Shared> {
        let shared = Arc::new(Shared::new());
        let now = SystemTime::now();
        let p = Presentation {
            header: header::AUTHORIZATION,
            scheme: "Bearer",
        };
        let t = ServedToken::render(
            &SecretString::from("the-token"),
            &p,
            now + expires_in,
            now + expires_in,
            1,
        )
        .expect("render");
        shared.publish(t);
        shared
    }

    async fn call(shared: Arc<Shared>, req: Request<Body>) -> (StatusCode, String) {
        let res = router(shared).oneshot(req).await.expect("infallible");
        let status = res.status();
        let body = to_bytes(res.into_body(), 1 << 20).await.expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn get_token(accept: Option<&str>, header: bool) -> Request<Body> {
        let mut b = Request::get("/token");
        if header {
            b = b.header(TOKEN_REQUEST_HEADER, TOKEN_REQUEST_HEADER_VALUE);
        }
        if let Some(a) = accept {
            b = b.header(header::ACCEPT, a);
        }
        b.body(Body::empty()).expect("request")
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
    async fn no_token_is_served_once_it_lapsed_and_readiness_follows() {
        let shared = with_token(Duration::ZERO);
        let (status, body) = call(shared.clone(), get_token(None, true)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body.contains("the-token"), "{body}");
        let ready = Request::get("/readyz").body(Body::empty()).expect("req");
        assert_eq!(
            call(shared.clone(), ready).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let live = Request::get("/healthz").body(Body::empty()).expect("req");
        assert_eq!(call(shared.clone(), live).await.0, StatusCode::OK);
        let good = with_token(Duration::from_secs(60));
        let ready = Request::get("/readyz").body(Body::empty()).expect("req");
        assert_eq!(call(good, ready).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_cors_preflight_is_not_answered() {
        let shared = with_token(Duration::from_secs(300));
        let req = Request::options("/token")
            .header(header::ORIGIN, "https://evil.example")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, TOKEN_REQUEST_HEADER)
            .body(Body::empty())
            .expect("req");
        let res = router(shared).oneshot(req).await.expect("infallible");
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(
            res.headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }
}
