//! Injected faults: latency, a status on a fraction of calls, the vendor
//! being down, refresh tokens rejected, and the vendor's clock skewed.

use std::sync::RwLock;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::SharedState;

/// The faults in force. Every field defaults to "no fault".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Faults {
    /// Added to every vendor response.
    pub latency_ms: u64,
    /// Answer this status instead of serving the call...
    pub error_status: Option<u16>,
    /// ...on this fraction of calls (0.0–1.0; 1.0 when omitted).
    pub error_fraction: Option<f64>,
    /// ...with this raw body (sent as `text/html`) instead of the vendor's
    /// JSON error: a proxy's error page, or garbage with a 200.
    pub error_body: Option<String>,
    /// Refuse new connections and answer 503 on open ones.
    pub down: bool,
    /// Every refresh token is rejected (401), as after a revocation.
    pub reject_refresh: bool,
    /// The vendor's TOTP clock runs this many steps ahead (negative:
    /// behind) of real time.
    pub clock_skew_steps: i64,
}

/// The current faults, changed by the admin API.
#[derive(Debug, Default)]
pub struct FaultStore {
    faults: RwLock<Faults>,
}

impl FaultStore {
    /// A copy of the current faults.
    pub fn get(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the faults.
    pub fn set(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// Whether the vendor is down.
    pub fn is_down(&self) -> bool {
        self.faults.read().unwrap_or_else(|e| e.into_inner()).down
    }
}

/// Axum middleware on the vendor router.
pub async fn apply(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let faults = state.faults.get();
    if faults.down {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "injected fault: vendor down",
        )
        .into_response();
    }
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if let Some(status) = faults.error_status {
        let fraction = faults.error_fraction.unwrap_or(1.0).clamp(0.0, 1.0);
        if rand::rng().random_bool(fraction) {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return match faults.error_body {
                Some(body) => (
                    status,
                    [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    body,
                )
                    .into_response(),
                None => ApiError::new(status, "injected_fault", "injected fault").into_response(),
            };
        }
    }
    next.run(request).await
}
