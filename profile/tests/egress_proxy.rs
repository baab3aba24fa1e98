//! Vendor calls can go through a configured HTTP proxy (CONNECT tunnel,
//! Basic proxy authentication), and go nowhere else: the simulator over
//! real HTTPS behind a small CONNECT proxy on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use otpilot_profile::{EgressProxy, Engine, HttpSettings, Inputs, TotpParams, builtin};
use otpilot_sim::{AccountSpec, SimConfig, Vendor};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const PROXY_USER: &str = "egress";
const PROXY_PASSWORD: &str = "proxy-SECRET-5150";

/// A CONNECT proxy that demands Basic authentication and records the
/// targets it tunnelled to.
async fn connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let targets = Arc::new(Mutex::new(Vec::new()));
    let seen = targets.clone();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{PROXY_USER}:{PROXY_PASSWORD}"))
    );
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            let expected = expected.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(sock);
                let mut line = String::new();
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                let mut parts = line.split_whitespace();
                let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
                    let _ = reader
                        .get_mut()
                        .write_all(b"HTTP/1.1 405 CONNECT only\r\n\r\n")
                        .await;
                    return;
                };
                let target = target.to_owned();
                let mut authorized = false;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).await.is_err() {
                        return;
                    }
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.split_once(':')
                        && k.eq_ignore_ascii_case("proxy-authorization")
                    {
                        authorized = v.trim() == expected;
                    }
                }
                let mut client = reader.into_inner();
                if !authorized {
                    let _ = client
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                        .await;
                    return;
                }
                seen.lock().expect("lock").push(target.clone());
                let Ok(mut upstream) = TcpStream::connect(&target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (format!("http://{addr}"), targets)
}

#[tokio::test]
async fn vendor_calls_go_through_the_configured_proxy() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (proxy_url, targets) = connect_proxy().await;
    let period = Duration::from_secs(2);
    let sim = otpilot_sim::spawn(
        SimConfig::new(Vendor::Goaxr)
            .with_period(period)
            .with_account(AccountSpec::new("bot", "pw", "key")),
    )
    .await
    .expect("simulator starts");
    let base = sim.base_url();
    let settings = |password: &str| HttpSettings {
        server_ca_pem: Some(sim.server_ca_pem().to_owned()),
        proxy: Some(EgressProxy {
            url: proxy_url.clone(),
            username: Some(PROXY_USER.into()),
            password: Some(SecretString::from(password)),
            no_proxy: None,
        }),
        ..HttpSettings::default()
    };
    let inputs = Inputs {
        username: Some("bot".into()),
        password: Some(SecretString::from("pw")),
        totp_params: Some(TotpParams {
            period: period.as_secs(),
            ..TotpParams::default()
        }),
        ..Inputs::default()
    };
    let profile = builtin::get("goaxr").expect("built in");

    let engine = Engine::new(profile.clone(), &base, settings(PROXY_PASSWORD)).expect("engine");
    let enrollment = engine
        .enroll(&inputs)
        .await
        .expect("enroll through the proxy");
    engine
        .login(&inputs.with_totp(enrollment.totp))
        .await
        .expect("login through the proxy");
    let host_port = base
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let tunnelled = targets.lock().expect("lock").clone();
    assert!(!tunnelled.is_empty(), "calls were tunnelled");
    assert!(
        tunnelled.iter().all(|t| *t == host_port),
        "every tunnel goes to the vendor: {tunnelled:?} vs {host_port}"
    );

    // A proxy refusing our credentials is a transport failure that says
    // nothing secret.
    let refused = Engine::new(profile, &base, settings("wrong")).expect("engine");
    let err = refused
        .enroll(&inputs)
        .await
        .expect_err("the proxy refuses");
    assert_eq!(err.category(), "VendorUnreachable", "{err}");
    assert!(!err.to_string().contains(PROXY_PASSWORD), "{err}");
    sim.shutdown().await;
}
