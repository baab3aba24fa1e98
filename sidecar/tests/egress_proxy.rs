//! The sidecar's vendor calls through an egress proxy (`--egress-proxy`):
//! logins and the authenticating proxy's calls go through a real tinyproxy
//! on loopback, and a proxy variable in the environment is not followed
//! unless `--egress-proxy-from-env` says so.

mod common;

use std::time::Duration;

use common::*;
use otpilot_sim::Vendor;
use otpilot_tests::tinyproxy::{Tinyproxy, dead_proxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_proxied_calls_go_through_the_egress_proxy() {
    let v = vendor("goaxr", Vendor::Goaxr, VendorOptions::default()).await;
    let proxy = Tinyproxy::start();
    let mounts = Mounts::new(&v.bundle());
    let mut args = mounts.args();
    args.extend(["--egress-proxy".to_owned(), proxy.url.clone()]);
    let sidecar = Sidecar::spawn(&args);
    sidecar.wait_ready(Duration::from_secs(20)).await;
    let vendor_host = v.sim.vendor_addr().to_string();
    let after_login = proxy.tunnels();
    assert!(
        !after_login.is_empty() && after_login.iter().all(|t| *t == vendor_host),
        "the login went through the proxy, to the vendor only: {after_login:?}"
    );
    let status = sidecar
        .http
        .get(sidecar.proxy_url("/"))
        .send()
        .await
        .expect("a proxied call")
        .status();
    assert!(
        status.as_u16() < 500,
        "a proxied call reached the vendor ({status})"
    );
    assert!(
        proxy.tunnels().len() > after_login.len(),
        "the proxied call went through the egress proxy too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environments_proxy_is_not_followed_unless_chosen() {
    let v = vendor("goaxr", Vendor::Goaxr, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let dead = dead_proxy();
    let sidecar = Sidecar::spawn_with_env(&mounts.args(), &[("HTTPS_PROXY", &dead)]);
    sidecar.wait_ready(Duration::from_secs(20)).await;
    drop(sidecar);

    let proxy = Tinyproxy::start();
    let mut args = mounts.args();
    args.push("--egress-proxy-from-env".to_owned());
    let sidecar = Sidecar::spawn_with_env(&args, &[("HTTPS_PROXY", &proxy.url)]);
    sidecar.wait_ready(Duration::from_secs(20)).await;
    assert!(
        proxy.tunnels().contains(&v.sim.vendor_addr().to_string()),
        "opted in, HTTPS_PROXY is followed: {:?}",
        proxy.tunnels()
    );
}
