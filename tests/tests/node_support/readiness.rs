//! `otpilot.dev/readiness` on the node: a Pod that follows its sidecar's token leaves Ready
//! when the vendor is down past the token's life, one that does not stays Ready.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::health::{ADMIN_PORT, create, http_get, injected_pod, pod_ip, pod_ready, sidecar_spec};

/// `otpilot.dev/readiness`: with the vendor down past the token's life, a Pod with `token`
/// leaves Ready and one with the default `none` stays Ready, though its sidecar has no token
/// either (its `/readyz` says 503).
pub async fn readiness_case() {
    let world = super::world_with(
        "readiness",
        super::Setup {
            access_token_lifetime: Some(Duration::from_secs(20)),
            ..super::Setup::audd(super::LONG_LIVED)
        },
    )
    .await;
    let ns = &world.ns;
    create(
        ns,
        &injected_pod("follows-token", &[("otpilot.dev/readiness", "token")]),
    )
    .await;
    create(ns, &injected_pod("independent", &[])).await;
    let mut ips = Vec::new();
    for name in ["follows-token", "independent"] {
        let pod = otpilot_tests::node::wait_for_pod(
            ns,
            name,
            "Running and Ready",
            Duration::from_secs(180),
            pod_ready,
        )
        .await;
        println!("{}", otpilot_tests::node::describe_pod(&pod));
        ips.push(pod_ip(&pod));
    }
    let probe = sidecar_spec(&ns.api::<Pod>().get("follows-token").await.expect("get"))
        .readiness_probe
        .clone()
        .and_then(|p| p.http_get)
        .expect("readiness token: an HTTP readiness probe");
    assert_eq!(probe.path.as_deref(), Some("/readyz"));

    let admin = world.sim.admin().expect("admin");
    admin
        .set_faults(&otpilot_sim::Faults {
            down: true,
            ..otpilot_sim::Faults::default()
        })
        .await
        .expect("take the vendor down");
    println!("vendor down; 20 s tokens lapse");
    let pod = otpilot_tests::node::wait_for_pod(
        ns,
        "follows-token",
        "not Ready",
        Duration::from_secs(120),
        |p| !pod_ready(p),
    )
    .await;
    println!("{}", otpilot_tests::node::describe_pod(&pod));
    // The other sidecar has no token either, and its Pod is Ready all the same.
    let independent = SocketAddr::new(ips[1], ADMIN_PORT);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http_get(independent, "/readyz")
            .await
            .expect("admin answers");
        if status == 503 {
            println!(
                "  independent's sidecar: {}",
                body.lines().next().unwrap_or_default()
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the independent Pod's sidecar still holds a token: {body}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Past the readiness probe's failure threshold (3 x 5 s) had it had one.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let pod = ns.api::<Pod>().get("independent").await.expect("get");
    println!("{}", otpilot_tests::node::describe_pod(&pod));
    assert!(
        pod_ready(&pod),
        "readiness none: the Pod stays Ready without a token"
    );
    let (status, _) = http_get(independent, "/healthz")
        .await
        .expect("admin answers");
    assert_eq!(
        status, 200,
        "a vendor outage is no reason to restart the sidecar"
    );

    admin
        .set_faults(&otpilot_sim::Faults::default())
        .await
        .expect("bring the vendor back");
    otpilot_tests::node::wait_for_pod(
        ns,
        "follows-token",
        "Ready again",
        Duration::from_secs(120),
        pod_ready,
    )
    .await;
    println!("vendor back: follows-token Ready again");
}
