//! AUDD over real HTTPS with mTLS: the document's whole flow, plus the
//! behaviours shared by every vendor (replay, skew, expiry, rotation,
//! lock-out, faults, bad input), exercised here once.

mod common;

use std::time::Duration;

use common::{API_KEY, Codes, PASSWORD, Sim, USER, fast_config, json, retry_after};
use otpilot_sim::testing::{ClientCa, https_client};
use otpilot_sim::{Faults, Vendor};
use serde_json::{Value, json};

async fn get_secret(sim: &Sim) -> String {
    let response = sim
        .http
        .get(sim.url("/login/two-factor/secret"))
        .header("Authorization", API_KEY)
        .send()
        .await
        .expect("secret");
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    // The plain `secret` is the same bytes in base64.
    let b32 = body["secretBase32Encoded"]
        .as_str()
        .expect("b32")
        .to_owned();
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        body["secret"].as_str().expect("secret"),
    )
    .expect("base64");
    assert_eq!(otpilot_sim::totp::to_base32(&raw), b32);
    b32
}

async fn enable(sim: &Sim, codes: &mut Codes) -> Vec<String> {
    let code = codes.fresh().await;
    let response = sim
        .http
        .post(sim.url("/mfa/enable"))
        .header("Authorization", API_KEY)
        .json(&json!({
            "username": USER, "password": PASSWORD,
            "mfaSecretB32": codes.secret_b32, "mfaCode": code,
        }))
        .send()
        .await
        .expect("enable");
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    body["recoveryCodes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect()
}

async fn login(sim: &Sim, code: &str) -> reqwest::Response {
    sim.http
        .post(sim.url("/mfa/login"))
        .header("Authorization", API_KEY)
        .json(&json!({ "username": USER, "password": PASSWORD, "mfaCode": code }))
        .send()
        .await
        .expect("login")
}

async fn enrolled(sim: &Sim) -> Codes {
    let secret = get_secret(sim).await;
    let mut codes = Codes::new(&secret, sim.digits, sim.period);
    enable(sim, &mut codes).await;
    codes
}

async fn users(sim: &Sim, token: &str) -> (u16, Value) {
    json(
        sim.http
            .get(sim.url("/users"))
            .bearer_auth(token)
            .send()
            .await
            .expect("users"),
    )
    .await
}

async fn refresh(sim: &Sim, token: &str, refresh_token: &str) -> (u16, Value) {
    json(
        sim.http
            .post(sim.url("/login/jwt/refresh"))
            .json(&json!({ "accessToken": token, "refreshToken": refresh_token }))
            .send()
            .await
            .expect("refresh"),
    )
    .await
}

#[tokio::test]
async fn audd_full_flow_enroll_login_refresh_recovery() {
    let sim = Sim::start(fast_config(Vendor::Audd)).await;
    let secret = get_secret(&sim).await;
    let mut codes = Codes::new(&secret, sim.digits, sim.period);
    let recovery = enable(&sim, &mut codes).await;
    assert_eq!(recovery.len(), 10);
    assert!(
        recovery
            .iter()
            .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-')
    );

    let state = sim.admin().account(USER).await.expect("state");
    assert!(state.enrolled);
    assert_eq!(state.totp_secret_base32.as_deref(), Some(secret.as_str()));
    assert_eq!(state.recovery_codes_left, 10);

    let (status, body) = json(login(&sim, &codes.fresh().await).await).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_owned();
    let refresh_token = body["refreshToken"].as_str().expect("refresh").to_owned();
    let exp_ms = body["tokenExpirationInstant"].as_u64().expect("instant");
    assert!(
        exp_ms > common::now().as_millis() as u64 + 200_000,
        "5 min default"
    );

    let (status, body) = users(&sim, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"][0]["username"], USER);

    let (status, body) = refresh(&sim, &token, &refresh_token).await;
    assert_eq!(status, 200, "{body}");
    let new_token = body["token"].as_str().expect("token");
    assert_ne!(new_token, token);
    assert!(body["refreshToken"].as_str().is_some());
    assert_eq!(users(&sim, new_token).await.0, 200);

    // A recovery code works in place of the TOTP code, once.
    let (status, body) = json(login(&sim, &recovery[0]).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        sim.admin()
            .account(USER)
            .await
            .expect("state")
            .recovery_codes_left,
        9
    );
    let (status, body) = json(login(&sim, &recovery[0]).await).await;
    assert_eq!(status, 421, "{body}");
}

#[tokio::test]
async fn reused_code_in_same_step_is_rejected() {
    let sim = Sim::start(fast_config(Vendor::Audd)).await;
    let mut codes = enrolled(&sim).await;
    let code = codes.fresh().await;
    assert_eq!(login(&sim, &code).await.status(), 200);
    let (status, body) = json(login(&sim, &code).await).await;
    assert_eq!(status, 421);
    assert_eq!(body["error"], "code_already_used");
    let state = sim.admin().account(USER).await.expect("state");
    assert!(state.last_accepted_step.is_some());
}

#[tokio::test]
async fn enrollment_code_cannot_be_reused_for_the_first_login() {
    let sim = Sim::start(fast_config(Vendor::Audd).with_period(Duration::from_secs(30))).await;
    let secret = get_secret(&sim).await;
    let mut codes = Codes::new(&secret, sim.digits, 30);
    enable(&sim, &mut codes).await;
    let step = sim
        .admin()
        .account(USER)
        .await
        .expect("state")
        .last_accepted_step
        .expect("step");
    let same_step_code = common::code_at(&secret, sim.digits, 30, step * 30);
    assert_eq!(login(&sim, &same_step_code).await.status(), 421);
}

#[tokio::test]
async fn code_one_step_off_is_accepted_and_two_steps_off_is_not() {
    let sim = Sim::start(fast_config(Vendor::Audd).with_period(Duration::from_secs(2))).await;
    let mut codes = enrolled(&sim).await;
    let admin = sim.admin();
    admin
        .set_faults(&Faults {
            clock_skew_steps: 1,
            ..Faults::default()
        })
        .await
        .expect("faults");
    assert_eq!(login(&sim, &codes.fresh().await).await.status(), 200);
    admin
        .set_faults(&Faults {
            clock_skew_steps: -2,
            ..Faults::default()
        })
        .await
        .expect("faults");
    let (status, body) = json(login(&sim, &codes.fresh().await).await).await;
    assert_eq!(status, 421);
    assert_eq!(body["error"], "invalid_code");
}

#[tokio::test]
async fn expired_access_token_is_rejected_by_users() {
    let config = fast_config(Vendor::Audd)
        .with_token_lifetimes(Duration::from_secs(1), Duration::from_secs(10));
    let sim = Sim::start(config).await;
    let mut codes = enrolled(&sim).await;
    let (_, body) = json(login(&sim, &codes.fresh().await).await).await;
    let token = body["token"].as_str().expect("token");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = users(&sim, token).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "token_expired");
}

#[tokio::test]
async fn rotated_refresh_token_is_rejected() {
    let sim = Sim::start(fast_config(Vendor::Audd)).await;
    let mut codes = enrolled(&sim).await;
    let (_, body) = json(login(&sim, &codes.fresh().await).await).await;
    let token = body["token"].as_str().expect("token");
    let old = body["refreshToken"].as_str().expect("refresh");
    assert_eq!(refresh(&sim, token, old).await.0, 200);
    let (status, body) = refresh(&sim, token, old).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "refresh_token_revoked");
}

