//! What a simulator instance is: which vendor, which TOTP parameters, how
//! long tokens live, when accounts lock, and which accounts and client CAs
//! exist at start-up.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};

/// One of the five vendors of `vendor-docs/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    /// AUDD Mint distributor API (FusionAuth underneath); mTLS required.
    #[default]
    Audd,
    /// goaxr cloud (AcceleratXR).
    Goaxr,
    /// Conduit platform v0.15.
    Conduit,
    /// Acreto (HTTP 424 + `X-OTP`).
    Acreto,
    /// Cryptr.
    Cryptr,
}

impl Vendor {
    /// Every vendor, in document order.
    pub const ALL: [Vendor; 5] = [
        Vendor::Audd,
        Vendor::Goaxr,
        Vendor::Conduit,
        Vendor::Acreto,
        Vendor::Cryptr,
    ];

    /// The lowercase name used on the command line and in profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Audd => "audd",
            Vendor::Goaxr => "goaxr",
            Vendor::Conduit => "conduit",
            Vendor::Acreto => "acreto",
            Vendor::Cryptr => "cryptr",
        }
    }

    /// The TOTP skew window (in steps either side) the vendor accepts.
    /// Conduit v0.15 accepts only the current step.
    pub fn default_skew_steps(self) -> u32 {
        match self {
            Vendor::Conduit => 0,
            _ => 1,
        }
    }

    /// The access-token lifetime a default deployment of the vendor uses:
    /// AUDD's document says 5 minutes; Conduit's document shows tokens whose
    /// `exp − iat` is 3,600,000 (an hour in milliseconds); Acreto's are
    /// 600 s and goaxr's about an hour (known); Cryptr's are our choice
    /// (5 minutes).
    pub fn default_access_token_lifetime(self) -> Duration {
        match self {
            Vendor::Conduit | Vendor::Goaxr => Duration::from_secs(3600),
            Vendor::Acreto => Duration::from_secs(600),
            Vendor::Audd | Vendor::Cryptr => Duration::from_secs(5 * 60),
        }
    }

    /// How long a lock-out lasts by default: Conduit's rate limiter blocks
    /// for 10 s; ours elsewhere (60 s).
    pub fn default_lockout_window(self) -> Duration {
        match self {
            Vendor::Conduit => Duration::from_secs(10),
            _ => Duration::from_secs(60),
        }
    }

    /// The statuses this vendor's platform answers a locked-out account
    /// with; the first is the default. FusionAuth (AUDD) may answer 409,
    /// 423 or 429 depending on the tenant's settings.
    pub fn lockout_statuses(self) -> &'static [u16] {
        match self {
            Vendor::Audd => &[429, 409, 423],
            _ => &[429],
        }
    }

    /// How the vendor compares recovery codes: exactly, except Conduit,
    /// whose document shows codes with a space and recovery without it.
    pub fn recovery_match(self) -> crate::accounts::RecoveryMatch {
        match self {
            Vendor::Conduit => crate::accounts::RecoveryMatch::IgnoreSpaces,
            _ => crate::accounts::RecoveryMatch::Exact,
        }
    }

    /// Whether the vendor requires a client certificate on every connection.
    pub fn requires_mtls(self) -> bool {
        matches!(self, Vendor::Audd)
    }

    /// The issuer label in otpauth URIs.
    pub fn issuer(self) -> &'static str {
        match self {
            Vendor::Audd => "AUDD",
            Vendor::Goaxr => "goaxr",
            Vendor::Conduit => "Conduit",
            Vendor::Acreto => "Acreto",
            Vendor::Cryptr => "Cryptr",
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A vendor name that is not one of the five.
#[derive(Debug, thiserror::Error)]
#[error("unknown vendor {0:?} (expected one of audd, goaxr, conduit, acreto, cryptr)")]
pub struct UnknownVendor(pub String);

impl FromStr for Vendor {
    type Err = UnknownVendor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownVendor(s.to_owned()))
    }
}

/// HMAC algorithm of the TOTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum TotpAlgorithm {
    /// HMAC-SHA1, what every vendor document uses.
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl TotpAlgorithm {
    /// The name used in otpauth URIs.
    pub fn as_str(self) -> &'static str {
        match self {
            TotpAlgorithm::Sha1 => "SHA1",
            TotpAlgorithm::Sha256 => "SHA256",
            TotpAlgorithm::Sha512 => "SHA512",
        }
    }
}

