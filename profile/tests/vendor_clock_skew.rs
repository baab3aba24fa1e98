//! Every built-in profile against a simulated vendor whose clock is two
//! TOTP steps ahead of ours, then two behind (the simulator's clock-skew
//! fault, which also moves its `Date` header). The vendors accept one step
//! either side (Conduit: only the current one), so codes computed on our
//! clock are refused; the engine learns the vendor's clock from `Date` and
//! the logins keep working, and the offset it reports is the skew.
//!
//! AUDD's login is one call that already carries the code, so an engine
//! that has never heard from the vendor computes that first code on its own
//! clock and is refused (HTTP 421); the refusal's `Date` puts the vendor a
//! step away, and the engine sends one more code on the vendor's time. Its
//! test counts the refusals: exactly one per fresh engine, never more.

use std::time::Duration;

use otpilot_profile::{ClientIdentity, Engine, HttpSettings, Inputs, TotpParams, builtin};
use otpilot_sim::testing::ClientCa;
use otpilot_sim::{AccountSpec, Faults, SimConfig, SimHandle, Vendor};
use secrecy::SecretString;

// Long enough that `Date`'s one-second resolution is a small part of a step.
const PERIOD_SECS: u64 = 10;
const SKEW_STEPS: i64 = 2;
const USERNAME: &str = "bot@example.com";
const PASSWORD: &str = "correct horse battery";
const API_KEY: &str = "ak-5pv515CM2uL4VAEXu5zEVDf";

struct Vendored {
    sim: SimHandle,
    settings: HttpSettings,
    inputs: Inputs,
    vendor: Vendor,
}

impl Vendored {
    // A fresh engine: a fresh estimate of the vendor's clock.
    fn engine(&self) -> Engine {
        let profile = builtin::get(self.vendor.as_str()).expect("built-in");
        Engine::new(profile, &self.sim.base_url(), self.settings.clone()).expect("engine")
    }

    async fn skew(&self, steps: i64) {
        self.sim
            .admin()
            .expect("admin")
            .set_faults(&Faults {
                clock_skew_steps: steps,
                ..Faults::default()
            })
            .await
            .expect("set skew");
    }
}

async fn vendored(vendor: Vendor) -> Vendored {
    vendored_with(SimConfig::new(vendor)).await
}

async fn vendored_with(config: SimConfig) -> Vendored {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let vendor = config.vendor;
    let mut config = config
        .with_period(Duration::from_secs(PERIOD_SECS))
        .with_account(AccountSpec::new(USERNAME, PASSWORD, API_KEY));
    let mut identity = None;
    if vendor.requires_mtls() {
        let ca = ClientCa::generate("skew client CA").expect("client CA");
        let id = ca.issue("skew client").expect("client certificate");
        config = config.with_client_ca(ca.cert_pem.clone());
        identity = Some(ClientIdentity {
            cert_chain_pem: id.cert_pem,
            key_pem: SecretString::from(id.key_pem),
        });
    }
    let sim = otpilot_sim::spawn(config).await.expect("simulator starts");
    let settings = HttpSettings {
        server_ca_pem: Some(sim.server_ca_pem().to_owned()),
        client_identity: identity,
        request_timeout: Duration::from_secs(10),
        ..HttpSettings::default()
    };
    let inputs = Inputs {
        username: Some(USERNAME.into()),
        password: Some(SecretString::from(PASSWORD)),
        api_key: Some(SecretString::from(API_KEY)),
        totp_params: Some(TotpParams {
            period: PERIOD_SECS,
            ..TotpParams::default()
        }),
        ..Inputs::default()
    };
    Vendored {
        sim,
        settings,
        inputs,
        vendor,
    }
}

async fn logins_follow_the_vendor_clock(vendor: Vendor) {
    let v = vendored(vendor).await;
    let enrollment = v.engine().enroll(&v.inputs).await.expect("enroll");
    let inputs = v.inputs.with_totp(enrollment.totp.clone());
    let mut last_step = enrollment.last_code_step;
    for steps in [SKEW_STEPS, -SKEW_STEPS] {
        v.skew(steps).await;
        let engine = v.engine();
        if let Some(step) = last_step {
            engine
                .timer()
                .mark_used(&inputs.totp.clone().expect("key"), step);
        }
        let session = engine.login(&inputs).await.unwrap_or_else(|e| {
            panic!(
                "{vendor}: skew {steps} steps: {e} (offset {:?} ms)",
                engine.clock_offset_ms()
            )
        });
        last_step = session.last_code_step;
        let want_ms = steps * i64::try_from(PERIOD_SECS).expect("small") * 1000;
        let offset = engine.clock_offset_ms().expect("offset estimated");
        assert!(
            (offset - want_ms).abs() <= 1_500,
            "{vendor}: skew {steps} steps: estimated {offset} ms, want {want_ms} ms"
        );
    }
    v.sim.shutdown().await;
}

#[tokio::test]
async fn goaxr_logins_follow_a_vendor_clock_two_steps_off() {
    logins_follow_the_vendor_clock(Vendor::Goaxr).await;
}

#[tokio::test]
async fn conduit_logins_follow_a_vendor_clock_two_steps_off() {
    logins_follow_the_vendor_clock(Vendor::Conduit).await;
}

#[tokio::test]
async fn audd_logins_follow_a_vendor_clock_two_steps_off_after_one_refusal() {
    // Two refusals in a row lock the account: a login that refused more
    // than its first code would fail here.
    let v =
        vendored_with(SimConfig::new(Vendor::Audd).with_lockout(2, Duration::from_secs(600))).await;
    let enrollment = v.engine().enroll(&v.inputs).await.expect("enroll");
    let inputs = v.inputs.with_totp(enrollment.totp.clone());
    let mut last_step = enrollment.last_code_step;
    for steps in [SKEW_STEPS, -SKEW_STEPS] {
        v.skew(steps).await;
        let engine = v.engine();
        if let Some(step) = last_step {
            engine
                .timer()
                .mark_used(&inputs.totp.clone().expect("key"), step);
        }
        let session = engine.login(&inputs).await.unwrap_or_else(|e| {
            panic!(
                "audd: skew {steps} steps: {e} (offset {:?} ms)",
                engine.clock_offset_ms()
            )
        });
        let want_ms = steps * i64::try_from(PERIOD_SECS).expect("small") * 1000;
        let offset = engine.clock_offset_ms().expect("offset estimated");
        assert!(
            (offset - want_ms).abs() <= 1_500,
            "audd: skew {steps} steps: estimated {offset} ms, want {want_ms} ms"
        );
        // The same engine, now on the vendor's time, logs in again.
        let again = engine.login(&inputs).await.expect("second login");
        assert!(again.last_code_step > session.last_code_step);
        last_step = again.last_code_step;
    }
    v.sim.shutdown().await;
}

#[tokio::test]
async fn acreto_logins_follow_a_vendor_clock_two_steps_off() {
    logins_follow_the_vendor_clock(Vendor::Acreto).await;
}

#[tokio::test]
async fn cryptr_logins_follow_a_vendor_clock_two_steps_off() {
    logins_follow_the_vendor_clock(Vendor::Cryptr).await;
}
