//! The state every handler shares, and the helpers that read the clock
//! the way the vendor would (with any injected skew).

use std::sync::Arc;

use crate::accounts::AccountStore;
use crate::config::SimConfig;
use crate::faults::FaultStore;
use crate::tls::ClientCaStore;
use crate::tokens::TokenIssuer;

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

    /// The time the vendor's TOTP verifier believes it is: real time moved
    /// by the clock-skew fault.
    pub fn totp_now_secs(&self) -> u64 {
        let skew = self.faults.get().clock_skew_steps;
        let shift = skew
            .unsigned_abs()
            .saturating_mul(self.config.totp.period_secs);
        if skew >= 0 {
            self.now_secs().saturating_add(shift)
        } else {
            self.now_secs().saturating_sub(shift)
        }
    }
}
