//! The operator binary as a child process: its log, admin endpoint, leader
//! state, SIGKILL and SIGTERM.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The operator binary, running with a kubeconfig for the test control
/// plane, scoped to one namespace. Killed when dropped.
pub struct Operator {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    pub admin: Option<String>,
}

impl Operator {
    /// Starts an operator for `namespace` and waits until its admin server
    /// answers.
    pub async fn start(namespace: &str) -> Self {
        Self::start_with(namespace, "otpilot-operator", &[]).await
    }

    pub async fn start_with(namespace: &str, lease: &str, env: &[(&str, &str)]) -> Self {
        let kubeconfig = std::env::var(otpilot_tests::cluster::KUBECONFIG_ENV).expect(
            "OTPILOT_TEST_KUBECONFIG is not set: run `eval \"$(scripts/control-plane.sh up)\"` first",
        );
        Self::start_on(&kubeconfig, namespace, lease, env).await
    }

    /// Starts an operator against the control plane of `kubeconfig` (a
    /// private one, for tests that break their control plane).
    pub async fn start_on(
        kubeconfig: &str,
        namespace: &str,
        lease: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("operator.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_otpilot-operator"));
        command
            .arg("run")
            .env_clear()
            .env("KUBECONFIG", kubeconfig)
            .env("OTPILOT_NAMESPACE", namespace)
            .env("OTPILOT_WATCH_NAMESPACE", namespace)
            .env("OTPILOT_ADMIN_ADDR", "127.0.0.1:0")
            .env("OTPILOT_LEASE_NAME", lease)
            .env(
                "OTPILOT_CLIENT_CA_SELECTOR",
                format!("otpilot.dev/test={namespace}"),
            )
            .env("OTPILOT_LEASE_DURATION_SECONDS", "4")
            .env("OTPILOT_LEASE_RENEW_SECONDS", "1")
            .env("RUST_LOG", "info,otpilot_operator=debug")
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("spawn otpilot-operator");
        let mut operator = Self {
            child,
            log,
            _dir: dir,
            admin: None,
        };
        operator.admin = Some(operator.wait_for_admin().await);
        operator
    }

    async fn wait_for_admin(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for line in self.log_text().lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if v["fields"]["message"] == "admin server listening"
                    && let Some(addr) = v["fields"]["addr"].as_str()
                {
                    return format!("http://{addr}");
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("operator exited with {status}:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "operator did not start its admin server:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `/metrics`, or an empty string when the process is gone.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.admin.as_deref().unwrap_or_default());
        match reqwest::get(url).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn is_leader(&self) -> bool {
        self.metrics()
            .await
            .lines()
            .any(|l| l == "otpilot_operator_leader 1")
    }

    /// SIGKILL: no chance to clean up, like a node failure or OOM kill.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status. An operator still running 30 s later
    /// fails the test with its log (the operator bounds its own shutdown
    /// well below that), instead of hanging until nextest's timeout.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for operator") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the operator did not exit within 30 s of SIGTERM; its log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        // For the whole-run secret scan (when OTPILOT_RUN_ARTIFACTS is set).
        otpilot_tests::artifacts::keep_process(
            "operator",
            self.child.id(),
            self.log_text().as_bytes(),
            self.admin
                .as_deref()
                .and_then(|url| url.strip_prefix("http://")?.parse().ok()),
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
