//! goaxr over HTTPS: password login, secret creation, enrollment with the
//! code, CHALLENGE → TOTP login, backup-code login.

mod common;

use common::{Codes, PASSWORD, Sim, USER, fast_config, json};
use otpilot_sim::Vendor;
use serde_json::{Value, json};

async fn password_login(sim: &Sim) -> Value {
    let (status, body) = json(
        sim.http
            .post(sim.url("/auth/password"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("login"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn totp_login(sim: &Sim, challenge: &str, code: &str) -> (u16, Value) {
    json(
        sim.http
            .post(sim.url("/auth/totp"))
            .header("Authorization", format!("jwt {challenge}"))
            .json(&json!({ "token": code }))
            .send()
            .await
            .expect("totp"),
    )
    .await
}

#[tokio::test]
async fn goaxr_full_flow_enroll_login_backup_code() {
    let sim = Sim::start(fast_config(Vendor::Goaxr)).await;
    let body = password_login(&sim).await;
    assert_eq!(body["type"], "FULL");
    let token = body["token"].as_str().expect("token").to_owned();
    let auth = format!("jwt {token}");

    let (status, body) = json(
        sim.http
            .post(sim.url(&format!("/users/{}/secrets", sim.user_id)))
            .header("Authorization", &auth)
            .json(&json!({ "type": "mfa" }))
            .send()
            .await
            .expect("secret"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "mfa");
    let otpauth = body["secret"]["otpauth_url"].as_str().expect("url");
    assert!(
        otpauth.starts_with("otpauth://totp/goaxr:") && otpauth.contains("period=1"),
        "{otpauth}"
    );
    let secret = body["secret"]["secret"]
        .as_str()
        .expect("secret")
        .to_uppercase();
    let secret_id = body["uid"].as_str().expect("uid").to_owned();
    let mut codes = Codes::new(&secret, sim.digits, sim.period);

    // Before enrollment completes, password login still gives a full token.
    assert_eq!(password_login(&sim).await["type"], "FULL");

    let (status, body) = json(
        sim.http
            .put(sim.url(&format!(
                "/users/{}/secrets/{secret_id}/enroll",
                sim.user_id
            )))
            .header("Authorization", &auth)
            .json(&json!({ "token": codes.fresh().await }))
            .send()
            .await
            .expect("enroll"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let backup: Vec<String> = serde_json::from_value(body["codes"].clone()).expect("codes");
    assert_eq!(backup.len(), 10);

    let body = password_login(&sim).await;
    assert_eq!(body["type"], "CHALLENGE");
    let challenge = body["token"].as_str().expect("challenge").to_owned();
    // The CHALLENGE token is not a full token.
    let status = sim
        .http
        .get(sim.url(&format!("/users/{}", sim.user_id)))
        .header("Authorization", format!("jwt {challenge}"))
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(status, 401);

    let (status, body) = totp_login(&sim, &challenge, &codes.fresh().await).await;
    assert_eq!(status, 200, "{body}");
    let full = body["token"].as_str().expect("token");
    let status = sim
        .http
        .get(sim.url(&format!("/users/{}", sim.user_id)))
        .header("Authorization", format!("jwt {full}"))
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(status, 200);

    let (status, body) = totp_login(&sim, &challenge, &backup[0]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        sim.admin()
            .account(USER)
            .await
            .expect("state")
            .recovery_codes_left,
        9
    );
    let (status, _) = totp_login(&sim, &challenge, &backup[0]).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn goaxr_code_sent_as_a_bare_number_keeps_leading_zeros() {
    // 2 s steps: with 1 s steps a loaded machine can deliver the code two
    // steps late (seen once under a parallel run), outside the ±1 window.
    let sim =
        Sim::start(fast_config(Vendor::Goaxr).with_period(std::time::Duration::from_secs(2))).await;
    let token = password_login(&sim).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (_, body) = json(
        sim.http
            .post(sim.url(&format!("/users/{}/secrets", sim.user_id)))
            .header("Authorization", format!("jwt {token}"))
            .json(&json!({ "type": "mfa" }))
            .send()
            .await
            .expect("secret"),
    )
    .await;
    let secret = body["secret"]["secret"]
        .as_str()
        .expect("secret")
        .to_uppercase();
    let secret_id = body["uid"].as_str().expect("uid").to_owned();
    let mut codes = Codes::new(&secret, sim.digits, sim.period);
    let code = codes.fresh().await;
    let number: u64 = code.parse().expect("digits");
    let raw = format!(r#"{{"token": {number}}}"#);
    let status = sim
        .http
        .put(sim.url(&format!(
            "/users/{}/secrets/{secret_id}/enroll",
            sim.user_id
        )))
        .header("Authorization", format!("jwt {token}"))
        .header("Content-Type", "application/json")
        .body(raw)
        .send()
        .await
        .expect("enroll")
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn goaxr_token_of_another_user_is_forbidden() {
    let sim = Sim::start(fast_config(Vendor::Goaxr)).await;
    let token = password_login(&sim).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let status = sim
        .http
        .post(sim.url("/users/00000000-0000-0000-0000-000000000000/secrets"))
        .header("Authorization", format!("jwt {token}"))
        .json(&json!({ "type": "mfa" }))
        .send()
        .await
        .expect("secret")
        .status();
    assert_eq!(status, 403);
}

#[tokio::test]
async fn goaxr_password_login_is_http_basic_only() {
    let sim = Sim::start(fast_config(Vendor::Goaxr)).await;
    // Credentials in a JSON body are not a login.
    let (status, body) = json(
        sim.http
            .post(sim.url("/auth/password"))
            .json(&json!({ "username": USER, "password": PASSWORD }))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = json(
        sim.http
            .post(sim.url("/auth/password"))
            .basic_auth(USER, Some("wrong"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(password_login(&sim).await["type"], "FULL");
}

#[tokio::test]
async fn every_vendor_request_is_counted_in_the_admin_stats() {
    let sim = Sim::start(fast_config(Vendor::Goaxr)).await;
    let before = sim.admin().stats().await.expect("stats").vendor_requests;
    password_login(&sim).await;
    // A refused call is a round trip too.
    totp_login(&sim, "not-a-challenge", "000000").await;
    let after = sim.admin().stats().await.expect("stats").vendor_requests;
    assert_eq!(after - before, 2);
}
