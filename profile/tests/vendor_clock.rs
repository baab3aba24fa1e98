//! Codes are computed on the vendor's time, learnt from its answers'
//! `Date` headers: a vendor whose clock is two steps away from ours and
//! that accepts only the current step (as Conduit does) still takes them,
//! and the offset is reported. The vendor here is a loopback server whose
//! clock is moved by a fixed skew; without its `Date` the same login
//! fails, which shows the test can tell.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otpilot_profile::{Engine, HttpSettings, Inputs, Profile, TotpKey, TotpParams};
use serde_json::json;
use support::{Answer, Handler, Scripted};

const PERIOD: u64 = 10;
const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

const PROFILE: &str = r#"
enroll:
  steps:
    - method: GET
      path: /secret
      extract:
        totp_secret: {pointer: /secret, as: base32Secret}
login:
  steps:
    - name: hello
      method: GET
      path: /hello
    - name: verify
      method: POST
      path: /verify
      body: {code: "{{ totp }}"}
      responses:
        - {status: [401], outcome: codeRejected}
      extract:
        access_token: {pointer: /token}
        expires_at: {pointer: /expiresIn, as: expiresIn}
"#;

fn params() -> TotpParams {
    TotpParams {
        period: PERIOD,
        ..TotpParams::default()
    }
}

/// A vendor whose clock is `skew_secs` from ours, accepting only the code
/// of its current step; it sends its `Date` when `send_date`.
fn vendor(skew_secs: i64, send_date: bool) -> Handler {
    let key = TotpKey::from_base32(SECRET, params()).expect("key");
    Arc::new(move |request| {
        let now = SystemTime::now();
        let by = Duration::from_secs(skew_secs.unsigned_abs());
        let vendor_now = if skew_secs >= 0 { now + by } else { now - by };
        let headers = if send_date {
            let ts = jiff::Timestamp::try_from(vendor_now).expect("timestamp");
            let date = jiff::fmt::rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&ts)
                .expect("date");
            vec![format!("Date: {date}")]
        } else {
            Vec::new()
        };
        match request.path.as_str() {
            "/hello" => Answer::Json(200, headers, json!({"hello": true})),
            "/verify" => {
                let body: serde_json::Value =
                    serde_json::from_str(&request.body).expect("json body");
                let secs = vendor_now
                    .duration_since(UNIX_EPOCH)
                    .expect("after epoch")
                    .as_secs();
                let expected = key.code_at(secs);
                let ok =
                    body["code"].as_str() == Some(secrecy::ExposeSecret::expose_secret(&expected));
                if ok {
                    Answer::Json(200, headers, json!({"token": "t", "expiresIn": 300}))
                } else {
                    Answer::Json(401, headers, json!({"error": "invalid_code"}))
                }
            }
            _ => Answer::json(404, json!({})),
        }
    })
}

async fn login(
    server: &Scripted,
) -> (
    Engine,
    Result<otpilot_profile::Session, otpilot_profile::FlowError>,
) {
    let profile = Arc::new(Profile::from_yaml("clock.yaml", PROFILE).expect("profile"));
    let settings = HttpSettings {
        allow_plain_http: true,
        ..HttpSettings::default()
    };
    let engine = Engine::new(profile, &server.base_url, settings).expect("engine");
    let inputs = Inputs {
        totp: Some(TotpKey::from_base32(SECRET, params()).expect("key")),
        totp_params: Some(params()),
        ..Inputs::default()
    };
    let result = engine.login(&inputs).await;
    (engine, result)
}

#[tokio::test]
async fn logins_keep_working_with_the_vendor_clock_two_steps_away() {
    for steps in [2i64, -2] {
        let skew = steps * PERIOD as i64;
        let server = Scripted::start_with(vendor(skew, true)).await;
        let (engine, result) = login(&server).await;
        result.unwrap_or_else(|e| {
            panic!(
                "skew {steps} steps: {e} (offset {:?})",
                engine.clock_offset_ms()
            )
        });
        let offset = engine.clock_offset_ms().expect("offset estimated");
        assert!(
            (offset - skew * 1000).abs() <= 1_500,
            "skew {steps} steps: offset {offset} ms"
        );
    }
}

#[tokio::test]
async fn without_the_vendor_date_a_skewed_vendor_refuses_the_code() {
    let server = Scripted::start_with(vendor(2 * PERIOD as i64, false)).await;
    let (engine, result) = login(&server).await;
    let err = result.expect_err("codes on our time are two steps off");
    assert_eq!(err.category(), "CodeRejected", "{err}");
    assert_eq!(engine.clock_offset_ms(), None);
}
