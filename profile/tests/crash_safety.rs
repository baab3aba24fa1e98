//! Enrollment that survives a crash at any point: a generated secret is in
//! the checkpoint before the first call, a step with a side effect is not
//! sent again blindly after an answer that leaves its effect unknown, the
//! vendor's "already done" counts as done on resume, and a resumed flow
//! never reuses a code step the interrupted one may have sent.

mod support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use otpilot_profile::{
    Checkpoint, CodeTimer, Engine, FlowKind, HttpSettings, Inputs, ManualClock, Profile,
    RetryPolicy, TotpKey, TotpParams,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use support::{Answer, Scripted};

const PROFILE: &str = r#"
enroll:
  generateSecret: {bytes: 20}
  steps:
    - name: enable
      method: POST
      path: /mfa/enable
      safeToRepeat: false
      body: {user: "{{ username }}", secret: "{{ totp_secret }}", code: "{{ totp }}"}
      responses:
        - {status: [409], when: {pointer: /error, equals: already_enabled}, outcome: alreadyDone}
      extract:
        recovery_codes: {pointer: /codes, as: recoveryCodes}
login:
  steps:
    - name: login
      method: POST
      path: /login
      body: {user: "{{ username }}", code: "{{ totp }}"}
      extract:
        access_token: {pointer: /token}
        refresh_token: {pointer: /refresh, optional: true}
        expires_at: {pointer: /expiresIn, as: expiresIn}
refresh:
  steps:
    - name: renew
      method: POST
      path: /refresh
      body: {refresh: "{{ refresh_token }}"}
      extract:
        access_token: {pointer: /token}
        expires_at: {pointer: /expiresIn, as: expiresIn}
"#;

fn profile() -> Arc<Profile> {
    Arc::new(Profile::from_yaml("crash.yaml", PROFILE).unwrap_or_else(|e| panic!("{e}")))
}

fn settings() -> HttpSettings {
    HttpSettings {
        allow_plain_http: true,
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        retry: RetryPolicy {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        ..HttpSettings::default()
    }
}

/// A clock 10 s into a 30 s step, so codes never wait for a margin.
fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_010))
}

fn engine(server: &Scripted, clock: &ManualClock) -> Engine {
    Engine::new(profile(), &server.base_url, settings())
        .expect("engine")
        .with_timer(Arc::new(CodeTimer::new(Arc::new(clock.clone()))))
}

fn inputs() -> Inputs {
    Inputs {
        username: Some("bot".into()),
        ..Inputs::default()
    }
}

fn sent_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("json body");
    v["code"].as_str().expect("code").to_owned()
}

#[tokio::test]
async fn a_generated_secret_is_in_the_checkpoint_before_the_first_call_and_is_what_the_vendor_gets()
{
    let server = Scripted::start(vec![Answer::json(200, json!({"codes": ["A1", "B2"]}))]).await;
    let clock = clock();
    let engine = engine(&server, &clock);
    let mut run = engine.start(FlowKind::Enroll, &inputs()).expect("start");
    let key = run
        .checkpoint()
        .totp
        .clone()
        .expect("the secret is generated before any step");
    assert!(
        server.received().is_empty(),
        "no call before the first step"
    );
    // Persisted and read back, it is the same secret.
    let record = run.checkpoint().to_record(engine.profile());
    let back = Checkpoint::from_record(record.expose_secret(), engine.profile()).expect("record");
    assert_eq!(
        back.totp.expect("kept").secret_base32().expose_secret(),
        key.secret_base32().expose_secret()
    );

    run.run_to_end().await.expect("enroll");
    let step = run.checkpoint().last_code_step.expect("a code was sent");
    let enrollment = run.into_enrollment().expect("enrollment");
    let got = server.received();
    assert_eq!(got.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&got[0].body).expect("json");
    assert_eq!(body["secret"], key.secret_base32().expose_secret());
    assert_eq!(body["code"], key.code_for_step(step).expose_secret());
    assert_eq!(
        enrollment.totp.secret_base32().expose_secret(),
        key.secret_base32().expose_secret()
    );
    assert_eq!(enrollment.recovery_codes.len(), 2);
}

