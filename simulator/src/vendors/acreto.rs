//! Acreto (vendor doc 003). Calls that need a second factor answer 424
//! with code 16432 until repeated with an `X-OTP` header; `POST`/`PATCH
//! /v2/users/{username}/otp` create and activate the secret.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::{Account, new_id};
use crate::error::{ApiError, ApiJson};
use crate::mfa::{Against, Refused, check_code};
use crate::state::SharedState;
use crate::tokens::{Claims, Extra, TokenError, TokenKind};
use crate::totp::{new_secret, otpauth_uri, to_base32};
use crate::vendors::{bearer_claims, issue_tokens};

const SECRET_BYTES: usize = 20;

// Codes from the document (16432, 16434) and ours for what it does not show.
const CODE_MFA_REQUIRED: u32 = 16432;
const CODE_OTP_INVALID: u32 = 16434;
const CODE_INVALID_CREDENTIALS: u32 = 16385;
const CODE_UNAUTHENTICATED: u32 = 16401;
const CODE_FORBIDDEN: u32 = 16403;
const CODE_LOCKED: u32 = 16429;
const CODE_BAD_REQUEST: u32 = 16400;

// A 1×1 PNG: the simulator does not draw QR codes; clients use `url`.
const PLACEHOLDER_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==";

fn error(status: StatusCode, code: u32, message: &str) -> ApiError {
    ApiError::with_body(status, json!({ "code": code, "message": message }))
}

fn mfa_required() -> ApiError {
    // The document's message, typo included.
    error(
        StatusCode::FAILED_DEPENDENCY,
        CODE_MFA_REQUIRED,
        "This operation requires multi-factor authentication. Please retry with proper multi-factor authentication infromation.",
    )
}

fn refused(refused: Refused, status: StatusCode) -> ApiError {
    match refused {
        Refused::Locked { retry_after_secs } => error(
            StatusCode::TOO_MANY_REQUESTS,
            CODE_LOCKED,
            "Too many invalid one-time passwords. Try again later.",
        )
        .retry_after(retry_after_secs),
        Refused::Invalid | Refused::Reused => error(
            status,
            CODE_OTP_INVALID,
            "One-time password is invalid or already used.",
        ),
        Refused::NotEnrolled => error(
            StatusCode::BAD_REQUEST,
            CODE_BAD_REQUEST,
            "One-time password is not configured.",
        ),
    }
}

fn token_error(e: TokenError) -> ApiError {
    let message = match e {
        TokenError::Expired => "Token expired.",
        _ => "Authentication required.",
    };
    error(StatusCode::UNAUTHORIZED, CODE_UNAUTHENTICATED, message)
}

/// The Acreto routes.
pub fn routes(state: SharedState) -> Router {
    Router::new()
        .route("/v2/auth/login", post(login))
        .route("/v2/users/{username}", get(user))
        .route("/v2/users/{username}/otp", post(generate).patch(activate))
        .with_state(state)
}

fn x_otp(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-otp")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

// An enrolled account must send X-OTP: 424 without it, 16434 when wrong.
fn second_factor(
    state: &SharedState,
    account: &mut Account,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if !account.is_enrolled() {
        return Ok(());
    }
    let code = x_otp(headers).ok_or_else(mfa_required)?;
    check_code(state, account, Against::Enrolled, &code, false)
        .map(|_| ())
        .map_err(|e| refused(e, StatusCode::UNAUTHORIZED))
}

#[derive(Debug, Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// `POST /v2/auth/login` (+ `X-OTP` once MFA is on).
async fn login(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    let invalid = || {
        error(
            StatusCode::UNAUTHORIZED,
            CODE_INVALID_CREDENTIALS,
            "Invalid username or password.",
        )
    };
    state
        .accounts
        .with_username(&body.username, |account| {
            if !account.password_matches(&body.password) {
                return Err(invalid());
            }
            second_factor(&state, account, &headers)?;
            let tokens = issue_tokens(&state, account, Extra::default(), false)?;
            Ok(Json(json!({
                "accessToken": tokens.access,
                "customers": [{ "name": format!("{} customer", account.username), "uuid": account.id }],
                "expiry": state.config.access_token_lifetime.as_secs(),
            })))
        })
        .unwrap_or_else(|| Err(invalid()))
}

// The bearer's own username only.
fn owner(state: &SharedState, headers: &HeaderMap, username: &str) -> Result<Claims, ApiError> {
    let claims = bearer_claims(state, headers, "Bearer", TokenKind::Access).map_err(token_error)?;
    let same = state
        .accounts
        .with_id(&claims.sub, |a| a.username.eq_ignore_ascii_case(username))
        .unwrap_or(false);
    if !same {
        return Err(error(StatusCode::FORBIDDEN, CODE_FORBIDDEN, "Forbidden."));
    }
    Ok(claims)
}

/// `GET /v2/users/{username}` (ours): a protected endpoint.
async fn user(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let claims = owner(&state, &headers, &username)?;
    state
        .accounts
        .with_id(&claims.sub, |a| {
            Json(json!({ "username": a.username, "uuid": a.id, "otpEnabled": a.is_enrolled() }))
        })
        .ok_or_else(|| token_error(TokenError::Invalid))
}

/// `POST /v2/users/{username}/otp`: a new secret (barcode, secret, url).
/// Re-keying an enrolled account needs `X-OTP`.
async fn generate(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let claims = owner(&state, &headers, &username)?;
    state
        .accounts
        .with_id(&claims.sub, |account| {
            second_factor(&state, account, &headers)?;
            let secret = new_secret(SECRET_BYTES);
            let b32 = to_base32(&secret);
            account.set_pending(new_id(), secret);
            Ok(Json(json!({
                "barcode": PLACEHOLDER_PNG,
                "secret": b32,
                "url": otpauth_uri("Acreto", &account.username, &b32, &state.config.totp, true),
            })))
        })
        .unwrap_or_else(|| Err(token_error(TokenError::Invalid)))
}

#[derive(Debug, Deserialize)]
struct ActivateBody {
    code: String,
}

/// `PATCH /v2/users/{username}/otp {code}`: 204 once the code matches.
async fn activate(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<ActivateBody>,
) -> Result<Response, ApiError> {
    let claims = owner(&state, &headers, &username)?;
    state
        .accounts
        .with_id(&claims.sub, |account| {
            if account.pending.is_none() {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    CODE_BAD_REQUEST,
                    "Generate TOTP keys first.",
                ));
            }
            check_code(&state, account, Against::Pending, &body.code, false)
                .map_err(|e| refused(e, StatusCode::BAD_REQUEST))?;
            account.activate_pending();
            Ok(StatusCode::NO_CONTENT.into_response())
        })
        .unwrap_or_else(|| Err(token_error(TokenError::Invalid)))
}
