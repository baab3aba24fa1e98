//! Every flow of every built-in profile against the simulator, over real
//! HTTPS (mTLS for AUDD), with short TOTP periods so that waiting for the
//! next time step is cheap. Plus a sixth vendor from YAML alone.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use otpilot_profile::{
    ClientIdentity, Engine, FlowErrorKind, HttpSettings, Inputs, Profile, TotpParams, builtin,
};
use otpilot_sim::testing::ClientCa;
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
}

fn install_crypto_provider() {
    // Several tests race to install it; the loser's error is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn fixture(vendor: Vendor, profile: Arc<Profile>) -> Fixture {
    install_crypto_provider();
    let mut config = SimConfig::new(vendor)
        .with_period(Duration::from_secs(PERIOD_SECS))
        .with_account(AccountSpec::new(USERNAME, PASSWORD, API_KEY));
    let mut identity = None;
    if vendor.requires_mtls() {
        let ca = ClientCa::generate("otpilot test client CA").expect("client CA");
        let id = ca.issue("otpilot test client").expect("client certificate");
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
    let engine = Engine::new(profile, &sim.base_url(), settings).expect("engine");
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
    }
}

fn builtin_profile(name: &str) -> Arc<Profile> {
    builtin::get(name).unwrap_or_else(|| panic!("built-in profile {name}"))
}

async fn account(f: &Fixture) -> otpilot_sim::AccountState {
    f.sim
        .admin()
        .expect("admin client")
        .account(USERNAME)
        .await
        .expect("account state")
}

/// Enrolls, and checks the vendor now holds exactly the secret we keep.
async fn enroll(f: &Fixture) -> otpilot_profile::Enrollment {
    let enrollment = f.engine.enroll(&f.inputs).await.expect("enroll");
    let state = account(f).await;
    assert!(state.enrolled, "vendor shows MFA on");
    assert_eq!(
        state.totp_secret_base32.as_deref(),
        Some(enrollment.totp.secret_base32().expose_secret()),
        "the vendor verifies with the secret we kept"
    );
    assert_eq!(state.recovery_codes_left, enrollment.recovery_codes.len());
    assert!(enrollment.last_code_step.is_some());
    enrollment
}

fn assert_live(session: &otpilot_profile::Session) {
    assert!(!session.access_token.expose_secret().is_empty());
    assert!(
        session.expires_at > SystemTime::now(),
        "token not yet expired"
    );
}

#[tokio::test]
async fn audd_enroll_login_refresh_and_recovery_login_over_mtls() {
    let f = fixture(Vendor::Audd, builtin_profile("audd")).await;
    let enrollment = enroll(&f).await;
    assert_eq!(enrollment.recovery_codes.len(), 10);
    let inputs = f.inputs.with_totp(enrollment.totp.clone());

    // The first login follows the enrollment code: the engine waits for a
    // fresh step instead of being refused for reuse.
    let session = f.engine.login(&inputs).await.expect("login");
    assert_live(&session);
    assert!(session.refresh_token.is_some());
    assert!(session.last_code_step > enrollment.last_code_step);

    let refreshed = f.engine.refresh(&inputs, &session).await.expect("refresh");
    assert_live(&refreshed);
    assert_ne!(
        refreshed
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        session
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        "refresh tokens rotate"
    );
    // The old refresh token is spent.
    let err = f
        .engine
        .refresh(&inputs, &session)
        .await
        .expect_err("reuse");
    assert!(
        matches!(err.kind, FlowErrorKind::LoginRequired { status: 401, .. }),
        "{err}"
    );

    let code = enrollment.recovery_codes[0].clone();
    let recovered = f
        .engine
        .recovery_login(&inputs, &code)
        .await
        .expect("recovery login");
    assert_live(&recovered);
    assert_eq!(account(&f).await.recovery_codes_left, 9);
    // A recovery code works once.
    let err = f
        .engine
        .recovery_login(&inputs, &code)
        .await
        .expect_err("spent");
    assert!(
        matches!(err.kind, FlowErrorKind::CodeRejected { .. }),
        "{err}"
    );
    f.sim.shutdown().await;
}

#[tokio::test]
async fn audd_refuses_a_client_without_certificate() {
    let f = fixture(Vendor::Audd, builtin_profile("audd")).await;
    let settings = HttpSettings {
        server_ca_pem: Some(f.sim.server_ca_pem().to_owned()),
        ..HttpSettings::default()
    };
    let engine = Engine::new(builtin_profile("audd"), &f.sim.base_url(), settings).expect("engine");
    let err = engine
        .enroll(&f.inputs)
        .await
        .expect_err("no client certificate");
    assert!(
        matches!(
            err.kind,
            FlowErrorKind::Transport { .. } | FlowErrorKind::Status { status: 401, .. }
        ),
        "{err}"
    );
    f.sim.shutdown().await;
}

