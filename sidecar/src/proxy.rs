//! The authenticating reverse proxy: `http://127.0.0.1:PORT/any/path` is
//! forwarded to the vendor's base URL + `/any/path`, with the credential's
//! client certificate and the vendor's auth header. Bodies stream both ways.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use otpilot_profile::{TokenVerdict, token_verdict};

use crate::metrics::{ProxyLabels, RefusedLabels, status_class};
use crate::state::{ServedToken, Shared};
use otpilot_api::sidecar::TOKEN_REQUEST_HEADER;

/// How the proxy behaves.
#[derive(Debug, Clone, Copy)]
pub struct ProxyConfig {
    /// How long to wait for a new token after the vendor refused one.
    pub renewal_wait: Duration,
    /// Answer only requests carrying the `/token` request header (the
    /// `otpilot.dev/proxy-require-header` Pod annotation): an SSRF in the
    /// app that cannot set headers then does not borrow the identity.
    pub require_header: bool,
}

#[derive(Clone)]
struct ProxyState {
    shared: Arc<Shared>,
    config: ProxyConfig,
}

/// The proxy's router: every method, every path.
pub fn router(shared: Arc<Shared>, config: ProxyConfig) -> Router {
    Router::new()
        .fallback(forward)
        .with_state(ProxyState { shared, config })
}

/// Headers meaningful only for one hop (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Drops hop-by-hop headers, those the `Connection` header names, and
/// (for requests) the caller's own `Authorization` and `Host`.
pub fn strip_headers(headers: &mut HeaderMap, request: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    if request {
        headers.remove(header::HOST);
        headers.remove(header::AUTHORIZATION);
    }
}

/// Whether a request can be sent twice: an idempotent method and no body
/// (the proxy keeps no copy of a body it streamed).
pub fn replayable(method: &Method, headers: &HeaderMap) -> bool {
    let idempotent = matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
    );
    let no_body = !headers.contains_key(header::TRANSFER_ENCODING)
        && headers
            .get(header::CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0");
    idempotent && no_body
}

fn error(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        message,
    )
        .into_response()
}

/// Refuses, before anything else, a request whose `Host` is not loopback
/// or (when required) that lacks the token request header, and one whose
/// path would leave the base URL's path once dot segments are resolved.
fn admission_refused(state: &ProxyState, request: &Request) -> Option<Response> {
    let refusal = crate::admission::admit(request, state.config.require_header).err()?;
    state
        .shared
        .metrics
        .refused_requests
        .get_or_create(&RefusedLabels {
            server: "proxy",
            reason: refusal.as_str(),
        })
        .inc();
    Some(match refusal {
        crate::admission::Refusal::Host => error(
            StatusCode::FORBIDDEN,
            "otpilot proxy: the request's Host is not localhost, 127.0.0.1 or [::1]; refused \
             (it keeps DNS-rebinding pages from using the identity)\n",
        ),
        crate::admission::Refusal::Header => error(
            StatusCode::FORBIDDEN,
            "otpilot proxy: this Pod requires the header Otpilot-Request: true on proxied requests \
             (annotation otpilot.dev/proxy-require-header)\n",
        ),
    })
}

