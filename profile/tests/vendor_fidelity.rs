//! The built-in profiles against the vendors as they really behave (issue
//! 7): FusionAuth's refresh without an expiry instant, Conduit v0.15's
//! bogus `exp`, each platform's lock-out answer, and response rules that
//! read a wrong code as rejected whatever the error body looks like.
//! Long refresh cycles use one-to-two-second token lifetimes; nothing here
//! asserts how long anything took.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use otpilot_profile::{
    ClientIdentity, Engine, HttpSettings, Inputs, Profile, RetryPolicy, Session, TotpParams,
    builtin,
};
use otpilot_sim::testing::{ClientCa, https_client};
use otpilot_sim::{AccountSpec, SimConfig, SimHandle, Vendor};
use secrecy::{ExposeSecret, SecretString};

const PERIOD_SECS: u64 = 2;
const USERNAME: &str = "bot@example.com";
const PASSWORD: &str = "correct horse battery";
const API_KEY: &str = "ak-5pv515CM2uL4VAEXu5zEVDf";

struct Fixture {
    sim: SimHandle,
    engine: Engine,
    inputs: Inputs,
    // A plain client for the vendor's protected calls (mTLS for AUDD).
    http: reqwest::Client,
}

async fn fixture(config: SimConfig, retry: RetryPolicy) -> Fixture {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let vendor = config.vendor;
    let mut config = config
        .with_period(Duration::from_secs(PERIOD_SECS))
        .with_account(AccountSpec::new(USERNAME, PASSWORD, API_KEY));
    let mut sim_identity = None;
    if vendor.requires_mtls() {
        let ca = ClientCa::generate("fidelity client CA").expect("client CA");
        config = config.with_client_ca(ca.cert_pem.clone());
        sim_identity = Some(ca.issue("fidelity client").expect("client certificate"));
    }
    let sim = otpilot_sim::spawn(config).await.expect("simulator starts");
    let settings = HttpSettings {
        server_ca_pem: Some(sim.server_ca_pem().to_owned()),
        client_identity: sim_identity.as_ref().map(|id| ClientIdentity {
            cert_chain_pem: id.cert_pem.clone(),
            key_pem: SecretString::from(id.key_pem.clone()),
        }),
        request_timeout: Duration::from_secs(10),
        retry,
        ..HttpSettings::default()
    };
    let profile = builtin::get(vendor.as_str()).expect("built-in profile");
    let engine = Engine::new(profile, &sim.base_url(), settings).expect("engine");
    let http = https_client(sim.server_ca_pem(), sim_identity.as_ref()).expect("client");
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
    Fixture {
        sim,
        engine,
        inputs,
        http,
    }
}

async fn enrolled_inputs(f: &Fixture) -> Inputs {
    let enrollment = f.engine.enroll(&f.inputs).await.expect("enroll");
    f.inputs.with_totp(enrollment.totp)
}

fn jwt_exp(token: &str) -> SystemTime {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("claims");
    SystemTime::UNIX_EPOCH + Duration::from_secs(claims["exp"].as_u64().expect("exp"))
}

// Status of a protected call with this access token.
async fn protected_status(f: &Fixture, path: &str, token: &SecretString) -> u16 {
    f.http
        .get(format!("{}{path}", f.sim.base_url()))
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .expect("protected call")
        .status()
        .as_u16()
}

// Sleeps until `session` has expired by its own account (at most a few
// seconds here), so the next refresh happens on a dead access token.
async fn outlive(session: &Session) {
    if let Ok(left) = session.expires_at.duration_since(SystemTime::now()) {
        assert!(left <= Duration::from_secs(5), "short lifetimes: {left:?}");
        tokio::time::sleep(left + Duration::from_millis(1100)).await;
    }
}

const CYCLES: usize = 6;

#[tokio::test]
async fn audd_refresh_keeps_working_for_many_cycles_with_expiry_from_the_jwt() {
    // FusionAuth's refresh answers {token, refreshToken, refreshTokenId}:
    // no expiry instant. The profile must read the JWT's exp instead.
    let config = SimConfig::new(Vendor::Audd)
        .with_token_lifetimes(Duration::from_secs(1), Duration::from_secs(4));
    let f = fixture(config, RetryPolicy::default()).await;
    let inputs = enrolled_inputs(&f).await;
    let mut session = f.engine.login(&inputs).await.expect("login");
    assert_eq!(
        session.expires_at,
        jwt_exp(session.access_token.expose_secret())
    );
    for cycle in 0..CYCLES {
        outlive(&session).await;
        assert_eq!(
            protected_status(&f, "/users", &session.access_token).await,
            401,
            "cycle {cycle}: the old access token is dead"
        );
        session = f
            .engine
            .refresh(&inputs, &session)
            .await
            .unwrap_or_else(|e| panic!("cycle {cycle}: refresh: {e}"));
        assert_eq!(
            session.expires_at,
            jwt_exp(session.access_token.expose_secret()),
            "cycle {cycle}: expiry read from the JWT"
        );
        assert_eq!(
            protected_status(&f, "/users", &session.access_token).await,
            200,
            "cycle {cycle}: the refreshed token works"
        );
    }
    f.sim.shutdown().await;
}

