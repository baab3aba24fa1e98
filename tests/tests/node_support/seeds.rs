//! TOTP seeds, compared by digest: a test may say that two seeds differ or match, never
//! what they are.

use k8s_openapi::api::core::v1::Secret;
use otpilot_api::runtime_secret::keys::TOTP_SECRET;
use otpilot_sim::SimHandle;
use otpilot_tests::TestNamespace;
use sha2::{Digest, Sha256};

use super::{CREDENTIAL, USERNAME};

/// A seed's SHA-256 (base32 compared without case or padding). Its `Debug` is the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedDigest([u8; 32]);

impl SeedDigest {
    pub fn of(base32: &str) -> Self {
        let normal: String = base32
            .chars()
            .filter(|c| !matches!(c, '=' | ' '))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        SeedDigest(Sha256::digest(normal.as_bytes()).into())
    }
}

/// The seed in the credential's runtime Secret, once it holds one.
pub async fn runtime_seed(ns: &TestNamespace) -> Option<SeedDigest> {
    let secret = ns
        .api::<Secret>()
        .get(&otpilot_api::labels::runtime_secret_name(CREDENTIAL))
        .await
        .expect("get the runtime Secret");
    let seed = secret.data.unwrap_or_default().remove(TOTP_SECRET)?;
    Some(SeedDigest::of(&String::from_utf8_lossy(&seed.0)))
}

/// The seed the vendor verifies the account's codes with (its admin API).
pub async fn vendor_seed(sim: &SimHandle) -> Option<SeedDigest> {
    let account = sim
        .admin()
        .expect("admin client")
        .account(USERNAME)
        .await
        .expect("the account at the vendor");
    account.totp_secret_base32.as_deref().map(SeedDigest::of)
}

#[test]
fn digests_ignore_case_and_padding_only() {
    assert_eq!(
        SeedDigest::of("jbswy3dpehpk3pxp"),
        SeedDigest::of("JBSWY3DPEHPK3PXP")
    );
    assert_eq!(
        SeedDigest::of("JBSWY3DPEHPK3PXP===="),
        SeedDigest::of("JBSWY3DPEHPK3PXP")
    );
    assert_ne!(
        SeedDigest::of("JBSWY3DPEHPK3PXQ"),
        SeedDigest::of("JBSWY3DPEHPK3PXP")
    );
}
