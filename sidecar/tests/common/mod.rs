//! Test harness: a simulated vendor (in-process, real HTTPS, mTLS for
//! AUDD), an account enrolled with the engine the way the operator does it,
//! the runtime Secret and the user's Secret written as the kubelet lays out
//! Secret volumes, and the sidecar PROCESS with its output captured.

#![allow(dead_code)] // each test binary uses part of the harness

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use otpilot_api::api_credential::EnrollmentState;
use otpilot_api::runtime_secret::{RuntimeBundle, StoredTotp, StoredTotpParams};
use otpilot_profile::{ClientIdentity, Engine, HttpSettings, Inputs, TotpKey, TotpParams, builtin};
use otpilot_sim::testing::ClientCa;
use otpilot_sim::{AccountSpec, SimConfig, SimHandle, Vendor};
use secrecy::{ExposeSecret, SecretString};

pub const PERIOD_SECS: u64 = 2;
pub const USERNAME: &str = "bot@example.com";
pub const PASSWORD: &str = "correct horse battery staple 7Qx";
pub const API_KEY: &str = "ak-9xWq2LmZp4RtYv8NcB3dKf";
pub const TOKEN_HEADER: &str = "Otpilot-Request";

pub fn install_crypto_provider() {
    // Several tests race to install it; the loser's error is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Every built-in profile and the simulated vendor that speaks it.
pub const PROFILES: [(&str, Vendor); 5] = [
    ("audd", Vendor::Audd),
    ("goaxr", Vendor::Goaxr),
    ("conduit", Vendor::Conduit),
    ("acreto", Vendor::Acreto),
    ("cryptr", Vendor::Cryptr),
];

/// A simulated vendor with one enrolled account.
pub struct Vendored {
    pub sim: SimHandle,
    pub profile_name: &'static str,
    pub totp: TotpKey,
    pub last_code_step: Option<u64>,
    pub identity: Option<otpilot_sim::testing::ClientIdentity>,
    /// Every secret value this fixture created (scanned for in outputs).
    pub secrets: Vec<String>,
    /// The simulator's access-token lifetime.
    pub access: Duration,
    /// Conduit's client validation (id, secret), when on.
    pub client: Option<(String, String)>,
}

/// Options of [`vendor`].
#[derive(Clone)]
pub struct VendorOptions {
    pub access: Duration,
    pub refresh: Duration,
    pub lockout: Option<(u32, Duration)>,
    pub max_body_bytes: Option<usize>,
    pub clock: Option<Arc<OffsetClock>>,
    /// The TOTP period (seconds).
    pub period_secs: u64,
    /// Conduit: require `clientid` / `clientsecret` (id, secret).
    pub client: Option<(&'static str, &'static str)>,
}

/// The vendor's clock: real time plus an offset the test moves, to make the
/// vendor see a token as expired while the sidecar does not.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: std::sync::atomic::AtomicU64,
}

