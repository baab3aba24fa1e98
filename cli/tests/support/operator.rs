//! The operator binary as a child process, for the commands that need it
//! to act (status, ca export, renew, reenroll).
//!
//! The binary is another package's, so Cargo does not hand its path to this
//! crate's tests: it is `otpilot-operator` beside the test binary's
//! directory (`target/debug/`, built by `cargo nextest run --workspace` or
//! `cargo build -p otpilot-operator`), or `$OTPILOT_OPERATOR_BIN`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Operator {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("OTPILOT_OPERATOR_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/<test> -> target/debug/otpilot-operator
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("otpilot-operator"))
        .expect("target directory");
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p otpilot-operator`) or set OTPILOT_OPERATOR_BIN",
        path.display()
    );
    path
}

impl Operator {
    /// Starts an operator watching `namespace`, with ClientCAs labelled
    /// `otpilot.dev/test=<namespace>`, and waits until its admin server is up.
    pub async fn start(namespace: &str) -> Self {
        let kubeconfig = std::env::var(otpilot_tests::cluster::KUBECONFIG_ENV).expect(
            "OTPILOT_TEST_KUBECONFIG is not set: run `eval \"$(scripts/control-plane.sh up)\"` first",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("operator.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary())
            .arg("run")
            .env_clear()
            .env("KUBECONFIG", &kubeconfig)
            .env("OTPILOT_NAMESPACE", namespace)
            .env("OTPILOT_WATCH_NAMESPACE", namespace)
            .env("OTPILOT_ADMIN_ADDR", "127.0.0.1:0")
            .env("OTPILOT_LEASE_NAME", "otpilot-operator")
            .env(
                "OTPILOT_CLIENT_CA_SELECTOR",
                format!("otpilot.dev/test={namespace}"),
            )
            .env("OTPILOT_LEASE_DURATION_SECONDS", "4")
            .env("OTPILOT_LEASE_RENEW_SECONDS", "1")
            .env("RUST_LOG", "info,otpilot_operator=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn otpilot-operator");
        let mut operator = Self {
            child,
            log,
            _dir: dir,
        };
        operator.wait_until_serving().await;
        operator
    }

    async fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log_text().contains("admin server listening") {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("operator exited with {status}:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "operator did not start:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        // For the whole-run secret scan (when OTPILOT_RUN_ARTIFACTS is set).
        otpilot_tests::artifacts::keep_process(
            "operator",
            self.child.id(),
            self.log_text().as_bytes(),
            None,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
