//! Egress through a proxy (docs/operator.md, "Egress proxy"): the operator
//! started with `--egress-proxy` reaches the vendor only through it, a host
//! on the no-proxy list directly, and proxy variables in the environment
//! count only when `--egress-proxy-from-env` opts in. The proxy is a real
//! tinyproxy (Debian's package, installed by scripts/test-tools.sh) on a
//! free loopback port; the vendor is the simulator over HTTPS behind it.

mod support;

use std::process::Command;

use otpilot_sim::{SimHandle, Vendor};
use otpilot_tests::tinyproxy::{Tinyproxy, dead_proxy};
use otpilot_tests::{TestCluster, TestNamespace};
use support::*;

async fn setup(name: &str) -> (TestCluster, TestNamespace, SimHandle) {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace(name).await.expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    (cluster, ns, sim)
}

fn vendor_host(sim: &SimHandle) -> String {
    sim.vendor_addr().to_string()
}

#[tokio::test]
async fn every_vendor_call_goes_through_the_egress_proxy() {
    let (_cluster, ns, sim) = setup("egress-proxy").await;
    let proxy = Tinyproxy::start();
    let operator = Operator::start_with(
        ns.name(),
        "otpilot-operator",
        &[("OTPILOT_EGRESS_PROXY", &proxy.url)],
    )
    .await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &sim.base_url(), "Retain"),
    )
    .await;
    wait_for_ready(&ns, "bot", &operator).await;
    let tunnels = proxy.tunnels();
    assert!(
        !tunnels.is_empty() && tunnels.iter().all(|t| *t == vendor_host(&sim)),
        "enrollment went through the proxy, to the vendor only: {tunnels:?}"
    );
}

#[tokio::test]
async fn a_host_on_the_no_proxy_list_is_reached_directly() {
    let (_cluster, ns, sim) = setup("egress-noproxy").await;
    let operator = Operator::start_with(
        ns.name(),
        "otpilot-operator",
        &[
            ("OTPILOT_EGRESS_PROXY", &dead_proxy()),
            ("OTPILOT_EGRESS_NO_PROXY", "vendor.example,127.0.0.0/8"),
        ],
    )
    .await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &sim.base_url(), "Retain"),
    )
    .await;
    wait_for_ready(&ns, "bot", &operator).await;
}

/// The vendor by host name: the Kubernetes client follows the proxy
/// variables too, so the API server (127.0.0.1) is kept out of them with
/// `NO_PROXY=127.0.0.1`, which does not match `localhost`.
fn vendor_by_name(sim: &SimHandle) -> String {
    format!("https://localhost:{}", sim.vendor_addr().port())
}

#[tokio::test]
async fn the_environments_proxy_is_ignored_unless_chosen() {
    let (_cluster, ns, sim) = setup("egress-env").await;
    let dead = dead_proxy();
    // A proxy variable set for something else: not followed.
    let operator = Operator::start_with(
        ns.name(),
        "otpilot-operator",
        &[("HTTPS_PROXY", &dead), ("NO_PROXY", "127.0.0.1")],
    )
    .await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &vendor_by_name(&sim), "Retain"),
    )
    .await;
    wait_for_ready(&ns, "bot", &operator).await;
    drop(operator);

    // Opted in: followed. A vendor of its own (the account above is
    // enrolled now), with its CA in place of the first one's.
    let sim = vendor(Vendor::Conduit).await;
    ns.api::<k8s_openapi::api::core::v1::ConfigMap>()
        .delete(CA_CONFIG_MAP, &Default::default())
        .await
        .expect("drop the first vendor's CA");
    create_server_ca(&ns, &sim).await;
    let proxy = Tinyproxy::start();
    let operator = Operator::start_with(
        ns.name(),
        "otpilot-operator",
        &[
            ("HTTPS_PROXY", &proxy.url),
            ("NO_PROXY", "127.0.0.1"),
            ("OTPILOT_EGRESS_PROXY_FROM_ENV", "true"),
        ],
    )
    .await;
    create_credential(
        &ns,
        &credential("bot2", "conduit", &vendor_by_name(&sim), "Retain"),
    )
    .await;
    wait_for_ready(&ns, "bot2", &operator).await;
    let expected = format!("localhost:{}", sim.vendor_addr().port());
    assert!(
        proxy.tunnels().contains(&expected),
        "with --egress-proxy-from-env, HTTPS_PROXY is used: {:?}",
        proxy.tunnels()
    );
}

#[tokio::test]
async fn an_unusable_proxy_setting_stops_the_operator_at_start() {
    let binary = env!("CARGO_BIN_EXE_otpilot-operator");
    let output = Command::new(binary)
        .args(["run", "--namespace", "x", "--admin-addr", "127.0.0.1:0"])
        .env_clear()
        .env("OTPILOT_EGRESS_PROXY", "http://user:hunter2@127.0.0.1:3128")
        .output()
        .expect("run the operator");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("egress proxy"),
        "says what is wrong: {stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "never prints the password: {stderr}"
    );
}
