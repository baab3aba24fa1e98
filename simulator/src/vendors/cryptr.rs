//! Cryptr (vendor doc 004). Enrollment answers an otpauth URI and five
//! recovery codes as one newline-separated string; challenge validation
//! answers `success` and `recovery_code_used`, and a used recovery code
//! means the user must enroll again. Bodies may be forms (as the doc's curl
//! examples send) or JSON. API calls carry a client-credentials token.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::{RecoveryFormat, new_id, recovery_codes};
use crate::error::{ApiError, JsonOrForm};
use crate::mfa::{Accepted, Against, Refused, check_code};
use crate::state::SharedState;
use crate::tokens::{Claims, Extra, TokenError, TokenKind};
use crate::totp::{new_secret, otpauth_uri, to_base32};
use crate::vendors::{bearer_claims, issue_tokens};

const SECRET_BYTES: usize = 20;
const RECOVERY_CODES: usize = 5;

/// The Cryptr routes.
pub fn routes(state: SharedState) -> Router {
    Router::new()
        .route("/api/v2/oauth/token", post(token))
        .route("/api/v2/org/{org}/users/{user_id}", get(user))
        .route("/api/v2/org/{org}/totp-enrollment/{user_id}", post(enroll))
        .route(
            "/api/v2/org/{org}/totp-enrollment/validation/{user_id}",
            put(validate_enrollment),
        )
        .route(
            "/api/v2/org/{org}/totp-challenge/{user_id}",
            post(challenge),
        )
        .route(
            "/api/v2/org/{org}/totp-challenge/validation/{user_id}",
            post(validate_challenge),
        )
        .with_state(state)
}

fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Expired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_expired",
            "the access token has expired",
        ),
        _ => ApiError::unauthorized("Authorization: Bearer <access token> is required"),
    }
}

// Each account is its own organization's API client here: the token must
// be the one issued for the user in the path.
fn owner(state: &SharedState, headers: &HeaderMap, user_id: &str) -> Result<Claims, ApiError> {
    let claims = bearer_claims(state, headers, "Bearer", TokenKind::Access).map_err(token_error)?;
    if claims.sub != user_id {
        return Err(ApiError::forbidden(
            "the token does not grant access to this user",
        ));
    }
    Ok(claims)
}

fn refused(refused: Refused) -> ApiError {
    let (status, code, message) = match refused {
        Refused::Locked { retry_after_secs } => {
            return ApiError::with_body(
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "success": false, "error": "locked", "message": "too many invalid codes; try again later" }),
            )
            .retry_after(retry_after_secs);
        }
        Refused::Invalid => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_code",
            "the code is not valid",
        ),
        Refused::Reused => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "code_already_used",
            "the code was already used; wait for the next time step",
        ),
        Refused::NotEnrolled => (
            StatusCode::FORBIDDEN,
            "enrollment_required",
            "the user must enroll in TOTP first",
        ),
    };
    ApiError::with_body(
        status,
        json!({ "success": false, "recovery_code_used": false, "error": code, "message": message }),
    )
}

fn timestamp(state: &SharedState) -> String {
    let ms = i64::try_from(state.now_ms()).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

fn request_id(prefix: &str) -> String {
    let mut bytes = [0_u8; 15];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", to_base32(&bytes))
}

#[derive(Debug, Deserialize)]
struct TokenBody {
    client_id: String,
    client_secret: String,
    // Required, as OAuth 2.0 (RFC 6749 §4.4.2) requires it.
    grant_type: String,
}

/// `POST /api/v2/oauth/token` (ours): client credentials → access token.
async fn token(
    State(state): State<SharedState>,
    JsonOrForm(body): JsonOrForm<TokenBody>,
) -> Result<Json<Value>, ApiError> {
    if body.grant_type != "client_credentials" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only client_credentials is supported",
        ));
    }
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id or client_secret is incorrect",
        )
    };
    state
        .accounts
        .with_username(&body.client_id, |account| {
            if !account.api_key_matches(&body.client_secret) {
                return Err(invalid());
            }
            let tokens = issue_tokens(&state, account, Extra::default(), false)?;
            Ok(Json(json!({
                "access_token": tokens.access,
                "token_type": "Bearer",
                "expires_in": state.config.access_token_lifetime.as_secs(),
                "user_id": account.id,
            })))
        })
        .unwrap_or_else(|| Err(invalid()))
}

