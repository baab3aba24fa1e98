//! What `/readyz` means: connected to the API server and, when this
//! replica serves the injection webhook, a serving certificate in
//! `--webhook-cert-dir` that loads and is within its validity window.
//! Leadership is not part of it (every replica serves the webhook), and
//! there is no cache to wait for: the webhook reads ApiCredentials from the
//! API server on each call, and the controllers run on the leader only.

use std::path::Path;

use jiff::Timestamp;

/// The webhook's serving certificate, as a TLS handshake would find it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookCertificate {
    /// No `--webhook-addr`: nothing to check.
    NotServed,
    /// The files are missing or do not load (the handshake fails).
    Unusable(String),
    /// Loads, but its notBefore is still ahead.
    NotYetValid { not_before: Timestamp },
    /// Loads, but its notAfter has passed.
    Expired { not_after: Timestamp },
    /// Loads and is valid now.
    Current { not_after: Timestamp },
}

impl WebhookCertificate {
    /// Its notAfter, when a certificate loads.
    pub fn not_after(&self) -> Option<Timestamp> {
        match self {
            Self::Expired { not_after } | Self::Current { not_after } => Some(*not_after),
            _ => None,
        }
    }
}

/// Where `now` falls in a certificate's validity window.
pub fn classify(not_before: Timestamp, not_after: Timestamp, now: Timestamp) -> WebhookCertificate {
    if now < not_before {
        WebhookCertificate::NotYetValid { not_before }
    } else if now >= not_after {
        WebhookCertificate::Expired { not_after }
    } else {
        WebhookCertificate::Current { not_after }
    }
}

/// Reads the serving certificate the next handshake would use (`None`: the
/// webhook is not served).
pub fn inspect(cert_dir: Option<&Path>, now: Timestamp) -> WebhookCertificate {
    let Some(dir) = cert_dir else {
        return WebhookCertificate::NotServed;
    };
    // The same loading as a handshake: both files, a usable key.
    if let Err(error) = crate::webhook::load_serving_certificate(dir) {
        return WebhookCertificate::Unusable(error.to_string());
    }
    let path = dir.join("tls.crt");
    let info = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|pem| otpilot_pki::certificate_info(&pem).map_err(|e| e.to_string()));
    match info {
        Ok(info) => classify(info.not_before, info.not_after, now),
        Err(error) => {
            WebhookCertificate::Unusable(format!("failed to read {}: {error}", path.display()))
        }
    }
}

/// Ready, or why not (the `/readyz` body: paths and times, nothing secret).
pub fn verdict(connected: bool, certificate: &WebhookCertificate) -> Result<(), String> {
    if !connected {
        return Err("not connected to the Kubernetes API server yet".into());
    }
    match certificate {
        WebhookCertificate::NotServed | WebhookCertificate::Current { .. } => Ok(()),
        WebhookCertificate::Unusable(error) => {
            Err(format!("no usable webhook serving certificate: {error}"))
        }
        WebhookCertificate::NotYetValid { not_before } => Err(format!(
            "the webhook serving certificate is not valid before {not_before}"
        )),
        WebhookCertificate::Expired { not_after } => Err(format!(
            "the webhook serving certificate expired at {not_after}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("timestamp")
    }

    #[test]
    fn where_now_falls_in_the_validity_window() {
        let (from, to) = (at(1000), at(2000));
        for (now, want) in [
            (999, WebhookCertificate::NotYetValid { not_before: from }),
            (1000, WebhookCertificate::Current { not_after: to }),
            (1999, WebhookCertificate::Current { not_after: to }),
            (2000, WebhookCertificate::Expired { not_after: to }),
        ] {
            assert_eq!(classify(from, to, at(now)), want, "at {now}");
        }
    }

    #[test]
    fn ready_only_when_connected_with_a_current_certificate_or_no_webhook() {
        let current = WebhookCertificate::Current { not_after: at(2) };
        for (connected, certificate, ready, says) in [
            (true, WebhookCertificate::NotServed, true, ""),
            (true, current.clone(), true, ""),
            (false, WebhookCertificate::NotServed, false, "not connected"),
            (false, current, false, "not connected"),
            (
                true,
                WebhookCertificate::Unusable("failed to read /x/tls.crt".into()),
                false,
                "no usable webhook serving certificate: failed to read /x/tls.crt",
            ),
            (
                true,
                WebhookCertificate::Expired { not_after: at(2) },
                false,
                "expired at 1970-01-01T00:00:02Z",
            ),
            (
                true,
                WebhookCertificate::NotYetValid { not_before: at(2) },
                false,
                "not valid before",
            ),
        ] {
            let got = verdict(connected, &certificate);
            assert_eq!(got.is_ok(), ready, "{connected} {certificate:?}: {got:?}");
            if let Err(why) = got {
                assert!(why.contains(says), "{why}");
            }
        }
    }

    #[test]
    fn a_missing_directory_is_unusable_and_no_directory_is_not_served() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(matches!(
            inspect(Some(dir.path()), Timestamp::now()),
            WebhookCertificate::Unusable(e) if e.contains("tls.crt")
        ));
        assert_eq!(
            inspect(None, Timestamp::now()),
            WebhookCertificate::NotServed
        );
    }
}
