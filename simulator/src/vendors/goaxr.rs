//! goaxr cloud (vendor doc 001; AcceleratXR underneath). The document shows
//! only secret creation and enrollment; the two-step login (password →
//! CHALLENGE token → TOTP) follows the vendor's public behaviour, and its
//! paths are ours (see the README).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::{RecoveryFormat, new_id, recovery_codes};
use crate::error::{ApiError, ApiJson};
use crate::mfa::{Against, Refused, check_code};
use crate::state::{AppState, SharedState};
use crate::tokens::{Claims, Extra, TokenError, TokenKind};
use crate::totp::{new_secret, otpauth_uri, to_base32};
use crate::vendors::{authorization, bearer_claims, issue_tokens, locked_out};

// The document's example secret is 24 characters: 15 bytes of base32.
const SECRET_BYTES: usize = 15;
const BACKUP_CODES: usize = 10;
const SCHEME: &str = "jwt";

/// The goaxr routes.
pub fn routes(state: SharedState) -> Router {
    Router::new()
        .route("/auth/password", post(password_login))
        .route("/auth/totp", post(totp_login))
        .route("/users/{user_id}", get(user))
        .route("/users/{user_id}/secrets", post(create_secret))
        .route("/users/{user_id}/secrets/{secret_id}/enroll", put(enroll))
        .with_state(state)
}

fn refused(state: &AppState, refused: Refused) -> ApiError {
    match refused {
        Refused::Locked { retry_after_secs } => locked_out(state, retry_after_secs),
        Refused::Invalid => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_code",
            "the MFA token is not valid",
        ),
        Refused::Reused => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "code_already_used",
            "the MFA token was already used; wait for the next time step",
        ),
        Refused::NotEnrolled => ApiError::new(
            StatusCode::BAD_REQUEST,
            "mfa_not_enabled",
            "MFA is not enabled",
        ),
    }
}

fn token_error(error: TokenError) -> ApiError {
    match error {
        TokenError::Expired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_expired",
            "the token has expired",
        ),
        TokenError::WrongKind => ApiError::unauthorized("this token cannot be used here"),
        TokenError::Invalid => ApiError::unauthorized("Authorization: jwt <token> is required"),
    }
}

// The caller's full token, for its own user only.
fn owner(state: &SharedState, headers: &HeaderMap, user_id: &str) -> Result<Claims, ApiError> {
    let claims = bearer_claims(state, headers, SCHEME, TokenKind::Access).map_err(token_error)?;
    if claims.sub != user_id {
        return Err(ApiError::forbidden(
            "the token does not belong to this user",
        ));
    }
    Ok(claims)
}

// The document's example sends the code as a bare number; accept both,
// restoring leading zeros.
fn code_text(value: &Value, digits: u8) -> Result<String, ApiError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        // serde_json's Number ignores width and fill when displayed: pad the integer.
        Value::Number(n) => match n.as_u64() {
            Some(n) => Ok(format!("{n:0width$}", width = usize::from(digits))),
            None => Err(ApiError::bad_request("token must be a string of digits")),
        },
        _ => Err(ApiError::bad_request("token must be a string of digits")),
    }
}

/// `user:password` from `Authorization: Basic ...` (RFC 7617).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let encoded = authorization(headers, "Basic")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `POST /auth/password` with `Authorization: Basic <user:password>`
/// (AcceleratXR's password login): the full token, or a CHALLENGE token
/// when MFA is on. Credentials in a JSON body are not read.
async fn password_login(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "username or password is incorrect",
        )
    };
    let (username, password) = basic_credentials(&headers).ok_or_else(|| {
        ApiError::unauthorized("Authorization: Basic <base64 of user:password> is required")
    })?;
    state
        .accounts
        .with_username(&username, |account| {
            if !account.password_matches(&password) {
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
                        Extra::default(),
                    )
                    .map_err(|_| ApiError::internal("failed to sign a token"))?;
                return Ok(Json(
                    json!({ "token": token, "type": "CHALLENGE", "uid": account.id }),
                ));
            }
            let tokens = issue_tokens(&state, account, Extra::default(), false)?;
            Ok(Json(
                json!({ "token": tokens.access, "type": "FULL", "uid": account.id }),
            ))
        })
        .unwrap_or_else(|| Err(invalid()))
}

