//! The soak: the sidecar process against the simulated AUDD (real HTTPS,
//! mTLS) with 5 s access and 15 s refresh tokens, a client polling `/token`
//! continuously and calling through the proxy, and faults injected one at a
//! time from a seeded plan (vendor 5xx, latency, an outage shorter than a
//! token's life, refresh rejected, a step of clock skew, a lock-out).
//!
//! Asserted: no expired token is ever served (each token's JWT `exp`
//! against the moment it was received); a 503 comes only inside a blocking
//! fault or its recovery (`plan::justifying_fault`) and never while a token
//! already served was still servable; proxied calls fail only there too.
//!
//! `OTPILOT_SOAK_SECONDS` (default 120) sets the length, `OTPILOT_SOAK_SEED`
//! replays a plan (the seed is printed). `scripts/soak.sh [minutes]` runs a
//! long one.

mod common;
#[path = "soak/plan.rs"]
mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use otpilot_sim::{Faults, Vendor};
use plan::{Applied, FaultKind};

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after epoch")
        .as_secs_f64()
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {text:?}")),
    )
}

#[derive(serde::Deserialize)]
struct Claims {
    iat: u64,
    exp: u64,
}

/// What one `/token` request got.
enum Answer {
    Token { token: String, iat: u64, exp: u64 },
    Unavailable,
    Other(u16, String),
}

struct Observed {
    sent: Duration,
    received: Duration,
    received_unix: f64,
    answer: Answer,
}

