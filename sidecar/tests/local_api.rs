//! The sidecar process's local API, its command line and its inputs:
//! the request header `/token` demands, the exec probe, loopback-only
//! binding (connections to the machine's other addresses refused), and
//! Secret-volume rotation (a good set picked up, a bad set refused with the
//! last good one kept).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use otpilot_api::api_credential::EnrollmentState;
use otpilot_api::runtime_secret::keys;
use otpilot_sim::Vendor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_without_the_request_header_is_refused_naming_it() {
    let v = vendor("goaxr", Vendor::Goaxr, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    let token = sidecar.wait_ready(Duration::from_secs(20)).await;

    let refused = sidecar
        .http
        .get(sidecar.url("/token"))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 403);
    let body = refused.text().await.expect("body");
    assert!(body.contains("Otpilot-Request: true"), "{body}");
    assert!(!body.contains(&token.token));

    let wrong_value = sidecar
        .http
        .get(sidecar.url("/token"))
        .header(TOKEN_HEADER, "1")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong_value.status(), 403);

    let plain = sidecar
        .http
        .get(sidecar.url("/token"))
        .header(TOKEN_HEADER, "true")
        .header("Accept", "text/plain")
        .send()
        .await
        .expect("request");
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.text().await.expect("body"), token.token);

    let preflight = sidecar
        .http
        .request(reqwest::Method::OPTIONS, sidecar.url("/token"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", TOKEN_HEADER)
        .send()
        .await
        .expect("request");
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_ne!(preflight.status(), 200);

    let metrics = sidecar.metrics().await;
    for name in [
        "otpilot_sidecar_logins_total 1",
        "otpilot_sidecar_token_expiry_seconds",
        "otpilot_sidecar_vendor_flow_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    sidecar
        .assert_no_secret_leaked(&[v.secrets.clone(), vec![token.token]].concat())
        .await;
    v.sim.shutdown().await;
}

fn sidecar_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_otpilot-sidecar"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exec_probe_passes_only_when_ready() {
    let v = vendor("goaxr", Vendor::Goaxr, VendorOptions::default()).await;
    let mut bundle = v.bundle();
    bundle.enrollment_state = EnrollmentState::Pending;
    bundle.totp = None;
    let mut mounts = Mounts::new(&bundle);
    let sidecar = Sidecar::spawn(&mounts.args());
    let probe = |kind: &str| {
        sidecar_command()
            .args(["probe", kind, "--api-addr", &sidecar.api.to_string()])
            .output()
            .expect("probe runs")
    };
    // Pending: alive, not ready, and readiness says why.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(probe("live").status.success());
    let not_ready = probe("ready");
    assert_eq!(not_ready.status.code(), Some(1));
    let said = String::from_utf8_lossy(&not_ready.stderr).into_owned();
    assert!(said.contains("Pending"), "{said}");

    // The operator finishes enrollment: the rotated Secret is picked up.
    mounts.runtime.write(&v.bundle().to_data());
    sidecar.wait_ready(Duration::from_secs(20)).await;
    assert!(probe("ready").status.success());
    drop(sidecar);

    let nobody = sidecar_command()
        .args(["probe", "live", "--api-addr", "127.0.0.1:1"])
        .output()
        .expect("probe runs");
    assert_eq!(nobody.status.code(), Some(1));
    v.sim.shutdown().await;
}

#[test]
fn non_loopback_addresses_are_refused_at_start() {
    for flag in ["--api-addr", "--proxy-addr"] {
        let out = sidecar_command()
            .args([
                "run",
                "--runtime-dir",
                "/nonexistent",
                "--password-file",
                "/nonexistent",
                flag,
                "0.0.0.0:8181",
            ])
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a loopback address"), "{flag}: {err}");
    }
}

/// The machine's own non-loopback IPv4 addresses (`ip -4 addr`, scope global).
fn non_loopback_addresses() -> Vec<std::net::IpAddr> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .expect("`ip` runs");
    assert!(out.status.success(), "ip -4 addr failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ports_refuse_connections_to_the_machines_other_addresses() {
    let v = vendor("goaxr", Vendor::Goaxr, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    sidecar.wait_ready(Duration::from_secs(20)).await;
    let addresses = non_loopback_addresses();
    assert!(
        !addresses.is_empty(),
        "this machine has no non-loopback IPv4 address to try"
    );
    // Only a connect to the machine's own address: nothing leaves it.
    for ip in addresses {
        for (name, port) in [("api", sidecar.api.port()), ("proxy", sidecar.proxy.port())] {
            let target = std::net::SocketAddr::new(ip, port);
            let result = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::TcpStream::connect(target),
            )
            .await
            .expect("a refusal is immediate");
            let error = result.expect_err(&format!("the {name} port answered on {target}"));
            assert_eq!(
                error.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{name} on {target}"
            );
        }
        // The same ports do answer on loopback.
        assert_eq!(sidecar.status("/healthz").await.0, 200);
    }
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_picked_up_and_a_bad_one_refused_keeping_the_last_good() {
    let v = vendor(
        "conduit",
        Vendor::Conduit,
        VendorOptions {
            access: Duration::from_secs(5),
            refresh: Duration::from_secs(15),
            ..VendorOptions::default()
        },
    )
    .await;
    let mut mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    let first = sidecar.wait_ready(Duration::from_secs(20)).await;
    let reloads = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("otpilot_sidecar_input_reloads_total"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(reloads(&sidecar.metrics().await), 1.0);

    // A bad set: malformed TOTP parameters. Refused, naming the key.
    let mut bad = v.bundle().to_data();
    bad.insert(keys::TOTP_PARAMS.into(), b"{\"digits\":".to_vec());
    mounts.runtime.write(&bad);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sidecar
        .counter("otpilot_sidecar_input_reloads_refused_total", "")
        .await
        < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the bad set was not noticed:\n{}",
            sidecar.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = sidecar.output();
    assert!(
        output.contains(keys::TOTP_PARAMS) && output.contains("last good set stays in use"),
        "{output}"
    );

    // The last good inputs stay in use: tokens keep coming for several
    // renewals, including TOTP logins once the refresh token runs out.
    let mut tokens = vec![first.token.clone()];
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let t = sidecar
            .token()
            .await
            .expect("still serving on the last good inputs");
        if !tokens.contains(&t.token) {
            tokens.push(t.token);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        tokens.len() >= 3,
        "renewals continued: {} tokens",
        tokens.len()
    );

    // The operator fixes the Secret: the good set is picked up without a restart.
    let before = reloads(&sidecar.metrics().await);
    mounts.runtime.write(&v.bundle().to_data());
    let deadline = Instant::now() + Duration::from_secs(10);
    while reloads(&sidecar.metrics().await) <= before {
        assert!(
            Instant::now() < deadline,
            "the good set was not picked up:\n{}",
            sidecar.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sidecar.wait_ready(Duration::from_secs(10)).await;
    sidecar
        .assert_no_secret_leaked(&[v.secrets.clone(), tokens].concat())
        .await;
    v.sim.shutdown().await;
}
