//! Conduit v0.15 over HTTPS: enable (QR chart link), verify, local login →
//! authorize → verify, renew (rotating), backup codes, recover, disable
//! (sudo); current step only.

mod common;

use std::time::Duration;

use common::{Codes, PASSWORD, Sim, USER, fast_config, json};
use otpilot_sim::{Faults, Vendor};
use serde_json::{Value, json};

async fn call(
    sim: &Sim,
    method: reqwest::Method,
    path: &str,
    bearer: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = sim.http.request(method, sim.url(path)).bearer_auth(bearer);
    if let Some(body) = body {
        request = request.json(&body);
    }
    json(request.send().await.expect("send")).await
}

async fn local(sim: &Sim) -> Value {
    let (status, body) = json(
        sim.http
            .post(sim.url("/authentication/local"))
            .json(&json!({ "email": USER, "password": PASSWORD }))
            .send()
            .await
            .expect("local"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

// Conduit wants the current step only: 2 s steps give the tests room.
fn config() -> otpilot_sim::SimConfig {
    fast_config(Vendor::Conduit).with_period(Duration::from_secs(2))
}

async fn enabled(sim: &Sim) -> (Codes, String) {
    let sudo = local(sim).await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let (status, body) = call(
        sim,
        reqwest::Method::PUT,
        "/authentication/twoFa/enable",
        &sudo,
        Some(json!({ "method": "authenticator" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let link = body["result"].as_str().expect("result");
    assert!(link.starts_with("https://chart.googleapis.com/chart?chs=166x166&chld=L|0&cht=qr&chl=otpauth://totp/Conduit%3A"));
    // `chl` URL-decoded once is the otpauth URI.
    let chl = link.split_once("chl=").expect("chl").1;
    let uri = percent_encoding::percent_decode_str(chl)
        .decode_utf8()
        .expect("utf8")
        .to_string();
    let parsed = url::Url::parse(&uri).expect("otpauth uri");
    let secret = parsed
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .map(|(_, v)| v.to_string())
        .expect("secret");
    assert_eq!(
        base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &secret).map(|b| b.len()),
        Some(20)
    );
    assert!(uri.contains("period=2"), "{uri}");
    let mut codes = Codes::new(&secret, sim.digits, sim.period);
    let (status, body) = call(
        sim,
        reqwest::Method::POST,
        "/authentication/twoFa/enable/verify",
        &sudo,
        Some(json!({ "code": codes.fresh().await })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "2FA enabled");
    (codes, sudo)
}

async fn login(sim: &Sim, codes: &mut Codes) -> Value {
    let body = local(sim).await;
    let unauthorized = body["accessToken"].as_str().expect("token").to_owned();
    assert!(body.get("refreshToken").is_none());
    let (status, body) = call(
        sim,
        reqwest::Method::POST,
        "/authentication/twoFa/authorize",
        &unauthorized,
        None,
    )
    .await;
    assert_eq!(
        (status, body["method"].as_str()),
        (200, Some("authenticator"))
    );
    let (status, body) = call(
        sim,
        reqwest::Method::POST,
        "/authentication/twoFa/verify",
        &unauthorized,
        Some(json!({ "code": codes.fresh().await })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn conduit_full_flow_enable_login_renew_recover_disable() {
    let sim = Sim::start(config()).await;
    let (mut codes, _) = enabled(&sim).await;
    let tokens = login(&sim, &mut codes).await;
    let access = tokens["accessToken"].as_str().expect("access");
    let refresh = tokens["refreshToken"].as_str().expect("refresh").to_owned();
    assert_eq!(
        call(
            &sim,
            reqwest::Method::GET,
            "/authentication/user",
            access,
            None
        )
        .await
        .0,
        200
    );

    // Backup codes: 10, "dddd dddd".
    let (status, body) = call(
        &sim,
        reqwest::Method::GET,
        "/authentication/twoFa/generate",
        access,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let backup: Vec<String> = serde_json::from_value(body["codes"].clone()).expect("codes");
    assert_eq!(backup.len(), 10);
    assert!(
        backup
            .iter()
            .all(|c| c.len() == 9 && c.as_bytes()[4] == b' ')
    );

    // Renew rotates: the old refresh token stops working.
    let (status, renewed) = call(
        &sim,
        reqwest::Method::POST,
        "/authentication/renew",
        &refresh,
        None,
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    let (status, _) = call(
        &sim,
        reqwest::Method::POST,
        "/authentication/renew",
        &refresh,
        None,
    )
    .await;
    assert_eq!(status, 401);
    // A renewed token is not sudo.
    let renewed_access = renewed["accessToken"].as_str().expect("access");
    let (status, body) = call(
        &sim,
        reqwest::Method::PUT,
        "/authentication/twoFa/disable",
        renewed_access,
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("sudo_required"))
    );

    // Recover with a backup code, space stripped.
    let unauthorized = local(&sim).await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let (status, body) = call(
        &sim,
        reqwest::Method::POST,
        "/authentication/twoFa/recover",
        &unauthorized,
        Some(json!({ "code": backup[0].replace(' ', "") })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "You have 9 back up codes left");
    let sudo = body["accessToken"].as_str().expect("access").to_owned();

    let (status, body) = call(
        &sim,
        reqwest::Method::PUT,
        "/authentication/twoFa/disable",
        &sudo,
        None,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("2FA disabled"))
    );
    assert!(!sim.admin().account(USER).await.expect("state").enrolled);
    assert!(local(&sim).await["refreshToken"].is_string());
}

#[tokio::test]
async fn conduit_accepts_only_the_current_step() {
    let sim = Sim::start(config()).await;
    let (mut codes, _) = enabled(&sim).await;
    sim.admin()
        .set_faults(&Faults {
            clock_skew_steps: 1,
            ..Faults::default()
        })
        .await
        .expect("faults");
    let unauthorized = local(&sim).await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let (status, body) = call(
        &sim,
        reqwest::Method::POST,
        "/authentication/twoFa/verify",
        &unauthorized,
        Some(json!({ "code": codes.fresh().await })),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_code"))
    );
}

#[tokio::test]
async fn conduit_with_replay_protection_off_accepts_a_reused_code() {
    let sim = Sim::start(config().with_replay_protection(false)).await;
    let (mut codes, _) = enabled(&sim).await;
    let code = codes.fresh().await;
    for _ in 0..2 {
        let unauthorized = local(&sim).await["accessToken"]
            .as_str()
            .expect("token")
            .to_owned();
        let (status, body) = call(
            &sim,
            reqwest::Method::POST,
            "/authentication/twoFa/verify",
            &unauthorized,
            Some(json!({ "code": code })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

async fn user(sim: &Sim, token: &str) -> (u16, Value) {
    call(
        sim,
        reqwest::Method::GET,
        "/authentication/user",
        token,
        None,
    )
    .await
}

fn exp_minus_iat(token: &str) -> u64 {
    let claims = common::jwt_claims(token);
    claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat")
}

#[tokio::test]
async fn access_token_exp_is_milliseconds_read_as_seconds_by_default() {
    let sim = Sim::start(fast_config(Vendor::Conduit).with_period(Duration::from_secs(2))).await;
    let (mut codes, _) = enabled(&sim).await;
    let body = login(&sim, &mut codes).await;
    let token = body["accessToken"].as_str().expect("token");
    // As in the vendor document's token: an hour, in milliseconds.
    assert_eq!(exp_minus_iat(token), 3_600_000);
    assert_eq!(user(&sim, token).await.0, 200);

    let sim = Sim::start(
        fast_config(Vendor::Conduit)
            .with_period(Duration::from_secs(2))
            .with_jwt_exp_ms_bug(false),
    )
    .await;
    let (mut codes, _) = enabled(&sim).await;
    let body = login(&sim, &mut codes).await;
    assert_eq!(
        exp_minus_iat(body["accessToken"].as_str().expect("token")),
        3_600
    );
}

#[tokio::test]
async fn server_expires_the_session_on_the_configured_lifetime_not_on_exp() {
    let sim =
        Sim::start(config().with_token_lifetimes(Duration::from_secs(2), Duration::from_secs(60)))
            .await;
    let (mut codes, _) = enabled(&sim).await;
    let body = login(&sim, &mut codes).await;
    let token = body["accessToken"].as_str().expect("token").to_owned();
    let refresh_token = body["refreshToken"].as_str().expect("refresh").to_owned();
    assert_eq!(exp_minus_iat(&token), 2_000, "exp claims 2000 s");
    assert_eq!(user(&sim, &token).await.0, 200);
    // Poll past the 2 s session (bounded), never asserting how long it took.
    let mut refused = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (status, body) = user(&sim, &token).await;
        if status != 200 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("the session ends although exp is far ahead");
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("token_expired"))
    );
    // The refresh token renews it.
    let (status, renewed) = call(
        &sim,
        reqwest::Method::POST,
        "/authentication/renew",
        &refresh_token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    let token = renewed["accessToken"].as_str().expect("token");
    assert_eq!(user(&sim, token).await.0, 200);
}

#[tokio::test]
async fn wrong_codes_hit_the_rate_limit_answer_for_ten_seconds() {
    let sim = Sim::start(config().with_lockout(2, Vendor::Conduit.default_lockout_window())).await;
    let (codes, _) = enabled(&sim).await;
    let unauthorized = local(&sim).await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    for _ in 0..2 {
        let (status, _) = call(
            &sim,
            reqwest::Method::POST,
            "/authentication/twoFa/verify",
            &unauthorized,
            Some(json!({ "code": codes.wrong() })),
        )
        .await;
        assert_eq!(status, 401);
    }
    let response = sim
        .http
        .post(sim.url("/authentication/twoFa/verify"))
        .bearer_auth(&unauthorized)
        .json(&json!({ "code": codes.wrong() }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 429);
    let wait = common::retry_after(&response).expect("Retry-After");
    assert!((1..=10).contains(&wait), "{wait}");
    let (_, body) = json(response).await;
    assert_eq!(
        body,
        json!({ "name": "RATE_LIMIT", "status": 429, "message": "Too many requests" })
    );
    let state = sim.admin().account(USER).await.expect("state");
    let until = state.locked_until_unix_ms.expect("locked");
    let now = u64::try_from(common::now().as_millis()).expect("ms");
    assert!(until > now && until <= now + 10_000, "a 10 s block");
}

#[tokio::test]
async fn client_validation_requires_the_application_headers() {
    let sim = Sim::start(config().with_client_credentials("otpilot-app", "app-s3cret")).await;
    let login = |headers: &[(&str, &str)]| {
        let mut request = sim
            .http
            .post(sim.url("/authentication/local"))
            .json(&json!({ "email": USER, "password": PASSWORD }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    for headers in [
        &[][..],
        &[("clientid", "otpilot-app")][..],
        &[("clientid", "otpilot-app"), ("clientsecret", "wrong")][..],
        &[("clientid", "other"), ("clientsecret", "app-s3cret")][..],
    ] {
        let (status, body) = json(login(headers).await.expect("send")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{headers:?}"
        );
        assert!(!body.to_string().contains("app-s3cret"));
    }
    let (status, body) = json(
        login(&[("clientid", "otpilot-app"), ("clientsecret", "app-s3cret")])
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let config = sim.admin().config().await.expect("config");
    assert!(config.client_validation);
}

#[tokio::test]
async fn local_login_takes_email_not_username() {
    let sim = Sim::start(config()).await;
    let (status, body) = json(
        sim.http
            .post(sim.url("/authentication/local"))
            .json(&json!({ "username": USER, "password": PASSWORD }))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = json(
        sim.http
            .post(sim.url("/authentication/local"))
            .header("content-type", "text/plain")
            .body(json!({ "email": USER, "password": PASSWORD }).to_string())
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 415, "JSON sent as text/plain is refused");
    local(&sim).await;
}
