//! Acreto over HTTPS: login, generate and activate the OTP (204), 424 with
//! code 16432 until retried with `X-OTP`, 16434 for a used code.

mod common;

use std::time::Duration;

use common::{Codes, PASSWORD, Sim, USER, fast_config, json};
use otpilot_sim::Vendor;
use serde_json::{Value, json};

async fn login(sim: &Sim, otp: Option<&str>) -> (u16, Value) {
    let mut request = sim
        .http
        .post(sim.url("/v2/auth/login"))
        .json(&json!({ "username": USER, "password": PASSWORD }));
    if let Some(otp) = otp {
        request = request.header("X-OTP", otp);
    }
    json(request.send().await.expect("login")).await
}

// The username is URL-encoded in the path, as in the document.
fn otp_path() -> String {
    format!("/v2/users/{}/otp", USER.replace('@', "%40"))
}

async fn enrolled(sim: &Sim) -> Codes {
    let (status, body) = login(sim, None).await;
    assert_eq!(status, 200, "{body}");
    let token = body["accessToken"].as_str().expect("token").to_owned();
    let (status, body) = json(
        sim.http
            .post(sim.url(&otp_path()))
            .bearer_auth(&token)
            .send()
            .await
            .expect("generate"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let url = body["url"].as_str().expect("url");
    assert!(url.starts_with("otpauth://totp/Acreto:bot@example.com?algorithm=SHA1&digits=6&issuer=Acreto&period=1&secret="), "{url}");
    assert!(
        body["barcode"]
            .as_str()
            .is_some_and(|b| b.starts_with("iVBORw0KGgo"))
    );
    let mut codes = Codes::new(
        body["secret"].as_str().expect("secret"),
        sim.digits,
        sim.period,
    );
    let response = sim
        .http
        .patch(sim.url(&otp_path()))
        .bearer_auth(&token)
        .json(&json!({ "code": codes.fresh().await }))
        .send()
        .await
        .expect("activate");
    assert_eq!(response.status(), 204);
    codes
}

#[tokio::test]
async fn acreto_full_flow_enroll_then_424_then_x_otp_login() {
    let sim = Sim::start(fast_config(Vendor::Acreto)).await;
    let mut codes = enrolled(&sim).await;

    let (status, body) = login(&sim, None).await;
    assert_eq!(status, 424);
    assert_eq!(body["code"], 16432);

    let code = codes.fresh().await;
    let (status, body) = login(&sim, Some(&code)).await;
    assert_eq!(status, 200, "{body}");
    // Acreto's tokens live 600 s (known).
    assert_eq!(body["expiry"], 600);
    assert!(body["customers"].is_array());
    let token = body["accessToken"].as_str().expect("token");
    let status = sim
        .http
        .get(sim.url(&format!("/v2/users/{}", USER.replace('@', "%40"))))
        .bearer_auth(token)
        .send()
        .await
        .expect("user")
        .status();
    assert_eq!(status, 200);

    // Each code works once.
    let (status, body) = login(&sim, Some(&code)).await;
    assert_eq!((status, &body["code"]), (401, &json!(16434)));
}

#[tokio::test]
async fn acreto_expired_token_gets_401() {
    let config = fast_config(Vendor::Acreto)
        .with_token_lifetimes(Duration::from_secs(1), Duration::from_secs(1));
    let sim = Sim::start(config).await;
    let (_, body) = login(&sim, None).await;
    let token = body["accessToken"].as_str().expect("token");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let status = sim
        .http
        .post(sim.url(&otp_path()))
        .bearer_auth(token)
        .send()
        .await
        .expect("generate")
        .status();
    assert_eq!(status, 401);
}

#[tokio::test]
async fn acreto_rekeying_an_enrolled_account_needs_x_otp() {
    let sim = Sim::start(fast_config(Vendor::Acreto)).await;
    let mut codes = enrolled(&sim).await;
    let (_, body) = login(&sim, Some(&codes.fresh().await)).await;
    let token = body["accessToken"].as_str().expect("token");
    let (status, body) = json(
        sim.http
            .post(sim.url(&otp_path()))
            .bearer_auth(token)
            .send()
            .await
            .expect("generate"),
    )
    .await;
    assert_eq!((status, &body["code"]), (424, &json!(16432)));
}
