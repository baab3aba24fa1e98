//! Test support: the `kubectl-otpilot` binary as a process, a simulated
//! vendor with one account, and a scan of outputs for secret values.

#![allow(dead_code)] // each test binary uses a different part

pub mod cluster;
pub mod operator;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use otpilot_sim::testing::{ClientCa, ClientIdentity};
use otpilot_sim::{AccountSpec, SimConfig, SimHandle, Vendor};

pub const PERIOD_SECS: u64 = 2;
pub const USERNAME: &str = "bot@example.com";
pub const PASSWORD: &str = "Tr0ub4dor-cli-password";
pub const API_KEY: &str = "ak-cli-7HqLmV2sPz7Kd";

/// Every built-in profile and the simulated vendor that speaks it.
pub const PROFILES: [(&str, Vendor); 5] = [
    ("audd", Vendor::Audd),
    ("goaxr", Vendor::Goaxr),
    ("conduit", Vendor::Conduit),
    ("acreto", Vendor::Acreto),
    ("cryptr", Vendor::Cryptr),
];

pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What a run of the CLI printed.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "kubectl-otpilot failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `kubectl-otpilot args…` (async, so an in-process simulator keeps
/// serving), with no environment but `extra_env`.
pub async fn cli(args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-otpilot"));
    command
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null());
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("kubectl-otpilot finished within 180 s")
        .expect("run kubectl-otpilot");
    // For the whole-run secret scan (when OTPILOT_RUN_ARTIFACTS is set);
    // not what `--show-secrets` was asked to print.
    if !args.contains(&"--show-secrets") {
        otpilot_tests::artifacts::keep(
            "kubectl-otpilot",
            std::process::id(),
            &[output.stdout.as_slice(), output.stderr.as_slice()].concat(),
        );
    }
    Run::from(output)
}

/// A simulated vendor with one account (not enrolled), 2-second TOTP steps,
/// and the files `profile try` reads.
pub struct Vendored {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub identity: Option<ClientIdentity>,
}

impl Vendored {
    pub async fn start(vendor: Vendor) -> Self {
        Self::start_with(vendor, |config| config).await
    }

    /// [`Vendored::start`] with the simulator's configuration adjusted
    /// (e.g. Conduit's client validation).
    pub async fn start_with(vendor: Vendor, adjust: impl FnOnce(SimConfig) -> SimConfig) -> Self {
        install_crypto_provider();
        let mut config = adjust(
            SimConfig::new(vendor)
                .with_period(Duration::from_secs(PERIOD_SECS))
                .with_account(AccountSpec::new(USERNAME, PASSWORD, API_KEY)),
        );
        let mut identity = None;
        if vendor.requires_mtls() {
            let ca = ClientCa::generate("otpilot cli test client CA").expect("client CA");
            identity = Some(ca.issue("otpilot cli test client").expect("client cert"));
            config = config.with_client_ca(ca.cert_pem.clone());
        }
        let sim = otpilot_sim::spawn(config).await.expect("simulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text);
        write("password", &format!("{PASSWORD}\n")).expect("password file");
        write("api-key", API_KEY).expect("API key file");
        write("server-ca.pem", sim.server_ca_pem()).expect("server CA file");
        if let Some(id) = &identity {
            write("client.crt", &id.cert_pem).expect("client cert");
            write("client.key", &id.key_pem).expect("client key");
        }
        Self { sim, dir, identity }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state(&self) -> PathBuf {
        self.path("try.state")
    }

    /// The arguments of `profile try PROFILE --flow FLOW` with every file
    /// and the state.
    pub fn try_args(&self, profile: &str, flow: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "profile",
            "try",
            profile,
            "--base-url",
            &self.sim.base_url(),
            "--username",
            USERNAME,
            "--password-file",
            path_str(&self.path("password")),
            "--api-key-file",
            path_str(&self.path("api-key")),
            "--server-ca",
            path_str(&self.path("server-ca.pem")),
            "--totp-period",
            "2",
            "--flow",
            flow,
            "--state",
            path_str(&self.state()),
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        if self.identity.is_some() {
            for (flag, file) in [
                ("--client-cert", "client.crt"),
                ("--client-key", "client.key"),
            ] {
                args.push(flag.to_owned());
                args.push(path_str(&self.path(file)).to_owned());
            }
        }
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    }

    /// Runs `profile try PROFILE --flow FLOW` to the end.
    pub async fn try_flow(&self, profile: &str, flow: &str, extra: &[&str]) -> Run {
        let args = self.try_args(profile, flow, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&args, &[]).await
    }

    /// Every secret value the state file holds, plus the password and key.
    pub fn secret_values(&self) -> Vec<String> {
        let mut values = vec![PASSWORD.to_owned(), API_KEY.to_owned()];
        let Ok(text) = std::fs::read_to_string(self.state()) else {
            return values;
        };
        let state: serde_json::Value = serde_json::from_str(&text).expect("state is JSON");
        collect_strings(&state["totp"]["secret"], &mut values);
        collect_strings(&state["recoveryCodes"], &mut values);
        collect_strings(&state["session"]["accessToken"], &mut values);
        collect_strings(&state["session"]["refreshToken"], &mut values);
        values
    }
}

fn collect_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// None of `values` appears in `text`.
#[track_caller]
pub fn assert_no_secrets(text: &str, values: &[String], what: &str) {
    for value in values {
        assert!(
            value.len() >= 6,
            "secret values are long enough to scan for"
        );
        assert!(
            !text.contains(value.as_str()),
            "a secret value ({} chars) appears in {what}:\n{text}",
            value.len()
        );
    }
}
