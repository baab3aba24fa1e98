//! Counters a benchmark reads through the admin API: how many vendor calls
//! the clients made (e.g. vendor round trips per credential enrolled).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::state::SharedState;

/// What `GET /stats` answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Requests that reached the vendor API (any path, any answer,
    /// injected faults included) since start-up.
    pub vendor_requests: u64,
}

/// The live counters.
#[derive(Debug, Default)]
pub struct StatsStore {
    vendor_requests: AtomicU64,
}

impl StatsStore {
    /// A snapshot of the counters.
    pub fn get(&self) -> Stats {
        Stats {
            vendor_requests: self.vendor_requests.load(Ordering::Relaxed),
        }
    }
}

/// Axum middleware on the vendor router: counts every request.
pub async fn count(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    state.stats.vendor_requests.fetch_add(1, Ordering::Relaxed);
    next.run(request).await
}