#[tokio::test]
async fn two_enrollments_generate_different_secrets() {
    let server = Scripted::start(vec![]).await;
    let clock = clock();
    let engine = engine(&server, &clock);
    let a = engine.start(FlowKind::Enroll, &inputs()).expect("start");
    let b = engine.start(FlowKind::Enroll, &inputs()).expect("start");
    let secret = |run: &otpilot_profile::FlowRun<'_>| {
        run.checkpoint()
            .totp
            .as_ref()
            .expect("generated")
            .secret_base32()
            .expose_secret()
            .to_owned()
    };
    assert_ne!(secret(&a), secret(&b));
    assert_eq!(secret(&a).len(), 32, "20 bytes are 32 base32 characters");
}

#[tokio::test]
async fn a_step_not_safe_to_repeat_is_not_sent_again_after_an_answer_that_leaves_its_effect_unknown()
 {
    let cases = [
        (
            "gateway timeout",
            Answer::json(504, json!({"error": "gateway"})),
        ),
        ("server error", Answer::json(500, json!({"error": "boom"}))),
        ("unavailable", Answer::json(503, json!({"error": "later"}))),
        ("connection lost after sending", Answer::Drop),
    ];
    for (what, answer) in cases {
        let server = Scripted::start(vec![answer]).await;
        let clock = clock();
        let engine = engine(&server, &clock);
        let mut run = engine.start(FlowKind::Enroll, &inputs()).expect("start");
        let err = run.step().await.expect_err(what);
        assert_eq!(err.category(), "OutcomeUnknown", "{what}: {err}");
        assert!(err.to_string().contains("not sent again"), "{what}: {err}");
        assert_eq!(server.received().len(), 1, "{what}: sent once only");
        assert_eq!(
            run.checkpoint().next_step,
            0,
            "{what}: the step is not done"
        );
    }
}

