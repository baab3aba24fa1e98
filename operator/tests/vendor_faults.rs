//! The vendor misbehaving while the operator enrolls: down between the
//! enroll start and the confirm call, answering every call just under the
//! operator's vendor timeout, and just over it. Each ends with the vendor's
//! own counts: one enrollment, no code refused, no lock-out, the seed and
//! recovery codes kept.

mod support;

use std::time::{Duration, Instant};

use otpilot_api::ApiCredential;
use otpilot_sim::{Faults, Vendor};
use otpilot_tests::TestCluster;
use support::faults::*;
use support::*;

/// A goaxr enrollment is: password login, create the secret (enroll start),
/// enroll with a code (confirm). The vendor goes down right before the
/// confirm and stays down for several TOTP steps; the operator resumes from
/// its checkpoint (the same secret, no second enroll start) when it is back.
#[tokio::test]
async fn vendor_outage_between_enroll_start_and_confirm_resumes_from_the_checkpoint() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("vendor-outage").await.expect("namespace");
    let sim = vendor(Vendor::Goaxr).await;
    let admin = sim.admin().expect("admin");
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    create_credential(&ns, &credential("bot", "goaxr", &sim.base_url(), "Retain")).await;

    let point = "enroll-before-step-2";
    let operator = Operator::start_with(
        ns.name(),
        "outage",
        &[
            ("OTPILOT_FAILPOINT", point),
            ("OTPILOT_FAILPOINT_PAUSE_MS", "1000"),
        ],
    )
    .await;
    wait_for_log(&operator, &failpoint_line(point), Duration::from_secs(60)).await;
    admin
        .set_faults(&Faults {
            down: true,
            ..Faults::default()
        })
        .await
        .expect("vendor down");
    let down_since = Instant::now();
    let pending = vendor_account(&sim, USERNAME).await;
    assert!(!pending.enrolled, "the outage starts before the confirm");
    assert_eq!(pending.enrollments_started, 1);

    // The confirm call meets the outage: the status names it.
    let during = wait_for(
        &ns,
        "bot",
        Duration::from_secs(30),
        &operator,
        "Ready=False, VendorUnreachable",
        |c| condition(c, "Ready") == Some(("False".into(), "VendorUnreachable".into())),
    )
    .await;
    println!("during the outage: {}", ready_message(&during));
    // Down for longer than one TOTP step: the code the confirm was about to
    // send is stale by the time the vendor is back.
    let outage = Duration::from_secs(3 * PERIOD_SECS);
    tokio::time::sleep(outage.saturating_sub(down_since.elapsed())).await;
    admin.clear_faults().await.expect("vendor back");

    let ready = wait_for_ready(&ns, "bot", &operator).await;
    assert_one_clean_enrollment(&ns, &sim, "bot", USERNAME, &ready).await;
    let account = vendor_account(&sim, USERNAME).await;
    assert_eq!(
        account.enrollments_started, 1,
        "resumed from the checkpoint: the secret created before the outage is the one enrolled"
    );
    let values = secret_values(&ns, "bot").await;
    assert_no_secret_leaks(&ns, &operator, &values).await;
}

const SLOW_PERIOD_SECS: u32 = 4;
const VENDOR_TIMEOUT_SECS: &str = "3";

/// The Ready condition's message.
fn ready_message(c: &ApiCredential) -> String {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|x| x.type_ == "Ready"))
        .map(|x| format!("{}: {}", x.reason, x.message))
        .unwrap_or_default()
}

/// A goaxr vendor answering every call after `latency_ms`, and an operator
/// whose vendor timeout is 3 s. A 4 s TOTP step keeps a code sent at the
/// start of a slow call inside the vendor's window (±1 step) when it is
/// checked.
async fn slow_vendor(
    latency_ms: u64,
    label: &str,
) -> (
    otpilot_tests::TestNamespace,
    otpilot_sim::SimHandle,
    Operator,
) {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace(label).await.expect("namespace");
    let sim = vendor_with_accounts(
        Vendor::Goaxr,
        Duration::from_secs(u64::from(SLOW_PERIOD_SECS)),
        &[USERNAME.to_owned()],
    )
    .await;
    sim.admin()
        .expect("admin")
        .set_faults(&Faults {
            latency_ms,
            ..Faults::default()
        })
        .await
        .expect("latency");
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    create_credential(
        &ns,
        &credential_for("bot", "goaxr", &sim.base_url(), USERNAME, SLOW_PERIOD_SECS),
    )
    .await;
    let operator = Operator::start_with(
        ns.name(),
        label,
        &[("OTPILOT_VENDOR_TIMEOUT_SECONDS", VENDOR_TIMEOUT_SECS)],
    )
    .await;
    (ns, sim, operator)
}

/// Every call answered after 2.4 s, the operator's limit 3 s: slow, but
/// never a failure. Ready, one enrollment.
#[tokio::test]
async fn vendor_answering_just_under_the_timeout_still_enrolls_once() {
    let (ns, sim, operator) = slow_vendor(2400, "slow-under").await;
    let ready = wait_for_ready(&ns, "bot", &operator).await;
    assert_one_clean_enrollment(&ns, &sim, "bot", USERNAME, &ready).await;
    assert_eq!(vendor_account(&sim, USERNAME).await.enrollments_started, 1);
    assert!(
        !operator.log_text().contains("VendorUnreachable"),
        "no call timed out:\n{}",
        operator.log_text()
    );
}

/// Every call answered after 4 s, the operator's limit 3 s: no answer ever
/// arrives. The status says the vendor is unreachable and that calls time
/// out; no code is refused and nothing is locked while it lasts; once the
/// vendor is fast again, one enrollment.
#[tokio::test]
async fn vendor_answering_just_over_the_timeout_says_so_and_locks_nothing() {
    let (ns, sim, operator) = slow_vendor(4000, "slow-over").await;
    let during = wait_for(
        &ns,
        "bot",
        Duration::from_secs(45),
        &operator,
        "Ready=False, VendorUnreachable",
        |c| condition(c, "Ready") == Some(("False".into(), "VendorUnreachable".into())),
    )
    .await;
    let message = ready_message(&during);
    println!("while every call times out: {message}");
    assert!(
        message.contains("timed out"),
        "the message says why: {message}"
    );
    assert!(
        message.contains("--vendor-timeout-seconds"),
        "and what a person can change: {message}"
    );
    // A few more passes with the fault on: retries must not add up to a
    // lock-out or a second enrollment.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let account = vendor_account(&sim, USERNAME).await;
    // (Counts only: the account's state holds the seed.)
    assert_eq!(account.refused_codes, 0, "no code refused while slow");
    assert_eq!(account.lockouts, 0, "no lock-out while slow");
    assert!(account.enrollments_confirmed <= 1);

    sim.admin()
        .expect("admin")
        .clear_faults()
        .await
        .expect("fast again");
    let ready = wait_for_ready(&ns, "bot", &operator).await;
    assert_one_clean_enrollment(&ns, &sim, "bot", USERNAME, &ready).await;
}
