//! otpilot's vendor simulator: the MFA flows of the five vendor documents
//! (AUDD, goaxr, Conduit, Acreto, Cryptr) over real HTTPS — mTLS for AUDD —
//! with RFC 6238 verification, replay protection, rotating refresh tokens,
//! lock-out, and an admin API for accounts, client CAs and faults.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use otpilot_sim::{AccountSpec, SimConfig, Vendor};
//! let sim = otpilot_sim::spawn(
//!     SimConfig::new(Vendor::Goaxr).with_account(AccountSpec::new("bot", "pw", "key")),
//! )
//! .await?;
//! println!("{} (trust {})", sim.base_url(), sim.server_ca_pem());
//! let bot = sim.admin()?.account("bot").await?;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;

pub mod accounts;
pub mod admin;
pub mod clock;
pub mod config;
pub mod error;
pub mod faults;
mod jwt_crypto;
pub mod ledger;
pub mod mfa;
pub mod serve;
pub mod state;
pub mod stats;
pub mod testing;
pub mod tls;
pub mod tokens;
pub mod totp;
pub mod vendors;

pub use accounts::AccountState;
pub use admin::{AdminClient, AdminError};
pub use config::{
    AccountSpec, ClientCredentials, ServerCaMaterial, SimConfig, TotpAlgorithm, TotpParams, Vendor,
};
pub use faults::Faults;
pub use stats::Stats;

use crate::accounts::{AccountError, AccountStore};
use crate::faults::FaultStore;
use crate::state::{AppState, SharedState};
use crate::stats::StatsStore;
use crate::tls::{ClientCaStore, DynamicClientVerifier, ServerPki, TlsError};
use crate::tokens::TokenIssuer;

/// The simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The configuration is inconsistent.
    #[error("invalid configuration")]
    Config(#[from] config::ConfigError),
    /// Certificates or TLS configuration failed.
    #[error("failed to set up TLS")]
    Tls(#[from] TlsError),
    /// An initial account is invalid or duplicated.
    #[error("failed to create an initial account")]
    Account(#[from] AccountError),
    /// A port could not be bound.
    #[error("failed to bind {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A running simulator. Dropping it stops both servers; [`shutdown`]
/// also waits for them.
///
/// [`shutdown`]: SimHandle::shutdown
#[derive(Debug)]
pub struct SimHandle {
    vendor: Vendor,
    vendor_addr: SocketAddr,
    admin_addr: SocketAddr,
    server_ca_pem: String,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// The vendor served.
    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    /// `https://127.0.0.1:PORT`. No vendor uses a path prefix beyond what
    /// its document shows in every path (`/v2/...` for Acreto,
    /// `/api/v2/org/{org}/...` for Cryptr), so paths are appended as-is.
    pub fn base_url(&self) -> String {
        format!("https://{}", display_addr(self.vendor_addr))
    }

    /// `http://127.0.0.1:PORT` of the admin API.
    pub fn admin_url(&self) -> String {
        format!("http://{}", display_addr(self.admin_addr))
    }

    /// The vendor API's socket address.
    pub fn vendor_addr(&self) -> SocketAddr {
        self.vendor_addr
    }

    /// The admin API's socket address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// PEM of the CA that signed the serving certificate (SAN 127.0.0.1,
    /// ::1, localhost): what clients must trust.
    pub fn server_ca_pem(&self) -> &str {
        &self.server_ca_pem
    }

    /// A typed client for the admin API.
    pub fn admin(&self) -> Result<AdminClient, AdminError> {
        AdminClient::new(self.admin_url())
    }

    /// Stops accepting, lets open requests finish (up to 5 s), and waits.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    /// Waits until the servers stop (after [`SimHandle::stop`] or a failure).
    pub async fn wait(mut self) {
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    /// A token that stops the servers when cancelled (for signal handlers).
    pub fn stop(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

// A wildcard bind is reachable on loopback; print that rather than 0.0.0.0.
fn display_addr(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// The vendor router with its middleware: a `Date` header from the vendor's
/// (possibly skewed) clock, faults, body limit, JSON 404 and 405, panics
/// turned into JSON 500. Tests can call it without a socket
/// (AUDD routes then refuse: no client certificate).
pub fn vendor_router(state: SharedState) -> Router {
    vendors::routes(state.clone())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            faults::apply,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            stats::count,
        ))
        // Outermost, so a 500 from a panic carries the vendor's Date too.
        .layer(axum::middleware::from_fn_with_state(
            state,
            serve::vendor_date,
        ))
}

/// Builds the shared state: accounts and client CAs from the config.
pub fn build_state(config: SimConfig) -> Result<SharedState, SpawnError> {
    config.validate()?;
    let client_cas = Arc::new(ClientCaStore::default());
    for pem in &config.client_cas {
        client_cas.register_pem(pem)?;
    }
    let accounts = AccountStore::default();
    for spec in &config.accounts {
        accounts.create(spec)?;
    }
    Ok(Arc::new(AppState {
        config,
        accounts,
        tokens: TokenIssuer::new(),
        faults: FaultStore::default(),
        client_cas,
        stats: StatsStore::default(),
    }))
}

/// Starts a simulator: the vendor API over HTTPS on `config.vendor_addr`
/// and the admin API over HTTP on `config.admin_addr` (both
/// `127.0.0.1:0` by default, i.e. free loopback ports).
pub async fn spawn(config: SimConfig) -> Result<SimHandle, SpawnError> {
    // A non-loopback bind address (a test node's bridge) goes in the SAN.
    let bind_ip = config.vendor_addr.ip();
    let extra: &[std::net::IpAddr] = if bind_ip.is_unspecified() {
        &[]
    } else {
        std::slice::from_ref(&bind_ip)
    };
    let pki = ServerPki::for_addresses(config.server_ca.as_ref(), extra)?;
    let vendor = config.vendor;
    let (vendor_bind, admin_bind) = (config.vendor_addr, config.admin_addr);
    if let Some(client) = &config.client_credentials {
        ledger::record(ledger::SecretKind::ClientSecret, &client.secret);
    }
    let state = build_state(config)?;
    let verifier = Arc::new(DynamicClientVerifier::new(
        state.client_cas.clone(),
        vendor.requires_mtls(),
    ));
    let acceptor = TlsAcceptor::from(Arc::new(pki.server_config(verifier)?));

    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| SpawnError::Bind { addr, source })
    };
    let vendor_listener = bind(vendor_bind).await?;
    let admin_listener = bind(admin_bind).await?;
    let local = |l: &TcpListener, addr: SocketAddr| {
        l.local_addr()
            .map_err(|source| SpawnError::Bind { addr, source })
    };
    let vendor_addr = local(&vendor_listener, vendor_bind)?;
    let admin_addr = local(&admin_listener, admin_bind)?;

    let cancel = CancellationToken::new();
    let vendor_task = tokio::spawn(serve::serve_tls(
        vendor_listener,
        acceptor,
        vendor_router(state.clone()),
        state.clone(),
        cancel.clone(),
    ));
    let admin_app = admin::router(state);
    let admin_cancel = cancel.clone();
    let admin_task = tokio::spawn(async move {
        let served = axum::serve(admin_listener, admin_app)
            .with_graceful_shutdown(admin_cancel.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "admin server stopped");
        }
    });
    tracing::info!(%vendor, %vendor_addr, %admin_addr, "simulator started");
    Ok(SimHandle {
        vendor,
        vendor_addr,
        admin_addr,
        server_ca_pem: pki.ca_pem,
        cancel,
        tasks: vec![vendor_task, admin_task],
    })
}
