//! Helpers shared by the integration tests: the ring provider, a simulator
//! with one account, HTTPS clients, and TOTP codes computed by `totp-rs`
//! directly (independently of the simulator's verify path).

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otpilot_sim::testing::{ClientCa, ClientIdentity, https_client};
use otpilot_sim::{AccountSpec, SimConfig, SimHandle, Vendor};
use serde_json::Value;

pub const USER: &str = "bot@example.com";
pub const PASSWORD: &str = "correct horse battery staple";
pub const API_KEY: &str = "5pv515CM2uL4VAEXu5zEVDf";

pub fn init() {
    // Ignore the error: another test in this binary installed it first.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A fast configuration: 1 s steps, lock-out after 3 wrong codes.
pub fn fast_config(vendor: Vendor) -> SimConfig {
    SimConfig::new(vendor)
        .with_period(Duration::from_secs(1))
        .with_account(AccountSpec::new(USER, PASSWORD, API_KEY))
}

pub struct Sim {
    pub handle: SimHandle,
    pub http: reqwest::Client,
    pub identity: Option<ClientIdentity>,
    pub client_ca: Option<ClientCa>,
    pub user_id: String,
    pub period: u64,
    pub digits: u8,
}

impl Sim {
    pub async fn start(config: SimConfig) -> Sim {
        init();
        let period = config.totp.period_secs;
        let digits = config.totp.digits;
        let (client_ca, identity) = if config.vendor == Vendor::Audd {
            let ca = ClientCa::generate("test client CA").expect("client CA");
            let identity = ca.issue("bot").expect("client cert");
            (Some(ca), Some(identity))
        } else {
            (None, None)
        };
        let config = match &client_ca {
            Some(ca) => config.with_client_ca(ca.cert_pem.clone()),
            None => config,
        };
        let handle = otpilot_sim::spawn(config).await.expect("spawn");
        let http = https_client(handle.server_ca_pem(), identity.as_ref()).expect("client");
        let user_id = handle
            .admin()
            .expect("admin")
            .account(USER)
            .await
            .expect("account")
            .id;
        Sim {
            handle,
            http,
            identity,
            client_ca,
            user_id,
            period,
            digits,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    pub fn admin(&self) -> otpilot_sim::AdminClient {
        self.handle.admin().expect("admin client")
    }
}

pub fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("time")
}

/// The code for `secret_b32` at Unix time `t`, by totp-rs.
pub fn code_at(secret_b32: &str, digits: u8, period: u64, t: u64) -> String {
    let secret = base32::decode(
        base32::Alphabet::Rfc4648 { padding: false },
        &secret_b32.to_uppercase(),
    )
    .expect("base32 secret");
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(digits)
        .with_step_duration(period)
        .with_secret(secret)
        .build_noncompliant()
        .generate(t)
        .to_string()
}

/// Tracks the last step a test used, so each login waits for a fresh step
/// (as RFC 6238 §5.2 forces real clients to) and never sends a code in the
/// last 40% of its step.
pub struct Codes {
    pub secret_b32: String,
    pub digits: u8,
    pub period: u64,
    last_step: Option<u64>,
}

impl Codes {
    pub fn new(secret_b32: &str, digits: u8, period: u64) -> Self {
        Self {
            secret_b32: secret_b32.to_owned(),
            digits,
            period,
            last_step: None,
        }
    }

    pub async fn fresh(&mut self) -> String {
        let period_ms = u128::from(self.period) * 1000;
        loop {
            let now = now().as_millis();
            let step = u64::try_from(now / period_ms).expect("step");
            let into = now % period_ms;
            let used = self.last_step.is_some_and(|last| step <= last);
            if used || into * 10 > period_ms * 6 {
                let wait = period_ms - into + 20;
                tokio::time::sleep(Duration::from_millis(u64::try_from(wait).expect("ms"))).await;
                continue;
            }
            self.last_step = Some(step);
            return code_at(
                &self.secret_b32,
                self.digits,
                self.period,
                step * self.period,
            );
        }
    }

    /// A code that is certainly wrong now.
    pub fn wrong(&self) -> String {
        let now = now().as_secs();
        let mut code: Vec<u8> =
            code_at(&self.secret_b32, self.digits, self.period, now).into_bytes();
        code[0] = if code[0] == b'9' { b'0' } else { code[0] + 1 };
        String::from_utf8(code).expect("ascii")
    }
}

pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

pub fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The claims of a JWT, read without checking the signature.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}
