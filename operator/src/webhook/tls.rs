//! The serving certificate, read from `tls.crt` / `tls.key` in a directory
//! on every TLS handshake: a rotated Secret (kubelet-updated mount, or
//! cert-manager's renewal) is served without a restart. The files are a
//! few kilobytes and admission calls are few, so no cache is worth its
//! staleness.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("failed to read {path}: {source} (is the webhook Secret mounted there?)")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("failed to find a PEM certificate in {0}")]
    NoCertificate(String),
    #[error("failed to find a PEM private key in {0}")]
    NoKey(String),
    #[error("failed to load the private key in {path}: {source}")]
    Key { path: String, source: rustls::Error },
}

/// Loads the certificate chain and key from `dir`.
pub fn load(dir: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_path = dir.join("tls.crt");
    let key_path = dir.join("tls.key");
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let cert_pem = read(&cert_path)?;
    let key_pem = read(&key_path)?;
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.display().to_string()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError::NoKey(key_path.display().to_string()))?;
    let signing_key =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|source| TlsError::Key {
            path: key_path.display().to_string(),
            source,
        })?;
    Ok(CertifiedKey::new(chain, signing_key))
}

/// Resolves every handshake to what `dir` holds now.
#[derive(Debug)]
pub struct DirectoryCertificate {
    dir: PathBuf,
}

impl DirectoryCertificate {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

impl ResolvesServerCert for DirectoryCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match load(&self.dir) {
            Ok(key) => Some(Arc::new(key)),
            Err(error) => {
                // The handshake fails; the API server applies the
                // webhook's failurePolicy and logs it too.
                tracing::warn!(%error, "webhook handshake without a serving certificate");
                None
            }
        }
    }
}

/// A server configuration resolving certificates from `dir`.
pub fn server_config(dir: PathBuf) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(DirectoryCertificate::new(dir)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Whether `dir` holds a serving certificate the webhook can use at `now`:
/// it loads with its key and `now` is within its validity. Why not, when
/// not (paths and dates, nothing secret): the operator's `/readyz`.
pub fn current(dir: &Path, now: jiff::Timestamp) -> Result<(), String> {
    load(dir).map_err(|e| e.to_string())?;
    let path = dir.join("tls.crt");
    let pem = std::fs::read_to_string(&path)
        .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    let info = otpilot_pki::certificate_info(&pem)
        .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    if now < info.not_before {
        return Err(format!(
            "{} is valid only from {}",
            path.display(),
            info.not_before
        ));
    }
    if now >= info.not_after {
        return Err(format!("{} expired at {}", path.display(), info.not_after));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_files_are_reported_with_their_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = load(dir.path()).err().map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains("tls.crt")),
            "{error:?}"
        );
        std::fs::write(dir.path().join("tls.crt"), "not pem").expect("write");
        std::fs::write(dir.path().join("tls.key"), "not pem").expect("write");
        let error = load(dir.path()).err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("failed to find a PEM certificate")),
            "{error:?}"
        );
    }

    #[test]
    fn an_issued_chain_and_its_pkcs8_key_load() {
        use otpilot_api::common::{CertificateSubject, KeyAlgorithm};
        use secrecy::ExposeSecret as _;
        let now = jiff::Timestamp::now();
        let validity = std::time::Duration::from_secs(3600);
        let subject = CertificateSubject {
            common_name: "test CA".to_owned(),
            ..CertificateSubject::default()
        };
        let ca =
            otpilot_pki::generate_ca(&subject, KeyAlgorithm::EcdsaP256, validity, now).expect("CA");
        let names = ["otpilot-webhook.otpilot.svc".to_owned()];
        let leaf = otpilot_pki::issue_server_certificate(&ca, &names, validity, now).expect("leaf");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("tls.crt"), &leaf.chain_pem).expect("write");
        std::fs::write(dir.path().join("tls.key"), leaf.key_pem.expose_secret()).expect("write");
        let key = load(dir.path()).expect("loads");
        assert_eq!(
            key.cert.len(),
            leaf.chain_pem.matches("BEGIN CERTIFICATE").count()
        );
        // A certificate where the key should be is no key.
        std::fs::write(dir.path().join("tls.key"), &leaf.chain_pem).expect("write");
        let error = load(dir.path()).err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("failed to find a PEM private key")),
            "{error:?}"
        );
    }
}
