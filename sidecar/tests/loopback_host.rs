//! `/token` and the proxy of the sidecar PROCESS answer only requests whose
//! `Host` names the loopback (a DNS-rebinding page sends its own name), and
//! the proxy, when told to, only requests carrying the `/token` header.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use otpilot_sim::Vendor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 GET with exactly these headers (a client library would set
/// `Host` itself): the status and the body.
async fn raw_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_proxy_refuse_a_foreign_host_and_answer_loopback_names() {
    let v = vendor("audd", Vendor::Audd, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    let token = sidecar.wait_ready(Duration::from_secs(30)).await;
    let header = ("Otpilot-Request", "true");

    for (addr, path) in [(sidecar.api, "/token"), (sidecar.proxy, "/users")] {
        let port = addr.port();
        for host in ["attacker.example", &format!("attacker.example:{port}")] {
            let (status, body) = raw_get(addr, path, &[("Host", host), header]).await;
            assert_eq!(status, 403, "{path} with Host {host}: {body}");
            assert!(!body.contains(&token.token), "{path} with Host {host}");
            assert!(!body.contains(USERNAME), "{path} with Host {host}: {body}");
        }
        for host in [
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ] {
            let (status, body) = raw_get(addr, path, &[("Host", &host), header]).await;
            assert_eq!(status, 200, "{path} with Host {host}: {body}");
        }
    }
    let refused = sidecar
        .counter("otpilot_sidecar_refused_requests_total", "reason=\"host\"")
        .await;
    assert_eq!(refused, 4.0, "{}", sidecar.metrics().await);

    // Transparent by default: the proxy needs no header.
    let host = format!("127.0.0.1:{}", sidecar.proxy.port());
    let (status, _) = raw_get(sidecar.proxy, "/users", &[("Host", &host)]).await;
    assert_eq!(status, 200);
    sidecar
        .assert_no_secret_leaked(&[v.secrets.clone(), vec![token.token]].concat())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_told_to_require_the_header_refuses_requests_without_it() {
    let v = vendor("audd", Vendor::Audd, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let mut args = mounts.args();
    args.push("--proxy-require-header".into());
    let sidecar = Sidecar::spawn(&args);
    sidecar.wait_ready(Duration::from_secs(30)).await;
    let host = format!("127.0.0.1:{}", sidecar.proxy.port());

    let (status, body) = raw_get(sidecar.proxy, "/users", &[("Host", &host)]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("otpilot.dev/proxy-require-header"), "{body}");
    assert!(!body.contains(USERNAME), "{body}");
    let (status, body) = raw_get(
        sidecar.proxy,
        "/users",
        &[("Host", &host), ("Otpilot-Request", "wrong")],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = raw_get(
        sidecar.proxy,
        "/users",
        &[("Host", &host), ("Otpilot-Request", "true")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(USERNAME), "{body}");
    let refused = sidecar
        .counter(
            "otpilot_sidecar_refused_requests_total",
            "reason=\"header\"",
        )
        .await;
    assert_eq!(refused, 2.0, "{}", sidecar.metrics().await);
}
