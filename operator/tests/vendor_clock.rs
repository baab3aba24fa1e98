//! `status.clockOffsetSeconds` from the vendor's `Date` headers, and a
//! Warning Event (`ClockSkew`) when it is beyond the documented threshold.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use otpilot_sim::{Faults, Vendor};
use otpilot_tests::TestCluster;
use support::*;

#[tokio::test]
async fn a_vendor_clock_20_seconds_ahead_is_reported_and_warned_about() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("vendor-clock").await.expect("namespace");
    let sim = vendor(Vendor::Conduit).await;
    // 10 steps of 2 s: the vendor's clock (Date and TOTP) runs 20 s ahead.
    sim.admin()
        .expect("admin")
        .set_faults(&Faults {
            clock_skew_steps: 10,
            ..Faults::default()
        })
        .await
        .expect("fault");
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(
        &ns,
        &credential("bot", "conduit", &sim.base_url(), "Retain"),
    )
    .await;

    // Codes are computed on the vendor's time: enrollment still works.
    let ready = wait_for_ready(&ns, "bot", &operator).await;
    let offset = ready
        .status
        .as_ref()
        .and_then(|s| s.clock_offset_seconds)
        .expect("clockOffsetSeconds");
    assert!((19..=21).contains(&offset), "offset {offset}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = ns
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .expect("Events");
        if let Some(e) = events
            .items
            .iter()
            .find(|e| e.reason.as_deref() == Some("ClockSkew"))
        {
            assert_eq!(e.type_.as_deref(), Some("Warning"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no ClockSkew Event");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let metrics = operator.metrics().await;
    assert!(
        metrics.lines().any(|l| l
            .strip_prefix(&format!(
                "otpilot_operator_vendor_clock_offset_seconds{{namespace=\"{}\",name=\"bot\"}} ",
                ns.name()
            ))
            .is_some_and(|v| v.parse::<i64>().is_ok_and(|v| (19..=21).contains(&v.abs())))),
        "clock offset gauge:\n{metrics}"
    );
    login_with_secrets(&ns, "bot").await;
    sim.shutdown().await;
}
