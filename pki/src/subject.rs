//! Certificate subjects and key algorithms, from the API's terms to rcgen's.

use otpilot_api::common::{CertificateSubject, KeyAlgorithm};
use rcgen::{DistinguishedName, DnType, KeyPair, SignatureAlgorithm};

use secrecy::SecretString;
use secrecy::zeroize::Zeroize;

use crate::error::PkiError;
use crate::info::pem_encode;

// RFC 5280 upper bounds (ub-common-name, ub-organization-name, ub-organizational-unit-name).
const MAX_ATTRIBUTE_LEN: usize = 64;

/// The X.509 distinguished name for `subject`.
pub(crate) fn distinguished_name(
    subject: &CertificateSubject,
) -> Result<DistinguishedName, PkiError> {
    let mut name = DistinguishedName::new();
    check_attribute("commonName", &subject.common_name)?;
    name.push(DnType::CommonName, subject.common_name.as_str());
    // rcgen keeps one value per attribute type; a second would silently
    // replace the first, so refuse it instead.
    for (attribute, values, dn_type) in [
        (
            "organizations",
            &subject.organizations,
            DnType::OrganizationName,
        ),
        (
            "organizationalUnits",
            &subject.organizational_units,
            DnType::OrganizationalUnitName,
        ),
    ] {
        match values.as_slice() {
            [] => {}
            [value] => {
                check_attribute(attribute, value)?;
                name.push(dn_type, value.as_str());
            }
            _ => {
                return Err(PkiError::InvalidSubject {
                    reason: format!("{attribute} may hold at most one value"),
                });
            }
        }
    }
    Ok(name)
}

fn check_attribute(attribute: &str, value: &str) -> Result<(), PkiError> {
    if value.trim().is_empty() {
        return Err(PkiError::InvalidSubject {
            reason: format!("{attribute} is empty"),
        });
    }
    if value.chars().count() > MAX_ATTRIBUTE_LEN {
        return Err(PkiError::InvalidSubject {
            reason: format!("{attribute} is longer than {MAX_ATTRIBUTE_LEN} characters"),
        });
    }
    Ok(())
}

/// The signature algorithm rcgen uses for a key of `algorithm`.
pub(crate) fn signature_algorithm(algorithm: KeyAlgorithm) -> &'static SignatureAlgorithm {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
    }
}

/// The name users write in the API, for messages.
pub(crate) fn algorithm_name(algorithm: KeyAlgorithm) -> &'static str {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
        KeyAlgorithm::EcdsaP384 => "ECDSA-P384",
        KeyAlgorithm::Ed25519 => "Ed25519",
    }
}

/// A fresh key pair of `algorithm`.
pub(crate) fn generate_key(algorithm: KeyAlgorithm) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(signature_algorithm(algorithm)).map_err(|source| PkiError::GenerateKey {
        algorithm: algorithm_name(algorithm),
        source,
    })
}

/// The private key as PKCS#8 PEM that every common TLS stack reads.
///
/// ring writes Ed25519 keys as PKCS#8 v2 (with the public key), which
/// OpenSSL 3.0 cannot read ("unsupported"); those are rewritten as the
/// RFC 8410 v1 form, which carries the same private key.
pub(crate) fn private_key_pem(key: &KeyPair) -> Result<SecretString, PkiError> {
    if key.algorithm() != &rcgen::PKCS_ED25519 {
        return Ok(SecretString::from(key.serialize_pem()));
    }
    let v2 = key.serialized_der();
    let seed = v2
        .strip_prefix(ED25519_PKCS8_V2_PREFIX.as_slice())
        .and_then(|rest| rest.get(..32))
        .ok_or_else(|| PkiError::InvalidKey {
            reason: "the generated Ed25519 key is not in the expected PKCS#8 form".to_owned(),
        })?;
    let mut v1 = Vec::with_capacity(48);
    v1.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
    v1.extend_from_slice(seed);
    let pem = SecretString::from(pem_encode("PRIVATE KEY", &v1));
    v1.zeroize();
    Ok(pem)
}

// SEQUENCE { INTEGER 1, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } ...
const ED25519_PKCS8_V2_PREFIX: [u8; 16] = [
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
// SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } }
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(common_name: &str, organizations: &[&str], units: &[&str]) -> CertificateSubject {
        CertificateSubject {
            common_name: common_name.into(),
            organizations: organizations.iter().map(|o| o.to_string()).collect(),
            organizational_units: units.iter().map(|u| u.to_string()).collect(),
        }
    }

    #[test]
    fn subjects_outside_what_x509_and_rcgen_can_hold_are_refused_with_the_field_named() {
        let long = "x".repeat(65);
        let cases = [
            (subject("", &[], &[]), "commonName is empty"),
            (subject("  ", &[], &[]), "commonName is empty"),
            (subject(&long, &[], &[]), "commonName is longer than 64"),
            (
                subject("bot", &["a", "b"], &[]),
                "organizations may hold at most one",
            ),
            (
                subject("bot", &[], &["a", "b"]),
                "organizationalUnits may hold at most one",
            ),
            (subject("bot", &[""], &[]), "organizations is empty"),
            (
                subject("bot", &[], &[&long]),
                "organizationalUnits is longer",
            ),
        ];
        for (subject, expected) in cases {
            let error = distinguished_name(&subject).expect_err("invalid subject");
            assert!(error.to_string().contains(expected), "{subject:?}: {error}");
        }
    }

    #[test]
    fn a_full_subject_keeps_common_name_organization_and_unit_in_order() {
        let name = distinguished_name(&subject("payments-bot", &["Acme"], &["Payments"]))
            .expect("valid subject");
        let types: Vec<_> = name.iter().map(|(dn_type, _)| dn_type.clone()).collect();
        assert_eq!(
            types,
            [
                DnType::CommonName,
                DnType::OrganizationName,
                DnType::OrganizationalUnitName
            ]
        );
    }

    #[test]
    fn every_key_algorithm_generates_a_key_of_its_kind() {
        for algorithm in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Ed25519,
        ] {
            let key = generate_key(algorithm).expect("generate");
            assert_eq!(key.algorithm(), signature_algorithm(algorithm));
            // The PEM written out reads back as the same key.
            let pem = private_key_pem(&key).expect("pem");
            let again =
                KeyPair::from_pem(secrecy::ExposeSecret::expose_secret(&pem)).expect("read back");
            assert_eq!(
                again.public_key_raw(),
                key.public_key_raw(),
                "{algorithm:?}"
            );
        }
    }
}
