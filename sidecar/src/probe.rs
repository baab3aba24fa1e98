//! `otpilot-sidecar probe ready|live`: one HTTP/1.1 GET on loopback, exit
//! status 0 for a 200. No HTTP client library: the probe runs every few
//! seconds and should cost nothing.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::ProbeKind;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("failed to reach the sidecar at {addr}: {source}")]
    /// The connection failed.
    Connect {
        /// The address probed.
        addr: SocketAddr,
        #[source]
        /// The I/O error.
        source: std::io::Error,
    },
    #[error("the sidecar at {addr} did not answer within {timeout:?}")]
    /// No answer in time.
    Timeout {
        /// The address probed.
        addr: SocketAddr,
        /// How long it waited.
        timeout: Duration,
    },
    #[error("the sidecar answered {status_line:?}: {body}")]
    /// An answer other than 200.
    NotOk {
        /// The HTTP status line.
        status_line: String,
        /// The answer's body.
        body: String,
    },
}

/// The path a probe asks.
pub fn path(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Ready => "/readyz",
        ProbeKind::Live => "/healthz",
    }
}

/// Whether an HTTP/1.x answer starts with a 200 status line.
pub fn is_ok(answer: &str) -> bool {
    let mut parts = answer.split_whitespace();
    matches!(
        (parts.next(), parts.next()),
        (Some(v), Some("200")) if v.starts_with("HTTP/1.")
    )
}

/// Runs the probe.
pub async fn probe(addr: SocketAddr, kind: ProbeKind, timeout: Duration) -> Result<(), ProbeError> {
    let ask = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ProbeError::Connect { addr, source })?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
            path(kind)
        );
        let io = |source| ProbeError::Connect { addr, source };
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut answer = Vec::with_capacity(512);
        stream
            .take(8 * 1024)
            .read_to_end(&mut answer)
            .await
            .map_err(io)?;
        let answer = String::from_utf8_lossy(&answer);
        if is_ok(&answer) {
            Ok(())
        } else {
            let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
            Err(ProbeError::NotOk {
                status_line: head.lines().next().unwrap_or_default().to_owned(),
                body: body.trim().to_owned(),
            })
        }
    };
    tokio::time::timeout(timeout, ask)
        .await
        .map_err(|_| ProbeError::Timeout { addr, timeout })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_200_status_line_passes() {
        let cases = [
            ("HTTP/1.1 200 OK\r\n\r\nready", true),
            ("HTTP/1.0 200 OK\r\n", true),
            ("HTTP/1.1 503 Service Unavailable\r\n\r\nnot ready", false),
            ("HTTP/1.1 2000 OK\r\n", false),
            ("", false),
            ("garbage 200", false),
        ];
        for (answer, ok) in cases {
            assert_eq!(is_ok(answer), ok, "{answer:?}");
        }
    }
}