#[derive(Debug, Deserialize)]
struct TotpBody {
    token: Value,
}

/// `POST /auth/totp` with `Authorization: jwt <CHALLENGE>`: the full token.
/// A backup code works in place of the TOTP code.
async fn totp_login(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TotpBody>,
) -> Result<Json<Value>, ApiError> {
    let claims =
        bearer_claims(&state, &headers, SCHEME, TokenKind::Challenge).map_err(token_error)?;
    let code = code_text(&body.token, state.config.totp.digits)?;
    state
        .accounts
        .with_id(&claims.sub, |account| {
            check_code(&state, account, Against::Enrolled, &code, true)
                .map_err(|e| refused(&state, e))?;
            let tokens = issue_tokens(&state, account, Extra::default(), false)?;
            Ok(Json(
                json!({ "token": tokens.access, "type": "FULL", "uid": account.id }),
            ))
        })
        .unwrap_or_else(|| Err(ApiError::unauthorized("the user no longer exists")))
}

/// `GET /users/:id`: the caller's profile (ours: a protected endpoint).
async fn user(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    owner(&state, &headers, &user_id)?;
    state
        .accounts
        .with_id(&user_id, |a| {
            Json(json!({ "uid": a.id, "name": a.username, "mfa": a.is_enrolled() }))
        })
        .ok_or_else(|| ApiError::not_found("no such user"))
}

#[derive(Debug, Deserialize)]
struct SecretBody {
    #[serde(rename = "type")]
    kind: String,
}

/// `POST /users/:id/secrets {type: mfa}`: a new, not yet active, secret.
async fn create_secret(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<SecretBody>,
) -> Result<Json<Value>, ApiError> {
    owner(&state, &headers, &user_id)?;
    if body.kind != "mfa" {
        return Err(ApiError::bad_request(
            "only secrets of type \"mfa\" are supported",
        ));
    }
    state
        .accounts
        .with_id(&user_id, |account| {
            if account.is_enrolled() {
                return Err(ApiError::conflict("MFA is already activated for this user"));
            }
            let secret = new_secret(SECRET_BYTES);
            let b32 = to_base32(&secret);
            let secret_id = new_id();
            account.set_pending(secret_id.clone(), secret);
            Ok(Json(json!({
                "uid": secret_id,
                "type": "mfa",
                "secret": {
                    "otpauth_url": otpauth_uri("goaxr", &account.username, &b32, &state.config.totp, false),
                    "secret": b32.to_lowercase(),
                },
            })))
        })
        .unwrap_or_else(|| Err(ApiError::not_found("no such user")))
}

/// `PUT /users/:id/secrets/:sid/enroll {token}`: activates MFA, answers
/// the backup codes.
async fn enroll(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path((user_id, secret_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<TotpBody>,
) -> Result<Json<Value>, ApiError> {
    owner(&state, &headers, &user_id)?;
    let code = code_text(&body.token, state.config.totp.digits)?;
    state
        .accounts
        .with_id(&user_id, |account| {
            if account.pending.as_ref().map(|p| p.id.as_str()) != Some(secret_id.as_str()) {
                return Err(ApiError::not_found("no such pending secret"));
            }
            check_code(&state, account, Against::Pending, &code, false)
                .map_err(|e| refused(&state, e))?;
            account.activate_pending();
            account.recovery_codes = recovery_codes(RecoveryFormat::Groups, BACKUP_CODES);
            Ok(Json(json!({
                "uid": secret_id,
                "type": "mfa",
                "enrolled": true,
                "codes": account.recovery_codes,
            })))
        })
        .unwrap_or_else(|| Err(ApiError::not_found("no such user")))
}

#[cfg(test)]
mod code_text_tests {
    use super::*;

    #[test]
    fn a_bare_number_gets_its_leading_zeros_back() {
        let cases = [
            (serde_json::json!(21589), "021589"),
            (serde_json::json!(7), "000007"),
            (serde_json::json!(123456), "123456"),
            (serde_json::json!("012345"), "012345"),
        ];
        for (value, want) in cases {
            assert_eq!(code_text(&value, 6).ok().as_deref(), Some(want), "{value}");
        }
        assert!(code_text(&serde_json::json!(-5), 6).is_err());
        assert!(code_text(&serde_json::json!(1.5), 6).is_err());
    }
}
