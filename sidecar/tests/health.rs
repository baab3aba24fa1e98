//! The sidecar's health as the kubelet and Prometheus see it: the admin
//! listener serves probes and metrics but never the token, and a task that
//! dies ends the process non-zero with the cause in the log (so the kubelet
//! restarts the container) instead of leaving a Pod that looks alive.

mod common;

use std::time::Duration;

use common::*;
use otpilot_api::sidecar::{TOKEN_REQUEST_HEADER, TOKEN_REQUEST_HEADER_VALUE};
use otpilot_sim::Vendor;

fn with_admin(mounts: &Mounts) -> Vec<String> {
    let mut args = mounts.args();
    args.extend(["--admin-addr".into(), "127.0.0.1:0".into()]);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_probes_and_metrics_and_never_the_token() {
    let v = vendor("audd", Vendor::Audd, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&with_admin(&mounts));
    let token = sidecar.wait_ready(Duration::from_secs(20)).await;
    let admin = sidecar
        .admin
        .expect("the listening line names the admin address");
    let get = |path: &str| {
        sidecar
            .http
            .get(format!("http://{admin}{path}"))
            .header(TOKEN_REQUEST_HEADER, TOKEN_REQUEST_HEADER_VALUE)
            .send()
    };
    for path in ["/healthz", "/readyz"] {
        let res = get(path).await.expect("admin answers");
        assert_eq!(res.status(), 200, "{path}");
    }
    let metrics = get("/metrics").await.expect("admin answers");
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.expect("body");
    assert!(
        metrics.contains("otpilot_sidecar_logins_total 1"),
        "{metrics}"
    );
    let refused = get("/token").await.expect("admin answers");
    assert_eq!(refused.status(), 404, "the admin listener has no /token");
    let body = refused.text().await.expect("body");
    assert!(!body.contains(&token.token));
    let mut secrets = v.secrets.clone();
    secrets.push(token.token);
    sidecar.assert_no_secret_leaked(&secrets).await;
}

/// Each supervised task, killed by the debug-build failpoint, ends the
/// process with status 1 and a log line naming the task and the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_dies_ends_the_sidecar_non_zero_with_the_cause_in_the_log() {
    let v = vendor("audd", Vendor::Audd, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    for task in ["reload", "session", "api", "admin", "proxy"] {
        let failpoint = format!("sidecar-task-panic:{task}");
        let mut sidecar = Sidecar::spawn_with_env(
            &with_admin(&mounts),
            &[
                ("OTPILOT_FAILPOINT", &failpoint),
                // After "listening", which the harness waits for.
                ("OTPILOT_FAILPOINT_AFTER_MS", "300"),
            ],
        );
        let status = sidecar.wait_exit(Duration::from_secs(20));
        assert_eq!(status.code(), Some(1), "{task}: {}", sidecar.output());
        let output = sidecar.output();
        let logged = output.lines().any(|line| {
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| {
                v["level"] == "ERROR"
                    && v["task"] == task
                    && v["cause"]
                        .as_str()
                        .is_some_and(|c| c.contains(&format!("panicked: failpoint {failpoint}")))
            })
        });
        assert!(
            logged,
            "{task}: no error naming the task and cause:\n{output}"
        );
    }
}
