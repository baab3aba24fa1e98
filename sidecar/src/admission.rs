//! Which local requests `/token` and the proxy answer: only those whose
//! `Host` names the loopback (a DNS-rebinding page in a browser in the Pod
//! sends its own host name and gets nothing), and, for the proxy when the
//! Pod asks for it, only those carrying the `/token` header (an SSRF in the
//! app that cannot set headers does not borrow the identity). Pure
//! functions; refusals are counted by bounded reason.

use std::net::{Ipv4Addr, Ipv6Addr};

use http::{HeaderMap, Request, header};
use otpilot_api::sidecar::{TOKEN_REQUEST_HEADER, TOKEN_REQUEST_HEADER_VALUE};

/// Why a request was refused, as a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The `Host` is not a loopback name or address.
    Host,
    /// The request lacks the token request header.
    Header,
}

impl Refusal {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Host => "host",
            Refusal::Header => "header",
        }
    }
}

fn port_ok(port: Option<&str>) -> bool {
    port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    })
}

/// Whether `host` (a `Host` header or a URI authority) is `localhost`, an
/// address in 127.0.0.0/8 or `[::1]`, with an optional port.
pub fn is_loopback_host(host: &str) -> bool {
    if let Some(rest) = host.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        return inside.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()) && port_ok(port);
    }
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let named = name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
    named && port_ok(port)
}

/// The host a request names: its `Host` header, else (HTTP/2) the URI's
/// authority. `None` when it names none or several.
pub fn request_host<B>(request: &Request<B>) -> Option<&str> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().ok(),
        (None, _) => request.uri().authority().map(|a| a.as_str()),
        (Some(_), Some(_)) => None,
    }
}

/// Whether the request carries the token request header with its value.
pub fn has_token_header(headers: &HeaderMap) -> bool {
    headers
        .get(TOKEN_REQUEST_HEADER)
        .is_some_and(|v| v.as_bytes() == TOKEN_REQUEST_HEADER_VALUE.as_bytes())
}

/// Whether to answer: the host first, then the header when required.
pub fn admit<B>(request: &Request<B>, require_header: bool) -> Result<(), Refusal> {
    if !request_host(request).is_some_and(is_loopback_host) {
        return Err(Refusal::Host);
    }
    if require_header && !has_token_header(request.headers()) {
        return Err(Refusal::Header);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_admitted() {
        let cases = [
            ("localhost", true),
            ("LOCALHOST:8181", true),
            ("127.0.0.1:8182", true),
            ("127.0.0.1", true),
            ("127.9.8.7:1", true),
            ("[::1]:8181", true),
            ("[::1]", true),
            ("attacker.example", false),
            ("attacker.example:8181", false),
            ("localhost.attacker.example", false),
            ("127.0.0.1.nip.io:8181", false),
            ("10.0.0.5:8181", false),
            ("0.0.0.0:8181", false),
            ("[::]:8181", false),
            ("[::1]x", false),
            ("[::1", false),
            ("::1", false),
            ("localhost:", false),
            ("localhost:99999", false),
            ("localhost:80:80", false),
            ("localhost:8a", false),
            ("", false),
        ];
        for (host, want) in cases {
            assert_eq!(is_loopback_host(host), want, "{host:?}");
        }
    }

    #[test]
    fn a_request_is_admitted_by_host_then_header() {
        let req = |host: Option<&str>, header: bool, uri: &str| {
            let mut b = Request::get(uri);
            if let Some(h) = host {
                b = b.header(header::HOST, h);
            }
            if header {
                b = b.header(TOKEN_REQUEST_HEADER, TOKEN_REQUEST_HEADER_VALUE);
            }
            b.body(()).expect("request")
        };
        let cases = [
            (
                "loopback",
                req(Some("localhost:1"), false, "/x"),
                false,
                Ok(()),
            ),
            (
                "foreign host",
                req(Some("attacker.example"), true, "/x"),
                false,
                Err(Refusal::Host),
            ),
            (
                "no host at all",
                req(None, true, "/x"),
                false,
                Err(Refusal::Host),
            ),
            (
                "HTTP/2 authority",
                req(None, false, "http://127.0.0.1:9/x"),
                false,
                Ok(()),
            ),
            (
                "header required, absent",
                req(Some("127.0.0.1:1"), false, "/x"),
                true,
                Err(Refusal::Header),
            ),
            (
                "header required, present",
                req(Some("127.0.0.1:1"), true, "/x"),
                true,
                Ok(()),
            ),
        ];
        for (what, request, require, want) in cases {
            assert_eq!(admit(&request, require), want, "{what}");
        }
        let mut two = req(Some("localhost"), false, "/x");
        two.headers_mut()
            .append(header::HOST, "attacker.example".parse().expect("value"));
        assert_eq!(admit(&two, false), Err(Refusal::Host), "two Host headers");
    }
}