#[tokio::test]
async fn a_refusal_is_retried_even_on_a_step_not_safe_to_repeat() {
    let server = Scripted::start(vec![
        Answer::Json(
            429,
            vec!["Retry-After: 0".into()],
            json!({"error": "slow down"}),
        ),
        Answer::json(200, json!({"codes": ["A1"]})),
    ])
    .await;
    let clock = clock();
    let enrollment = engine(&server, &clock)
        .enroll(&inputs())
        .await
        .expect("a rate limit is a refusal, not an unknown outcome");
    assert_eq!(enrollment.recovery_codes.len(), 1);
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn a_step_safe_to_repeat_is_still_retried_after_a_gateway_timeout() {
    let server = Scripted::start(vec![
        Answer::json(504, json!({})),
        Answer::json(200, json!({"token": "t-1", "expiresIn": 300})),
    ])
    .await;
    let clock = clock();
    let key = TotpKey::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", TotpParams::default())
        .expect("key");
    let session = engine(&server, &clock)
        .login(&inputs().with_totp(key))
        .await
        .expect("login");
    assert_eq!(session.access_token.expose_secret(), "t-1");
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn resuming_after_an_unknown_outcome_takes_already_done_as_done_with_a_fresh_code_step() {
    let server = Scripted::start(vec![Answer::json(504, json!({"error": "gateway"}))]).await;
    let clock = clock();
    let first = engine(&server, &clock);
    let mut run = first.start(FlowKind::Enroll, &inputs()).expect("start");
    run.step().await.expect_err("unknown outcome");
    let record = run.checkpoint().to_record(first.profile());
    let key = run.checkpoint().totp.clone().expect("generated");
    drop(run);

    // A new process (a new engine and timer) resumes from the record, in
    // the same time step: the vendor did enable MFA, and says so.
    server.push(Answer::json(
        409,
        json!({"error": "already_enabled", "message": "MFA is already enabled"}),
    ));
    let second = engine(&server, &clock);
    let checkpoint =
        Checkpoint::from_record(record.expose_secret(), second.profile()).expect("record");
    let mut run = second.resume(checkpoint, &inputs()).expect("resume");
    let report = run
        .step()
        .await
        .expect("already done is done")
        .expect("a step");
    assert!(report.already_done);
    assert!(run.is_done());
    let enrollment = run.into_enrollment().expect("enrollment");
    assert_eq!(
        enrollment.totp.secret_base32().expose_secret(),
        key.secret_base32().expose_secret()
    );
    assert!(
        enrollment.recovery_codes.is_empty(),
        "the lost answer's recovery codes cannot be recovered"
    );
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert_ne!(
        sent_code(&got[0].body),
        sent_code(&got[1].body),
        "the resumed flow does not resend the interrupted code's step"
    );
}

#[tokio::test]
async fn resume_marks_the_recorded_step_and_the_current_step_used() {
    let server = Scripted::start(vec![]).await;
    let clock = clock();
    let engine = engine(&server, &clock);
    let key = TotpKey::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", TotpParams::default())
        .expect("key");
    let now_step = key.step_at(1_700_000_010);
    let checkpoint = |next_step: usize, last: Option<u64>| Checkpoint {
        flow: FlowKind::Login,
        next_step,
        values: Default::default(),
        totp: None,
        recovery_codes: None,
        times: Default::default(),
        last_code_step: last,
    };
    // The login step sends a code: the current step counts as used.
    engine
        .resume(
            checkpoint(0, Some(now_step - 3)),
            &inputs().with_totp(key.clone()),
        )
        .expect("resume");
    assert_eq!(engine.timer().last_used(&key), Some(now_step));

    // Past the last step nothing is sent: only the recorded step counts.
    let fresh = Engine::new(profile(), &server.base_url, settings())
        .expect("engine")
        .with_timer(Arc::new(CodeTimer::new(Arc::new(clock.clone()))));
    fresh
        .resume(
            checkpoint(1, Some(now_step - 3)),
            &inputs().with_totp(key.clone()),
        )
        .expect("resume");
    assert_eq!(fresh.timer().last_used(&key), Some(now_step - 3));
}

#[tokio::test]
async fn a_refused_refresh_token_means_log_in_again() {
    let server = Scripted::start(vec![
        Answer::json(
            200,
            json!({"token": "t-1", "refresh": "r-1", "expiresIn": 300}),
        ),
        Answer::json(401, json!({"error": "invalid_grant"})),
    ])
    .await;
    let clock = clock();
    let engine = engine(&server, &clock);
    let key = TotpKey::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", TotpParams::default())
        .expect("key");
    let inputs = inputs().with_totp(key);
    let session = engine.login(&inputs).await.expect("login");
    let err = engine
        .refresh(&inputs, &session)
        .await
        .expect_err("refused");
    assert_eq!(err.category(), "LoginRequired", "{err}");
    assert!(err.to_string().contains("log in again"), "{err}");
}

#[tokio::test]
async fn a_path_that_renders_onto_another_host_is_refused_before_sending() {
    let server = Scripted::start(vec![]).await;
    let yaml = r#"
variables: {tenant: acme}
enroll:
  steps:
    - method: GET
      path: "{{ tenant }}/secret"
      extract:
        totp_secret: {pointer: /secret, as: base32Secret}
login:
  steps:
    - method: POST
      path: "{{ tenant }}/login"
      body: {password: "{{ password }}"}
      extract:
        access_token: {pointer: /token}
"#;
    let profile = Arc::new(Profile::from_yaml("escape.yaml", yaml).expect("loads"));
    let base = format!("{}/api", server.base_url);
    let engine = Engine::new(profile, &base, settings()).expect("engine");
    for tenant in ["@127.0.0.2", "/../elsewhere", ".evil.example", "x/login"] {
        let mut inputs = inputs();
        inputs.password = Some(SecretString::from("pw-SECRET-1"));
        inputs.variables.insert("tenant".into(), tenant.into());
        let err = engine.enroll(&inputs).await.expect_err(tenant);
        assert_eq!(err.category(), "ProfileError", "{tenant}: {err}");
        assert!(
            err.to_string().contains("refused to send"),
            "{tenant}: {err}"
        );
    }
    assert!(server.received().is_empty(), "nothing was sent anywhere");
}

#[test]
fn plain_http_needs_an_explicit_setting() {
    let err = Engine::new(profile(), "http://127.0.0.1:9", HttpSettings::default())
        .expect_err("plain http refused by default");
    assert!(err.to_string().contains("clear text"), "{err}");
    for bad in [
        "ftp://x",
        "https://user:pw@api.example",
        "https://api.example/?a=b",
    ] {
        assert!(
            Engine::new(profile(), bad, HttpSettings::default()).is_err(),
            "{bad}"
        );
    }
    Engine::new(
        profile(),
        "https://api.example/v2/",
        HttpSettings::default(),
    )
    .expect("https");
}
