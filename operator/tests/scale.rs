//! 100 ApiCredentials (goaxr, one vendor account each) reach Ready under
//! one operator process. Prints the wall time and the operator's RSS for
//! BENCHMARKS.md; asserts only behaviour.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use otpilot_api::ApiCredential;
use otpilot_sim::{AccountSpec, SimConfig, Vendor};
use otpilot_tests::TestCluster;
use support::*;

const COUNT: usize = 100;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_hundred_credentials_reach_ready_under_one_operator() {
    install_crypto_provider();
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("scale").await.expect("namespace");
    let mut config = SimConfig::new(Vendor::Goaxr).with_period(Duration::from_secs(PERIOD_SECS));
    for i in 0..COUNT {
        config = config.with_account(AccountSpec::new(
            format!("bot{i}@example.com"),
            PASSWORD,
            API_KEY,
        ));
    }
    let sim = otpilot_sim::spawn(config).await.expect("simulator");
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    let rss_idle = rss_kib(operator.pid());

    let started = Instant::now();
    let api = ns.api::<ApiCredential>();
    for i in 0..COUNT {
        let mut c = credential(&format!("bot{i}"), "goaxr", &sim.base_url(), "Retain");
        c.spec.username = format!("bot{i}@example.com");
        api.create(&PostParams::default(), &c)
            .await
            .expect("create");
    }
    let mut peak = rss_idle;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        peak = peak.max(rss_kib(operator.pid()));
        let list = api.list(&ListParams::default()).await.expect("list");
        let ready = list
            .items
            .iter()
            .filter(|c| condition(c, "Ready").is_some_and(|(s, _)| s == "True"))
            .count();
        if ready == COUNT {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ready}/{COUNT} Ready\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    println!(
        "BENCH {COUNT} ApiCredentials Ready in {:.1} s; operator RSS idle {} KiB, peak {} KiB, after {} KiB",
        elapsed.as_secs_f64(),
        rss_idle,
        peak,
        rss_kib(operator.pid())
    );
    // Every runtime Secret holds a seed.
    let secrets = ns
        .api::<Secret>()
        .list(&ListParams::default().labels("otpilot.dev/secret-kind=runtime"))
        .await
        .expect("list Secrets");
    assert_eq!(secrets.items.len(), COUNT);
}
