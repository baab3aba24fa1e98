//! The per-credential key that only sidecars hold: the operator generates it
//! once into the `<name>-runtime` Secret (mounted into the sidecar container
//! only), and the sidecars seal the shared session with it and prove their
//! Lease renewals with it. An app container shares the Pod's ServiceAccount,
//! so it can read the session Secret and write the Lease, but without this
//! key it reads only ciphertext and cannot forge a holder other sidecars
//! defer to (`docs/shared-session.md`).
//!
//! Sealing: ChaCha20-Poly1305 with a random 96-bit nonce per write, under a
//! key derived from the stored one, the credential's `namespace/name` and
//! the key id as associated data (a value sealed for one credential does not
//! open for another). Lease proofs: HMAC-SHA256 under another derived key.

use ring::aead::{self, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;

/// Bytes of key material.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = aead::NONCE_LEN;
const AEAD_LABEL: &[u8] = b"otpilot.dev/session-key/aead/v1";
const LEASE_LABEL: &[u8] = b"otpilot.dev/session-key/lease/v1";
const ID_LABEL: &[u8] = b"otpilot.dev/session-key/id/v1";

/// The key. `Debug` shows its id only, never the material.
#[derive(Clone)]
pub struct SessionKey {
    bytes: [u8; KEY_LEN],
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKey(id {})", self.id())
    }
}

/// Why a key could not be made or read. Never shows key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionKeyError {
    /// The stored text is not 64 hex digits.
    #[error("the session key is not {KEY_LEN} bytes written as 64 hex digits")]
    Malformed,
    /// The system's random generator failed.
    #[error("the system random generator failed")]
    Random,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    text.chunks(2)
        .map(|pair| u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok())
        .collect()
}

