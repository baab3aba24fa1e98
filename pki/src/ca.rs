//! The client CA: generate one, or adopt one the user imports.

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use otpilot_api::common::{CertificateSubject, KeyAlgorithm};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use secrecy::{ExposeSecret, SecretString};
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;

use crate::error::PkiError;
use crate::info::{certificates_der, info_from_parsed, invalid_certificate, parse_der, pem_encode};
use crate::issue::{check_issuer_name, random_serial};
use crate::subject::{distinguished_name, generate_key, private_key_pem};
use crate::validity::{CLOCK_SKEW_ALLOWANCE, Window, to_offset_date_time, window};

/// A CA certificate and its private key, ready to issue certificates.
#[derive(Clone)]
pub struct CaMaterial {
    /// The CA certificate (PEM). When the CA was imported with its issuers'
    /// certificates after it, those follow, in the order given. Imported
    /// PEM is re-encoded (LF line ends, nothing between the blocks).
    pub cert_pem: String,
    /// The CA private key (PEM, PKCS#8).
    pub key_pem: SecretString,
    /// Start of the validity window.
    pub not_before: Timestamp,
    /// End of the validity window.
    pub not_after: Timestamp,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// SHA-256 fingerprint of the CA certificate, upper-case hex pairs
    /// joined by colons (as `openssl x509 -fingerprint -sha256` prints it).
    pub fingerprint_sha256: String,
}

impl fmt::Debug for CaMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaMaterial")
            .field("fingerprint_sha256", &self.fingerprint_sha256)
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("key_pem", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// Generates a self-signed root CA valid from (a little before) `now` for
/// `validity`: basicConstraints critical CA:TRUE with pathlen 0 (it signs
/// leaves only), keyUsage critical keyCertSign + cRLSign, SKI, and AKI = SKI.
pub fn generate_ca(
    subject: &CertificateSubject,
    algorithm: KeyAlgorithm,
    validity: Duration,
    now: Timestamp,
) -> Result<CaMaterial, PkiError> {
    let window = window(now, validity, None)?;
    let key = generate_key(algorithm)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(subject)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    params.not_before = to_offset_date_time(window.not_before)?;
    params.not_after = to_offset_date_time(window.not_after)?;
    let certificate = params.self_signed(&key).map_err(PkiError::Sign)?;
    let der = certificate.der();
    let parsed = parse_der(der)?;
    let info = info_from_parsed(der, &parsed)?;
    Ok(CaMaterial {
        cert_pem: certificate.pem(),
        key_pem: private_key_pem(&key)?,
        not_before: info.not_before,
        not_after: info.not_after,
        serial: info.serial,
        fingerprint_sha256: info.fingerprint_sha256,
    })
}

impl CaMaterial {
    /// Adopts an imported CA: the first certificate in `cert_pem` is the CA
    /// (any after it are kept as its issuers' chain), `key_pem` its PKCS#8
    /// private key. Refuses a certificate that is not a CA, one strict
    /// verifiers would refuse to chain to, a key that is not the
    /// certificate's, and a CA not valid at `now` (a notBefore up to
    /// [`CLOCK_SKEW_ALLOWANCE`] ahead is tolerated).
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &SecretString,
        now: Timestamp,
    ) -> Result<Self, PkiError> {
        let ders = certificates_der(cert_pem)?;
        let ca_der = ders
            .first()
            .ok_or_else(|| invalid_certificate("no PEM CERTIFICATE block found"))?;
        let ca = parse_der(ca_der)?;
        check_is_strict_ca(&ca)?;
        let key = read_private_key(key_pem)?;
        if key.public_key_raw() != ca.public_key().subject_public_key.data.as_ref() {
            return Err(PkiError::KeyMismatch);
        }
        let info = info_from_parsed(ca_der, &ca)?;
        // A CA made a moment ago on a machine whose clock runs a little
        // ahead is fine: what it issues starts at its notBefore.
        let tolerated_now = now
            .checked_add(SignedDuration::try_from(CLOCK_SKEW_ALLOWANCE).unwrap_or_default())
            .unwrap_or(now);
        if tolerated_now < info.not_before {
            return Err(PkiError::CaNotYetValid {
                not_before: info.not_before,
            });
        }
        if now >= info.not_after {
            return Err(PkiError::CaExpired {
                not_after: info.not_after,
            });
        }
        // Re-encoded: what users paste may carry CRLFs or text around the
        // blocks, and this PEM is published for vendors as it stands.
        let cert_pem = ders
            .iter()
            .map(|der| pem_encode("CERTIFICATE", der))
            .collect();
        let material = CaMaterial {
            cert_pem,
            key_pem: key_pem.clone(),
            not_before: info.not_before,
            not_after: info.not_after,
            serial: info.serial,
            fingerprint_sha256: info.fingerprint_sha256,
        };
        material.check_issuer_name_is_reproducible()?;
        Ok(material)
    }

    /// Whether `cert_pem`'s first certificate was signed by this CA's key
    /// (e.g. to tell a client certificate from before a CA roll).
    pub fn has_issued(&self, cert_pem: &str) -> Result<bool, PkiError> {
        let ca_der = self.ca_der()?;
        let ca = parse_der(&ca_der)?;
        let ders = certificates_der(cert_pem)?;
        let leaf_der = ders
            .first()
            .ok_or_else(|| invalid_certificate("no PEM CERTIFICATE block found"))?;
        let leaf = parse_der(leaf_der)?;
        Ok(leaf.issuer().as_raw() == ca.subject().as_raw()
            && leaf.verify_signature(Some(ca.public_key())).is_ok())
    }

    /// The CA certificate's DER (the first certificate of `cert_pem`).
    pub fn ca_der(&self) -> Result<Vec<u8>, PkiError> {
        certificates_der(&self.cert_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| invalid_certificate("no PEM CERTIFICATE block found"))
    }

    pub(crate) fn window(&self) -> Window {
        Window {
            not_before: self.not_before,
            not_after: self.not_after,
        }
    }

    /// The rcgen issuer: the CA's name, key identifier and signing key.
    pub(crate) fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key = read_private_key(&self.key_pem)?;
        let der = self.ca_der()?;
        Issuer::from_ca_cert_der(&der.into(), key)
            .map_err(|_| invalid_certificate("the CA certificate cannot be used to issue"))
    }

    // rcgen re-encodes the CA's subject as the issuer of what it signs; a
    // subject it cannot reproduce byte for byte would break every chain.
    // A throwaway leaf shows it before anything is issued for real.
    fn check_issuer_name_is_reproducible(&self) -> Result<(), PkiError> {
        let issuer = self
            .issuer()
            .map_err(|_| PkiError::IssuerNameNotReproducible)?;
        let probe_key = generate_key(KeyAlgorithm::EcdsaP256)?;
        let mut params = CertificateParams::default();
        params.not_before = to_offset_date_time(self.not_before)?;
        params.not_after = to_offset_date_time(self.not_after)?;
        let probe = params
            .signed_by(&probe_key, &issuer)
            .map_err(PkiError::Sign)?;
        check_issuer_name(&self.ca_der()?, probe.der())
    }
}