#[tokio::test]
async fn expired_refresh_token_is_rejected() {
    let config = fast_config(Vendor::Audd)
        .with_token_lifetimes(Duration::from_secs(1), Duration::from_secs(1));
    let sim = Sim::start(config).await;
    let mut codes = enrolled(&sim).await;
    let (_, body) = json(login(&sim, &codes.fresh().await).await).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = refresh(
        &sim,
        body["token"].as_str().expect("token"),
        body["refreshToken"].as_str().expect("refresh"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "refresh_token_expired");
}

#[tokio::test]
async fn refresh_rejected_fault_refuses_a_live_refresh_token() {
    let sim = Sim::start(fast_config(Vendor::Audd)).await;
    let mut codes = enrolled(&sim).await;
    let (_, body) = json(login(&sim, &codes.fresh().await).await).await;
    sim.admin()
        .set_faults(&Faults {
            reject_refresh: true,
            ..Faults::default()
        })
        .await
        .expect("faults");
    let (status, _) = refresh(
        &sim,
        body["token"].as_str().expect("token"),
        body["refreshToken"].as_str().expect("refresh"),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn wrong_codes_lock_the_account_until_retry_after() {
    let config = fast_config(Vendor::Audd).with_lockout(3, Duration::from_secs(2));
    let sim = Sim::start(config).await;
    let mut codes = enrolled(&sim).await;
    for _ in 0..3 {
        assert_eq!(login(&sim, &codes.wrong()).await.status(), 421);
    }
    let response = login(&sim, &codes.fresh().await).await;
    assert_eq!(response.status(), 429);
    let wait = retry_after(&response).expect("Retry-After");
    assert!((1..=2).contains(&wait), "{wait}");
    let (_, body) = json(response).await;
    assert_eq!(body["error"], "locked");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(login(&sim, &codes.fresh().await).await.status(), 200);
}

#[tokio::test]
async fn client_certificate_from_an_unregistered_ca_is_refused() {
    let sim = Sim::start(fast_config(Vendor::Audd)).await;
    let stranger = ClientCa::generate("someone else's CA").expect("ca");
    let identity = stranger.issue("intruder").expect("cert");
    let client = https_client(sim.handle.server_ca_pem(), Some(&identity)).expect("client");
    let result = client
        .get(sim.url("/login/two-factor/secret"))
        .header("Authorization", API_KEY)
        .send()
        .await;
    assert!(result.is_err(), "handshake must fail: {result:?}");

    let anonymous = https_client(sim.handle.server_ca_pem(), None).expect("client");
    let result = anonymous
        .get(sim.url("/login/two-factor/secret"))
        .send()
        .await;
    assert!(result.is_err(), "no certificate must fail: {result:?}");
}

#[tokio::test]
async fn client_ca_registered_at_runtime_is_trusted_on_new_connections() {
    let sim = Sim::start(fast_config(Vendor::Audd)).await;
    let later = ClientCa::generate("registered later").expect("ca");
    let identity = later.issue("bot-2").expect("cert");
    let client = https_client(sim.handle.server_ca_pem(), Some(&identity)).expect("client");
    let url = sim.url("/login/two-factor/secret");
    assert!(
        client
            .get(&url)
            .header("Authorization", API_KEY)
            .send()
            .await
            .is_err()
    );
    let subjects = sim
        .admin()
        .register_client_ca(&later.cert_pem)
        .await
        .expect("register");
    assert_eq!(subjects.len(), 1);
    let response = client
        .get(&url)
        .header("Authorization", API_KEY)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn wrong_api_key_and_wrong_password_get_401_json() {
    let sim = Sim::start(fast_config(Vendor::Audd)).await;
    let (status, body) = json(
        sim.http
            .get(sim.url("/login/two-factor/secret"))
            .header("Authorization", "nope")
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let (status, body) = json(
        sim.http
            .post(sim.url("/mfa/login"))
            .header("Authorization", API_KEY)
            .json(&json!({ "username": USER, "password": "wrong", "mfaCode": "000000" }))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_credentials"))
    );
}

#[tokio::test]
async fn bad_input_gets_4xx_json_never_a_crash() {
    let sim = Sim::start(fast_config(Vendor::Audd)).await;
    let post = |body: reqwest::Body, content_type: &'static str| {
        sim.http
            .post(sim.url("/mfa/login"))
            .header("Authorization", API_KEY)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Body, &str, u16)> = vec![
        ("{not json".into(), "application/json", 400),
        (r#"{"username": "x"}"#.into(), "application/json", 422),
        (
            r#"{"username": 1, "password": [], "mfaCode": {}}"#.into(),
            "application/json",
            422,
        ),
        ("username=x".into(), "text/plain", 415),
        (vec![b'a'; 200 * 1024].into(), "application/json", 413),
    ];
    for (body, content_type, expected) in cases {
        let (status, body) = json(post(body, content_type).await.expect("send")).await;
        assert_eq!(status, expected, "{body}");
        assert!(body["error"].is_string(), "JSON error body: {body}");
    }
    let (status, body) = json(sim.http.get(sim.url("/nope")).send().await.expect("get")).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, body) = json(
        sim.http
            .delete(sim.url("/mfa/login"))
            .send()
            .await
            .expect("del"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    // Still serving.
    assert_eq!(
        sim.http
            .get(sim.url("/login/two-factor/secret"))
            .header("Authorization", API_KEY)
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
}

#[tokio::test]
async fn injected_status_latency_and_down_faults_apply_and_clear() {
    let sim = Sim::start(fast_config(Vendor::Audd)).await;
    let admin = sim.admin();
    let url = sim.url("/login/two-factor/secret");
    let get = || sim.http.get(&url).header("Authorization", API_KEY).send();

    admin
        .set_faults(&Faults {
            error_status: Some(503),
            error_fraction: Some(1.0),
            ..Faults::default()
        })
        .await
        .expect("faults");
    let (status, body) = json(get().await.expect("get")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("injected_fault"))
    );

    admin
        .set_faults(&Faults {
            error_status: Some(200),
            error_body: Some("<html>not what you asked for</html>".into()),
            ..Faults::default()
        })
        .await
        .expect("faults");
    let response = get().await.expect("get");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(
        response.text().await.expect("body"),
        "<html>not what you asked for</html>"
    );

    admin
        .set_faults(&Faults {
            latency_ms: 300,
            ..Faults::default()
        })
        .await
        .expect("faults");
    let started = std::time::Instant::now();
    assert_eq!(get().await.expect("get").status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    admin
        .set_faults(&Faults {
            down: true,
            ..Faults::default()
        })
        .await
        .expect("faults");
    let fresh = https_client(sim.handle.server_ca_pem(), sim.identity.as_ref()).expect("client");
    assert!(
        fresh
            .get(&url)
            .header("Authorization", API_KEY)
            .send()
            .await
            .is_err()
    );
    assert_eq!(get().await.expect("kept-alive connection").status(), 503);

    admin.clear_faults().await.expect("clear");
    assert_eq!(admin.faults().await.expect("faults"), Faults::default());
    assert_eq!(get().await.expect("get").status(), 200);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sim = Sim::start(fast_config(Vendor::Audd)).await;
    let url = sim.url("/login/two-factor/secret");
    let Sim {
        handle, identity, ..
    } = sim;
    let ca = handle.server_ca_pem().to_owned();
    handle.shutdown().await;
    let client = https_client(&ca, identity.as_ref()).expect("client");
    assert!(client.get(&url).send().await.is_err());
}

#[tokio::test]
async fn refresh_answers_fusionauths_shape_without_an_expiry_instant() {
    let sim = Sim::start(fast_config(Vendor::Audd)).await;
    let mut codes = enrolled(&sim).await;
    let (status, body) = json(login(&sim, &codes.fresh().await).await).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = refresh(
        &sim,
        body["token"].as_str().expect("token"),
        body["refreshToken"].as_str().expect("refresh"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["refreshToken", "refreshTokenId", "token"], "{body}");
    // The expiry is in the JWT: 5 minutes, the document's lifetime.
    let claims = common::jwt_claims(body["token"].as_str().expect("token"));
    let lifetime = claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat");
    assert_eq!(lifetime, 300);
    let refresh_id =
        common::jwt_claims(body["refreshToken"].as_str().expect("refresh"))["jti"].clone();
    assert_eq!(body["refreshTokenId"], refresh_id);
}

#[tokio::test]
async fn lock_out_answers_with_the_status_the_tenant_uses() {
    for status in [409_u16, 423] {
        let config = fast_config(Vendor::Audd)
            .with_lockout(2, Duration::from_secs(30))
            .with_lockout_status(status);
        let sim = Sim::start(config).await;
        let mut codes = enrolled(&sim).await;
        for _ in 0..2 {
            assert_eq!(login(&sim, &codes.wrong()).await.status(), 421);
        }
        let response = login(&sim, &codes.fresh().await).await;
        assert_eq!(response.status().as_u16(), status);
        // FusionAuth's 409/423 say nothing about when the lock ends.
        assert_eq!(retry_after(&response), None);
        let (_, body) = json(response).await;
        assert_eq!(body["error"], "locked");
    }
}