#[tokio::test]
async fn goaxr_enroll_two_step_login_and_recovery_login() {
    let f = fixture(Vendor::Goaxr, builtin_profile("goaxr")).await;
    let enrollment = enroll(&f).await;
    assert!(enrollment.values.contains_key("secret_id"));
    let inputs = f.inputs.with_totp(enrollment.totp.clone());
    let session = f.engine.login(&inputs).await.expect("login");
    assert_live(&session);
    assert!(
        session.refresh_token.is_none(),
        "goaxr has no refresh token"
    );
    let before = account(&f).await.recovery_codes_left;
    let recovered = f
        .engine
        .recovery_login(&inputs, &enrollment.recovery_codes[1])
        .await
        .expect("recovery login");
    assert_live(&recovered);
    assert_eq!(account(&f).await.recovery_codes_left, before - 1);
    f.sim.shutdown().await;
}

#[tokio::test]
async fn conduit_enroll_login_renew_recover_and_disable() {
    let f = fixture(Vendor::Conduit, builtin_profile("conduit")).await;
    let enrollment = enroll(&f).await;
    assert_eq!(enrollment.recovery_codes.len(), 10);
    for code in &enrollment.recovery_codes {
        let c = code.expose_secret();
        assert!(
            c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()),
            "spaces stripped"
        );
    }
    let inputs = f.inputs.with_totp(enrollment.totp.clone());
    let session = f.engine.login(&inputs).await.expect("login");
    assert_live(&session);
    let renewed = f.engine.refresh(&inputs, &session).await.expect("renew");
    assert_live(&renewed);
    let recovered = f
        .engine
        .recovery_login(&inputs, &enrollment.recovery_codes[0])
        .await
        .expect("recover");
    assert_live(&recovered);
    assert_eq!(account(&f).await.recovery_codes_left, 9);
    f.engine.disable(&inputs).await.expect("disable");
    assert!(!account(&f).await.enrolled, "2FA is off");
    f.sim.shutdown().await;
}

#[tokio::test]
async fn acreto_enroll_and_login_retrying_424_with_x_otp() {
    let f = fixture(Vendor::Acreto, builtin_profile("acreto")).await;
    let enrollment = enroll(&f).await;
    assert!(
        enrollment.recovery_codes.is_empty(),
        "Acreto has no recovery codes"
    );
    let inputs = f.inputs.with_totp(enrollment.totp.clone());
    let session = f.engine.login(&inputs).await.expect("login after 424");
    assert_live(&session);
    // Twice in a row: the second login waits for a fresh step.
    let again = f.engine.login(&inputs).await.expect("second login");
    assert!(again.last_code_step > session.last_code_step);
    f.sim.shutdown().await;
}

#[tokio::test]
async fn cryptr_enroll_login_and_recovery_login_requiring_reenrollment() {
    let f = fixture(Vendor::Cryptr, builtin_profile("cryptr")).await;
    let enrollment = enroll(&f).await;
    assert_eq!(
        enrollment.recovery_codes.len(),
        5,
        "newline-separated string split"
    );
    let inputs = f.inputs.with_totp(enrollment.totp.clone());
    let session = f.engine.login(&inputs).await.expect("login");
    assert_live(&session);
    assert!(!session.reenroll_required);
    let recovered = f
        .engine
        .recovery_login(&inputs, &enrollment.recovery_codes[0])
        .await
        .expect("recovery login");
    assert!(recovered.reenroll_required, "Cryptr demands re-enrollment");
    assert!(account(&f).await.needs_reenrollment);
    // Enrolling again gives a new secret the vendor accepts.
    let again = enroll(&f).await;
    let session = f
        .engine
        .login(&f.inputs.with_totp(again.totp.clone()))
        .await
        .expect("login after re-enrollment");
    assert_live(&session);
    f.sim.shutdown().await;
}

