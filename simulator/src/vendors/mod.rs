//! The five vendor APIs, one module each, plus what they share: reading
//! bearer tokens and issuing token pairs.

use axum::Router;
use axum::http::{HeaderMap, StatusCode};

use crate::accounts::Account;
use crate::config::Vendor;
use crate::error::ApiError;
use crate::state::{AppState, SharedState};
use crate::tokens::{Claims, Extra, TokenError, TokenKind};

pub mod acreto;
pub mod audd;
pub mod conduit;
pub mod cryptr;
pub mod goaxr;

/// The lock-out answer of AUDD, goaxr and Conduit. Conduit's rate limiter
/// answers 429 with Conduit's error `RATE_LIMIT`; the others
/// `{"error": "locked"}` with the configured status (FusionAuth: 409, 423
/// or 429). `Retry-After` comes with 429 only (ours: the documents are
/// silent).
pub fn locked_out(state: &AppState, retry_after_secs: u64) -> ApiError {
    if state.config.vendor == Vendor::Conduit {
        return ApiError::with_body(
            StatusCode::TOO_MANY_REQUESTS,
            serde_json::json!({ "name": "RATE_LIMIT", "status": 429, "message": "Too many requests" }),
        )
        .retry_after(retry_after_secs);
    }
    let status =
        StatusCode::from_u16(state.config.lockout_status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    let error = ApiError::new(status, "locked", "too many invalid codes; try again later");
    if status == StatusCode::TOO_MANY_REQUESTS {
        error.retry_after(retry_after_secs)
    } else {
        error
    }
}

/// The routes of `state.config.vendor`, without middleware.
pub fn routes(state: SharedState) -> Router {
    match state.config.vendor {
        Vendor::Audd => audd::routes(state),
        Vendor::Goaxr => goaxr::routes(state),
        Vendor::Conduit => conduit::routes(state),
        Vendor::Acreto => acreto::routes(state),
        Vendor::Cryptr => cryptr::routes(state),
    }
}

/// The credential after `scheme ` in `Authorization` (case-insensitive
/// scheme); with an empty scheme, the whole header value.
pub fn authorization<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    if scheme.is_empty() {
        return Some(value).filter(|v| !v.is_empty());
    }
    let (given, rest) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| rest.trim())
        .filter(|v| !v.is_empty())
}

/// Verifies the token in `Authorization: <scheme> <token>`.
pub fn bearer_claims(
    state: &SharedState,
    headers: &HeaderMap,
    scheme: &str,
    kind: TokenKind,
) -> Result<Claims, TokenError> {
    let token = authorization(headers, scheme).ok_or(TokenError::Invalid)?;
    state.verify_token(token, kind)
}

/// A freshly issued access token (and refresh token when asked).
#[derive(Debug)]
pub struct IssuedTokens {
    /// The access token.
    pub access: String,
    /// Its `exp`, Unix s.
    pub access_exp: u64,
    /// The refresh token, if one was issued.
    pub refresh: Option<String>,
    /// The refresh token's id (`jti`; FusionAuth's `refreshTokenId`).
    pub refresh_jti: Option<String>,
}

/// Issues an access token and, with `with_refresh`, a refresh token the
/// account remembers (single use).
pub fn issue_tokens(
    state: &SharedState,
    account: &mut Account,
    extra: Extra,
    with_refresh: bool,
) -> Result<IssuedTokens, ApiError> {
    let now = state.now_secs();
    let config = &state.config;
    let access_extra = Extra {
        exp_in_ms_bug: config.jwt_exp_ms_bug,
        ..extra
    };
    let (access, claims) = state
        .tokens
        .issue(
            &account.id,
            TokenKind::Access,
            config.access_token_lifetime,
            now,
            access_extra,
        )
        .map_err(|_| ApiError::internal("failed to sign a token"))?;
    let (refresh, refresh_jti) = if with_refresh {
        let (refresh, refresh_claims) = state
            .tokens
            .issue(
                &account.id,
                TokenKind::Refresh,
                config.refresh_token_lifetime,
                now,
                Extra {
                    id_claim: extra.id_claim,
                    ..Extra::default()
                },
            )
            .map_err(|_| ApiError::internal("failed to sign a token"))?;
        let jti = refresh_claims.jti.clone();
        account.remember_refresh(refresh_claims.jti, refresh_claims.exp, now);
        (Some(refresh), Some(jti))
    } else {
        (None, None)
    };
    Ok(IssuedTokens {
        access,
        access_exp: claims.exp,
        refresh,
        refresh_jti,
    })
}

/// Why a refresh failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRefused {
    /// Bad signature, wrong kind or unknown account.
    Invalid,
    /// Past its `exp`.
    Expired,
    /// Already exchanged once (rotation), or the reject-refresh fault.
    Revoked,
}

/// Exchanges a refresh token for a new pair; the old refresh token stops
/// working.
pub fn rotate_refresh(
    state: &SharedState,
    refresh_token: &str,
    extra: Extra,
) -> Result<(String, IssuedTokens), RefreshRefused> {
    let claims = state
        .tokens
        .verify(refresh_token, TokenKind::Refresh, state.now_secs())
        .map_err(|e| match e {
            TokenError::Expired => RefreshRefused::Expired,
            _ => RefreshRefused::Invalid,
        })?;
    let reject_all = state.faults.get().reject_refresh;
    state
        .accounts
        .with_id(&claims.sub, |account| {
            if !account.take_refresh(&claims.jti) || reject_all {
                return Err(RefreshRefused::Revoked);
            }
            account.refreshes += 1;
            issue_tokens(state, account, extra, true)
                .map(|tokens| (account.id.clone(), tokens))
                .map_err(|_| RefreshRefused::Invalid)
        })
        .unwrap_or(Err(RefreshRefused::Invalid))
}

/// Unix ms of an `exp` in seconds (FusionAuth's `tokenExpirationInstant`).
pub fn instant_ms(exp_secs: u64) -> u64 {
    exp_secs.saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_schemes_are_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            "jwt abc".parse().expect("header"),
        );
        assert_eq!(authorization(&headers, "JWT"), Some("abc"));
        assert_eq!(authorization(&headers, "Bearer"), None);
        assert_eq!(authorization(&headers, ""), Some("jwt abc"));
        headers.insert(
            http::header::AUTHORIZATION,
            "Bearer ".parse().expect("header"),
        );
        assert_eq!(authorization(&headers, "Bearer"), None);
    }
}
