//! Issuing leaf certificates: client certificates for vendors' mTLS, and
//! serving certificates (the webhook's).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use jiff::Timestamp;
use otpilot_api::common::{CertificateSubject, KeyAlgorithm};
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType,
    SerialNumber,
};
use secrecy::SecretString;

use crate::ca::CaMaterial;
use crate::error::PkiError;
use crate::info::{certificates_der, info_from_parsed, parse_der, pem_encode};
use crate::subject::{distinguished_name, generate_key, private_key_pem};
use crate::validity::{to_offset_date_time, window};

/// A freshly issued certificate and its private key.
#[derive(Clone)]
pub struct IssuedCertificate {
    /// The certificate then the CA's (and any chain imported with the CA),
    /// PEM: what goes in `tls.crt`.
    pub chain_pem: String,
    /// The private key (PEM, PKCS#8): what goes in `tls.key`.
    pub key_pem: SecretString,
    /// Start of the validity window.
    pub not_before: Timestamp,
    /// End of the validity window.
    pub not_after: Timestamp,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// SHA-256 fingerprint of the certificate (not the chain).
    pub fingerprint_sha256: String,
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("fingerprint_sha256", &self.fingerprint_sha256)
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("key_pem", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// Issues a client certificate for mTLS: extendedKeyUsage clientAuth,
/// keyUsage digitalSignature, basicConstraints CA:FALSE, SKI, and AKI = the
/// CA's SKI; a random 128-bit serial; notBefore a little in the past (clock
/// skew), notAfter `validity` from `now` but never after the CA's.
pub fn issue_client_certificate(
    ca: &CaMaterial,
    subject: &CertificateSubject,
    algorithm: KeyAlgorithm,
    validity: Duration,
    now: Timestamp,
) -> Result<IssuedCertificate, PkiError> {
    let mut params = leaf_params(ca, validity, now)?;
    params.distinguished_name = distinguished_name(subject)?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    issue(ca, params, algorithm)
}

/// Issues a serving certificate for `names` (DNS names or IP addresses, the
/// first also the common name when short enough): extendedKeyUsage
/// serverAuth, keyUsage digitalSignature, ECDSA P-256, otherwise as
/// [`issue_client_certificate`].
pub fn issue_server_certificate(
    ca: &CaMaterial,
    names: &[String],
    validity: Duration,
    now: Timestamp,
) -> Result<IssuedCertificate, PkiError> {
    let first = names.first().ok_or(PkiError::NoServerNames)?;
    let mut params = leaf_params(ca, validity, now)?;
    params.subject_alt_names = names
        .iter()
        .map(|name| server_name(name))
        .collect::<Result<_, _>>()?;
    let mut subject = rcgen::DistinguishedName::new();
    // An empty subject is allowed (rcgen then marks the SAN critical), but a
    // common name helps people reading the certificate.
    if first.len() <= 64 {
        subject.push(DnType::CommonName, first.as_str());
    }
    params.distinguished_name = subject;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    issue(ca, params, KeyAlgorithm::EcdsaP256)
}

fn leaf_params(
    ca: &CaMaterial,
    validity: Duration,
    now: Timestamp,
) -> Result<CertificateParams, PkiError> {
    let window = window(now, validity, Some(ca.window()))?;
    let mut params = CertificateParams::default();
    params.not_before = to_offset_date_time(window.not_before)?;
    params.not_after = to_offset_date_time(window.not_after)?;
    params.serial_number = Some(random_serial());
    // ExplicitNoCa writes basicConstraints CA:FALSE and the SKI.
    params.is_ca = IsCa::ExplicitNoCa;
    // No RSA leaf keys (ring cannot generate them), so no keyEncipherment.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn issue(
    ca: &CaMaterial,
    params: CertificateParams,
    algorithm: KeyAlgorithm,
) -> Result<IssuedCertificate, PkiError> {
    let issuer = ca.issuer()?;
    let key = generate_key(algorithm)?;
    let certificate = params.signed_by(&key, &issuer).map_err(PkiError::Sign)?;
    let der = certificate.der();
    check_issuer_name(&ca.ca_der()?, der)?;
    let info = info_from_parsed(der, &parse_der(der)?)?;
    let mut chain_pem = certificate.pem();
    for ca_der in certificates_der(&ca.cert_pem)? {
        chain_pem.push_str(&pem_encode("CERTIFICATE", &ca_der));
    }
    Ok(IssuedCertificate {
        chain_pem,
        key_pem: private_key_pem(&key)?,
        not_before: info.not_before,
        not_after: info.not_after,
        serial: info.serial,
        fingerprint_sha256: info.fingerprint_sha256,
    })
}

fn server_name(name: &str) -> Result<SanType, PkiError> {
    if let Ok(address) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(address));
    }
    if !is_dns_name(name) {
        return Err(PkiError::InvalidServerName {
            name: name.to_owned(),
        });
    }
    let ia5 = name.try_into().map_err(|_| PkiError::InvalidServerName {
        name: name.to_owned(),
    })?;
    Ok(SanType::DnsName(ia5))
}

/// A DNS name as a certificate may carry it: lowercase LDH labels of 1–63
/// characters, at most 253 in all, optionally a leading `*.` wildcard.
fn is_dns_name(name: &str) -> bool {
    let labels = name.strip_prefix("*.").unwrap_or(name);
    !labels.is_empty()
        && name.len() <= 253
        && labels.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// 128 random bits, never zero; DER keeps it positive.
pub(crate) fn random_serial() -> SerialNumber {
    loop {
        let bytes: [u8; 16] = rand::random();
        if bytes.iter().any(|byte| *byte != 0) {
            return SerialNumber::from_slice(&bytes);
        }
    }
}

/// Verifiers chain a certificate to its CA by comparing the issuer name
/// with the CA's subject byte for byte.
pub(crate) fn check_issuer_name(ca_der: &[u8], issued_der: &[u8]) -> Result<(), PkiError> {
    let ca = parse_der(ca_der)?;
    let issued = parse_der(issued_der)?;
    if issued.issuer().as_raw() == ca.subject().as_raw() {
        Ok(())
    } else {
        Err(PkiError::IssuerNameNotReproducible)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_dns_names_or_ip_addresses() {
        for good in [
            "localhost",
            "otpilot-webhook.otpilot-system.svc",
            "*.example.com",
            "127.0.0.1",
            "::1",
        ] {
            assert!(server_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Upper.example",
            "-dash.example",
            "a..b",
            "*.",
            "space here",
            "ümlaut.example",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(server_name(bad), Err(PkiError::InvalidServerName { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn serials_are_random_and_128_bits() {
        let first = random_serial();
        let second = random_serial();
        assert_ne!(first, second);
        assert_eq!(first.len(), 16);
    }

    #[test]
    fn an_issued_subject_reads_back_as_the_api_s_subject() {
        let now = Timestamp::from_second(1_800_000_000).expect("valid");
        let day = Duration::from_secs(86_400);
        let root = CertificateSubject {
            common_name: "root".into(),
            organizations: vec![],
            organizational_units: vec![],
        };
        let ca = crate::generate_ca(&root, KeyAlgorithm::EcdsaP256, day * 30, now).expect("CA");
        let subject = CertificateSubject {
            common_name: "payments.bot".into(),
            organizations: vec!["Acme".into()],
            organizational_units: vec!["Payments".into()],
        };
        let issued = issue_client_certificate(&ca, &subject, KeyAlgorithm::EcdsaP256, day, now)
            .expect("issue");
        assert_eq!(
            crate::certificate_subject(&issued.chain_pem).expect("read"),
            subject
        );
    }
}
