//! Every built-in profile: the sidecar process logs in, serves its first
//! token, and renews it ahead of expiry over several cycles of short-lived
//! tokens while a client polls `/token` the whole time and never receives
//! an expired one. The token is also written to the token file.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use otpilot_sim::Vendor;

const ACCESS: Duration = Duration::from_secs(5);
const REFRESH: Duration = Duration::from_secs(15);
const RUN_FOR: Duration = Duration::from_secs(14);

async fn renews_without_a_gap(profile: &'static str, vendor_kind: Vendor) {
    let v = vendor(
        profile,
        vendor_kind,
        VendorOptions {
            access: ACCESS,
            refresh: REFRESH,
            ..VendorOptions::default()
        },
    )
    .await;
    let mounts = Mounts::new(&v.bundle());
    let token_file = mounts.root.path().join("out").join("token");
    std::fs::create_dir_all(token_file.parent().expect("parent")).expect("mkdir");
    let mut args = mounts.args();
    args.extend(["--token-file".into(), token_file.display().to_string()]);
    let sidecar = Sidecar::spawn(&args);

    let first = sidecar.wait_ready(Duration::from_secs(20)).await;
    let scheme = if profile == "goaxr" { "jwt" } else { "Bearer" };
    assert_eq!(
        first.token_type, scheme,
        "{profile}: the profile's tokenPresentation"
    );
    assert!(first.expires_at > SystemTime::now());

    let mut seen = BTreeSet::new();
    let mut secrets = v.secrets.clone();
    let mut served = 0u32;
    let mut refused = 0u32;
    let started = Instant::now();
    while started.elapsed() < RUN_FOR {
        match sidecar.token().await {
            Ok(t) => {
                // Received, then checked: never expired on arrival.
                assert!(
                    t.expires_at > SystemTime::now(),
                    "{profile}: served an expired token; output:\n{}",
                    sidecar.output()
                );
                served += 1;
                if seen.insert(t.token.clone()) {
                    secrets.push(t.token);
                }
            }
            Err((status, body)) => {
                assert_eq!(status, 503, "{profile}: {body}");
                refused += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        refused,
        0,
        "{profile}: /token had a gap ({refused} refusals of {}); output:\n{}",
        served + refused,
        sidecar.output()
    );
    // 14 s of 5 s tokens renewed at half-life: at least 4 renewals.
    assert!(
        seen.len() >= 4,
        "{profile}: only {} distinct tokens in {RUN_FOR:?}; output:\n{}",
        seen.len(),
        sidecar.output()
    );
    let logins = sidecar.counter("otpilot_sidecar_logins_total", "").await;
    let refreshes = sidecar.counter("otpilot_sidecar_refreshes_total", "").await;
    let has_refresh = otpilot_profile::builtin::get(profile)
        .expect("built-in")
        .has_flow(otpilot_profile::FlowKind::Refresh);
    if has_refresh {
        assert!(
            refreshes >= 3.0,
            "{profile}: {refreshes} refreshes, {logins} logins"
        );
    } else {
        assert!(
            logins >= 4.0,
            "{profile}: {logins} logins without a refresh flow"
        );
    }
    // The sidecar may renew between the last poll and the file's read (a
    // loaded machine, goaxr logging in every ~2.5 s): the tokens served just
    // before and just after the read count as served too.
    let before = sidecar.token().await;
    let on_disk = read(&token_file);
    let after = sidecar.token().await;
    for t in [before, after].into_iter().flatten() {
        if seen.insert(t.token.clone()) {
            secrets.push(t.token);
        }
    }
    assert!(
        seen.contains(&on_disk),
        "{profile}: the token file holds a token /token served"
    );
    sidecar.assert_no_secret_leaked(&secrets).await;
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audd_token_is_renewed_before_expiry_without_a_gap() {
    renews_without_a_gap("audd", Vendor::Audd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goaxr_token_is_renewed_by_login_before_expiry_without_a_gap() {
    renews_without_a_gap("goaxr", Vendor::Goaxr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conduit_token_is_renewed_before_expiry_without_a_gap() {
    renews_without_a_gap("conduit", Vendor::Conduit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acreto_token_is_renewed_before_expiry_without_a_gap() {
    renews_without_a_gap("acreto", Vendor::Acreto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cryptr_token_is_renewed_before_expiry_without_a_gap() {
    renews_without_a_gap("cryptr", Vendor::Cryptr).await;
}

/// `--refresh-before` (what the webhook passes from `spec.token.refreshBefore`) sets when the
/// token is renewed: 12 s tokens with a 3 s lead are renewed 8.25–9 s after they were obtained
/// (the lead plus up to a quarter of jitter), where the default lead (a third of the life or
/// 60 s, at most half the life) would renew at 6 s. The schedule is read from the sidecar's
/// "new token" log line, not from a clock; then the renewal itself is awaited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_before_sets_when_the_token_is_renewed() {
    let v = vendor(
        "audd",
        Vendor::Audd,
        VendorOptions {
            access: Duration::from_secs(12),
            refresh: Duration::from_secs(120),
            ..VendorOptions::default()
        },
    )
    .await;
    let mounts = Mounts::new(&v.bundle());
    let mut args = mounts.args();
    args.extend(["--refresh-before".into(), "3".into()]);
    let sidecar = Sidecar::spawn(&args);
    sidecar.wait_ready(Duration::from_secs(20)).await;
    let scheduled: Vec<(u64, u64)> = sidecar
        .output()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "new token")
        .filter_map(|v| Some((v["expires_in_s"].as_u64()?, v["next_in_ms"].as_u64()?)))
        .collect();
    let (life_s, next_in_ms) = *scheduled.first().expect("a 'new token' line");
    let life_ms = life_s * 1000;
    // The logged life is whole seconds (rounded down): allow one second more.
    assert!(
        (life_ms.saturating_sub(3750)..=life_ms + 1000 - 3000).contains(&next_in_ms),
        "renewal scheduled {next_in_ms} ms after a token of {life_s} s, not 3 s before its end"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while sidecar.counter("otpilot_sidecar_refreshes_total", "").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no renewal within 30 s:\n{}",
            sidecar.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
