//! Cryptr over HTTPS: enrollment (otpauth URI + five newline-separated
//! recovery codes, form bodies), validation, challenge validation with
//! `success` / `recovery_code_used`, and re-enrollment after a recovery code.

mod common;

use common::{API_KEY, Codes, Sim, USER, fast_config, json};
use otpilot_sim::Vendor;
use serde_json::Value;

async fn access_token(sim: &Sim) -> String {
    let (status, body) = json(
        sim.http
            .post(sim.url("/api/v2/oauth/token"))
            .form(&[
                ("client_id", USER),
                ("client_secret", API_KEY),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .expect("token"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

fn path(sim: &Sim, what: &str) -> String {
    sim.url(&format!("/api/v2/org/otpilot-dev/{what}/{}", sim.user_id))
}

async fn enroll(sim: &Sim, token: &str, force: bool) -> (u16, Value) {
    let force = if force { "true" } else { "false" };
    json(
        sim.http
            .post(path(sim, "totp-enrollment"))
            .bearer_auth(token)
            .form(&[("force_enroll", force)])
            .send()
            .await
            .expect("enroll"),
    )
    .await
}

async fn validate(sim: &Sim, token: &str, what: &str, code: &str) -> (u16, Value) {
    let request = if what == "totp-enrollment/validation" {
        sim.http.put(path(sim, what))
    } else {
        sim.http.post(path(sim, what))
    };
    json(
        request
            .bearer_auth(token)
            .form(&[("code", code)])
            .send()
            .await
            .expect("validate"),
    )
    .await
}

async fn enrolled(sim: &Sim, token: &str) -> (Codes, Vec<String>) {
    let (status, body) = enroll(sim, token, false).await;
    assert_eq!(status, 201, "{body}");
    let uri = url::Url::parse(body["otp_uri"].as_str().expect("uri")).expect("otpauth");
    let secret = uri
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .expect("secret")
        .1
        .to_string();
    let recovery: Vec<String> = body["recovery_codes"]
        .as_str()
        .expect("codes")
        .split('\n')
        .map(str::to_owned)
        .collect();
    assert_eq!(recovery.len(), 5);
    let mut codes = Codes::new(&secret, sim.digits, sim.period);
    let (status, body) = validate(
        sim,
        token,
        "totp-enrollment/validation",
        &codes.fresh().await,
    )
    .await;
    assert_eq!(
        (status, &body["success"]),
        (200, &Value::Bool(true)),
        "{body}"
    );
    (codes, recovery)
}

#[tokio::test]
async fn cryptr_full_flow_enroll_validate_challenge_recovery_reenroll() {
    let sim = Sim::start(fast_config(Vendor::Cryptr)).await;
    let token = access_token(&sim).await;
    let (mut codes, recovery) = enrolled(&sim, &token).await;

    let (status, body) = validate(
        &sim,
        &token,
        "totp-challenge/validation",
        &codes.fresh().await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["recovery_code_used"], false);
    assert_eq!(body["__type__"], "TotpChallenge");

    let (status, body) = validate(&sim, &token, "totp-challenge/validation", &codes.wrong()).await;
    assert_eq!((status, &body["success"]), (422, &Value::Bool(false)));

    // A recovery code succeeds once and then the user must enroll again.
    let (status, body) = validate(&sim, &token, "totp-challenge/validation", &recovery[0]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recovery_code_used"], true);
    let state = sim.admin().account(USER).await.expect("state");
    assert!(state.needs_reenrollment);
    assert_eq!(state.recovery_codes_left, 4);
    let (status, body) = validate(
        &sim,
        &token,
        "totp-challenge/validation",
        &codes.fresh().await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("enrollment_required"))
    );

    // Re-enrolling (not forced) keeps the four codes left.
    let (status, body) = enroll(&sim, &token, false).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["recovery_codes"]
            .as_str()
            .expect("codes")
            .split('\n')
            .count(),
        4
    );
}

#[tokio::test]
async fn cryptr_enrolled_user_needs_force_enroll_for_new_codes() {
    let sim = Sim::start(fast_config(Vendor::Cryptr)).await;
    let token = access_token(&sim).await;
    enrolled(&sim, &token).await;
    assert_eq!(enroll(&sim, &token, false).await.0, 409);
    let (status, body) = enroll(&sim, &token, true).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["recovery_codes"]
            .as_str()
            .expect("codes")
            .lines()
            .count(),
        5
    );
}

#[tokio::test]
async fn cryptr_calls_without_a_token_are_refused() {
    let sim = Sim::start(fast_config(Vendor::Cryptr)).await;
    let (status, body) = json(
        sim.http
            .post(path(&sim, "totp-enrollment"))
            .form(&[("force_enroll", "false")])
            .send()
            .await
            .expect("enroll"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
}

#[tokio::test]
async fn cryptr_token_call_requires_the_grant_type() {
    let sim = Sim::start(fast_config(Vendor::Cryptr)).await;
    let (status, body) = json(
        sim.http
            .post(sim.url("/api/v2/oauth/token"))
            .form(&[("client_id", USER), ("client_secret", API_KEY)])
            .send()
            .await
            .expect("token"),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = json(
        sim.http
            .post(sim.url("/api/v2/oauth/token"))
            .form(&[
                ("client_id", USER),
                ("client_secret", API_KEY),
                ("grant_type", "password"),
            ])
            .send()
            .await
            .expect("token"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    // A body sent as text/plain is not read as a form or as JSON.
    let (status, _) = json(
        sim.http
            .post(sim.url("/api/v2/oauth/token"))
            .header("content-type", "text/plain")
            .body("client_id=x&client_secret=y&grant_type=client_credentials")
            .send()
            .await
            .expect("token"),
    )
    .await;
    assert_eq!(status, 415);
}
