//! The `otpilot-sim` binary: prints its URLs and the CA path, serves, and
//! `--help` explains the knobs.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn help_explains_the_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_otpilot-sim"))
        .arg("--help")
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--vendor",
        "--totp-period",
        "--no-replay-protection",
        "--client-ca",
        "--admin-port",
        "--state-dir",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[tokio::test]
async fn binary_prints_urls_and_ca_path_then_serves() {
    common::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_otpilot-sim"))
        .args([
            "--vendor",
            "goaxr",
            "--port",
            "0",
            "--admin-port",
            "0",
            "--totp-period",
            "2s",
        ])
        .args(["--account", "bot:pw:key", "--state-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(4)
        .map(|l| l.expect("line"))
        .collect();
    let value = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {prefix} in {lines:?}"))
    };
    let vendor_url = value("vendor URL:");
    let admin_url = value("admin URL:");
    let ca_path = value("server CA:");
    assert!(vendor_url.starts_with("https://127.0.0.1:"), "{vendor_url}");

    let admin = otpilot_sim::AdminClient::new(&admin_url).expect("admin");
    let config = admin.config().await.expect("config");
    assert_eq!(config.totp.period_secs, 2);
    assert_eq!(admin.account("bot").await.expect("account").username, "bot");

    let ca = std::fs::read_to_string(&ca_path).expect("ca file");
    let client = otpilot_sim::testing::https_client(&ca, None).expect("client");
    let status = client
        .post(format!("{vendor_url}/auth/password"))
        .basic_auth("bot", Some("pw"))
        .send()
        .await
        .expect("login")
        .status();
    assert_eq!(status, 200);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn with_a_secret_ledger_the_binary_records_the_secrets_it_knows_and_issues() {
    common::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("ledger");
    let mut child = Command::new(env!("CARGO_BIN_EXE_otpilot-sim"))
        .args(["--vendor", "goaxr", "--port", "0", "--admin-port", "0"])
        .args(["--account", "bot:ledger-password-1:ledger-api-key-1"])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env(otpilot_sim::ledger::LEDGER_ENV, &ledger)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(4)
        .map(|l| l.expect("line"))
        .collect();
    let value = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {prefix} in {lines:?}"))
    };
    let (vendor_url, ca_path) = (value("vendor URL:"), value("server CA:"));
    let ca = std::fs::read_to_string(&ca_path).expect("ca file");
    let client = otpilot_sim::testing::https_client(&ca, None).expect("client");
    let response = client
        .post(format!("{vendor_url}/auth/password"))
        .basic_auth("bot", Some("ledger-password-1"))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    let _ = child.kill();
    let _ = child.wait();

    let recorded = std::fs::read_to_string(&ledger).expect("the ledger was written");
    for line in ["password\tledger-password-1", "api-key\tledger-api-key-1"] {
        assert!(recorded.lines().any(|l| l == line), "{line}:\n{recorded}");
    }
    // Every token in the answer is in the ledger.
    let tokens: Vec<&str> = recorded
        .lines()
        .filter_map(|l| l.strip_prefix("token\t"))
        .collect();
    assert!(!tokens.is_empty(), "no token recorded:\n{recorded}");
    assert!(
        tokens.iter().all(|t| body.contains(t)),
        "a recorded token is not the one issued"
    );
}