#[tokio::test]
async fn conduit_sessions_follow_the_configured_lifetime_not_the_bogus_exp() {
    // v0.15: exp − iat is the lifetime in ms read as seconds (2,000 s here),
    // while the server ends the session after 2 s.
    let config = SimConfig::new(Vendor::Conduit)
        .with_token_lifetimes(Duration::from_secs(2), Duration::from_secs(60));
    let mut f = fixture(config, RetryPolicy::default()).await;
    f.inputs
        .variables
        .insert("access_token_lifetime_seconds".into(), "2".into());
    let inputs = enrolled_inputs(&f).await;
    let mut session = f.engine.login(&inputs).await.expect("login");
    for cycle in 0..CYCLES {
        let bogus = jwt_exp(session.access_token.expose_secret());
        assert!(
            session.expires_at + Duration::from_secs(1000) < bogus,
            "cycle {cycle}: the JWT's exp was not trusted"
        );
        assert!(
            session.expires_at <= SystemTime::now() + Duration::from_secs(2),
            "cycle {cycle}: the configured 2 s lifetime"
        );
        outlive(&session).await;
        assert_eq!(
            protected_status(&f, "/authentication/user", &session.access_token).await,
            401,
            "cycle {cycle}: the server ended the session despite exp"
        );
        session = f
            .engine
            .refresh(&inputs, &session)
            .await
            .unwrap_or_else(|e| panic!("cycle {cycle}: renew: {e}"));
        assert_eq!(
            protected_status(&f, "/authentication/user", &session.access_token).await,
            200,
            "cycle {cycle}: the renewed token works"
        );
    }
    f.sim.shutdown().await;
}

#[tokio::test]
async fn conduit_with_client_validation_gets_its_client_headers_on_every_call() {
    const CLIENT_SECRET: &str = "cs-9Xq2-client-secret";
    let config = SimConfig::new(Vendor::Conduit).with_client_credentials("app-7", CLIENT_SECRET);
    let mut f = fixture(config, RetryPolicy::default()).await;
    // Without them the vendor refuses the first call.
    let err = f
        .engine
        .enroll(&f.inputs)
        .await
        .expect_err("no client headers");
    assert_eq!(err.category(), "VendorError", "{err}");
    f.inputs
        .variables
        .insert("client_id".into(), "app-7".into());
    f.inputs
        .secret_values
        .insert("client_secret".into(), SecretString::from(CLIENT_SECRET));
    // Every flow, every step: enroll, login, renew, recover, disable.
    let enrollment = f.engine.enroll(&f.inputs).await.expect("enroll");
    let inputs = f.inputs.with_totp(enrollment.totp.clone());
    let session = f.engine.login(&inputs).await.expect("login");
    let renewed = f.engine.refresh(&inputs, &session).await.expect("renew");
    assert!(!renewed.access_token.expose_secret().is_empty());
    f.engine
        .recovery_login(&inputs, &enrollment.recovery_codes[0])
        .await
        .expect("recover");
    f.engine.disable(&inputs).await.expect("disable");
    // A wrong client secret is refused, and the error does not show it.
    let mut wrong = inputs.clone();
    wrong.secret_values.insert(
        "client_secret".into(),
        SecretString::from("cs-WRONG-secret"),
    );
    let err = f
        .engine
        .login(&wrong)
        .await
        .expect_err("wrong client secret");
    for text in [err.to_string(), format!("{err:?}"), format!("{wrong:?}")] {
        assert!(!text.contains("cs-WRONG-secret"), "{text}");
        assert!(!text.contains(CLIENT_SECRET), "{text}");
    }
    f.sim.shutdown().await;
}

// A wrong secret, so every code is wrong (the same length and parameters).
fn wrong(inputs: &Inputs) -> Inputs {
    let params = inputs.totp.as_ref().expect("enrolled").params();
    let key = otpilot_profile::TotpKey::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", params)
        .expect("key");
    inputs.with_totp(key)
}