impl fmt::Display for TotpAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TOTP algorithm name that is not SHA1/SHA256/SHA512.
#[derive(Debug, thiserror::Error)]
#[error("unknown TOTP algorithm {0:?} (expected SHA1, SHA256 or SHA512)")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for TotpAlgorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Ok(TotpAlgorithm::Sha1),
            "SHA256" => Ok(TotpAlgorithm::Sha256),
            "SHA512" => Ok(TotpAlgorithm::Sha512),
            _ => Err(UnknownAlgorithm(s.to_owned())),
        }
    }
}

/// The RFC 6238 parameters the simulator advertises and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpParams {
    /// HMAC algorithm.
    pub algorithm: TotpAlgorithm,
    /// Code length, 6 to 9.
    pub digits: u8,
    /// Step length in seconds, at least 1.
    pub period_secs: u64,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period_secs: 30,
        }
    }
}

/// An account that exists when the simulator starts (also the admin API's
/// create-account body).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccountSpec {
    /// Login name (an e-mail for Conduit and Acreto; any string works).
    pub username: String,
    /// Password.
    pub password: String,
    /// API key (AUDD's setup key; Cryptr's client secret).
    pub api_key: String,
}

impl fmt::Debug for AccountSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials stay out of logs and panic messages.
        f.debug_struct("AccountSpec")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("api_key", &"<redacted>")
            .finish()
    }
}

impl AccountSpec {
    /// An account spec from its three credentials.
    pub fn new(
        username: impl Into<String>,
        password: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            api_key: api_key.into(),
        }
    }
}

/// A CA certificate and key (PEM) for the simulator's serving certificate,
/// so a restarted simulator keeps the CA clients already trust.
#[derive(Clone)]
pub struct ServerCaMaterial {
    /// CA certificate, PEM.
    pub cert_pem: String,
    /// CA private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl fmt::Debug for ServerCaMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a secret: never print it.
        f.debug_struct("ServerCaMaterial")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A Conduit application's client credentials (`clientid` /
/// `clientsecret` headers).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The `clientid` header's value.
    pub id: String,
    /// The `clientsecret` header's value.
    pub secret: String,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Everything that configures one simulator instance.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Which vendor's API to serve.
    pub vendor: Vendor,
    /// TOTP parameters advertised and verified.
    pub totp: TotpParams,
    /// Steps accepted either side of the current one; `None` means the
    /// vendor's default (1, Conduit 0).
    pub skew_steps: Option<u32>,
    /// RFC 6238 §5.2: reject a code for a step at or before the last
    /// accepted step of the account.
    pub replay_protection: bool,
    /// Lifetime of access tokens (JWT `exp`).
    pub access_token_lifetime: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_token_lifetime: Duration,
    /// Lifetime of the intermediate "password ok, TOTP still needed" tokens
    /// (goaxr challenge, Conduit unauthorized token).
    pub challenge_token_lifetime: Duration,
    /// Consecutive wrong codes that lock an account; 0 disables lock-out.
    pub lockout_threshold: u32,
    /// How long a locked account stays locked.
    pub lockout_window: Duration,
    /// The status a locked account answers (one of
    /// [`Vendor::lockout_statuses`]).
    pub lockout_status: u16,
    /// Conduit v0.15's bug: the access JWT's `exp` is `iat` plus the
    /// lifetime in *milliseconds* counted as seconds, while the server
    /// expires the session after the configured lifetime. On by default for
    /// Conduit.
    pub jwt_exp_ms_bug: bool,
    /// Conduit's client validation: when set, every request must carry
    /// these `clientid` / `clientsecret` headers.
    pub client_credentials: Option<ClientCredentials>,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Accounts created at start-up.
    pub accounts: Vec<AccountSpec>,
    /// Client CA certificates (PEM) registered at start-up.
    pub client_cas: Vec<String>,
    /// Where the vendor API listens; port 0 picks a free one.
    pub vendor_addr: SocketAddr,
    /// Where the admin API listens (plain HTTP, keep it on loopback).
    pub admin_addr: SocketAddr,
    /// The CA that signs the serving certificate; generated when `None`.
    pub server_ca: Option<ServerCaMaterial>,
    /// Time source; the system clock unless a test injects another.
    pub clock: Arc<dyn Clock>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::new(Vendor::default())
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Digits outside what TOTP can produce.
    #[error("TOTP digits must be between 6 and 9, got {0}")]
    Digits(u8),
    /// A zero-length time step.
    #[error("TOTP period must be at least 1 second")]
    Period,
    /// A zero token lifetime.
    #[error("token lifetimes must be at least 1 second")]
    Lifetime,
    /// A lock-out status the vendor's platform does not use.
    #[error("{vendor} answers a lock-out with {allowed:?}, not {status}")]
    LockoutStatus {
        /// The vendor.
        vendor: Vendor,
        /// The status asked for.
        status: u16,
        /// What the vendor uses.
        allowed: &'static [u16],
    },
    /// Client credentials on a vendor without client validation.
    #[error("client credentials (clientid/clientsecret) are a Conduit feature, not {0}'s")]
    ClientCredentials(Vendor),
}

