//! Conduit platform v0.15 (vendor doc 002). Local login answers an
//! unauthorized token while 2FA is on; `/twoFa/verify` or `/twoFa/recover`
//! exchange it for access + refresh tokens; enabling, disabling and
//! generating backup codes need "sudo" (a fresh full login).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::{RecoveryFormat, new_id, recovery_codes};
use crate::error::{ApiError, ApiJson};
use crate::mfa::{Against, Refused, check_code, check_recovery};
use crate::state::{AppState, SharedState};
use crate::tokens::{Claims, Extra, TokenError, TokenKind};
use crate::totp::{new_secret, otpauth_uri, to_base32};
use crate::vendors::{
    IssuedTokens, RefreshRefused, bearer_claims, issue_tokens, locked_out, rotate_refresh,
};

const SECRET_BYTES: usize = 20;
const BACKUP_CODES: usize = 10;

/// The Conduit routes.
pub fn routes(state: SharedState) -> Router {
    Router::new()
        .route("/authentication/local", post(local_login))
        .route("/authentication/renew", post(renew))
        .route("/authentication/user", get(user))
        .route("/authentication/twoFa/enable", put(enable))
        .route("/authentication/twoFa/enable/verify", post(enable_verify))
        .route("/authentication/twoFa/authorize", post(authorize))
        .route("/authentication/twoFa/verify", post(verify))
        .route("/authentication/twoFa/recover", post(recover))
        .route("/authentication/twoFa/generate", get(generate))
        .route("/authentication/twoFa/disable", put(disable))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client_validation,
        ))
        .with_state(state)
}

// Conduit's client validation: with it on, every request names the
// application in `clientid` / `clientsecret` headers (the error body is ours).
async fn client_validation(
    State(state): State<SharedState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(expected) = &state.config.client_credentials {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let id_ok =
            crate::totp::constant_time_eq(header("clientid").as_bytes(), expected.id.as_bytes());
        let secret_ok = crate::totp::constant_time_eq(
            header("clientsecret").as_bytes(),
            expected.secret.as_bytes(),
        );
        if !(id_ok && secret_ok) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client validation failed: send this application's clientid and clientsecret headers",
            )
            .into_response();
        }
    }
    next.run(request).await
}

// Tokens from a full login (password without 2FA, 2FA verify, recover).
fn full_login() -> Extra {
    Extra {
        authorized: Some(true),
        sudo: Some(true),
        id_claim: true,
        ..Extra::default()
    }
}

fn tokens_body(tokens: &IssuedTokens) -> Value {
    json!({ "accessToken": tokens.access, "refreshToken": tokens.refresh })
}

fn refused(state: &AppState, refused: Refused) -> ApiError {
    match refused {
        Refused::Locked { retry_after_secs } => locked_out(state, retry_after_secs),
        Refused::Invalid => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_code", "Invalid code"),
        Refused::Reused => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "code_already_used",
            "Code already used; wait for the next time step",
        ),
        Refused::NotEnrolled => {
            ApiError::new(StatusCode::FORBIDDEN, "2fa_disabled", "2FA disabled")
        }
    }
}

fn token_error(error: TokenError) -> ApiError {
    match error {
        TokenError::Expired => {
            ApiError::new(StatusCode::UNAUTHORIZED, "token_expired", "Token expired")
        }
        TokenError::WrongKind => ApiError::unauthorized("this token cannot be used here"),
        TokenError::Invalid => ApiError::unauthorized("Authorization: Bearer <token> is required"),
    }
}

fn access(state: &SharedState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    bearer_claims(state, headers, "Bearer", TokenKind::Access).map_err(token_error)
}

fn sudo(state: &SharedState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let claims = access(state, headers)?;
    if claims.sudo != Some(true) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "sudo_required",
            "Re-login required to enter sudo mode",
        ));
    }
    Ok(claims)
}

fn challenge(state: &SharedState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    bearer_claims(state, headers, "Bearer", TokenKind::Challenge).map_err(token_error)
}

fn no_user() -> ApiError {
    ApiError::unauthorized("User not found")
}

#[derive(Debug, Deserialize)]
struct LocalBody {
    // Only `email`: a client sending `username` would pass a lenient
    // simulator and fail against a deployment whose identifier is email.
    email: String,
    password: String,
}

/// `POST /authentication/local`: tokens, or an unauthorized token while
/// 2FA is on.
async fn local_login(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<LocalBody>,
) -> Result<Json<Value>, ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Invalid login credentials",
        )
    };
    state
        .accounts
        .with_username(&body.email, |account| {
            if !account.password_matches(&body.password) {
                return Err(invalid());
            }
            if account.is_enrolled() {
                let (token, _) = state
                    .tokens
                    .issue(
                        &account.id,
                        TokenKind::Challenge,
                        state.config.challenge_token_lifetime,
                        state.now_secs(),
                        Extra {
                            id_claim: true,
                            ..Extra::default()
                        },
                    )
                    .map_err(|_| ApiError::internal("failed to sign a token"))?;
                return Ok(Json(
                    json!({ "accessToken": token, "message": "2FA required" }),
                ));
            }
            let tokens = issue_tokens(&state, account, full_login(), true)?;
            Ok(Json(tokens_body(&tokens)))
        })
        .unwrap_or_else(|| Err(invalid()))
}

