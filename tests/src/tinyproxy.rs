//! A real HTTP proxy for the egress tests: tinyproxy (Debian's package,
//! installed by `scripts/test-tools.sh`, which exports `OTPILOT_TINYPROXY`)
//! on a free loopback port, with a log of the tunnels it opened.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tinyproxy of this test's own; killed on drop.
pub struct Tinyproxy {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Starts one; panics (the test fails) when tinyproxy is not installed.
    pub fn start() -> Self {
        let binary = std::env::var("OTPILOT_TINYPROXY").expect(
            "OTPILOT_TINYPROXY is not set: run `eval \"$(scripts/test-tools.sh)\"`, which installs tinyproxy",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log = dir.path().join("tinyproxy.log");
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\nMaxClients 50\nAllow 127.0.0.1\n",
                log.display()
            ),
        )
        .expect("write tinyproxy.conf");
        let child = Command::new(binary)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tinyproxy");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tinyproxy listens on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        }
    }

    /// The CONNECT tunnels it opened, as `host:port`.
    pub fn tunnels(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split("Request (file descriptor").nth(1))
            .filter_map(|rest| rest.split("CONNECT ").nth(1))
            .filter_map(|target| target.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A loopback address where nothing listens: a proxy that is down.
pub fn dead_proxy() -> String {
    format!("http://127.0.0.1:{}", free_port())
}