impl SimConfig {
    /// The defaults for `vendor`: SHA1, 6 digits, 30 s, the vendor's skew,
    /// replay protection on, 5 min access / 15 min refresh tokens, lock-out
    /// after 5 wrong codes for 60 s, 64 KiB bodies, loopback ports.
    pub fn new(vendor: Vendor) -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            vendor,
            totp: TotpParams::default(),
            skew_steps: None,
            replay_protection: true,
            access_token_lifetime: vendor.default_access_token_lifetime(),
            refresh_token_lifetime: Duration::from_secs(15 * 60),
            challenge_token_lifetime: Duration::from_secs(5 * 60),
            lockout_threshold: 5,
            lockout_window: vendor.default_lockout_window(),
            lockout_status: vendor.lockout_statuses()[0],
            jwt_exp_ms_bug: vendor == Vendor::Conduit,
            client_credentials: None,
            max_body_bytes: 64 * 1024,
            accounts: Vec::new(),
            client_cas: Vec::new(),
            vendor_addr: loopback,
            admin_addr: loopback,
            server_ca: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets the TOTP step length.
    pub fn with_period(mut self, period: Duration) -> Self {
        self.totp.period_secs = period.as_secs();
        self
    }

    /// Sets the TOTP algorithm and digits.
    pub fn with_totp(mut self, algorithm: TotpAlgorithm, digits: u8) -> Self {
        self.totp.algorithm = algorithm;
        self.totp.digits = digits;
        self
    }

    /// Sets the skew window.
    pub fn with_skew_steps(mut self, steps: u32) -> Self {
        self.skew_steps = Some(steps);
        self
    }

    /// Turns RFC 6238 §5.2 replay protection on or off.
    pub fn with_replay_protection(mut self, on: bool) -> Self {
        self.replay_protection = on;
        self
    }

    /// Sets access and refresh token lifetimes.
    pub fn with_token_lifetimes(mut self, access: Duration, refresh: Duration) -> Self {
        self.access_token_lifetime = access;
        self.refresh_token_lifetime = refresh;
        self
    }

    /// Sets the lock-out threshold and window.
    pub fn with_lockout(mut self, threshold: u32, window: Duration) -> Self {
        self.lockout_threshold = threshold;
        self.lockout_window = window;
        self
    }

    /// Sets the status a locked account answers.
    pub fn with_lockout_status(mut self, status: u16) -> Self {
        self.lockout_status = status;
        self
    }

    /// Turns Conduit's `exp` milliseconds-as-seconds bug on or off.
    pub fn with_jwt_exp_ms_bug(mut self, on: bool) -> Self {
        self.jwt_exp_ms_bug = on;
        self
    }

    /// Requires Conduit's `clientid` / `clientsecret` headers.
    pub fn with_client_credentials(
        mut self,
        id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.client_credentials = Some(ClientCredentials {
            id: id.into(),
            secret: secret.into(),
        });
        self
    }

    /// Adds an account that exists at start-up.
    pub fn with_account(mut self, account: AccountSpec) -> Self {
        self.accounts.push(account);
        self
    }

    /// Registers a client CA (PEM) at start-up.
    pub fn with_client_ca(mut self, pem: impl Into<String>) -> Self {
        self.client_cas.push(pem.into());
        self
    }