#[tokio::test]
async fn audd_lock_out_answered_409_or_423_is_a_lock_out_not_a_failure() {
    for status in [409_u16, 423] {
        let config = SimConfig::new(Vendor::Audd)
            .with_lockout(2, Duration::from_secs(60))
            .with_lockout_status(status);
        let f = fixture(config, RetryPolicy::default()).await;
        let inputs = enrolled_inputs(&f).await;
        for _ in 0..2 {
            let err = f.engine.login(&wrong(&inputs)).await.expect_err("wrong");
            assert_eq!(err.category(), "CodeRejected", "{err}");
        }
        let err = f.engine.login(&inputs).await.expect_err("locked out");
        assert_eq!(err.category(), "LockedOut", "HTTP {status}: {err}");
        f.sim.shutdown().await;
    }
}

#[tokio::test]
async fn conduit_rate_limit_block_is_a_lock_out_not_a_failure() {
    let config = SimConfig::new(Vendor::Conduit).with_lockout(1, Duration::from_secs(10));
    // Wait at most 2 s for a Retry-After: the 10 s block is not waited out.
    let retry = RetryPolicy {
        max_retry_after: Duration::from_secs(2),
        ..RetryPolicy::default()
    };
    let f = fixture(config, retry).await;
    let inputs = enrolled_inputs(&f).await;
    let err = f.engine.login(&wrong(&inputs)).await.expect_err("wrong");
    assert_eq!(err.category(), "CodeRejected", "{err}");
    let err = f.engine.login(&inputs).await.expect_err("blocked");
    assert_eq!(err.category(), "LockedOut", "{err}");
    f.sim.shutdown().await;
}

#[tokio::test]
async fn recovery_codes_are_sent_exactly_as_the_vendor_issued_them() {
    // The simulator no longer folds case or dashes: a profile that mangled
    // its codes would fail here.
    for vendor in [Vendor::Audd, Vendor::Goaxr, Vendor::Conduit, Vendor::Cryptr] {
        let f = fixture(SimConfig::new(vendor), RetryPolicy::default()).await;
        let enrollment = f.engine.enroll(&f.inputs).await.expect("enroll");
        let inputs = f.inputs.with_totp(enrollment.totp.clone());
        let code = enrollment.recovery_codes[0].clone();
        let mangled = SecretString::from(code.expose_secret().to_lowercase().replace('-', ""));
        if mangled.expose_secret() != code.expose_secret() {
            let err = f
                .engine
                .recovery_login(&inputs, &mangled)
                .await
                .expect_err("mangled code");
            assert_eq!(err.category(), "CodeRejected", "{vendor}: {err}");
        }
        f.engine
            .recovery_login(&inputs, &code)
            .await
            .unwrap_or_else(|e| panic!("{vendor}: recovery login: {e}"));
        f.sim.shutdown().await;
    }
}

// --- response rules, read from the profiles themselves ---

// First rule whose status and `when` match, as the engine reads them.
fn first_outcome(
    rules: &[otpilot_api::profile::ResponseRule],
    status: u16,
    body: &serde_json::Value,
) -> Option<String> {
    rules
        .iter()
        .find(|rule| {
            (rule.status.is_empty() || rule.status.contains(&status))
                && rule
                    .when
                    .as_ref()
                    .is_none_or(|m| body.pointer(&m.pointer) == Some(&m.equals))
        })
        .map(|rule| {
            serde_json::to_value(rule.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
}

#[test]
fn a_wrong_code_answer_without_the_assumed_fields_is_rejected_not_retried() {
    // (profile, flow, step, the vendor's wrong-code status)
    let cases: &[(&str, &str, &str, u16)] = &[
        ("audd", "login", "mfa-login", 421),
        ("audd", "recoveryLogin", "mfa-login-with-recovery-code", 421),
        ("goaxr", "login", "totp-login", 401),
        ("goaxr", "recoveryLogin", "recovery-code-login", 401),
        ("conduit", "login", "verify", 401),
        ("conduit", "recoveryLogin", "recover", 401),
        ("cryptr", "login", "challenge-validation", 422),
    ];
    // Bodies the documents never show: none carries the fields the
    // profiles' `when` conditions assume.
    let bodies = [
        serde_json::json!({}),
        serde_json::json!({ "name": "UNAUTHORIZED", "status": 401, "message": "Invalid code" }),
        serde_json::Value::Null,
    ];
    for (name, flow, step_name, status) in cases {
        let profile: Arc<Profile> = builtin::get(name).expect("built-in");
        let flow = match *flow {
            "login" => profile.spec().login.clone(),
            "recoveryLogin" => profile.spec().recovery_login.clone().expect("recovery"),
            other => panic!("{other}"),
        };
        let step = flow
            .steps
            .iter()
            .find(|s| s.name.as_deref() == Some(step_name))
            .unwrap_or_else(|| panic!("{name}: no step {step_name}"));
        for body in &bodies {
            assert_eq!(
                first_outcome(&step.responses, *status, body).as_deref(),
                Some("codeRejected"),
                "{name} {step_name}: HTTP {status} {body}"
            );
        }
    }
}