/// `POST /authentication/renew` with the refresh token as bearer.
async fn renew(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let token = crate::vendors::authorization(&headers, "Bearer").ok_or_else(|| {
        ApiError::unauthorized("Authorization: Bearer <refresh token> is required")
    })?;
    let renewed = Extra {
        authorized: Some(true),
        sudo: None,
        id_claim: true,
        ..Extra::default()
    };
    let (_, tokens) = rotate_refresh(&state, token, renewed).map_err(|e| match e {
        RefreshRefused::Invalid => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
            "Invalid refresh token",
        ),
        RefreshRefused::Expired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "refresh_token_expired",
            "Refresh token expired",
        ),
        RefreshRefused::Revoked => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "refresh_token_revoked",
            "Refresh token already used or revoked",
        ),
    })?;
    Ok(Json(tokens_body(&tokens)))
}

/// `GET /authentication/user` (ours): the caller.
async fn user(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let claims = access(&state, &headers)?;
    state
        .accounts
        .with_id(&claims.sub, |a| Json(json!({ "user": { "_id": a.id, "email": a.username, "hasTwoFA": a.is_enrolled() } })))
        .ok_or_else(no_user)
}

#[derive(Debug, Deserialize)]
struct EnableBody {
    method: String,
}

// The chart URL's `chl` carries the otpauth URI escaped once, as in the
// document: `otpauth://totp/` stays literal, the rest is escaped.
const CHL: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b':')
    .add(b'?')
    .add(b'@')
    .add(b'|');

/// `PUT /authentication/twoFa/enable {method: "authenticator"}` (sudo).
async fn enable(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EnableBody>,
) -> Result<Json<Value>, ApiError> {
    let claims = sudo(&state, &headers)?;
    match body.method.as_str() {
        "authenticator" => {}
        "sms" => {
            return Err(ApiError::bad_request(
                "the simulator supports only the authenticator method",
            ));
        }
        _ => return Err(ApiError::bad_request("method must be sms or authenticator")),
    }
    state
        .accounts
        .with_id(&claims.sub, |account| {
            if account.is_enrolled() {
                return Err(ApiError::conflict("2FA already enabled"));
            }
            let secret = new_secret(SECRET_BYTES);
            let uri = otpauth_uri("Conduit", &account.username, &to_base32(&secret), &state.config.totp, false);
            account.set_pending(new_id(), secret);
            let rest = uri.strip_prefix("otpauth://totp/").unwrap_or(&uri);
            let chl = format!("otpauth://totp/{}", utf8_percent_encode(rest, CHL));
            Ok(Json(json!({
                "result": format!("https://chart.googleapis.com/chart?chs=166x166&chld=L|0&cht=qr&chl={chl}"),
            })))
        })
        .unwrap_or_else(|| Err(no_user()))
}

#[derive(Debug, Deserialize)]
struct CodeBody {
    code: String,
}

/// `POST /authentication/twoFa/enable/verify {code}`.
async fn enable_verify(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<Value>, ApiError> {
    let claims = access(&state, &headers)?;
    state
        .accounts
        .with_id(&claims.sub, |account| {
            if account.pending.is_none() {
                return Err(ApiError::bad_request("2FA enable was not requested"));
            }
            check_code(&state, account, Against::Pending, &body.code, false)
                .map_err(|e| refused(&state, e))?;
            account.activate_pending();
            Ok(Json(json!({ "message": "2FA enabled" })))
        })
        .unwrap_or_else(|| Err(no_user()))
}

/// `POST /authentication/twoFa/authorize` with the unauthorized token.
async fn authorize(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let claims = challenge(&state, &headers)?;
    let enrolled = state
        .accounts
        .with_id(&claims.sub, |a| a.is_enrolled())
        .ok_or_else(no_user)?;
    Ok(Json(if enrolled {
        json!({ "method": "authenticator", "message": "Check your authenticator app for the code" })
    } else {
        json!({ "message": "2FA disabled" })
    }))
}

/// `POST /authentication/twoFa/verify {code}`: access + refresh tokens.
async fn verify(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<Value>, ApiError> {
    let claims = challenge(&state, &headers)?;
    state
        .accounts
        .with_id(&claims.sub, |account| {
            check_code(&state, account, Against::Enrolled, &body.code, false)
                .map_err(|e| refused(&state, e))?;
            let tokens = issue_tokens(&state, account, full_login(), true)?;
            Ok(Json(tokens_body(&tokens)))
        })
        .unwrap_or_else(|| Err(no_user()))
}

/// `POST /authentication/twoFa/recover {code}`: a backup code (8 digits,
/// the space optional) instead of the TOTP code.
async fn recover(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<Value>, ApiError> {
    let claims = challenge(&state, &headers)?;
    state
        .accounts
        .with_id(&claims.sub, |account| {
            let left =
                check_recovery(&state, account, &body.code).map_err(|e| refused(&state, e))?;
            let tokens = issue_tokens(&state, account, full_login(), true)?;
            let mut body = tokens_body(&tokens);
            body["message"] = json!(format!("You have {left} back up codes left"));
            Ok(Json(body))
        })
        .unwrap_or_else(|| Err(no_user()))
}

/// `GET /authentication/twoFa/generate` (sudo): 10 new backup codes,
/// replacing any old ones.
async fn generate(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let claims = sudo(&state, &headers)?;
    state
        .accounts
        .with_id(&claims.sub, |account| {
            if !account.is_enrolled() {
                return Err(refused(&state, Refused::NotEnrolled));
            }
            account.recovery_codes = recovery_codes(RecoveryFormat::Conduit, BACKUP_CODES);
            Ok(Json(json!({ "codes": account.recovery_codes })))
        })
        .unwrap_or_else(|| Err(no_user()))
}

/// `PUT /authentication/twoFa/disable` (sudo).
async fn disable(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let claims = sudo(&state, &headers)?;
    state
        .accounts
        .with_id(&claims.sub, |account| account.disable_mfa())
        .ok_or_else(no_user)?;
    Ok(Json(json!({ "message": "2FA disabled" })))
}
