//! Two operator replicas started at once on the same credentials: one
//! Lease, one leader. The leader is SIGKILLed in the middle of enrolling;
//! the other takes over once the Lease expires and finishes from the
//! checkpoints. Every account is enrolled exactly once.

mod support;

use std::time::{Duration, Instant};

use otpilot_sim::Vendor;
use otpilot_tests::TestCluster;
use support::faults::*;
use support::*;

const ACCOUNTS: usize = 3;

#[tokio::test]
async fn two_replicas_racing_then_the_leader_killed_mid_enrollment_enroll_each_account_once() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("replicas").await.expect("namespace");
    let usernames: Vec<String> = (0..ACCOUNTS)
        .map(|i| format!("bot{i}@example.com"))
        .collect();
    let sim =
        vendor_with_accounts(Vendor::Goaxr, Duration::from_secs(PERIOD_SECS), &usernames).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    for (i, username) in usernames.iter().enumerate() {
        let c = credential_for(
            &format!("bot{i}"),
            "goaxr",
            &sim.base_url(),
            username,
            u32::try_from(PERIOD_SECS).expect("small"),
        );
        create_credential(&ns, &c).await;
    }

    // Both replicas pause 3 s after the enroll start of each credential:
    // long enough to kill the leader there, short enough that the survivor
    // (which pauses too) finishes.
    let point = "enroll-after-step-1";
    let env = [
        ("OTPILOT_FAILPOINT", point),
        ("OTPILOT_FAILPOINT_PAUSE_MS", "3000"),
    ];
    let (a, b) = tokio::join!(
        Operator::start_with(ns.name(), "race", &env),
        Operator::start_with(ns.name(), "race", &env),
    );
    let mut replicas = [a, b];
    let needle = failpoint_line(point);
    let deadline = Instant::now() + Duration::from_secs(60);
    let leader = loop {
        if let Some(i) = replicas.iter().position(|r| r.log_text().contains(&needle)) {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "no replica reached {point}:\nA:\n{}\nB:\n{}",
            replicas[0].log_text(),
            replicas[1].log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let follower = 1 - leader;
    assert!(
        replicas[leader].is_leader().await,
        "the enrolling replica leads"
    );
    assert!(
        !replicas[follower].is_leader().await,
        "one leader at a time"
    );
    assert!(
        !replicas[follower].log_text().contains(&needle),
        "the follower did not enroll while the leader held the Lease"
    );
    replicas[leader].kill();
    let killed_log = replicas[leader].log_text();

    let survivor = &replicas[follower];
    for (i, username) in usernames.iter().enumerate() {
        let name = format!("bot{i}");
        let ready = wait_for_ready(&ns, &name, survivor).await;
        assert_one_clean_enrollment(&ns, &sim, &name, username, &ready).await;
    }
    assert!(survivor.is_leader().await);
    let mut values = Vec::new();
    for i in 0..ACCOUNTS {
        values.extend(secret_values(&ns, &format!("bot{i}")).await);
    }
    for value in &values {
        assert!(
            !killed_log.contains(value.as_str()),
            "a secret value is in the killed leader's log"
        );
    }
    assert_no_secret_leaks(&ns, survivor, &values).await;
}
