//! Vendors that fight back and vendors that go away, against the sidecar
//! process: a rejected refresh token, codes already used, a lock-out with
//! Retry-After, and an outage.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use otpilot_sim::{Faults, Vendor};

fn now_step() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after epoch")
        .as_secs()
        / PERIOD_SECS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_rejected_falls_back_to_totp_login_without_a_gap() {
    let v = vendor(
        "audd",
        Vendor::Audd,
        VendorOptions {
            access: Duration::from_secs(5),
            refresh: Duration::from_secs(60),
            ..VendorOptions::default()
        },
    )
    .await;
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    let first = sidecar.wait_ready(Duration::from_secs(20)).await;
    let admin = v.sim.admin().expect("admin");
    admin
        .set_faults(&Faults {
            reject_refresh: true,
            ..Faults::default()
        })
        .await
        .expect("fault");

    let mut secrets = v.secrets.clone();
    secrets.push(first.token.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match sidecar.token().await {
            Ok(t) => {
                assert!(t.expires_at > SystemTime::now(), "expired token served");
                secrets.push(t.token);
            }
            Err((status, body)) => panic!("gap while falling back ({status}): {body}"),
        }
        let rejected = sidecar
            .counter(
                "otpilot_sidecar_failures_total",
                "reason=\"refresh_rejected\"",
            )
            .await;
        let logins = sidecar.counter("otpilot_sidecar_logins_total", "").await;
        if rejected >= 1.0 && logins >= 2.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no TOTP login after the refresh token was rejected ({rejected} rejections, {logins} logins):\n{}",
            sidecar.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sidecar.assert_no_secret_leaked(&secrets).await;
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_code_is_sent_from_the_runtime_secrets_last_code_step_or_earlier() {
    let v = vendor("conduit", Vendor::Conduit, VendorOptions::default()).await;
    // The operator says it used the step after this one (e.g. a recovery
    // that just happened): the sidecar must wait until the one after.
    let used = now_step() + 1;
    let mut bundle = v.bundle();
    bundle.last_code_step = Some(used);
    let mounts = Mounts::new(&bundle);
    let sidecar = Sidecar::spawn(&mounts.args());
    sidecar.wait_ready(Duration::from_secs(20)).await;
    let accepted = v
        .account()
        .await
        .last_accepted_step
        .expect("a code was accepted");
    assert!(
        accepted > used,
        "the sidecar sent a code of step {accepted}, not after the operator's {used}"
    );
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_already_used_by_another_client_makes_the_sidecar_wait_for_the_next_step() {
    let v = vendor("goaxr", Vendor::Goaxr, VendorOptions::default()).await;
    // Another client logs in and takes the current step...
    let other = engine_for(&v.sim, "goaxr", None);
    let session = other
        .login(&inputs(Some(v.totp.clone())))
        .await
        .expect("another client's login");
    let taken = session.last_code_step.expect("step");
    // ...and the sidecar, which does not know, starts within that step.
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    sidecar.wait_ready(Duration::from_secs(20)).await;
    let accepted = v.account().await.last_accepted_step.expect("accepted");
    assert!(accepted > taken, "step {accepted} after {taken}");
    assert_eq!(
        sidecar.counter("otpilot_sidecar_failures_total", "").await,
        0.0,
        "a refused code is waited out inside the login, not a failed login"
    );
    sidecar.assert_no_secret_leaked(&v.secrets).await;
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_out_account_is_retried_only_after_retry_after() {
    let v = vendor(
        "audd",
        Vendor::Audd,
        VendorOptions {
            lockout: Some((2, Duration::from_secs(4))),
            ..VendorOptions::default()
        },
    )
    .await;
    // Two wrong codes lock the account.
    let wrong =
        otpilot_profile::TotpKey::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", v.totp.params())
            .expect("key");
    for _ in 0..2 {
        let engine = engine_for(&v.sim, "audd", v.identity.as_ref());
        let _ = engine.login(&inputs(Some(wrong.clone()))).await;
    }
    let locked_until = v
        .account()
        .await
        .locked_until_unix_ms
        .expect("the account is locked out");

    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    sidecar.wait_ready(Duration::from_secs(30)).await;
    let ready_at = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("epoch")
            .as_millis(),
    )
    .expect("ms");
    assert!(
        ready_at >= locked_until,
        "logged in while the vendor said locked"
    );
    let state = v.account().await;
    assert!(state.locked_until_unix_ms.is_none_or(|t| t <= ready_at));
    sidecar.assert_no_secret_leaked(&v.secrets).await;
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_down_serves_the_last_token_then_not_ready_then_recovers() {
    let v = vendor(
        "audd",
        Vendor::Audd,
        VendorOptions {
            access: Duration::from_secs(5),
            refresh: Duration::from_secs(60),
            ..VendorOptions::default()
        },
    )
    .await;
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Sidecar::spawn(&mounts.args());
    let before = sidecar.wait_ready(Duration::from_secs(20)).await;
    let admin = v.sim.admin().expect("admin");
    admin
        .set_faults(&Faults {
            down: true,
            ..Faults::default()
        })
        .await
        .expect("fault");

    // Still served while valid, never once expired.
    let mut served_during_outage = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match sidecar.token().await {
            Ok(t) => {
                assert!(t.expires_at > SystemTime::now(), "expired token served");
                served_during_outage += 1;
            }
            Err((503, _)) => break,
            Err((status, body)) => panic!("unexpected {status}: {body}"),
        }
        assert!(
            Instant::now() < deadline,
            "still serving after 15 s of outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served_during_outage > 0,
        "the last token was served during the outage"
    );
    // Not ready, and saying why once an attempt has failed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reason = sidecar.wait_not_ready(Duration::from_secs(1)).await;
        if reason.contains("vendor_unreachable") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readiness never named the outage: {reason}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        sidecar.status("/healthz").await.0,
        200,
        "alive while the vendor is down"
    );

    admin.clear_faults().await.expect("clear");
    let after = sidecar.wait_ready(Duration::from_secs(40)).await;
    assert_ne!(after.token, before.token);
    sidecar
        .assert_no_secret_leaked(&[v.secrets.clone(), vec![before.token, after.token]].concat())
        .await;
    v.sim.shutdown().await;
}
