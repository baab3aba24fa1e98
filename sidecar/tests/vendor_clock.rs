//! The sidecar logs in against a vendor whose clock is steps away from ours
//! (it computes codes on the vendor's time) and reports the offset it
//! measured from the vendor's `Date` headers as a metric.

mod common;

use std::time::Duration;

use common::*;
use otpilot_sim::{Faults, Vendor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_clock_two_steps_ahead_is_followed_and_reported() {
    let v = vendor("goaxr", Vendor::Goaxr, VendorOptions::default()).await;
    v.sim
        .admin()
        .expect("admin")
        .set_faults(&Faults {
            clock_skew_steps: 2,
            ..Faults::default()
        })
        .await
        .expect("fault");
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    sidecar.wait_ready(Duration::from_secs(60)).await;

    let metrics = sidecar.metrics().await;
    let offset: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("otpilot_sidecar_vendor_clock_offset_seconds "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no vendor clock offset in\n{metrics}"));
    // Two steps ahead (the harness's short TOTP period); the Date header has
    // a resolution of a second, read at its middle.
    #[allow(clippy::cast_precision_loss)]
    let two_steps = 2.0 * PERIOD_SECS as f64;
    assert!(
        (offset - two_steps).abs() <= 1.2,
        "offset {offset}, want {two_steps}"
    );
}
