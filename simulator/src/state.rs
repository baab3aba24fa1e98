//! The state every handler shares, and the helpers that read the clock
//! the way the vendor would (with any injected skew).

use std::sync::Arc;

use crate::accounts::AccountStore;
use crate::config::SimConfig;
use crate::faults::FaultStore;
use crate::stats::StatsStore;
use crate::tls::ClientCaStore;
use crate::tokens::{Claims, TokenError, TokenIssuer, TokenKind};

/// Shared by the vendor and admin routers.
#[derive(Debug)]
pub struct AppState {
    /// Immutable configuration.
    pub config: SimConfig,
    /// User database.
    pub accounts: AccountStore,
    /// JWT signer.
    pub tokens: TokenIssuer,
    /// Injected faults.
    pub faults: FaultStore,
    /// Registered client CAs (AUDD mTLS).
    pub client_cas: Arc<ClientCaStore>,
    /// Request counters (admin `GET /stats`).
    pub stats: StatsStore,
}

/// What handlers hold.
pub type SharedState = Arc<AppState>;

impl AppState {
    /// Now, in Unix ms, by the simulator's clock.
    pub fn now_ms(&self) -> u64 {
        self.config.clock.now_ms()
    }

    /// Now, in Unix s, by the simulator's clock.
    pub fn now_secs(&self) -> u64 {
        self.config.clock.now_secs()
    }

    /// Verifies a token the way the vendor's server does: by `exp`, or
    /// with Conduit's `exp` bug by the configured access lifetime (the
    /// session the server keeps), whatever the token claims.
    pub fn verify_token(&self, token: &str, kind: TokenKind) -> Result<Claims, TokenError> {
        let server_lifetime = (self.config.jwt_exp_ms_bug && kind == TokenKind::Access)
            .then_some(self.config.access_token_lifetime);
        self.tokens
            .verify_with_lifetime(token, kind, self.now_secs(), server_lifetime)
    }

    /// The vendor's clock in Unix ms: real time moved by the clock-skew
    /// fault (what its `Date` header shows).
    pub fn vendor_now_ms(&self) -> u64 {
        let skew = self.faults.get().clock_skew_steps;
        let shift = skew
            .unsigned_abs()
            .saturating_mul(self.config.totp.period_secs)
            .saturating_mul(1000);
        if skew >= 0 {
            self.now_ms().saturating_add(shift)
        } else {
            self.now_ms().saturating_sub(shift)
        }
    }

    /// The time the vendor's TOTP verifier believes it is: real time moved
    /// by the clock-skew fault.
    pub fn totp_now_secs(&self) -> u64 {
        self.vendor_now_ms() / 1000
    }
}