async fn poll_tokens(
    sidecar: Arc<Sidecar>,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Observed> {
    let mut seen = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let sent = start.elapsed();
        let result = sidecar.token().await;
        let received = start.elapsed();
        let received_unix = unix_now();
        let answer = match result {
            Ok(t) => {
                // The claims as the vendor signed them, read by a JWT library
                // (the signature is the vendor's business, not the client's).
                let claims: Claims = jsonwebtoken::dangerous::insecure_decode_claims(&t.token)
                    .expect("the served token is a JWT with iat and exp");
                Answer::Token {
                    token: t.token,
                    iat: claims.iat,
                    exp: claims.exp,
                }
            }
            Err((503, _)) => Answer::Unavailable,
            Err((status, body)) => Answer::Other(status, body),
        };
        seen.push(Observed {
            sent,
            received,
            received_unix,
            answer,
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

async fn poll_proxy(
    sidecar: Arc<Sidecar>,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<(Duration, Duration, u16)> {
    let mut seen = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let sent = start.elapsed();
        let status = match sidecar.http.get(sidecar.proxy_url("/users")).send().await {
            Ok(res) => res.status().as_u16(),
            Err(_) => 0,
        };
        seen.push((sent, start.elapsed(), status));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    seen
}

/// The simulator's faults for `kind` (a lock-out also needs wrong codes).
fn faults_for(kind: FaultKind) -> Faults {
    let none = Faults::default();
    match kind {
        FaultKind::VendorErrors { status, fraction } => Faults {
            error_status: Some(status),
            error_fraction: Some(fraction),
            ..none
        },
        FaultKind::Latency { ms } => Faults {
            latency_ms: ms,
            ..none
        },
        FaultKind::Outage => Faults { down: true, ..none },
        // A lock-out only bites a login: refused refresh tokens force one.
        FaultKind::RefreshRejected | FaultKind::LockOut => Faults {
            reject_refresh: true,
            ..none
        },
        FaultKind::ClockSkew { steps } => Faults {
            clock_skew_steps: steps,
            ..none
        },
    }
}

/// Puts `kind` in force for `length` (a lock-out: until the vendor lifts
/// it); returns when it is lifted.
async fn inject(v: &Vendored, kind: FaultKind, length: Duration) {
    let admin = v.sim.admin().expect("admin client");
    admin
        .set_faults(&faults_for(kind))
        .await
        .expect("set faults");
    if kind == FaultKind::LockOut {
        lock_the_account(v).await;
        let until_ms = v.account().await.locked_until_unix_ms.unwrap_or(0);
        let now_ms = (unix_now() * 1000.0) as u64;
        tokio::time::sleep(Duration::from_millis(until_ms.saturating_sub(now_ms))).await;
    } else {
        tokio::time::sleep(length).await;
    }
    admin.clear_faults().await.expect("clear faults");
}

/// Wrong codes from another client until the vendor locks the account (the
/// sidecar's own successful logins in between reset the count).
async fn lock_the_account(v: &Vendored) {
    let wrong =
        otpilot_profile::TotpKey::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", v.totp.params())
            .expect("key");
    for _ in 0..(plan::LOCKOUT_THRESHOLD * 4) {
        if v.account().await.locked_until_unix_ms.is_some() {
            return;
        }
        let engine = engine_for(&v.sim, "audd", v.identity.as_ref());
        let _ = engine.login(&inputs(Some(wrong.clone()))).await;
    }
    assert!(
        v.account().await.locked_until_unix_ms.is_some(),
        "the account did not lock after {} wrong codes",
        plan::LOCKOUT_THRESHOLD * 4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_serves_no_expired_token_and_503s_only_when_no_token_could_exist() {
    let total = Duration::from_secs(env_u64("OTPILOT_SOAK_SECONDS").unwrap_or(120));
    let seed = env_u64("OTPILOT_SOAK_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after epoch")
            .subsec_nanos()
            .into()
    });
    eprintln!(
        "soak: seed {seed} (OTPILOT_SOAK_SEED={seed} replays the plan), {} s",
        total.as_secs()
    );
    let planned = plan::plan(seed, total);

    let v = vendor(
        "audd",
        Vendor::Audd,
        VendorOptions {
            access: plan::ACCESS_LIFE,
            refresh: plan::REFRESH_LIFE,
            lockout: Some((plan::LOCKOUT_THRESHOLD, plan::LOCKOUT_WINDOW)),
            ..VendorOptions::default()
        },
    )
    .await;
    let mounts = Mounts::new(&v.bundle());
    let sidecar = Arc::new(Sidecar::spawn(&mounts.args()));
    sidecar.wait_ready(Duration::from_secs(20)).await;

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let tokens = tokio::spawn(poll_tokens(sidecar.clone(), start, stop.clone()));
    let proxied = tokio::spawn(poll_proxy(sidecar.clone(), start, stop.clone()));

    let mut applied = Vec::new();
    for p in &planned {
        tokio::time::sleep(p.quiet_before).await;
        let from = start.elapsed();
        inject(&v, p.kind, p.length).await;
        applied.push(Applied {
            kind: p.kind,
            from,
            until: start.elapsed(),
        });
        eprintln!(
            "soak: {:?} from {:.1} s to {:.1} s",
            p.kind,
            from.as_secs_f64(),
            start.elapsed().as_secs_f64()
        );
    }
    tokio::time::sleep(total.saturating_sub(start.elapsed())).await;
    stop.store(true, Ordering::SeqCst);
    let tokens = tokens.await.expect("token poller");
    let proxied = proxied.await.expect("proxy poller");

    // Verdicts.
    let mut failures = Vec::new();
    let mut distinct = BTreeSet::new();
    let mut unavailable = 0;
    let mut expired = 0;
    let mut servable_until = 0.0_f64;
    for o in &tokens {
        match &o.answer {
            Answer::Token { token, iat, exp } => {
                if (*exp as f64) <= o.received_unix {
                    expired += 1;
                    failures.push(format!(
                        "an expired token at {:.1} s (exp {exp}, received {:.3})",
                        o.received.as_secs_f64(),
                        o.received_unix
                    ));
                }
                servable_until = servable_until.max(plan::servable_until_unix(*iat, *exp));
                distinct.insert(token.clone());
            }
            Answer::Unavailable => {
                unavailable += 1;
                let now_unix = o.received_unix;
                // Half a second for the gap between the sidecar's clock
                // reading and ours, and iat's whole seconds.
                if now_unix < servable_until - 0.5 {
                    failures.push(format!(
                        "503 at {:.1} s while a token served earlier was servable for {:.1} s more",
                        o.received.as_secs_f64(),
                        servable_until - now_unix
                    ));
                }
                if plan::justifying_fault(o.sent, o.received, &applied).is_none() {
                    failures.push(format!(
                        "503 at {:.1} s with no blocking fault around it",
                        o.received.as_secs_f64()
                    ));
                }
            }
            Answer::Other(status, body) => failures.push(format!(
                "/token answered {status} at {:.1} s: {body}",
                o.received.as_secs_f64()
            )),
        }
    }
    let mut proxied_failed = 0;
    for (sent, received, status) in &proxied {
        if *status != 200 {
            proxied_failed += 1;
            if plan::justifying_fault(*sent, *received, &applied).is_none() {
                failures.push(format!(
                    "a proxied call answered {status} at {:.1} s with no blocking fault around it",
                    received.as_secs_f64()
                ));
            }
        }
    }
    let mut by_kind = BTreeMap::<&str, usize>::new();
    for a in &applied {
        *by_kind.entry(a.kind.name()).or_default() += 1;
    }
    let logins = sidecar.counter("otpilot_sidecar_logins_total", "").await;
    let refreshes = sidecar.counter("otpilot_sidecar_refreshes_total", "").await;
    let failed_flows = sidecar.counter("otpilot_sidecar_failures_total", "").await;
    eprintln!(
        "soak: seed {seed}, {} s: {} /token requests, {} distinct tokens, {unavailable} 503s, \
         {expired} expired tokens served; {} proxied calls ({proxied_failed} not 200); \
         faults {by_kind:?}; {logins} logins, {refreshes} refreshes, {failed_flows} failed flows",
        total.as_secs(),
        tokens.len(),
        distinct.len(),
        proxied.len(),
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {} problems:\n{}\nsidecar output:\n{}",
        failures.len(),
        failures.join("\n"),
        sidecar.output()
    );
    assert!(distinct.len() > 1, "tokens were renewed during the soak");

    let mut secrets = v.secrets.clone();
    secrets.extend(distinct);
    sidecar.assert_no_secret_leaked(&secrets).await;
    drop(sidecar);
    v.sim.shutdown().await;
}
