//! Benchmark, not a test (run by `bench/shared-session.sh`): time from
//! starting N sidecar processes at once to all of them ready, for N = 1, 5,
//! 20, with the shared session and standalone, in the same run, against a
//! simulator that rejects code reuse, on the real control plane.

mod common;
mod shared_session;

use std::time::{Duration, Instant};

use common::*;
use otpilot_sim::Vendor;
use shared_session::*;

fn period_secs() -> u64 {
    std::env::var("BENCH_TOTP_PERIOD")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
}

/// Seconds until all `n` replicas are ready, and the TOTP logins the vendor saw.
async fn all_ready(n: usize, shared: bool) -> (f64, u64) {
    let period = period_secs();
    let v = vendor(
        "conduit",
        Vendor::Conduit,
        VendorOptions {
            period_secs: period,
            ..VendorOptions::default()
        },
    )
    .await;
    let enrolled = v.account().await.accepted_codes;
    let mounts = Mounts::new(&v.bundle());
    let env = if shared {
        Some(SessionNamespace::new("bench-shared").await)
    } else {
        None
    };
    let kubeconfig = match &env {
        Some(env) => Some(env.kubeconfig_for(SHARED_SA).await.0),
        None => None,
    };
    // Start on a fresh TOTP step, so runs are comparable: the enrollment
    // used the current one.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let next_step_ms = (now / (period * 1000) + 1) * period * 1000;
    tokio::time::sleep(Duration::from_millis(next_step_ms - now + 100)).await;

    let started = Instant::now();
    let sidecars: Vec<Sidecar> = (0..n)
        .map(|i| {
            let mut args = mounts.args();
            match (&env, &kubeconfig) {
                (Some(env), Some(path)) => {
                    args.extend(session_args(&format!("replica-{i}"), env.ns.name()));
                    Sidecar::spawn_with_env(&args, &[("KUBECONFIG", &path.display().to_string())])
                }
                _ => Sidecar::spawn(&args),
            }
        })
        .collect();
    let limit = Duration::from_secs(period * (n as u64 + 4));
    for s in &sidecars {
        s.wait_ready(limit).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let logins = v.account().await.accepted_codes - enrolled;
    (elapsed, logins)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn time_to_all_ready() {
    let period = period_secs();
    println!("TOTP period {period} s; time from starting N sidecar processes to all ready");
    println!("| N | shared session | standalone |");
    println!("|---|---|---|");
    for n in [1, 5, 20] {
        let (shared, shared_logins) = all_ready(n, true).await;
        let (alone, alone_logins) = all_ready(n, false).await;
        println!(
            "| {n} | {shared:.2} s ({shared_logins} TOTP login) | {alone:.2} s ({alone_logins} TOTP logins, {:.1} periods) |",
            alone / period as f64
        );
    }
}