#[tokio::test]
async fn wrong_totp_secret_is_reported_as_rejected_code() {
    let f = fixture(Vendor::Audd, builtin_profile("audd")).await;
    let enrollment = enroll(&f).await;
    let wrong = otpilot_profile::TotpKey::from_base32(
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        enrollment.totp.params(),
    )
    .expect("key");
    let err = f
        .engine
        .login(&f.inputs.with_totp(wrong))
        .await
        .expect_err("wrong secret");
    assert!(
        matches!(err.kind, FlowErrorKind::CodeRejected { status: 421 }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("login steps[0] 'mfa-login': the vendor rejected the code"),
        "{err}"
    );
    f.sim.shutdown().await;
}

// A sixth vendor, from YAML alone: the goaxr simulator driven by a profile
// written from scratch with other names, the otpauth URL instead of the bare
// secret, a profile-wide header, and recovery codes kept as given.
const SIXTH_VENDOR: &str = r#"
displayName: Example Corp (goaxr-compatible)
headers:
  Accept: application/json
variables:
  scheme: jwt
enroll:
  steps:
    - name: sign-in
      method: POST
      path: /auth/password
      headers: {Authorization: "Basic {{ (username ~ ':' ~ password) | b64encode }}"}
      extract:
        bearer: {pointer: /token}
        me: {pointer: /uid}
    - name: new-mfa-secret
      method: POST
      path: /users/{{ me }}/secrets
      headers: {Authorization: "{{ scheme }} {{ bearer }}"}
      body: {type: mfa}
      extract:
        sid: {pointer: /uid}
        totp_secret: {pointer: /secret/otpauth_url, as: otpauthUri}
    - name: confirm
      method: PUT
      path: /users/{{ me }}/secrets/{{ sid }}/enroll
      headers: {Authorization: "{{ scheme }} {{ bearer }}"}
      body: {token: "{{ totp }}"}
      extract:
        recovery_codes: {pointer: /codes, as: recoveryCodes}
login:
  steps:
    - method: POST
      path: /auth/password
      headers: {Authorization: "Basic {{ (username ~ ':' ~ password) | b64encode }}"}
      extract:
        challenge: {pointer: /token}
    - method: POST
      path: /auth/totp
      headers: {Authorization: "{{ scheme }} {{ challenge }}"}
      body: {token: "{{ totp }}"}
      extract:
        access_token: {pointer: /token}
        expires_at: {pointer: /token, as: jwtExp}
recoveryLogin:
  steps:
    - method: POST
      path: /auth/password
      headers: {Authorization: "Basic {{ (username ~ ':' ~ password) | b64encode }}"}
      extract:
        challenge: {pointer: /token}
    - method: POST
      path: /auth/totp
      headers: {Authorization: "{{ scheme }} {{ challenge }}"}
      body: {token: "{{ recovery_code }}"}
      extract:
        access_token: {pointer: /token}
"#;

#[tokio::test]
async fn sixth_vendor_works_from_yaml_alone() {
    let profile = Profile::from_yaml("example-corp.yaml", SIXTH_VENDOR).expect("valid profile");
    let f = fixture(Vendor::Goaxr, Arc::new(profile)).await;
    let enrollment = enroll(&f).await;
    let inputs = f.inputs.with_totp(enrollment.totp.clone());
    assert_live(&f.engine.login(&inputs).await.expect("login"));
    assert_live(
        &f.engine
            .recovery_login(&inputs, &enrollment.recovery_codes[0])
            .await
            .expect("recovery login"),
    );
    f.sim.shutdown().await;
}

#[tokio::test]
async fn totp_overrides_win_over_the_parameters_a_vendor_advertises() {
    // Conduit advertises its period in the otpauth URI. An override that
    // disagrees must win, so here the vendor rejects the enrollment code:
    // proof the advertised period was not used.
    let mut f = fixture(Vendor::Conduit, builtin_profile("conduit")).await;
    f.inputs.totp_overrides.period = Some(u32::try_from(PERIOD_SECS * 7).expect("small"));
    let error = f.engine.enroll(&f.inputs).await.expect_err("wrong period");
    assert_eq!(error.category(), "CodeRejected", "{error}");

    // Overrides equal to what the vendor uses enroll fine, and the secret
    // we keep carries them.
    f.inputs.totp_overrides.period = Some(u32::try_from(PERIOD_SECS).expect("small"));
    f.inputs.totp_overrides.digits = Some(6);
    let enrollment = f.engine.enroll(&f.inputs).await.expect("enroll");
    assert_eq!(enrollment.totp.params().period, PERIOD_SECS);
}

#[tokio::test]
async fn unusable_totp_overrides_are_refused_before_any_request() {
    let mut f = fixture(Vendor::Conduit, builtin_profile("conduit")).await;
    f.inputs.totp_overrides.digits = Some(4);
    let error = f.engine.enroll(&f.inputs).await.expect_err("4 digits");
    assert_eq!(error.category(), "InvalidInput", "{error}");
    assert!(error.to_string().contains("spec.totp"), "{error}");
    assert!(
        !account(&f).await.enrolled,
        "nothing was sent to the vendor"
    );
}