impl SessionKey {
    /// A fresh key from the system's CSPRNG.
    pub fn generate() -> Result<Self, SessionKeyError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SessionKeyError::Random)?;
        Ok(Self { bytes })
    }

    /// Reads the stored form (64 hex digits; surrounding whitespace ignored).
    pub fn from_text(text: &[u8]) -> Result<Self, SessionKeyError> {
        let trimmed = text.trim_ascii();
        if trimmed.len() != KEY_LEN * 2 {
            return Err(SessionKeyError::Malformed);
        }
        let bytes = unhex(trimmed).ok_or(SessionKeyError::Malformed)?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| SessionKeyError::Malformed)?;
        Ok(Self { bytes })
    }

    /// The stored form: 64 lowercase hex digits.
    pub fn to_text(&self) -> SecretString {
        SecretString::from(hex(&self.bytes))
    }

    fn derive(&self, label: &[u8]) -> hmac::Tag {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &self.bytes), label)
    }

    /// A short public name of the key (16 hex digits, derived one-way):
    /// says which key sealed a value, reveals nothing of it.
    pub fn id(&self) -> String {
        hex(&self.derive(ID_LABEL).as_ref()[..8])
    }

    fn aead_key(&self) -> LessSafeKey {
        let derived = self.derive(AEAD_LABEL);
        // A 32-byte HMAC-SHA256 tag is a valid ChaCha20-Poly1305 key.
        LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, derived.as_ref()).expect("32-byte key"),
        )
    }

    fn associated_data(&self, scope: &str) -> Vec<u8> {
        format!("otpilot.dev/session/v1\n{scope}\n{}", self.id()).into_bytes()
    }

    /// Seals `plaintext` for `scope` (the credential's `namespace/name`):
    /// nonce followed by ciphertext and tag.
    pub fn seal(&self, scope: &str, plaintext: &[u8]) -> Result<Vec<u8>, SessionKeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SessionKeyError::Random)?;
        let mut sealed = plaintext.to_vec();
        self.aead_key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.associated_data(scope)),
                &mut sealed,
            )
            .map_err(|_| SessionKeyError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Self::seal`] made for `scope`; `None` for anything
    /// else (forged, truncated, another key or another credential).
    pub fn open(&self, scope: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let opened = self
            .aead_key()
            .open_in_place(nonce, Aad::from(self.associated_data(scope)), &mut body)
            .ok()?;
        Some(opened.to_vec())
    }

    fn lease_message(scope: &str, holder: &str, renewed_micros: i64, duration_s: i32) -> String {
        format!("otpilot.dev/lease-proof/v1\n{scope}\n{holder}\n{renewed_micros}\n{duration_s}")
    }

    fn lease_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.derive(LEASE_LABEL).as_ref())
    }

    /// Proof that a holder of this key renewed `scope`'s Lease as `holder`
    /// at `renewed_micros` (Unix microseconds) for `duration_s` seconds.
    pub fn lease_proof(
        &self,
        scope: &str,
        holder: &str,
        renewed_micros: i64,
        duration_s: i32,
    ) -> String {
        let message = Self::lease_message(scope, holder, renewed_micros, duration_s);
        hex(hmac::sign(&self.lease_key(), message.as_bytes()).as_ref())
    }

    /// Whether `proof` is [`Self::lease_proof`] of these values (constant time).
    pub fn lease_proof_holds(
        &self,
        scope: &str,
        holder: &str,
        renewed_micros: i64,
        duration_s: i32,
        proof: &str,
    ) -> bool {
        let Some(tag) = unhex(proof.as_bytes()) else {
            return false;
        };
        let message = Self::lease_message(scope, holder, renewed_micros, duration_s);
        hmac::verify(&self.lease_key(), message.as_bytes(), &tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_scope() {
        let key = SessionKey::generate().expect("key");
        let other = SessionKey::generate().expect("key");
        let sealed = key.seal("ns/billing", b"refresh-me").expect("seal");
        assert!(!sealed.windows(10).any(|w| w == b"refresh-me"));
        assert_eq!(
            key.open("ns/billing", &sealed).as_deref(),
            Some(&b"refresh-me"[..])
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let cases: [(&str, &SessionKey, &str, &[u8]); 5] = [
            ("another key", &other, "ns/billing", &sealed),
            ("another credential", &key, "ns/payroll", &sealed),
            ("a flipped bit", &key, "ns/billing", &flipped),
            ("truncated", &key, "ns/billing", &sealed[..10]),
            (
                "plaintext",
                &key,
                "ns/billing",
                b"refresh-me-as-plaintext-value",
            ),
        ];
        for (what, k, scope, value) in cases {
            assert_eq!(k.open(scope, value), None, "{what}");
        }
        assert_ne!(
            key.seal("ns/billing", b"x").expect("seal"),
            key.seal("ns/billing", b"x").expect("seal"),
            "a fresh nonce per write"
        );
    }

    #[test]
    fn the_stored_form_round_trips_and_debug_shows_only_the_id() {
        let key = SessionKey::generate().expect("key");
        let text = key.to_text();
        let back =
            SessionKey::from_text(format!("{}\n", text.expose_secret()).as_bytes()).expect("reads");
        assert_eq!(back.id(), key.id());
        let shown = format!("{key:?}");
        assert!(!shown.contains(text.expose_secret()), "{shown}");
        assert!(shown.contains(&key.id()), "{shown}");
        for bad in [&b""[..], b"zz", &[b'g'; 64], &[b'a'; 62]] {
            assert_eq!(
                SessionKey::from_text(bad).err(),
                Some(SessionKeyError::Malformed)
            );
        }
    }

    #[test]
    fn a_lease_proof_binds_holder_time_and_duration() {
        let key = SessionKey::generate().expect("key");
        let proof = key.lease_proof("ns/c", "pod-a", 1_000, 10);
        assert!(key.lease_proof_holds("ns/c", "pod-a", 1_000, 10, &proof));
        let other = SessionKey::generate().expect("key");
        let cases = [
            (
                "holder",
                key.lease_proof_holds("ns/c", "evil", 1_000, 10, &proof),
            ),
            (
                "time",
                key.lease_proof_holds("ns/c", "pod-a", 2_000, 10, &proof),
            ),
            (
                "duration",
                key.lease_proof_holds("ns/c", "pod-a", 1_000, 3600, &proof),
            ),
            (
                "scope",
                key.lease_proof_holds("ns/d", "pod-a", 1_000, 10, &proof),
            ),
            (
                "key",
                other.lease_proof_holds("ns/c", "pod-a", 1_000, 10, &proof),
            ),
            (
                "garbage",
                key.lease_proof_holds("ns/c", "pod-a", 1_000, 10, "xyz"),
            ),
        ];
        for (what, holds) in cases {
            assert!(!holds, "{what}");
        }
    }
}