/// The vendor URL for a proxied path, when it stays under the base URL's
/// path (the engine's rule, `otpilot_profile::url_scope`): `/../admin` or
/// `/%2e%2e/admin` is refused rather than resolved out of the base.
pub fn scoped_url(base_url: &str, path_and_query: &str) -> Option<reqwest::Url> {
    let base = reqwest::Url::parse(base_url).ok()?;
    let url = reqwest::Url::parse(&format!("{base_url}{path_and_query}")).ok()?;
    match otpilot_profile::url_scope::escape_from(&base, &url) {
        None => Some(url),
        Some(_) => None,
    }
}

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    if let Some(refused) = admission_refused(&state, &request) {
        return refused;
    }
    let shared = &state.shared;
    let Some(target) = shared.proxy_target() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "otpilot proxy: no vendor configured yet (the runtime Secret has not been read)\n",
        );
    };
    let Some(token) = shared.servable(SystemTime::now()) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "otpilot proxy: no valid token to authenticate with; see /readyz on the sidecar's API port\n",
        );
    };
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let Some(url) = scoped_url(&target.base_url, path) else {
        return error(
            StatusCode::BAD_REQUEST,
            "otpilot proxy: the path leaves the vendor base URL's path (check it for '..'); refused\n",
        );
    };
    let mut headers = parts.headers;
    headers.remove(TOKEN_REQUEST_HEADER);
    let can_replay = replayable(&parts.method, &headers);
    strip_headers(&mut headers, true);

    let send = |token: &ServedToken, body: reqwest::Body| {
        let mut headers = headers.clone();
        headers.insert(token.header.0.clone(), token.header.1.clone());
        target
            .client
            .request(parts.method.clone(), url.clone())
            .headers(headers)
            .body(body)
            .send()
    };
    let started = Instant::now();
    let first_body = if can_replay {
        reqwest::Body::from(Vec::new())
    } else {
        reqwest::Body::wrap_stream(body.into_data_stream())
    };
    let mut result = send(&token, first_body).await;
    let refused = |result: &Result<reqwest::Response, reqwest::Error>| {
        result
            .as_ref()
            .is_ok_and(|r| token_verdict(r.status().as_u16()) == TokenVerdict::Rejected)
    };
    if can_replay
        && refused(&result)
        && let Some(renewed) = renewed_token(shared, &token, state.config.renewal_wait).await
    {
        tracing::debug!("the vendor refused the token; retrying once with a new one");
        result = send(&renewed, reqwest::Body::from(Vec::new())).await;
    } else if refused(&result) {
        // The body is spent: the client retries; the next token is on its way.
        shared.request_renewal(token.generation);
    }
    shared
        .metrics
        .proxy_upstream_duration
        .observe(started.elapsed().as_secs_f64());
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            shared
                .metrics
                .proxy_requests
                .get_or_create(&ProxyLabels { status: "error" })
                .inc();
            let timed_out = e.is_timeout();
            tracing::warn!(error = %e.without_url(), "failed to forward a request to the vendor");
            return if timed_out {
                error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "otpilot proxy: the vendor did not answer in time\n",
                )
            } else {
                error(
                    StatusCode::BAD_GATEWAY,
                    "otpilot proxy: failed to reach the vendor\n",
                )
            };
        }
    };
    shared
        .metrics
        .proxy_requests
        .get_or_create(&ProxyLabels {
            status: status_class(response.status().as_u16()),
        })
        .inc();
    let status = response.status();
    let mut out_headers = response.headers().clone();
    strip_headers(&mut out_headers, false);
    let stream = response.bytes_stream().map_err(axum::Error::new);
    let mut out = Response::new(Body::from_stream(stream));
    *out.status_mut() = status;
    *out.headers_mut() = out_headers;
    out
}

/// Asks the session for a new token and waits for one newer than `stale`.
async fn renewed_token(
    shared: &Shared,
    stale: &ServedToken,
    wait: Duration,
) -> Option<Arc<ServedToken>> {
    let mut updates = shared.subscribe();
    if let Some(current) = shared.servable(SystemTime::now())
        && current.generation > stale.generation
    {
        return Some(current);
    }
    if !shared.request_renewal(stale.generation) {
        return None;
    }
    let newer = async {
        loop {
            if updates.changed().await.is_err() {
                return None;
            }
            if *updates.borrow_and_update() > stale.generation {
                return shared.servable(SystemTime::now());
            }
        }
    };
    tokio::time::timeout(wait, newer).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_caller_credentials_are_not_forwarded() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-trace"),
        );
        h.insert("x-trace", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer app-supplied"),
        );
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8182"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let mut resp = h.clone();
        strip_headers(&mut h, true);
        assert_eq!(h.keys().collect::<Vec<_>>(), vec![header::CONTENT_TYPE]);
        strip_headers(&mut resp, false);
        assert!(resp.contains_key(header::AUTHORIZATION) && resp.contains_key(header::HOST));
        assert!(!resp.contains_key("x-trace"));
    }

    #[test]
    fn a_proxied_path_stays_under_the_base_path() {
        let base = "https://vendor.example/api/v1";
        let cases = [
            ("/users?id=1", true),
            ("/", true),
            ("/a%2Fb", true),
            ("/../admin", false),
            ("/../../admin", false),
            ("/x/../../admin", false),
            ("/%2e%2e/admin", false),
            ("/%2E%2E/%2e%2e/admin", false),
            ("/.%2e/admin", false),
            ("@evil.example/x", false),
        ];
        for (path, ok) in cases {
            assert_eq!(scoped_url(base, path).is_some(), ok, "{path}");
        }
        assert_eq!(
            scoped_url(base, "/x/../users").map(|u| u.path().to_owned()),
            Some("/api/v1/users".to_owned())
        );
    }

    #[test]
    fn only_bodyless_idempotent_requests_are_replayed() {
        let empty = HeaderMap::new();
        let mut with_body = HeaderMap::new();
        with_body.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        let mut chunked = HeaderMap::new();
        chunked.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        let mut zero = HeaderMap::new();
        zero.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        let cases: &[(&str, Method, &HeaderMap, bool)] = &[
            ("GET", Method::GET, &empty, true),
            ("HEAD", Method::HEAD, &empty, true),
            ("DELETE", Method::DELETE, &zero, true),
            ("GET with a body", Method::GET, &with_body, false),
            ("chunked DELETE", Method::DELETE, &chunked, false),
            ("POST without body", Method::POST, &empty, false),
            ("PUT", Method::PUT, &with_body, false),
        ];
        for (what, method, headers, want) in cases {
            assert_eq!(replayable(method, headers), *want, "{what}");
        }
    }
}
