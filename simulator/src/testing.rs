//! Helpers for tests that talk to the simulator: a client CA and client
//! certificate (what the operator would issue), and an HTTPS client that
//! trusts the simulator and presents that certificate.

use rcgen::{DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls::{TlsError, ca_params, leaf_params, provider};

/// A client CA with its key.
pub struct ClientCa {
    /// CA certificate, PEM (what the user hands to the vendor).
    pub cert_pem: String,
    key_pem: String,
}

/// A client certificate and key, PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    /// Certificate chain, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCa")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl ClientCa {
    /// A new CA named `common_name`.
    pub fn generate(common_name: &str) -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let cert = ca_params(common_name)?.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate for `common_name` signed by this CA.
    pub fn issue(&self, common_name: &str) -> Result<ClientIdentity, TlsError> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, KeyPair::from_pem(&self.key_pem)?)?;
        let key = KeyPair::generate()?;
        let mut params = leaf_params(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(ClientIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A rustls client configuration (ring) trusting `server_ca_pem`, with an
/// optional client certificate.
pub fn client_tls_config(
    server_ca_pem: &str,
    identity: Option<&ClientIdentity>,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(server_ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| TlsError::NotCa(format!("bad PEM: {e}")))?;
        roots.add(cert)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::NotCa(format!("bad PEM: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
                .map_err(|e| TlsError::NotCa(format!("bad key PEM: {e}")))?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// A reqwest client for the simulator's vendor API.
pub fn https_client(
    server_ca_pem: &str,
    identity: Option<&ClientIdentity>,
) -> Result<reqwest::Client, TlsError> {
    let tls = client_tls_config(server_ca_pem, identity)?;
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| TlsError::NotCa(format!("failed to build the HTTP client: {e}")))
}