/// `GET /api/v2/org/{org}/users/{user_id}` (ours): a protected endpoint.
async fn user(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path((_org, user_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    owner(&state, &headers, &user_id)?;
    state
        .accounts
        .with_id(&user_id, |a| {
            Json(json!({ "__type__": "User", "id": a.id, "email": a.username, "totp_enrolled": a.is_enrolled() }))
        })
        .ok_or_else(|| ApiError::not_found("no such user"))
}

#[derive(Debug, Deserialize, Default)]
struct EnrollBody {
    #[serde(default)]
    force_enroll: Option<Value>,
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// `POST .../totp-enrollment/{user_id}` (`force_enroll`).
async fn enroll(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path((_org, user_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    owner(&state, &headers, &user_id)?;
    // The body is optional (`force_enroll` defaults to false).
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        EnrollBody::default()
    } else {
        let mut request = axum::extract::Request::new(axum::body::Body::from(body));
        // Form reads the query string of GET requests: this one has a body.
        *request.method_mut() = http::Method::POST;
        if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
            request
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type.clone());
        }
        let JsonOrForm(body) = JsonOrForm::<EnrollBody>::from_request(request, &()).await?;
        body
    };
    let force = truthy(body.force_enroll.as_ref());
    state
        .accounts
        .with_id(&user_id, |account| {
            let was_enrolled = account.is_enrolled();
            if was_enrolled && !account.needs_reenrollment && !force {
                return Err(ApiError::conflict(
                    "the user is already enrolled; use force_enroll to re-enroll",
                ));
            }
            if was_enrolled && account.recovery_codes.is_empty() && !force {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "force_enroll_required",
                    "all recovery codes are used; force_enroll to get new ones",
                ));
            }
            // Codes are new on first enrollment and when forced; a plain
            // re-enrollment keeps the codes that are left.
            if force || !was_enrolled {
                account.recovery_codes = recovery_codes(RecoveryFormat::Groups, RECOVERY_CODES);
            }
            let secret = new_secret(SECRET_BYTES);
            let uri = otpauth_uri(
                "Cryptr",
                &account.username,
                &to_base32(&secret),
                &state.config.totp,
                true,
            );
            account.set_pending(new_id(), secret);
            Ok((
                StatusCode::CREATED,
                Json(json!({
                    "__type__": "TotpEnrollment",
                    "user_id": account.id,
                    "otp_uri": uri,
                    "recovery_codes": account.recovery_codes.join("\n"),
                    "validated": false,
                })),
            ))
        })
        .unwrap_or_else(|| Err(ApiError::not_found("no such user")))
}

#[derive(Debug, Deserialize)]
struct CodeBody {
    code: String,
}

/// `PUT .../totp-enrollment/validation/{user_id}` (`code`).
async fn validate_enrollment(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path((_org, user_id)): Path<(String, String)>,
    JsonOrForm(body): JsonOrForm<CodeBody>,
) -> Result<Json<Value>, ApiError> {
    owner(&state, &headers, &user_id)?;
    state
        .accounts
        .with_id(&user_id, |account| {
            check_code(&state, account, Against::Pending, &body.code, false).map_err(refused)?;
            account.activate_pending();
            Ok(Json(json!({
                "__type__": "TotpEnrollmentValidation",
                "user_id": account.id,
                "success": true,
                "validated_at": timestamp(&state),
            })))
        })
        .unwrap_or_else(|| Err(ApiError::not_found("no such user")))
}

/// `POST .../totp-challenge/{user_id}`: for SMS in the document; with an
/// authenticator app there is nothing to send, so no code is returned.
async fn challenge(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path((_org, user_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    owner(&state, &headers, &user_id)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "__type__": "TotpChallenge",
            "challenged_at": timestamp(&state),
            "request_id": request_id("totp-challenge"),
            "sent_at": null,
            "success": null,
        })),
    ))
}

/// `POST .../totp-challenge/validation/{user_id}` (`code`, or a recovery
/// code): `success` and `recovery_code_used`.
async fn validate_challenge(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path((_org, user_id)): Path<(String, String)>,
    JsonOrForm(body): JsonOrForm<CodeBody>,
) -> Result<Json<Value>, ApiError> {
    owner(&state, &headers, &user_id)?;
    state
        .accounts
        .with_id(&user_id, |account| {
            if account.needs_reenrollment {
                return Err(refused(Refused::NotEnrolled));
            }
            let accepted = check_code(&state, account, Against::Enrolled, &body.code, true)
                .map_err(refused)?;
            let recovery_code_used = matches!(accepted, Accepted::Recovery { .. });
            if recovery_code_used {
                account.needs_reenrollment = true;
            }
            Ok(Json(json!({
                "__type__": "TotpChallenge",
                "challenged_at": timestamp(&state),
                "code": body.code,
                "recovery_code_used": recovery_code_used,
                "request_id": request_id("totp-challenge"),
                "sent_at": null,
                "success": true,
            })))
        })
        .unwrap_or_else(|| Err(ApiError::not_found("no such user")))
}