    /// Injects a time source.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The skew window in effect.
    pub fn effective_skew_steps(&self) -> u32 {
        self.skew_steps
            .unwrap_or_else(|| self.vendor.default_skew_steps())
    }

    /// Checks the values TOTP and tokens need.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(6..=9).contains(&self.totp.digits) {
            return Err(ConfigError::Digits(self.totp.digits));
        }
        if self.totp.period_secs == 0 {
            return Err(ConfigError::Period);
        }
        if self.access_token_lifetime.as_secs() == 0
            || self.refresh_token_lifetime.as_secs() == 0
            || self.challenge_token_lifetime.as_secs() == 0
        {
            return Err(ConfigError::Lifetime);
        }
        let allowed = self.vendor.lockout_statuses();
        if !allowed.contains(&self.lockout_status) {
            return Err(ConfigError::LockoutStatus {
                vendor: self.vendor,
                status: self.lockout_status,
                allowed,
            });
        }
        if self.client_credentials.is_some() && self.vendor != Vendor::Conduit {
            return Err(ConfigError::ClientCredentials(self.vendor));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_names_round_trip() {
        for vendor in Vendor::ALL {
            assert_eq!(vendor.to_string().parse::<Vendor>().ok(), Some(vendor));
        }
        assert!("AUDD".parse::<Vendor>().is_ok());
        assert!("okta".parse::<Vendor>().is_err());
    }

    #[test]
    fn conduit_accepts_only_the_current_step_by_default() {
        assert_eq!(SimConfig::new(Vendor::Conduit).effective_skew_steps(), 0);
        assert_eq!(SimConfig::new(Vendor::Audd).effective_skew_steps(), 1);
        assert_eq!(
            SimConfig::new(Vendor::Conduit)
                .with_skew_steps(2)
                .effective_skew_steps(),
            2
        );
    }

    #[test]
    fn impossible_totp_parameters_are_refused() {
        assert!(
            SimConfig::default()
                .with_totp(TotpAlgorithm::Sha1, 10)
                .validate()
                .is_err()
        );
        assert!(
            SimConfig::default()
                .with_period(Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(SimConfig::default().validate().is_ok());
    }

    #[test]
    fn vendor_defaults_follow_the_documents() {
        let conduit = SimConfig::new(Vendor::Conduit);
        assert_eq!(conduit.access_token_lifetime, Duration::from_secs(3600));
        assert_eq!(conduit.lockout_window, Duration::from_secs(10));
        assert!(conduit.jwt_exp_ms_bug);
        assert_eq!(
            SimConfig::new(Vendor::Acreto).access_token_lifetime,
            Duration::from_secs(600)
        );
        assert_eq!(
            SimConfig::new(Vendor::Goaxr).access_token_lifetime,
            Duration::from_secs(3600)
        );
        let audd = SimConfig::new(Vendor::Audd);
        assert_eq!(audd.access_token_lifetime, Duration::from_secs(300));
        assert!(!audd.jwt_exp_ms_bug);
        assert_eq!(audd.lockout_status, 429);
    }

    #[test]
    fn lockout_statuses_and_client_validation_are_per_vendor() {
        for status in [409, 423, 429] {
            assert!(
                SimConfig::new(Vendor::Audd)
                    .with_lockout_status(status)
                    .validate()
                    .is_ok()
            );
        }
        assert!(
            SimConfig::new(Vendor::Conduit)
                .with_lockout_status(423)
                .validate()
                .is_err()
        );
        assert!(
            SimConfig::new(Vendor::Conduit)
                .with_client_credentials("app", "s3cret")
                .validate()
                .is_ok()
        );
        let err = SimConfig::new(Vendor::Goaxr)
            .with_client_credentials("app", "s3cret")
            .validate()
            .expect_err("goaxr has no client validation");
        assert!(!format!("{err} {err:?}").contains("s3cret"));
    }

    #[test]
    fn algorithm_names_parse_loosely() {
        assert_eq!(
            "sha-256".parse::<TotpAlgorithm>().ok(),
            Some(TotpAlgorithm::Sha256)
        );
        assert!("md5".parse::<TotpAlgorithm>().is_err());
    }
}