impl OffsetClock {
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(
            u64::try_from(by.as_millis()).expect("ms"),
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

impl otpilot_sim::clock::Clock for OffsetClock {
    fn now_ms(&self) -> u64 {
        otpilot_sim::clock::SystemClock.now_ms()
            + self.offset_ms.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Default for VendorOptions {
    fn default() -> Self {
        Self {
            access: Duration::from_secs(300),
            refresh: Duration::from_secs(900),
            lockout: None,
            max_body_bytes: None,
            clock: None,
            period_secs: PERIOD_SECS,
            client: None,
        }
    }
}

pub fn profile_yaml(name: &str) -> &'static str {
    builtin::SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, y)| *y)
        .unwrap_or_else(|| panic!("built-in profile {name}"))
}

/// Starts the simulator and enrolls the account with the engine, as the
/// operator would.
pub async fn vendor(
    profile_name: &'static str,
    vendor: Vendor,
    options: VendorOptions,
) -> Vendored {
    install_crypto_provider();
    let mut config = SimConfig::new(vendor)
        .with_period(Duration::from_secs(options.period_secs))
        .with_token_lifetimes(options.access, options.refresh)
        .with_account(AccountSpec::new(USERNAME, PASSWORD, API_KEY));
    if let Some((threshold, window)) = options.lockout {
        config = config.with_lockout(threshold, window);
    }
    if let Some(clock) = &options.clock {
        config = config.with_clock(clock.clone());
    }
    if let Some(max) = options.max_body_bytes {
        config.max_body_bytes = max;
    }
    if let Some((id, secret)) = options.client {
        config = config.with_client_credentials(id, secret);
    }
    let mut identity = None;
    if vendor.requires_mtls() {
        let ca = ClientCa::generate("otpilot sidecar test client CA").expect("client CA");
        let id = ca
            .issue("otpilot sidecar test client")
            .expect("client certificate");
        config = config.with_client_ca(ca.cert_pem.clone());
        identity = Some(id);
    }
    let sim = otpilot_sim::spawn(config).await.expect("simulator starts");
    let engine = engine_for(&sim, profile_name, identity.as_ref());
    let mut enroll_inputs = inputs(None);
    if let Some(params) = enroll_inputs.totp_params.as_mut() {
        params.period = options.period_secs;
    }
    if let Some((id, secret)) = options.client {
        enroll_inputs
            .variables
            .insert("client_id".to_owned(), id.to_owned());
        enroll_inputs
            .secret_values
            .insert("client_secret".to_owned(), SecretString::from(secret));
    }
    let enrollment = engine.enroll(&enroll_inputs).await.expect("enroll");
    let mut secrets = vec![
        PASSWORD.to_owned(),
        API_KEY.to_owned(),
        enrollment.totp.secret_base32().expose_secret().to_owned(),
    ];
    secrets.extend(
        enrollment
            .recovery_codes
            .iter()
            .map(|c| c.expose_secret().to_owned()),
    );
    if let Some(id) = &identity {
        secrets.push(pem_body(&id.key_pem));
    }
    if let Some((_, secret)) = options.client {
        secrets.push(secret.to_owned());
    }
    Vendored {
        sim,
        profile_name,
        totp: enrollment.totp,
        last_code_step: enrollment.last_code_step,
        identity,
        secrets,
        access: options.access,
        client: options
            .client
            .map(|(id, secret)| (id.to_owned(), secret.to_owned())),
    }
}

/// The base64 body of a PEM block (what a leak would show).
fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .take(1)
        .collect::<String>()
}

pub fn engine_for(
    sim: &SimHandle,
    profile_name: &str,
    identity: Option<&otpilot_sim::testing::ClientIdentity>,
) -> Engine {
    let settings = HttpSettings {
        server_ca_pem: Some(sim.server_ca_pem().to_owned()),
        client_identity: identity.map(|id| ClientIdentity {
            cert_chain_pem: id.cert_pem.clone(),
            key_pem: SecretString::from(id.key_pem.clone()),
        }),
        request_timeout: Duration::from_secs(10),
        ..HttpSettings::default()
    };
    let profile = builtin::get(profile_name).expect("built-in profile");
    Engine::new(profile, &sim.base_url(), settings).expect("engine")
}

pub fn inputs(totp: Option<TotpKey>) -> Inputs {
    Inputs {
        username: Some(USERNAME.into()),
        password: Some(SecretString::from(PASSWORD)),
        api_key: Some(SecretString::from(API_KEY)),
        totp_params: Some(TotpParams {
            period: PERIOD_SECS,
            ..TotpParams::default()
        }),
        totp,
        ..Inputs::default()
    }
}

impl Vendored {
    /// The runtime Secret the operator would write for this account.
    pub fn bundle(&self) -> RuntimeBundle {
        let params = self.totp.params();
        RuntimeBundle {
            enrollment_state: EnrollmentState::Enrolled,
            base_url: self.sim.base_url(),
            username: USERNAME.into(),
            profile_name: self.profile_name.into(),
            profile_yaml: profile_yaml(self.profile_name).into(),
            // Conduit's expiry is this variable (its JWT `exp` is wrong):
            // the operator copies spec.variables here.
            variables: match self.profile_name {
                "conduit" => BTreeMap::from([(
                    "access_token_lifetime_seconds".to_owned(),
                    self.access.as_secs().to_string(),
                )])
                .into_iter()
                .chain(
                    self.client
                        .as_ref()
                        .map(|(id, _)| ("client_id".to_owned(), id.clone())),
                )
                .collect(),
                _ => BTreeMap::new(),
            },
            totp: Some(StoredTotp {
                secret: self.totp.secret_base32().clone(),
                params: StoredTotpParams {
                    algorithm: params.algorithm,
                    digits: params.digits,
                    period: params.period,
                },
            }),
            last_code_step: self.last_code_step,
            tls_crt: self.identity.as_ref().map(|id| id.cert_pem.clone()),
            tls_key: self
                .identity
                .as_ref()
                .map(|id| SecretString::from(id.key_pem.clone())),
            server_ca: Some(self.sim.server_ca_pem().to_owned()),
        }
    }

