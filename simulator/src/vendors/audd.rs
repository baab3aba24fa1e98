//! AUDD Mint distributor API (vendor doc 000; FusionAuth underneath).
//! Every route needs a client certificate chaining to a registered CA.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::{RecoveryFormat, recovery_codes};
use crate::error::{ApiError, ApiJson};
use crate::mfa::{Against, Refused, check_code};
use crate::serve::PeerCertificates;
use crate::state::{AppState, SharedState};
use crate::tokens::{Extra, TokenError, TokenKind};
use crate::totp::{from_base32, new_secret, to_base32};
use crate::vendors::{
    RefreshRefused, authorization, bearer_claims, instant_ms, issue_tokens, locked_out,
    rotate_refresh,
};

// FusionAuth's example secret is 15 bytes (24 base32 characters).
const SECRET_BYTES: usize = 15;
const RECOVERY_CODES: usize = 10;

/// The AUDD routes.
pub fn routes(state: SharedState) -> Router {
    Router::new()
        .route("/login/two-factor/secret", get(secret))
        .route("/mfa/enable", post(enable))
        .route("/mfa/login", post(login))
        .route("/login/jwt/refresh", post(refresh))
        .route("/users", get(users))
        .layer(middleware::from_fn(require_client_certificate))
        .with_state(state)
}

// The TLS layer already refuses connections without a certificate from a
// registered CA; this keeps the routes honest if that ever changes.
async fn require_client_certificate(request: Request, next: Next) -> Response {
    let present = request
        .extensions()
        .get::<PeerCertificates>()
        .is_some_and(PeerCertificates::present);
    if !present {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            "mTLS with a client certificate from a registered CA is required",
        )
        .into_response();
    }
    next.run(request).await
}

fn invalid_api_key() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "the API key is not valid",
    )
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "username or password is incorrect",
    )
}

fn refused(state: &AppState, refused: Refused) -> ApiError {
    match refused {
        Refused::Locked { retry_after_secs } => locked_out(state, retry_after_secs),
        // FusionAuth answers 421 for a code it does not accept.
        Refused::Invalid => ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "invalid_code",
            "the code is not valid",
        ),
        Refused::Reused => ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "code_already_used",
            "the code was already used; wait for the next time step",
        ),
        Refused::NotEnrolled => ApiError::new(
            StatusCode::BAD_REQUEST,
            "mfa_not_enabled",
            "two-factor authentication is not enabled for this user",
        ),
    }
}

/// `GET /login/two-factor/secret` with `Authorization: <api key>`.
async fn secret(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let key = authorization(&headers, "").ok_or_else(invalid_api_key)?;
    state
        .accounts
        .id_for_api_key(key)
        .ok_or_else(invalid_api_key)?;
    let bytes = new_secret(SECRET_BYTES);
    Ok(Json(json!({
        "secret": base64::engine::general_purpose::STANDARD.encode(&bytes),
        "secretBase32Encoded": to_base32(&bytes),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnableBody {
    username: String,
    password: String,
    mfa_secret_b32: String,
    mfa_code: String,
}

/// `POST /mfa/enable`: registers the secret, answers the recovery codes.
async fn enable(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EnableBody>,
) -> Result<Json<Value>, ApiError> {
    let key = authorization(&headers, "").ok_or_else(invalid_api_key)?;
    let secret = from_base32(&body.mfa_secret_b32)
        .ok_or_else(|| ApiError::bad_request("mfaSecretB32 is not valid base32"))?;
    state
        .accounts
        .with_username(&body.username, |account| {
            if !account.api_key_matches(key) {
                return Err(invalid_api_key());
            }
            if !account.password_matches(&body.password) {
                return Err(invalid_credentials());
            }
            if account.is_enrolled() {
                return Err(ApiError::conflict(
                    "two-factor authentication is already enabled",
                ));
            }
            account.set_pending(crate::accounts::new_id(), secret);
            match check_code(&state, account, Against::Pending, &body.mfa_code, false) {
                Ok(_) => {
                    account.activate_pending();
                    account.recovery_codes =
                        recovery_codes(RecoveryFormat::FusionAuth, RECOVERY_CODES);
                    Ok(Json(json!({ "recoveryCodes": account.recovery_codes })))
                }
                Err(e) => {
                    account.pending = None;
                    Err(refused(&state, e))
                }
            }
        })
        .unwrap_or_else(|| Err(invalid_credentials()))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody {
    username: String,
    password: String,
    mfa_code: String,
}

/// `POST /mfa/login`: password + TOTP (or a recovery code) → tokens.
async fn login(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    let key = authorization(&headers, "").ok_or_else(invalid_api_key)?;
    state
        .accounts
        .with_username(&body.username, |account| {
            if !account.api_key_matches(key) {
                return Err(invalid_api_key());
            }
            if !account.password_matches(&body.password) {
                return Err(invalid_credentials());
            }
            check_code(&state, account, Against::Enrolled, &body.mfa_code, true)
                .map_err(|e| refused(&state, e))?;
            let tokens = issue_tokens(&state, account, Extra::default(), true)?;
            Ok(Json(json!({
                "token": tokens.access,
                "refreshToken": tokens.refresh,
                "tokenExpirationInstant": instant_ms(tokens.access_exp),
            })))
        })
        .unwrap_or_else(|| Err(invalid_credentials()))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    refresh_token: String,
    // Sent by the doc's client; FusionAuth does not need it to refresh.
    #[allow(dead_code)]
    access_token: Option<String>,
}

/// `POST /login/jwt/refresh`: a new token and a new refresh token.
async fn refresh(
    State(state): State<SharedState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<Value>, ApiError> {
    let (_, tokens) =
        rotate_refresh(&state, &body.refresh_token, Extra::default()).map_err(|e| {
            let (code, message) = match e {
                RefreshRefused::Invalid => {
                    ("invalid_refresh_token", "the refresh token is not valid")
                }
                RefreshRefused::Expired => {
                    ("refresh_token_expired", "the refresh token has expired")
                }
                RefreshRefused::Revoked => (
                    "refresh_token_revoked",
                    "the refresh token was already used or revoked",
                ),
            };
            ApiError::new(StatusCode::UNAUTHORIZED, code, message)
        })?;
    // FusionAuth's refresh answers the new pair and the refresh token's id,
    // no expiry instant: a client reads the JWT's `exp`.
    let refresh_token_id = tokens
        .refresh_jti
        .clone()
        .ok_or_else(|| ApiError::internal("no refresh token was issued"))?;
    Ok(Json(json!({
        "token": tokens.access,
        "refreshToken": tokens.refresh,
        "refreshTokenId": refresh_token_id,
    })))
}

/// `GET /users` with `Authorization: Bearer <token>`: the caller.
async fn users(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let claims =
        bearer_claims(&state, &headers, "Bearer", TokenKind::Access).map_err(|e| match e {
            TokenError::Expired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the JWT has expired",
            ),
            _ => ApiError::unauthorized("a valid JWT bearer token is required"),
        })?;
    let user = state
        .accounts
        .with_id(
            &claims.sub,
            |a| json!({ "id": a.id, "username": a.username }),
        )
        .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    Ok(Json(json!({ "users": [user] })))
}
