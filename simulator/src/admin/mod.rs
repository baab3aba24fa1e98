//! The admin API (plain HTTP, loopback): accounts, client CAs, faults and
//! the advertised configuration, for tests and for people developing
//! against the simulator. The typed client is in [`client`].

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::accounts::{AccountError, AccountState};
use crate::config::{AccountSpec, TotpParams, Vendor};
use crate::error::{self, ApiError, ApiJson};
use crate::faults::Faults;
use crate::state::SharedState;

pub mod client;

pub use client::{AdminClient, AdminError};

/// What the simulator advertises about itself (`GET /config`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdvertisedConfig {
    /// Vendor served.
    pub vendor: Vendor,
    /// TOTP parameters.
    pub totp: TotpParams,
    /// Skew window in steps.
    pub skew_steps: u32,
    /// RFC 6238 §5.2 on.
    pub replay_protection: bool,
    /// Access token lifetime, seconds.
    pub access_token_lifetime_secs: u64,
    /// Refresh token lifetime, seconds.
    pub refresh_token_lifetime_secs: u64,
    /// Wrong codes before lock-out (0: never).
    pub lockout_threshold: u32,
    /// Lock-out length, seconds.
    pub lockout_window_secs: u64,
    /// Status a locked account answers.
    pub lockout_status: u16,
    /// Conduit's `exp` milliseconds bug reproduced.
    pub jwt_exp_ms_bug: bool,
    /// Conduit's client validation on (the credentials are not shown).
    pub client_validation: bool,
}

/// Subjects of client CAs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClientCas {
    /// Subject DNs.
    pub subjects: Vec<String>,
}

/// The admin routes.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/config", get(config))
        .route("/stats", get(stats))
        .route("/accounts", post(create_account).get(list_accounts))
        .route("/accounts/{id}", get(get_account))
        .route("/accounts/{id}/mfa", delete(reset_mfa))
        .route("/client-cas", post(register_client_ca).get(list_client_cas))
        .route(
            "/faults",
            get(get_faults).put(set_faults).delete(clear_faults),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .with_state(state)
}

async fn config(State(state): State<SharedState>) -> Json<AdvertisedConfig> {
    let c = &state.config;
    Json(AdvertisedConfig {
        vendor: c.vendor,
        totp: c.totp,
        skew_steps: c.effective_skew_steps(),
        replay_protection: c.replay_protection,
        access_token_lifetime_secs: c.access_token_lifetime.as_secs(),
        refresh_token_lifetime_secs: c.refresh_token_lifetime.as_secs(),
        lockout_threshold: c.lockout_threshold,
        lockout_window_secs: c.lockout_window.as_secs(),
        lockout_status: c.lockout_status,
        jwt_exp_ms_bug: c.jwt_exp_ms_bug,
        client_validation: c.client_credentials.is_some(),
    })
}

async fn create_account(
    State(state): State<SharedState>,
    ApiJson(spec): ApiJson<AccountSpec>,
) -> Result<(StatusCode, Json<AccountState>), ApiError> {
    match state.accounts.create(&spec) {
        Ok(account) => Ok((StatusCode::CREATED, Json(account))),
        Err(e @ AccountError::Duplicate(_)) => Err(ApiError::conflict(e.to_string())),
        Err(e @ AccountError::Empty) => Err(ApiError::bad_request(e.to_string())),
    }
}

async fn list_accounts(State(state): State<SharedState>) -> Json<Vec<AccountState>> {
    Json(state.accounts.list())
}

// Accounts are found by id, or by username as a convenience.
fn find(state: &SharedState, key: &str) -> Option<AccountState> {
    state
        .accounts
        .with_id(key, |a| a.state())
        .or_else(|| state.accounts.with_username(key, |a| a.state()))
}

async fn get_account(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<AccountState>, ApiError> {
    find(&state, &id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such account"))
}

async fn reset_mfa(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<AccountState>, ApiError> {
    let id = find(&state, &id)
        .map(|a| a.id)
        .ok_or_else(|| ApiError::not_found("no such account"))?;
    state
        .accounts
        .with_id(&id, |a| {
            a.disable_mfa();
            a.last_step = None;
            a.failures = 0;
            a.locked_until_ms = None;
            a.state()
        })
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such account"))
}

#[derive(Debug, Deserialize)]
struct PemBody {
    pem: String,
}

// Accepts `{"pem": "..."}` as JSON, or the PEM itself as the body (so
// `curl --data-binary @ca.pem` works).
async fn register_client_ca(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ClientCas>), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let pem = if is_json {
        serde_json::from_slice::<PemBody>(&body)
            .map_err(|e| ApiError::bad_request(format!("expected {{\"pem\": ...}}: {e}")))?
            .pem
    } else {
        String::from_utf8(body.to_vec()).map_err(|_| ApiError::bad_request("PEM must be UTF-8"))?
    };
    let subjects = state
        .client_cas
        .register_pem(&pem)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    tracing::info!(?subjects, "client CA registered");
    Ok((StatusCode::CREATED, Json(ClientCas { subjects })))
}

async fn list_client_cas(State(state): State<SharedState>) -> Json<ClientCas> {
    Json(ClientCas {
        subjects: state.client_cas.subjects(),
    })
}

async fn stats(State(state): State<SharedState>) -> Json<crate::stats::Stats> {
    Json(state.stats.get())
}

async fn get_faults(State(state): State<SharedState>) -> Json<Faults> {
    Json(state.faults.get())
}

async fn set_faults(
    State(state): State<SharedState>,
    ApiJson(faults): ApiJson<Faults>,
) -> Result<Json<Faults>, ApiError> {
    if faults
        .error_fraction
        .is_some_and(|f| !(0.0..=1.0).contains(&f))
    {
        return Err(ApiError::bad_request(
            "errorFraction must be between 0 and 1",
        ));
    }
    if let Some(status) = faults.error_status
        && !(100..=599).contains(&status)
    {
        return Err(ApiError::bad_request("errorStatus must be an HTTP status"));
    }
    tracing::info!(?faults, "faults set");
    state.faults.set(faults.clone());
    Ok(Json(faults))
}

async fn clear_faults(State(state): State<SharedState>) -> Json<Value> {
    state.faults.set(Faults::default());
    Json(json!({}))
}
