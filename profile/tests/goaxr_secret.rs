//! goaxr's enrollment secret (issue 7): `otpauth_url` when it is a real
//! `otpauth://` URI, else the base32 `secret` (upper-cased), and a loud
//! failure naming both places when neither can be read. Against a scripted
//! vendor answering the built-in profile's first two enroll steps.

mod support;

use otpilot_profile::{Engine, FlowKind, HttpSettings, Inputs, builtin};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use support::{Answer, Scripted};

const URI_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const BARE_SECRET: &str = "kruxg5ctmvrxezlukruxg5ctmvrxezlu";

/// Runs password-login and create-secret with the vendor's `secret`
/// object; the checkpoint's TOTP key, or the error.
async fn secret_from(secret: serde_json::Value) -> Result<otpilot_profile::TotpKey, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = Scripted::start(vec![
        Answer::json(200, json!({"token": "challenge-token-1", "uid": "u1"})),
        Answer::json(200, json!({"uid": "s1", "type": "mfa", "secret": secret})),
    ])
    .await;
    let settings = HttpSettings {
        allow_plain_http: true,
        ..HttpSettings::default()
    };
    let engine = Engine::new(
        builtin::get("goaxr").expect("built in"),
        &server.base_url,
        settings,
    )
    .expect("engine");
    let inputs = Inputs {
        username: Some("bot".into()),
        password: Some(SecretString::from("pw-goaxr-1")),
        ..Inputs::default()
    };
    let mut run = engine.start(FlowKind::Enroll, &inputs).expect("start");
    run.step().await.map_err(|e| e.to_string())?;
    run.step().await.map_err(|e| e.to_string())?;
    Ok(run.checkpoint().totp.clone().expect("a secret"))
}

#[tokio::test]
async fn a_real_otpauth_uri_wins_and_brings_its_parameters() {
    let key = secret_from(json!({
        "otpauth_url": format!("otpauth://totp/goaxr:bot?secret={URI_SECRET}&digits=8&period=60"),
        "secret": BARE_SECRET,
    }))
    .await
    .expect("secret");
    assert_eq!(key.secret_base32().expose_secret(), URI_SECRET);
    assert_eq!((key.params().digits, key.params().period), (8, 60));
}

#[tokio::test]
async fn an_https_otpauth_url_falls_back_to_the_base32_secret_upper_cased() {
    let key = secret_from(json!({
        "otpauth_url": "https://api.demo.goaxr.cloud/v1/auth/totp",
        "secret": BARE_SECRET,
    }))
    .await
    .expect("secret");
    assert_eq!(
        key.secret_base32().expose_secret(),
        BARE_SECRET.to_uppercase()
    );
    assert_eq!((key.params().digits, key.params().period), (6, 30));
}

#[tokio::test]
async fn a_missing_otpauth_url_falls_back_to_the_base32_secret() {
    let key = secret_from(json!({"secret": BARE_SECRET}))
        .await
        .expect("secret");
    assert_eq!(
        key.secret_base32().expose_secret(),
        BARE_SECRET.to_uppercase()
    );
}

#[tokio::test]
async fn neither_readable_fails_loudly_naming_both_and_showing_neither() {
    let err = secret_from(json!({
        "otpauth_url": "https://api.demo.goaxr.cloud/v1/auth/totp",
        "secret": "not base32 at all: 0189!",
    }))
    .await
    .expect_err("no usable secret");
    assert!(err.contains("totp_secret"), "{err}");
    assert!(err.contains("its fallback neither"), "{err}");
    assert!(!err.contains("0189!"), "{err}");
    let err = secret_from(json!({})).await.expect_err("no secret at all");
    assert!(
        err.contains("nothing at JSON pointer '/secret/otpauth_url'")
            && err.contains("nothing at JSON pointer '/secret/secret'"),
        "{err}"
    );
}