    pub async fn account(&self) -> otpilot_sim::AccountState {
        self.sim
            .admin()
            .expect("admin client")
            .account(USERNAME)
            .await
            .expect("account state")
    }
}

/// A directory written the way the kubelet writes a Secret volume.
pub struct KubeletVolume {
    pub dir: PathBuf,
    generation: u32,
}

impl KubeletVolume {
    pub fn new(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).expect("volume dir");
        Self { dir, generation: 0 }
    }

    /// A new timestamped directory with `data`, then an atomic swap of
    /// `..data`; per-key links are created for new keys, stale ones removed.
    pub fn write(&mut self, data: &BTreeMap<String, Vec<u8>>) {
        self.generation += 1;
        let stamp = format!(
            "..2026_12_02_00_00_{:02}.{}",
            self.generation,
            std::process::id()
        );
        let real = self.dir.join(&stamp);
        std::fs::create_dir(&real).expect("timestamped dir");
        for (key, value) in data {
            std::fs::write(real.join(key), value).expect("write key");
        }
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        symlink(&stamp, &tmp).expect("..data_tmp link");
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swap ..data");
        for key in data.keys() {
            let link = self.dir.join(key);
            if std::fs::symlink_metadata(&link).is_err() {
                symlink(format!("..data/{key}"), &link).expect("key link");
            }
        }
        if let Some(old) = old {
            let _ = std::fs::remove_dir_all(self.dir.join(old));
        }
    }

    pub fn key_path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }
}

/// The runtime Secret and the user's Secret on disk.
pub struct Mounts {
    pub root: tempfile::TempDir,
    pub runtime: KubeletVolume,
    pub user: KubeletVolume,
    /// The session key the operator put in the runtime Secret.
    pub session_key: otpilot_api::session_key::SessionKey,
}

impl Mounts {
    pub fn new(bundle: &RuntimeBundle) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let mut runtime = KubeletVolume::new(root.path().join("runtime"));
        // As the operator writes it: the bundle and a session key.
        let key_text = otpilot_api::runtime_secret::session_key_value(None).expect("a key");
        let session_key =
            otpilot_api::session_key::SessionKey::from_text(&key_text).expect("the key reads");
        let mut data = bundle.to_data();
        data.insert(
            otpilot_api::runtime_secret::keys::SESSION_KEY.to_owned(),
            key_text,
        );
        runtime.write(&data);
        let mut user = KubeletVolume::new(root.path().join("user"));
        user.write(&BTreeMap::from([
            ("password".to_owned(), format!("{PASSWORD}\n").into_bytes()),
            ("api-key".to_owned(), API_KEY.as_bytes().to_vec()),
        ]));
        Self {
            root,
            runtime,
            user,
            session_key,
        }
    }

    pub fn args(&self) -> Vec<String> {
        vec![
            "run".into(),
            "--runtime-dir".into(),
            self.runtime.dir.display().to_string(),
            "--password-file".into(),
            self.user.key_path("password").display().to_string(),
            "--api-key-file".into(),
            self.user.key_path("api-key").display().to_string(),
            "--api-addr".into(),
            "127.0.0.1:0".into(),
            "--proxy-addr".into(),
            "127.0.0.1:0".into(),
            "--poll-interval".into(),
            "0.3".into(),
        ]
    }
}

