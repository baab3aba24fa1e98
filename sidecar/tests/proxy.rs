//! The authenticating reverse proxy of the sidecar process, against the
//! simulated AUDD (mTLS on every call, `Authorization: Bearer`): forwarding,
//! streaming a large upload, one retry after the vendor refuses the token,
//! and SIGTERM with requests in flight.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use otpilot_sim::{Faults, Vendor};

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_forwards_with_the_client_certificate_and_the_vendors_auth_header() {
    let v = vendor(
        "audd",
        Vendor::Audd,
        VendorOptions {
            max_body_bytes: Some(80 << 20),
            ..VendorOptions::default()
        },
    )
    .await;
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    let token = sidecar.wait_ready(Duration::from_secs(20)).await;

    // The app sends no credentials (or wrong ones): the proxy sets them.
    let res = sidecar
        .http
        .get(sidecar.proxy_url("/users"))
        .header("Authorization", "Bearer something-the-app-made-up")
        .send()
        .await
        .expect("proxied");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["users"][0]["username"], USERNAME);

    // A 64 MiB upload streams through (the vendor reads it all, then
    // refuses it as JSON). Peak RSS is reported, not asserted.
    let hwm_before = vm_hwm_kib(sidecar.pid());
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 1024;
    let chunks =
        futures::stream::iter((0..CHUNKS).map(|_| Ok::<_, std::io::Error>(vec![b'x'; CHUNK])));
    let started = Instant::now();
    let res = sidecar
        .http
        .post(sidecar.proxy_url("/mfa/login"))
        .header("Content-Type", "application/json")
        .header("Content-Length", (CHUNK * CHUNKS).to_string())
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("the upload went through the proxy");
    let status = res.status();
    let _ = res.text().await;
    let hwm_after = vm_hwm_kib(sidecar.pid());
    eprintln!(
        "64 MiB upload through the proxy: status {status}, {:?}; sidecar peak RSS {hwm_before} KiB before, {hwm_after} KiB after",
        started.elapsed()
    );
    assert!(
        status.is_client_error(),
        "the vendor read and refused the junk body: {status}"
    );

    sidecar
        .assert_no_secret_leaked(&[v.secrets.clone(), vec![token.token]].concat())
        .await;
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_presents_the_token_as_the_profile_says_goaxr_jwt() {
    let v = vendor("goaxr", Vendor::Goaxr, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    let token = sidecar.wait_ready(Duration::from_secs(20)).await;
    assert_eq!(token.token_type, "jwt");
    let id = v.account().await.id;
    let res = sidecar
        .http
        .get(sidecar.proxy_url(&format!("/users/{id}")))
        .send()
        .await
        .expect("proxied");
    assert_eq!(
        res.status(),
        200,
        "goaxr accepted `Authorization: jwt <token>`"
    );
    sidecar
        .assert_no_secret_leaked(&[v.secrets.clone(), vec![token.token]].concat())
        .await;
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_vendor_refuses_is_renewed_and_the_request_retried_once() {
    let clock = Arc::new(OffsetClock::default());
    let v = vendor(
        "audd",
        Vendor::Audd,
        VendorOptions {
            access: Duration::from_secs(300),
            refresh: Duration::from_secs(900),
            clock: Some(clock.clone()),
            ..VendorOptions::default()
        },
    )
    .await;
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    let before = sidecar.wait_ready(Duration::from_secs(20)).await;

    // The vendor's clock jumps past the access token's life, not the
    // refresh token's: the vendor refuses the token the sidecar still holds.
    clock.advance(Duration::from_secs(400));
    let res = sidecar
        .http
        .get(sidecar.proxy_url("/users"))
        .send()
        .await
        .expect("proxied");
    assert_eq!(res.status(), 200, "retried with a renewed token");
    let after = sidecar.token().await.expect("token");
    assert_ne!(after.token, before.token);
    assert_eq!(
        sidecar.counter("otpilot_sidecar_refreshes_total", "").await,
        1.0
    );
    sidecar
        .assert_no_secret_leaked(&[v.secrets.clone(), vec![before.token, after.token]].concat())
        .await;
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_proxy_requests_finish_and_exits_zero() {
    let v = vendor("audd", Vendor::Audd, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let mut sidecar = Sidecar::spawn(&mounts.args());
    let token = sidecar.wait_ready(Duration::from_secs(20)).await;
    v.sim
        .admin()
        .expect("admin")
        .set_faults(&Faults {
            latency_ms: 1500,
            ..Faults::default()
        })
        .await
        .expect("latency");

    let in_flight: Vec<_> = (0..4)
        .map(|_| {
            let http = sidecar.http.clone();
            let url = sidecar.proxy_url("/users");
            tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    sidecar.sigterm();
    for request in in_flight {
        let status = request.await.expect("task").expect("finished, not cut off");
        assert_eq!(status, 200);
    }
    let exit = sidecar.wait_exit(Duration::from_secs(15));
    assert!(exit.success(), "exit status {exit}:\n{}", sidecar.output());
    let output = sidecar.output();
    assert!(output.contains("SIGTERM"), "{output}");
    let secrets = [v.secrets.clone(), vec![token.token]].concat();
    for secret in secrets.iter().filter(|s| s.len() >= 6) {
        assert!(!output.contains(secret.as_str()), "a secret in the output");
    }
    v.sim.shutdown().await;
}
