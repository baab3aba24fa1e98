//! TLS: the simulator's own CA and serving certificate (SAN 127.0.0.1 and
//! localhost), the registry of client CAs users hand to the vendor, and a
//! client-certificate verifier whose trust roots change at runtime.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};

use crate::config::ServerCaMaterial;

/// Something went wrong building certificates or TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen failed.
    #[error("failed to generate a certificate")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("failed to build the TLS configuration")]
    Rustls(#[from] rustls::Error),
    /// No certificate in the PEM.
    #[error("no certificate found in the PEM")]
    NoCertificate,
    /// Not parseable X.509, or not a CA.
    #[error("not a usable CA certificate: {0}")]
    NotCa(String),
    /// webpki could not build a verifier from the roots.
    #[error("failed to build the client certificate verifier")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The ring provider, the only one this workspace uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Generates a new CA for the serving certificate.
pub fn generate_server_ca() -> Result<ServerCaMaterial, TlsError> {
    let key = KeyPair::generate()?;
    let cert = ca_params("otpilot-sim server CA")?.self_signed(&key)?;
    Ok(ServerCaMaterial {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Parameters of a CA certificate with this common name: basic constraints
/// (critical, CA), key usage for signing certificates and CRLs, and the
/// subject key identifier leaves point to (RFC 5280 §4.2.1.1-3, 4.2.1.9).
pub fn ca_params(common_name: &str) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A self-signed root may omit it, but strict verifiers prefer it there too.
    params.use_authority_key_identifier_extension = true;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// Parameters of an end-entity certificate for `purpose`: basic constraints
/// saying it is not a CA, a subject key identifier, the issuer's key
/// identifier, and key usage limited to signatures. Strict verifiers
/// (`openssl verify -x509_strict`, Python 3.13's default context) refuse a
/// leaf without the authority key identifier.
pub fn leaf_params(
    dns_names: Vec<String>,
    purpose: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(dns_names)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    Ok(params)
}

/// The serving side: the CA clients trust and the leaf the server presents.
pub struct ServerPki {
    /// PEM of the CA that signed the serving certificate.
    pub ca_pem: String,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl std::fmt::Debug for ServerPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerPki")
            .field("ca_pem", &self.ca_pem)
            .finish_non_exhaustive()
    }
}

impl ServerPki {
    /// Issues a serving certificate (SAN 127.0.0.1, ::1, localhost) from
    /// `ca`, generating a CA when none is given.
    pub fn new(ca: Option<&ServerCaMaterial>) -> Result<Self, TlsError> {
        Self::for_addresses(ca, &[])
    }

    /// Like [`ServerPki::new`], with `extra` IP addresses in the SAN too:
    /// a simulator bound to a bridge address (e.g. 10.88.0.1, reached from
    /// Pods on a test node) must present a certificate valid for it.
    pub fn for_addresses(
        ca: Option<&ServerCaMaterial>,
        extra: &[IpAddr],
    ) -> Result<Self, TlsError> {
        let ca = match ca {
            Some(ca) => ca.clone(),
            None => generate_server_ca()?,
        };
        let ca_key = KeyPair::from_pem(&ca.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)?;
        let key = KeyPair::generate()?;
        let mut params = leaf_params(
            vec!["localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.subject_alt_names.push(SanType::IpAddress(IpAddr::V6(
            std::net::Ipv6Addr::LOCALHOST,
        )));
        for ip in extra.iter().filter(|ip| !ip.is_loopback()) {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params
            .distinguished_name
            .push(DnType::CommonName, "otpilot-sim");
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Self {
            ca_pem: ca.cert_pem,
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// The serving certificate (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The rustls server configuration (h2 and http/1.1) with `verifier`
    /// deciding about client certificates.
    pub fn server_config(
        &self,
        verifier: Arc<dyn ClientCertVerifier>,
    ) -> Result<ServerConfig, TlsError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

#[derive(Debug, Default)]
struct CaInner {
    roots: Vec<CertificateDer<'static>>,
    subjects: Vec<String>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
}

/// The client CAs registered with the vendor.
#[derive(Debug, Default)]
pub struct ClientCaStore {
    inner: RwLock<CaInner>,
}

impl ClientCaStore {
    /// Registers every CA certificate in `pem`; returns their subjects.
    /// Rejects anything that is not a CA, so a user who hands over a leaf
    /// learns it now rather than at the first refused handshake.
    pub fn register_pem(&self, pem: &str) -> Result<Vec<String>, TlsError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::NotCa(format!("bad PEM: {e}")))?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let mut subjects = Vec::new();
        for cert in &certs {
            let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
                .map_err(|e| TlsError::NotCa(format!("bad X.509: {e}")))?;
            let is_ca = parsed
                .basic_constraints()
                .ok()
                .flatten()
                .is_some_and(|bc| bc.value.ca);
            if !is_ca {
                return Err(TlsError::NotCa(format!(
                    "{} has no CA basic constraint",
                    parsed.subject()
                )));
            }
            subjects.push(parsed.subject().to_string());
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut roots = inner.roots.clone();
        roots.extend(certs);
        let mut store = RootCertStore::empty();
        for root in &roots {
            store.add(root.clone())?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider()).build()?;
        inner.roots = roots;
        inner.subjects.extend(subjects.iter().cloned());
        inner.verifier = Some(verifier);
        Ok(subjects)
    }

    /// Subjects of the registered CAs.
    pub fn subjects(&self) -> Vec<String> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .subjects
            .clone()
    }

    fn verifier(&self) -> Option<Arc<dyn ClientCertVerifier>> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .verifier
            .clone()
    }
}

/// Asks every client for a certificate. When `mandatory` (AUDD) the
/// certificate must chain to a CA registered at that moment; otherwise a
/// presented certificate is accepted unchecked, since those vendors do not
/// use mTLS and a client configured with one must still get through.
#[derive(Debug)]
pub struct DynamicClientVerifier {
    store: Arc<ClientCaStore>,
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl DynamicClientVerifier {
    /// A verifier over `store`.
    pub fn new(store: Arc<ClientCaStore>, mandatory: bool) -> Self {
        Self {
            store,
            mandatory,
            provider: provider(),
        }
    }
}

impl ClientCertVerifier for DynamicClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints would have to borrow from a store that changes under us;
        // an empty list is allowed and clients send their one certificate.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if !self.mandatory {
            return Ok(ClientCertVerified::assertion());
        }
        match self.store.verifier() {
            Some(verifier) => verifier.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridge_address_joins_the_serving_certificates_names() {
        let sans = |extra: &[IpAddr]| {
            let pki = ServerPki::for_addresses(None, extra).expect("pki");
            let (_, parsed) = x509_parser::parse_x509_certificate(pki.cert.as_ref()).expect("x509");
            parsed
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|ext| format!("{:?}", ext.value.general_names))
                .unwrap_or_default()
        };
        let bridge = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1));
        assert!(sans(&[bridge]).contains("[10, 88, 0, 1]"));
        assert!(!sans(&[]).contains("[10, 88, 0, 1]"));
        // Loopback is always there; naming it again adds nothing.
        let loopback = sans(&[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        assert_eq!(loopback.matches("[127, 0, 0, 1]").count(), 1, "{loopback}");
    }

    #[test]
    fn serving_certificate_chains_to_the_published_ca() {
        let pki = ServerPki::new(None).expect("pki");
        let ca = CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("ca pem");
        let (_, parsed) = x509_parser::parse_x509_certificate(pki.cert.as_ref()).expect("x509");
        let (_, ca_parsed) = x509_parser::parse_x509_certificate(ca.as_ref()).expect("x509");
        assert_eq!(parsed.issuer(), ca_parsed.subject());
        let sans = parsed
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|ext| format!("{:?}", ext.value.general_names))
            .unwrap_or_default();
        assert!(
            sans.contains("localhost") && sans.contains("[127, 0, 0, 1]"),
            "{sans}"
        );
    }

    fn pem(der: &[u8]) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    // `openssl verify -x509_strict` over a chain; the test fails (never
    // skips) when openssl is missing.
    fn openssl_verify_strict(ca_pem: &str, leaf_pem: &str, purpose: &str) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = dir.path().join("ca.pem");
        let leaf = dir.path().join("leaf.pem");
        std::fs::write(&ca, ca_pem).expect("write CA");
        std::fs::write(&leaf, leaf_pem).expect("write leaf");
        for (what, target) in [("CA", &ca), ("leaf", &leaf)] {
            let output = std::process::Command::new("openssl")
                .args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"])
                .arg(&ca)
                .arg(target)
                .output()
                .unwrap_or_else(|e| {
                    panic!("failed to run openssl ({e}): install OpenSSL (e.g. apt-get install openssl) to run this test")
                });
            assert!(
                output.status.success(),
                "openssl verify -x509_strict refused the {what}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    #[test]
    fn serving_certificate_passes_strict_x509_verification() {
        let pki = ServerPki::new(None).expect("pki");
        openssl_verify_strict(&pki.ca_pem, &pem(pki.cert_der()), "sslserver");
        // A CA handed in by the user (restarts) yields a strict chain too.
        let reused = ServerPki::new(Some(&generate_server_ca().expect("ca"))).expect("pki");
        openssl_verify_strict(&reused.ca_pem, &pem(reused.cert_der()), "sslserver");
    }

    #[test]
    fn test_client_certificates_pass_strict_x509_verification() {
        let ca = crate::testing::ClientCa::generate("strict client CA").expect("ca");
        let leaf = ca.issue("strict client").expect("leaf");
        openssl_verify_strict(&ca.cert_pem, &leaf.cert_pem, "sslclient");
    }

    #[test]
    fn certificates_carry_the_extensions_rfc_5280_expects() {
        let pki = ServerPki::new(None).expect("pki");
        let ca = CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("ca pem");
        for (what, der, is_ca) in [
            ("CA", ca.as_ref(), true),
            ("leaf", pki.cert.as_ref(), false),
        ] {
            let (_, cert) = x509_parser::parse_x509_certificate(der).expect("x509");
            let bc = cert
                .basic_constraints()
                .expect("one basic constraints")
                .unwrap_or_else(|| panic!("{what}: no basic constraints"));
            assert!(bc.critical, "{what}: basic constraints critical");
            assert_eq!(bc.value.ca, is_ca, "{what}");
            assert!(cert.key_usage().expect("ku").is_some(), "{what}: key usage");
            let extensions = cert.extensions_map().expect("extensions");
            for (oid, name) in [
                (
                    x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
                    "SKI",
                ),
                (
                    x509_parser::oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
                    "AKI",
                ),
            ] {
                assert!(extensions.contains_key(&oid), "{what}: no {name}");
            }
        }
    }

    #[test]
    fn a_leaf_certificate_is_not_accepted_as_client_ca() {
        let key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["leaf".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let store = ClientCaStore::default();
        assert!(matches!(
            store.register_pem(&leaf.pem()),
            Err(TlsError::NotCa(_))
        ));
        assert!(matches!(
            store.register_pem("nonsense"),
            Err(TlsError::NoCertificate)
        ));
        let ca = generate_server_ca().expect("ca");
        assert_eq!(store.register_pem(&ca.cert_pem).expect("register").len(), 1);
        assert_eq!(store.subjects().len(), 1);
    }
}