/// The sidecar process, killed on drop.
pub struct Sidecar {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    pub api: SocketAddr,
    pub proxy: SocketAddr,
    /// The admin listener, when `--admin-addr` was given.
    pub admin: Option<SocketAddr>,
    pub http: reqwest::Client,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        // For the whole-run secret scan (when OTPILOT_RUN_ARTIFACTS is set).
        otpilot_tests::artifacts::keep_process(
            "sidecar",
            self.child.id(),
            self.output().as_bytes(),
            Some(self.api),
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn capture(reader: impl std::io::Read + Send + 'static, output: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if std::env::var_os("OTPILOT_TEST_SHOW_SIDECAR").is_some() {
                eprintln!("sidecar: {line}");
            }
            output.lock().expect("output lock").push(line);
        }
    });
}

impl Sidecar {
    pub fn spawn(args: &[String]) -> Self {
        Self::spawn_with_env(args, &[])
    }

    /// [`Sidecar::spawn`] with extra environment (e.g. `KUBECONFIG`).
    pub fn spawn_with_env(args: &[String], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_otpilot-sidecar"))
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,otpilot_profile=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sidecar binary starts (cargo builds it for integration tests)");
        let output = Arc::new(Mutex::new(Vec::new()));
        capture(child.stdout.take().expect("stdout"), output.clone());
        capture(child.stderr.take().expect("stderr"), output.clone());
        let deadline = Instant::now() + Duration::from_secs(20);
        let (api, proxy, admin) = loop {
            let found = output.lock().expect("lock").iter().find_map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).ok()?;
                if v["message"] != "listening" {
                    return None;
                }
                let api = v["api"].as_str()?.parse().ok()?;
                let proxy = v["proxy"].as_str()?.parse().ok()?;
                let admin = v["admin"].as_str().and_then(|a| a.parse().ok());
                Some((api, proxy, admin))
            });
            if let Some(found) = found {
                break found;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the sidecar exited ({status}) before listening:\n{}",
                    output.lock().expect("lock").join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "the sidecar did not log 'listening' within 20 s:\n{}",
                output.lock().expect("lock").join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            output,
            api,
            proxy,
            admin,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().expect("lock").join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the sidecar did not exit within {within:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    pub fn proxy_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    /// `GET /token` with the header: the token and its expiry, or the status.
    pub async fn token(&self) -> Result<Token, (u16, String)> {
        let res = self
            .http
            .get(self.url("/token"))
            .header(TOKEN_HEADER, "true")
            .send()
            .await
            .map_err(|e| (0, e.to_string()))?;
        let status = res.status().as_u16();
        let body = res.text().await.map_err(|e| (0, e.to_string()))?;
        if status != 200 {
            return Err((status, body));
        }
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON token");
        let expires_at: jiff::Timestamp = v["expiresAt"]
            .as_str()
            .expect("expiresAt")
            .parse()
            .expect("RFC 3339");
        Ok(Token {
            token: v["token"].as_str().expect("token").to_owned(),
            token_type: v["tokenType"].as_str().unwrap_or_default().to_owned(),
            expires_at: SystemTime::from(expires_at),
        })
    }

    pub async fn status(&self, path: &str) -> (u16, String) {
        match self.http.get(self.url(path)).send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                (status, res.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        }
    }

    pub async fn metrics(&self) -> String {
        self.status("/metrics").await.1
    }

    /// A counter's value (summed over labels matching `filter`).
    pub async fn counter(&self, name: &str, filter: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(name) && l.contains(filter))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, within: Duration) -> Token {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.status("/readyz").await;
            if status == 200 {
                return self.token().await.expect("ready means a token is served");
            }
            assert!(
                Instant::now() < deadline,
                "not ready within {within:?} ({status}: {body}); output:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/readyz` answers something else than 200.
    pub async fn wait_not_ready(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.status("/readyz").await;
            if status == 503 {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "still ready after {within:?}; output:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails if any secret appears in the process's output or metrics.
    pub async fn assert_no_secret_leaked(&self, secrets: &[String]) {
        let metrics = self.metrics().await;
        let output = self.output();
        for secret in secrets.iter().filter(|s| s.len() >= 6) {
            assert!(
                !output.contains(secret.as_str()),
                "a secret value appears in the sidecar's output"
            );
            assert!(
                !metrics.contains(secret.as_str()),
                "a secret value appears in the metrics"
            );
        }
    }
}

#[derive(Debug, Clone)]
pub struct Token {
    pub token: String,
    pub token_type: String,
    pub expires_at: SystemTime,
}

/// Reads a file the kubelet way from a path (for assertions on the token file).
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read")
}
