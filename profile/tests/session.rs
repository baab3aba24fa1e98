//! What a session says: when it expires (whatever the vendor claims), and
//! how its token is presented. Built-in profiles against a scripted
//! loopback server.

mod support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use otpilot_profile::{
    CodeTimer, Engine, HttpSettings, Inputs, ManualClock, TotpKey, TotpParams, builtin,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use support::{Answer, Scripted};

const NOW: u64 = 1_700_000_010;

fn engine(name: &str, server: &Scripted) -> Engine {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW));
    let settings = HttpSettings {
        allow_plain_http: true,
        ..HttpSettings::default()
    };
    Engine::new(
        builtin::get(name).expect("built in"),
        &server.base_url,
        settings,
    )
    .expect("engine")
    .with_timer(Arc::new(CodeTimer::new(Arc::new(clock))))
}

fn inputs() -> Inputs {
    Inputs {
        username: Some("bot@example.com".into()),
        password: Some(SecretString::from("pw")),
        api_key: Some(SecretString::from("key")),
        totp: Some(
            TotpKey::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", TotpParams::default())
                .expect("key"),
        ),
        ..Inputs::default()
    }
}

fn jwt(claims: serde_json::Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.sig",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

#[tokio::test]
async fn conduit_sessions_expire_on_the_configured_lifetime_despite_a_bogus_exp() {
    // v0.15's mix-up: exp − iat = 3,600,000 s.
    let access = jwt(json!({"sub": "u1", "iat": NOW, "exp": NOW + 3_600_000}));
    let server = Scripted::start(vec![
        Answer::json(200, json!({"accessToken": "unauthorized"})),
        Answer::json(200, json!({"method": "authenticator"})),
        Answer::json(200, json!({"accessToken": access, "refreshToken": "r1"})),
    ])
    .await;
    let session = engine("conduit", &server)
        .login(&inputs())
        .await
        .expect("login");
    let lifetime = session
        .expires_at
        .duration_since(UNIX_EPOCH + Duration::from_secs(NOW))
        .expect("in the future");
    assert_eq!(lifetime, Duration::from_secs(300));
}

#[tokio::test]
async fn goaxr_sessions_present_the_token_with_the_jwt_scheme() {
    let access = jwt(json!({"sub": "u1", "exp": NOW + 3600}));
    let server = Scripted::start(vec![
        Answer::json(200, json!({"token": "challenge"})),
        Answer::json(200, json!({"token": access})),
    ])
    .await;
    let session = engine("goaxr", &server)
        .login(&inputs())
        .await
        .expect("login");
    let (header, value) = session.authorization();
    assert_eq!(header.as_str(), "authorization");
    assert_eq!(value.expose_secret(), format!("jwt {access}"));
    assert_eq!(session.token_type(), Some("jwt"));
}

#[tokio::test]
async fn a_hostile_expiry_fails_the_login_instead_of_panicking() {
    for expiry in [json!(1e300), json!("inf"), json!(-5), json!("NaN")] {
        let server = Scripted::start(vec![Answer::json(
            200,
            json!({"accessToken": "t1", "expiry": expiry}),
        )])
        .await;
        let err = engine("acreto", &server)
            .login(&inputs())
            .await
            .expect_err("hostile expiry");
        assert_eq!(err.category(), "UnexpectedResponse", "{expiry}: {err}");
        assert!(err.to_string().contains("expires_at"), "{expiry}: {err}");
    }
}

#[tokio::test]
async fn a_far_future_jwt_exp_is_not_trusted_by_default() {
    // goaxr has no expiry field: the JWT's exp is all there is.
    let access = jwt(json!({"sub": "u1", "exp": 1e300}));
    let server = Scripted::start(vec![
        Answer::json(200, json!({"token": "challenge"})),
        Answer::json(200, json!({"token": access})),
    ])
    .await;
    let err = engine("goaxr", &server)
        .login(&inputs())
        .await
        .expect_err("no usable expiry");
    assert_eq!(err.category(), "UnexpectedResponse", "{err}");
}
