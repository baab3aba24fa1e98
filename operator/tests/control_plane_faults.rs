//! The control plane failing under the operator mid-reconcile: the real
//! kube-apiserver killed and restarted, and etcd paused (SIGSTOP) for longer than the
//! leader Lease. Each test runs on a control plane of its own, so the
//! shared one other tests use is never disturbed (nextest runs these one
//! at a time: .config/nextest.toml, group `private-control-plane`).

mod support;

use std::time::{Duration, Instant};

use otpilot_sim::Vendor;
use support::faults::*;
use support::*;

/// The kube-apiserver is killed and restarted right after goaxr's enroll answer (MFA on,
/// the only recovery codes it ever hands out) was read and before it was
/// written. The operator keeps the answer and writes it once the API
/// server is back: one enrollment, every recovery code kept.
#[tokio::test]
async fn apiserver_restarted_mid_enrollment_loses_nothing() {
    let (plane, cluster) = PrivateControlPlane::up().await;
    let ns = cluster
        .namespace("apiserver-restart")
        .await
        .expect("namespace");
    let sim = vendor(Vendor::Goaxr).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    create_credential(&ns, &credential("bot", "goaxr", &sim.base_url(), "Retain")).await;

    let point = "enroll-answered-step-2";
    let pause = Duration::from_secs(5);
    let pause_ms = pause.as_millis().to_string();
    // A Lease longer than the restart: the operator rides through it
    // instead of stepping down.
    let operator = Operator::start_on(
        plane.kubeconfig(),
        ns.name(),
        "apiserver-restart",
        &[
            ("OTPILOT_FAILPOINT", point),
            ("OTPILOT_FAILPOINT_PAUSE_MS", &pause_ms),
            ("OTPILOT_LEASE_DURATION_SECONDS", "120"),
            ("OTPILOT_LEASE_RENEW_SECONDS", "2"),
        ],
    )
    .await;
    wait_for_log(&operator, &failpoint_line(point), Duration::from_secs(60)).await;
    let reached = Instant::now();
    let args = plane.kill_apiserver();
    assert!(
        reached.elapsed() < pause,
        "the API server is down before the operator writes the answer"
    );
    // Down while the operator tries to write the answer.
    tokio::time::sleep(pause + Duration::from_secs(3) - reached.elapsed()).await;
    let enrolled = vendor_account(&sim, USERNAME).await;
    assert!(enrolled.enrolled, "MFA went on before the restart");
    plane.start_apiserver(&args, &cluster).await;

    let ready = wait_for_ready(&ns, "bot", &operator).await;
    assert_eq!(
        condition(&ready, "Enrolled").map(|(_, reason)| reason),
        Some("EnrollmentComplete".into()),
        "the recovery codes of the enroll answer were written, not lost"
    );
    assert_one_clean_enrollment(&ns, &sim, "bot", USERNAME, &ready).await;
    assert!(operator.is_leader().await, "the operator rode through");
    let values = secret_values(&ns, "bot").await;
    assert_no_secret_leaks(&ns, &operator, &values).await;
}

/// etcd stops answering (SIGSTOP) just as the operator is about to write
/// its first checkpoint, for three Lease durations. Every API call hangs;
/// the leader cannot renew its Lease, so it must step down within the Lease
/// duration (another replica may take over once it expires) instead of
/// hanging on as a second leader. Restarted after etcd is back (as its
/// Deployment would), the operator enrolls once.
#[tokio::test]
async fn etcd_paused_longer_than_the_lease_the_leader_steps_down_and_enrolls_once_after() {
    let (plane, cluster) = PrivateControlPlane::up().await;
    let ns = cluster.namespace("etcd-paused").await.expect("namespace");
    let sim = vendor(Vendor::Goaxr).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    create_credential(&ns, &credential("bot", "goaxr", &sim.base_url(), "Retain")).await;

    let point = "enroll-before-first-checkpoint";
    // Lease: 4 s, renewed every second (support::process).
    let lease = Duration::from_secs(4);
    let mut operator = Operator::start_on(
        plane.kubeconfig(),
        ns.name(),
        "etcd-paused",
        &[
            ("OTPILOT_FAILPOINT", point),
            ("OTPILOT_FAILPOINT_PAUSE_MS", "1000"),
        ],
    )
    .await;
    wait_for_log(&operator, &failpoint_line(point), Duration::from_secs(60)).await;
    plane.pause_etcd();
    let paused = Instant::now();
    let exited = loop {
        if let Some(status) = operator.try_wait() {
            break status;
        }
        if paused.elapsed() > 3 * lease {
            plane.resume_etcd();
            panic!(
                "the operator still runs {:?} after etcd stopped answering, its Lease of {lease:?} \
                 unrenewed: a second replica could lead beside it\n{}",
                paused.elapsed(),
                operator.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stepped_down_after = paused.elapsed();
    println!("stepped down {stepped_down_after:?} after etcd paused ({exited})");
    assert!(!exited.success());
    assert!(
        operator.log_text().contains("leadership lost"),
        "{}",
        operator.log_text()
    );
    tokio::time::sleep((3 * lease).saturating_sub(paused.elapsed())).await;
    plane.resume_etcd();
    assert_eq!(
        vendor_account(&sim, USERNAME).await.enrollments_started,
        0,
        "nothing was sent to the vendor before the first checkpoint"
    );

    let operator = Operator::start_on(plane.kubeconfig(), ns.name(), "etcd-paused", &[]).await;
    let ready = wait_for_ready(&ns, "bot", &operator).await;
    assert_one_clean_enrollment(&ns, &sim, "bot", USERNAME, &ready).await;
    assert_eq!(vendor_account(&sim, USERNAME).await.enrollments_started, 1);
    let values = secret_values(&ns, "bot").await;
    assert_no_secret_leaks(&ns, &operator, &values).await;
}
