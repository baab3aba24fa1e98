//! The run's artifacts for the whole-run secret scan: when
//! `OTPILOT_RUN_ARTIFACTS` names a directory, the harnesses keep there what
//! each process they started printed, and its metrics, so that
//! `scripts/secret-scan.py` can look through all of it for every secret the
//! run created. Nothing is kept when it is unset.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The variable naming the artifacts directory.
pub const ARTIFACTS_ENV: &str = "OTPILOT_RUN_ARTIFACTS";

fn directory() -> Option<PathBuf> {
    std::env::var_os(ARTIFACTS_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// Keeps `text` as `<what>-<pid>-<nanos>.log` (unique across the test
/// processes of a run). Best effort: a harness must not fail a test
/// because its artifact could not be kept, but says so.
pub fn keep(what: &str, pid: u32, text: &[u8]) {
    let Some(dir) = directory() else { return };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let path = dir.join(format!("{what}-{pid}-{nanos}.log"));
    let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text));
    if let Err(error) = written {
        eprintln!("could not keep {}: {error}", path.display());
    }
}

/// `GET /metrics` from `addr` (plain HTTP on loopback), blocking, bounded
/// to a second each way; empty when the process no longer answers. For
/// `Drop` implementations, where no async runtime can be relied on.
pub fn scrape_metrics(addr: SocketAddr) -> Vec<u8> {
    let attempt = || -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.set_write_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body)?;
        Ok(body)
    };
    attempt().unwrap_or_default()
}

/// Keeps a process's log and, when it still answers, its metrics.
pub fn keep_process(what: &str, pid: u32, log: &[u8], metrics_addr: Option<SocketAddr>) {
    if directory().is_none() {
        return;
    }
    keep(what, pid, log);
    if let Some(addr) = metrics_addr {
        keep(&format!("{what}-metrics"), pid, &scrape_metrics(addr));
    }
}