/// What strict X.509 verification demands of a CA (RFC 5280 §4.2.1, as
/// `openssl verify -x509_strict` enforces it).
fn check_is_strict_ca(ca: &X509Certificate<'_>) -> Result<(), PkiError> {
    let strict = |problem| Err(PkiError::CaNotStrictlyValid { problem });
    let malformed = |_| invalid_certificate("an extension is malformed or repeated");
    let Some(constraints) = ca.basic_constraints().map_err(malformed)? else {
        return Err(PkiError::NotACa);
    };
    if !constraints.value.ca {
        return Err(PkiError::NotACa);
    }
    if ca.version() != x509_parser::x509::X509Version::V3 {
        return strict("it is not an X.509 v3 certificate");
    }
    if !constraints.critical {
        return strict("its basicConstraints extension is not marked critical");
    }
    match ca.key_usage().map_err(malformed)? {
        None => return strict("it has no keyUsage extension"),
        Some(usage) if !usage.value.key_cert_sign() => {
            return strict("its keyUsage does not include keyCertSign");
        }
        Some(_) => {}
    }
    let has_subject_key_id = ca.extensions().iter().any(|extension| {
        matches!(
            extension.parsed_extension(),
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(_)
        )
    });
    if !has_subject_key_id {
        return strict("it has no subjectKeyIdentifier extension");
    }
    if let Some(usage) = ca.extended_key_usage().map_err(malformed)?
        && !(usage.value.any || usage.value.client_auth)
    {
        return strict("its extendedKeyUsage does not allow clientAuth");
    }
    Ok(())
}

/// Reads a PKCS#8 private key. Errors name the PEM label at most.
pub(crate) fn read_private_key(key_pem: &SecretString) -> Result<KeyPair, PkiError> {
    let invalid = |reason: &str| PkiError::InvalidKey {
        reason: reason.to_owned(),
    };
    let mut blocks = Pem::iter_from_buffer(key_pem.expose_secret().as_bytes());
    let block = match blocks.next() {
        None => return Err(invalid("no PEM block found")),
        Some(Err(_)) => return Err(invalid("the PEM text is malformed")),
        Some(Ok(block)) => block,
    };
    match block.label.as_str() {
        "PRIVATE KEY" => {}
        "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {
            return Err(invalid(&format!(
                "{:?} keys are not supported; convert the key to PKCS#8 with \
                 `openssl pkcs8 -topk8 -nocrypt -in tls.key`",
                block.label
            )));
        }
        "ENCRYPTED PRIVATE KEY" => {
            return Err(invalid(
                "the key is encrypted; store it unencrypted (PKCS#8) in the Secret",
            ));
        }
        other => {
            return Err(invalid(&format!(
                "found a {other:?} PEM block where a PRIVATE KEY (PKCS#8) belongs"
            )));
        }
    }
    KeyPair::try_from(block.contents.as_slice()).map_err(|_| {
        invalid("not a PKCS#8 ECDSA P-256/P-384, Ed25519 or RSA key that can sign certificates")
    })
}
