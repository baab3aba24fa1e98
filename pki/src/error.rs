//! What can go wrong making or reading certificates. No variant carries key
//! material: messages name the failed step and what to do about it.

use jiff::Timestamp;

/// A failure of the certificate authority.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("failed to build the certificate subject: {reason}")]
    /// The subject could not be encoded.
    InvalidSubject {
        /// What was wrong with it.
        reason: String,
    },

    #[error("failed to issue a serving certificate: no DNS names or IP addresses given")]
    /// A serving certificate needs at least one DNS name or IP address.
    NoServerNames,

    #[error(
        "failed to issue a serving certificate: {name:?} is neither a DNS name nor an IP address"
    )]
    /// A server name is neither a DNS name nor an IP address.
    InvalidServerName {
        /// The name as given.
        name: String,
    },

    #[error(
        "failed to compute the validity period: {reason}; choose a shorter duration or check the clock"
    )]
    /// The validity window could not be computed (overflow, or it ends before it starts).
    InvalidValidity {
        /// What was wrong with it.
        reason: String,
    },

    #[error("failed to generate a {algorithm} key pair")]
    /// Key generation failed.
    GenerateKey {
        /// The key algorithm asked for.
        algorithm: &'static str,
        #[source]
        /// What rcgen reported.
        source: rcgen::Error,
    },

    #[error("failed to sign the certificate")]
    /// Signing failed.
    Sign(#[source] rcgen::Error),

    #[error("failed to read the certificate: {reason}")]
    /// A PEM or DER certificate could not be parsed.
    InvalidCertificate {
        /// What the parser reported.
        reason: String,
    },

    // The key's own bytes never reach this message: only its PEM label.
    #[error("failed to read the private key: {reason}")]
    /// A private key could not be parsed.
    InvalidKey {
        /// What the parser reported (never key bytes).
        reason: String,
    },

    #[error(
        "failed to adopt the CA: the certificate is not a CA (basicConstraints CA:TRUE is missing); \
         import a CA certificate, not a leaf"
    )]
    /// The certificate to adopt is a leaf, not a CA.
    NotACa,

    #[error(
        "failed to adopt the CA: {problem}; strict X.509 verifiers (openssl -x509_strict, \
         Python 3.13+) reject certificates under such a CA, so re-issue the CA with it fixed"
    )]
    /// The CA to adopt would make strict verifiers reject what it issues.
    CaNotStrictlyValid {
        /// Which rule it breaks.
        problem: &'static str,
    },

    #[error(
        "failed to adopt the CA: the private key does not belong to the certificate; \
         check that tls.key and tls.crt come from the same CA"
    )]
    /// The CA's key and certificate do not belong together.
    KeyMismatch,

    #[error("failed to adopt the CA: it expired at {not_after}; import or generate a new CA")]
    /// The CA to adopt has expired.
    CaExpired {
        /// When it expired.
        not_after: Timestamp,
    },

    #[error(
        "failed to adopt the CA: it is not valid before {not_before}; check the clock or wait until then"
    )]
    /// The CA to adopt is not valid yet.
    CaNotYetValid {
        /// When it becomes valid.
        not_before: Timestamp,
    },

    #[error(
        "failed to adopt the CA: its subject name cannot be copied exactly into the certificates \
         it issues (it repeats an attribute or has multi-valued parts), so verifiers could not \
         chain them to it; use a CA whose subject has one value per attribute"
    )]
    /// The CA's subject cannot be copied exactly into issued certificates' issuer.
    IssuerNameNotReproducible,
}
