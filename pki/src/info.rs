//! Reading certificates: PEM blocks, fingerprints, serials, validity.

use jiff::Timestamp;
use otpilot_api::common::CertificateSubject;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::error::PkiError;
use crate::validity::from_asn1;

/// What a person or a status field may want to know about a certificate.
/// All of it is public.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject, as RFC 4514 text (`CN=payments-bot, O=Acme`).
    pub subject: String,
    /// The issuer, as RFC 4514 text.
    pub issuer: String,
    /// Start of the validity window.
    pub not_before: Timestamp,
    /// End of the validity window.
    pub not_after: Timestamp,
    /// Serial number, upper-case hex as `openssl x509 -serial` prints it.
    pub serial: String,
    /// SHA-256 of the DER, upper-case hex pairs joined by colons, as
    /// `openssl x509 -fingerprint -sha256` prints it.
    pub fingerprint_sha256: String,
    /// Whether basicConstraints says CA:TRUE.
    pub is_ca: bool,
    /// DNS names and IP addresses in the subjectAltName extension.
    pub subject_alt_names: Vec<String>,
}

/// Reads the first certificate in `pem`.
pub fn certificate_info(pem: &str) -> Result<CertInfo, PkiError> {
    let ders = certificates_der(pem)?;
    let first = ders.first().ok_or_else(no_certificate)?;
    info_from_der(first)
}

/// The subject attributes of the first certificate in `pem`, in the API's
/// terms (for checking a stored certificate against an issuance policy).
/// Attributes that are not UTF-8 text are left out.
pub fn certificate_subject(pem: &str) -> Result<CertificateSubject, PkiError> {
    let ders = certificates_der(pem)?;
    let first = ders.first().ok_or_else(no_certificate)?;
    let certificate = parse_der(first)?;
    let subject = certificate.subject();
    let texts = |values: Vec<&x509_parser::x509::AttributeTypeAndValue<'_>>| {
        values
            .into_iter()
            .filter_map(|v| v.as_str().ok().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    Ok(CertificateSubject {
        common_name: texts(subject.iter_common_name().collect())
            .into_iter()
            .next()
            .unwrap_or_default(),
        organizations: texts(subject.iter_organization().collect()),
        organizational_units: texts(subject.iter_organizational_unit().collect()),
    })
}

/// The DER of every CERTIFICATE block in `pem`, in order. Fails on any
/// other block and when there is none.
pub(crate) fn certificates_der(pem: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    let mut ders = Vec::new();
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|_| invalid_certificate("the PEM text is malformed"))?;
        if block.label != "CERTIFICATE" {
            return Err(invalid_certificate(&format!(
                "found a {:?} PEM block where only CERTIFICATE blocks belong",
                block.label
            )));
        }
        ders.push(block.contents);
    }
    if ders.is_empty() {
        return Err(no_certificate());
    }
    Ok(ders)
}

pub(crate) fn parse_der(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    let (rest, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| invalid_certificate("the DER is not an X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(invalid_certificate("trailing bytes after the certificate"));
    }
    Ok(certificate)
}

pub(crate) fn info_from_der(der: &[u8]) -> Result<CertInfo, PkiError> {
    let certificate = parse_der(der)?;
    info_from_parsed(der, &certificate)
}

pub(crate) fn info_from_parsed(
    der: &[u8],
    certificate: &X509Certificate<'_>,
) -> Result<CertInfo, PkiError> {
    let validity = certificate.validity();
    let is_ca = certificate
        .basic_constraints()
        .map_err(|_| invalid_certificate("basicConstraints is malformed or repeated"))?
        .is_some_and(|constraints| constraints.value.ca);
    let subject_alt_names = certificate
        .subject_alternative_name()
        .map_err(|_| invalid_certificate("subjectAltName is malformed or repeated"))?
        .map(|extension| {
            extension
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => ip_text(bytes),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(CertInfo {
        subject: certificate.subject().to_string(),
        issuer: certificate.issuer().to_string(),
        not_before: from_asn1(validity.not_before)?,
        not_after: from_asn1(validity.not_after)?,
        serial: serial_hex(certificate.raw_serial()),
        fingerprint_sha256: fingerprint_sha256(der),
        is_ca,
        subject_alt_names,
    })
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|octets| std::net::Ipv4Addr::from(octets).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|octets| std::net::Ipv6Addr::from(octets).to_string()),
        _ => None,
    }
}

/// Upper-case hex pairs joined by colons, as openssl prints fingerprints.
pub(crate) fn fingerprint_sha256(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Upper-case hex of the serial's value, without the sign byte DER may add.
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let significant = match raw.iter().position(|byte| *byte != 0) {
        Some(start) => &raw[start..],
        None => return "00".to_owned(),
    };
    significant
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect()
}

/// PEM text of `der` under `label`, 64 base64 characters a line.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

pub(crate) fn invalid_certificate(reason: &str) -> PkiError {
    PkiError::InvalidCertificate {
        reason: reason.to_owned(),
    }
}

fn no_certificate() -> PkiError {
    invalid_certificate("no PEM CERTIFICATE block found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_print_as_openssl_does_without_the_der_sign_byte() {
        assert_eq!(serial_hex(&[0x00, 0x9A, 0x01]), "9A01");
        assert_eq!(serial_hex(&[0x0A, 0x01]), "0A01");
        assert_eq!(serial_hex(&[0x00]), "00");
    }

    #[test]
    fn fingerprints_are_upper_case_colon_separated_sha256() {
        let fingerprint = fingerprint_sha256(b"");
        assert!(
            fingerprint.starts_with("E3:B0:C4:42:98:FC:1C:14"),
            "{fingerprint}"
        );
        assert_eq!(fingerprint.len(), 32 * 3 - 1);
    }

    #[test]
    fn text_that_is_not_a_certificate_is_refused_with_the_reason() {
        for (pem, expected) in [
            ("", "no PEM CERTIFICATE block"),
            ("hello", "no PEM CERTIFICATE block"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "found a \"PRIVATE KEY\" PEM block",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "not an X.509 certificate",
            ),
        ] {
            let error = certificate_info(pem).expect_err("not a certificate");
            assert!(error.to_string().contains(expected), "{pem:?}: {error}");
        }
    }
}
