//! The vendor's clock as clients see it: the `Date` header follows the
//! clock-skew fault, which can be changed while the simulator runs, so a
//! client can estimate the vendor's offset from its answers.

mod common;

use std::time::Duration;

use common::{Sim, fast_config};
use otpilot_sim::{Faults, Vendor};

const PERIOD_SECS: i64 = 30;

// The vendor's clock minus ours, in seconds, from one answer's `Date`.
async fn date_offset_secs(sim: &Sim) -> i64 {
    let before = common::now().as_secs_f64();
    let response = sim
        .http
        .get(sim.url("/no-such-endpoint"))
        .send()
        .await
        .expect("send");
    let after = common::now().as_secs_f64();
    let date = response
        .headers()
        .get("date")
        .expect("every answer carries Date")
        .to_str()
        .expect("ascii")
        .to_owned();
    let vendor = jiff::civil::DateTime::strptime("%a, %d %b %Y %H:%M:%S GMT", &date)
        .expect("IMF-fixdate")
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("UTC")
        .timestamp()
        .as_second();
    let midpoint = (before + after) / 2.0;
    (vendor as f64 - midpoint).round() as i64
}

#[tokio::test]
async fn date_header_follows_the_clock_skew_fault_set_at_runtime() {
    let sim = Sim::start(fast_config(Vendor::Goaxr).with_period(Duration::from_secs(30))).await;
    // Date has 1 s resolution: allow 2 s either way around the expected offset.
    let near = |got: i64, want: i64| (got - want).abs() <= 2;
    let offset = date_offset_secs(&sim).await;
    assert!(near(offset, 0), "no skew: {offset}");
    for steps in [2_i64, -2, 1] {
        sim.admin()
            .set_faults(&Faults {
                clock_skew_steps: steps,
                ..Faults::default()
            })
            .await
            .expect("set skew");
        let offset = date_offset_secs(&sim).await;
        assert!(
            near(offset, steps * PERIOD_SECS),
            "skew {steps} steps: Date is {offset} s off"
        );
    }
    sim.admin().clear_faults().await.expect("clear");
    let offset = date_offset_secs(&sim).await;
    assert!(near(offset, 0), "skew cleared: {offset}");
}
