//! The crypto behind the simulator's JWTs: HS256 only, on ring (already the
//! workspace's TLS provider). jsonwebtoken is built without a crypto backend
//! because its RustCrypto one brings `rsa` (RUSTSEC-2023-0071, a timing side
//! channel with no fix) and second copies of `sha2`, `hmac`, `rand` and `pem`
//! into the dependency graph; the simulator only ever signs HS256.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::hmac;

/// Signs and verifies HS256 and refuses every other algorithm; JWKs are
/// never used.
static HS256_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes HS256 the process's JWT provider; cheap to call again.
pub(crate) fn install() {
    // Err: a provider is installed already, ours (an earlier issuer) or the
    // embedding program's, which then signs HS256 itself.
    let _ = HS256_ONLY.install_default();
}

struct Hs256(hmac::Key);

fn hs256(algorithm: &Algorithm, family: AlgorithmFamily, secret: &[u8]) -> Result<Hs256> {
    if *algorithm != Algorithm::HS256 || family != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Hs256(hmac::Key::new(hmac::HMAC_SHA256, secret)))
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Ok(Box::new(hs256(algorithm, key.family(), key.as_bytes())?))
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    Ok(Box::new(hs256(
        algorithm,
        key.family(),
        key.try_get_as_bytes()?,
    )?))
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(hmac::sign(&self.0, msg).as_ref().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        // Constant-time comparison.
        hmac::verify(&self.0, msg, tag).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs256_matches_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        let key = EncodingKey::from_secret(b"Jefe");
        let signer = new_signer(&Algorithm::HS256, &key).expect("signer");
        let tag = signer
            .try_sign(b"what do ya want for nothing?")
            .expect("sign");
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let verifier =
            new_verifier(&Algorithm::HS256, &DecodingKey::from_secret(b"Jefe")).expect("verifier");
        assert!(
            verifier
                .verify(b"what do ya want for nothing?", &tag)
                .is_ok()
        );
        assert!(
            verifier
                .verify(b"what do ya want for something?", &tag)
                .is_err()
        );
    }

    #[test]
    fn every_other_algorithm_is_refused() {
        let key = EncodingKey::from_secret(b"k");
        for alg in [
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            assert!(new_signer(&alg, &key).is_err(), "{alg:?}");
            assert!(
                new_verifier(&alg, &DecodingKey::from_secret(b"k")).is_err(),
                "{alg:?}"
            );
        }
    }
}
