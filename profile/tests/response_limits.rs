//! A vendor's answer is read with a cap: a hostile server answering 50 MB
//! of `[0,0,0,…]` fails the step with `VendorResponseTooLarge` after about
//! the cap, and the rest is never received (the server sees its writes
//! refused). A profile can lower or raise the cap.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use otpilot_profile::{Engine, FlowErrorKind, HttpSettings, Inputs, Profile, builtin};
use secrecy::SecretString;
use serde_json::json;
use support::{Answer, Scripted};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HUGE: u64 = 50 * 1024 * 1024;

/// A server that answers every request with `HUGE` bytes of `[0,0,0,…`,
/// announced with a Content-Length or chunked, and counts what it managed
/// to write.
async fn hostile(announce_length: bool) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = sock.read(&mut buf).await;
                let head = if announce_length {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {HUGE}\r\n\r\n"
                    )
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Transfer-Encoding: chunked\r\n\r\n"
                        .to_owned()
                };
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let piece = "0,".repeat(32 * 1024);
                let mut written = 0u64;
                while written < HUGE {
                    let data = if announce_length {
                        piece.clone().into_bytes()
                    } else {
                        format!("{:x}\r\n{piece}\r\n", piece.len()).into_bytes()
                    };
                    if sock.write_all(&data).await.is_err() {
                        return;
                    }
                    written += piece.len() as u64;
                    counter.fetch_add(piece.len() as u64, Ordering::SeqCst);
                }
            });
        }
    });
    (format!("http://{addr}"), sent)
}

fn engine(profile: Arc<Profile>, base_url: &str) -> Engine {
    let settings = HttpSettings {
        allow_plain_http: true,
        request_timeout: Duration::from_secs(60),
        ..HttpSettings::default()
    };
    Engine::new(profile, base_url, settings).expect("engine")
}

fn inputs() -> Inputs {
    Inputs {
        username: Some("bot@example.com".into()),
        password: Some(SecretString::from("pw")),
        api_key: Some(SecretString::from("key")),
        ..Inputs::default()
    }
}

#[tokio::test]
async fn a_fifty_megabyte_answer_is_refused_after_the_cap_and_not_received() {
    for announce_length in [false, true] {
        let (base_url, sent) = hostile(announce_length).await;
        let err = engine(builtin::get("goaxr").expect("built in"), &base_url)
            .enroll(&inputs())
            .await
            .expect_err("too large");
        assert!(
            matches!(
                err.kind,
                FlowErrorKind::ResponseTooLarge {
                    status: 200,
                    limit_bytes: 1_048_576
                }
            ),
            "{err}"
        );
        assert_eq!(err.category(), "VendorResponseTooLarge");
        let text = err.to_string();
        assert!(text.contains("maxResponseBytes"), "{text}");
        assert!(!text.contains("0,0,0"), "no body content: {text}");
        // Dropping the connection stops the server: what it got out is the
        // cap plus what the kernel's socket buffers held, far from 50 MB.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let out = sent.load(Ordering::SeqCst);
        assert!(
            out < HUGE / 2,
            "chunked={}: the server wrote {out} bytes",
            !announce_length
        );
    }
}

#[tokio::test]
async fn a_profile_sets_its_own_cap() {
    let mut spec = builtin::get("goaxr").expect("built in").spec().clone();
    spec.limits.max_response_bytes = Some(2048);
    let profile = Arc::new(Profile::from_spec("small", spec).expect("valid"));
    let big = json!({ "padding": "x".repeat(4096) });
    let server = Scripted::start(vec![Answer::json(200, big)]).await;
    let err = engine(profile.clone(), &server.base_url)
        .enroll(&inputs())
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err.kind,
            FlowErrorKind::ResponseTooLarge {
                limit_bytes: 2048,
                ..
            }
        ),
        "{err}"
    );
    // Within the cap, the answer is read and judged as usual.
    let server = Scripted::start(vec![Answer::json(200, json!({"padding": "x"}))]).await;
    let err = engine(profile, &server.base_url)
        .enroll(&inputs())
        .await
        .expect_err("not what goaxr answers");
    assert!(
        !matches!(err.kind, FlowErrorKind::ResponseTooLarge { .. }),
        "{err}"
    );
}
