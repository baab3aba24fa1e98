//! What can go wrong making or reading certificates. No variant carries key
//! material: messages name the failed step and what to do about it.

use jiff::Timestamp;

/// A failure of the certificate authority.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("failed to build the certificate subject: {reason}")]
    InvalidSubject { reason: String },

    #[error("failed to issue a serving certificate: no DNS names or IP addresses given")]
    NoServerNames,

    #[error(
        "failed to issue a serving certificate: {name:?} is neither a DNS name nor an IP address"
    )]
    InvalidServerName { name: String },

    #[error(
        "failed to compute the validity period: {reason}; choose a shorter duration or check the clock"
    )]
    InvalidValidity { reason: String },

    #[error("failed to generate a {algorithm} key pair")]
    GenerateKey {
        algorithm: &'static str,
        #[source]
        source: rcgen::Error,
    },

    #[error("failed to sign the certificate")]
    Sign(#[source] rcgen::Error),

    #[error("failed to read the certificate: {reason}")]
    InvalidCertificate { reason: String },

    // The key's own bytes never reach this message: only its PEM label.
    #[error("failed to read the private key: {reason}")]
    InvalidKey { reason: String },

    #[error(
        "failed to adopt the CA: the certificate is not a CA (basicConstraints CA:TRUE is missing); \
         import a CA certificate, not a leaf"
    )]
    NotACa,

    #[error(
        "failed to adopt the CA: {problem}; strict X.509 verifiers (openssl -x509_strict, \
         Python 3.13+) reject certificates under such a CA, so re-issue the CA with it fixed"
    )]
    CaNotStrictlyValid { problem: &'static str },

    #[error(
        "failed to adopt the CA: the private key does not belong to the certificate; \
         check that tls.key and tls.crt come from the same CA"
    )]
    KeyMismatch,

    #[error("failed to adopt the CA: it expired at {not_after}; import or generate a new CA")]
    CaExpired { not_after: Timestamp },

    #[error(
        "failed to adopt the CA: it is not valid before {not_before}; check the clock or wait until then"
    )]
    CaNotYetValid { not_before: Timestamp },

    #[error(
        "failed to adopt the CA: its subject name cannot be copied exactly into the certificates \
         it issues (it repeats an attribute or has multi-valued parts), so verifiers could not \
         chain them to it; use a CA whose subject has one value per attribute"
    )]
    IssuerNameNotReproducible,
}
