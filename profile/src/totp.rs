//! TOTP codes (RFC 6238) from a vendor's secret, with `totp-rs`.

use otpilot_api::api_credential::TotpOverrides;
use otpilot_api::profile::{TotpAlgorithm, TotpDefaults};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::{Digest, Sha256};

/// The shortest secret accepted, in bytes. RFC 4226 asks for 128 bits, but
/// vendors hand out less (AUDD's example is 120 bits); 80 bits is the
/// smallest that authenticator apps commonly accept.
pub const MIN_SECRET_BYTES: usize = 10;

/// TOTP parameters: algorithm, digits, period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TotpParams {
    /// HMAC algorithm.
    pub algorithm: TotpAlgorithm,
    /// Digits of a code (6 to 8).
    pub digits: u8,
    /// Time step in seconds.
    pub period: u64,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self::from(&TotpDefaults::default())
    }
}

impl From<&TotpDefaults> for TotpParams {
    fn from(d: &TotpDefaults) -> Self {
        Self {
            algorithm: d.algorithm,
            digits: d.digits,
            period: d.period,
        }
    }
}

impl TotpParams {
    /// These parameters with every field the overrides set replaced: an
    /// `ApiCredential`'s `spec.totp` wins over what a vendor advertised.
    pub fn overridden_by(self, overrides: &TotpOverrides) -> Self {
        Self {
            algorithm: overrides.algorithm.unwrap_or(self.algorithm),
            digits: overrides.digits.unwrap_or(self.digits),
            period: overrides.period.map(u64::from).unwrap_or(self.period),
        }
    }

    /// Checks digits (6–8) and period (> 0).
    pub fn validate(&self) -> Result<(), TotpError> {
        if !(6..=8).contains(&self.digits) {
            return Err(TotpError::Digits(self.digits));
        }
        if self.period == 0 {
            return Err(TotpError::Period);
        }
        Ok(())
    }
}

/// Why a TOTP secret or its parameters are unusable. Never contains the
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// A character outside the base32 alphabet.
    #[error(
        "the TOTP secret is not base32: character {position} is outside A-Z and 2-7 \
         (the vendor may have sent it in another encoding)"
    )]
    NotBase32 {
        /// 1-based position of the first bad character.
        position: usize,
    },
    /// A length that no base32 encoding has.
    #[error("the TOTP secret is not valid base32: {len} characters cannot be decoded")]
    BadLength {
        /// Characters after normalisation.
        len: usize,
    },
    /// Too short to be a TOTP secret.
    #[error("the TOTP secret is {bits} bits long; at least {} are needed", MIN_SECRET_BYTES * 8)]
    TooShort {
        /// Length in bits.
        bits: usize,
    },
    /// Digits out of range.
    #[error("TOTP digits must be 6 to 8, not {0}")]
    Digits(u8),
    /// Zero period.
    #[error("the TOTP period must be at least 1 second")]
    Period,
}

/// Upper-cases a base32 secret and removes spaces, dashes and padding;
/// checks the alphabet. Returns the canonical form (no padding).
pub fn normalize_base32(input: &str) -> Result<String, TotpError> {
    let mut out = String::with_capacity(input.len());
    for (i, c) in input.chars().enumerate() {
        match c {
            ' ' | '\t' | '\n' | '\r' | '-' | '=' => {}
            'a'..='z' | 'A'..='Z' | '2'..='7' => out.push(c.to_ascii_uppercase()),
            _ => return Err(TotpError::NotBase32 { position: i + 1 }),
        }
    }
    Ok(out)
}

/// Decodes a base32 secret leniently (see [`normalize_base32`]).
pub fn decode_base32(input: &str) -> Result<(String, Vec<u8>), TotpError> {
    let canonical = normalize_base32(input)?;
    // Lengths 1, 3 and 6 (mod 8) cannot be produced by any base32 encoder.
    if matches!(canonical.len() % 8, 1 | 3 | 6) {
        return Err(TotpError::BadLength {
            len: canonical.len(),
        });
    }
    let bytes = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &canonical).ok_or(
        TotpError::BadLength {
            len: canonical.len(),
        },
    )?;
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(TotpError::TooShort {
            bits: bytes.len() * 8,
        });
    }
    Ok((canonical, bytes))
}

/// A TOTP secret with its parameters. `Debug` never shows the secret.
#[derive(Clone)]
pub struct TotpKey {
    base32: SecretString,
    bytes: SecretSlice<u8>,
    params: TotpParams,
}

impl std::fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpKey")
            .field("secret", &"[REDACTED]")
            .field("params", &self.params)
            .finish()
    }
}

impl TotpKey {
    /// A key from a base32 secret (lenient about case, spaces and padding).
    pub fn from_base32(secret: &str, params: TotpParams) -> Result<Self, TotpError> {
        params.validate()?;
        let (canonical, bytes) = decode_base32(secret)?;
        Ok(Self {
            base32: SecretString::from(canonical),
            bytes: SecretSlice::from(bytes),
            params,
        })
    }

    /// A key from raw secret bytes (no minimum length: for test vectors).
    pub fn from_bytes(bytes: Vec<u8>, params: TotpParams) -> Result<Self, TotpError> {
        params.validate()?;
        let base32 = base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &bytes);
        Ok(Self {
            base32: SecretString::from(base32),
            bytes: SecretSlice::from(bytes),
            params,
        })
    }

    /// The same secret with other parameters.
    pub fn with_params(&self, params: TotpParams) -> Result<Self, TotpError> {
        params.validate()?;
        Ok(Self {
            params,
            ..self.clone()
        })
    }

    /// The same secret with the overrides applied to its parameters.
    pub fn with_overrides(&self, overrides: &TotpOverrides) -> Result<Self, TotpError> {
        self.with_params(self.params.overridden_by(overrides))
    }

    /// The parameters.
    pub fn params(&self) -> TotpParams {
        self.params
    }

    /// The secret, canonical base32 without padding.
    pub fn secret_base32(&self) -> &SecretString {
        &self.base32
    }

    /// The time step that contains `unix_seconds`.
    pub fn step_at(&self, unix_seconds: u64) -> u64 {
        unix_seconds / self.params.period
    }

    /// The code for a time step.
    pub fn code_for_step(&self, step: u64) -> SecretString {
        self.code_at(step.saturating_mul(self.params.period))
    }

    /// The code valid at `unix_seconds`.
    pub fn code_at(&self, unix_seconds: u64) -> SecretString {
        let algorithm = match self.params.algorithm {
            TotpAlgorithm::Sha1 => totp_rs::Algorithm::SHA1,
            TotpAlgorithm::Sha256 => totp_rs::Algorithm::SHA256,
            TotpAlgorithm::Sha512 => totp_rs::Algorithm::SHA512,
        };
        // `build_noncompliant`: vendor secrets may be shorter than the 128
        // bits totp-rs demands; digits and period were validated above.
        let totp = totp_rs::Builder::new()
            .with_algorithm(algorithm)
            .with_digits(self.params.digits)
            .with_step_duration(self.params.period)
            .with_secret(self.bytes.expose_secret().to_vec())
            .build_noncompliant();
        SecretString::from(totp.generate(unix_seconds).to_string())
    }

    /// A stable, non-reversible identity of this secret, for remembering
    /// which time steps were used without keeping the secret as a map key.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"otpilot-totp-fingerprint\0");
        h.update(self.bytes.expose_secret());
        h.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_the_fields_they_set() {
        let advertised = params(TotpAlgorithm::Sha1, 6, 30);
        let cases = [
            (TotpOverrides::default(), advertised),
            (
                TotpOverrides {
                    period: Some(60),
                    ..TotpOverrides::default()
                },
                params(TotpAlgorithm::Sha1, 6, 60),
            ),
            (
                TotpOverrides {
                    algorithm: Some(TotpAlgorithm::Sha256),
                    digits: Some(8),
                    period: None,
                },
                params(TotpAlgorithm::Sha256, 8, 30),
            ),
        ];
        for (overrides, want) in cases {
            assert_eq!(advertised.overridden_by(&overrides), want, "{overrides:?}");
        }
    }

    #[test]
    fn unusable_overrides_are_refused() {
        let key = TotpKey::from_base32("JBSWY3DPEHPK3PXP", TotpParams::default()).expect("key");
        let bad = TotpOverrides {
            digits: Some(4),
            ..TotpOverrides::default()
        };
        assert_eq!(key.with_overrides(&bad).err(), Some(TotpError::Digits(4)));
    }

    fn params(algorithm: TotpAlgorithm, digits: u8, period: u64) -> TotpParams {
        TotpParams {
            algorithm,
            digits,
            period,
        }
    }

    // RFC 6238 Appendix B: seeds are the ASCII strings below, 8 digits, 30 s.
    #[test]
    fn rfc6238_appendix_b_vectors_match() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let table: &[(u64, &str, &str, &str)] = &[
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for &(time, want1, want256, want512) in table {
            for (seed, alg, want) in [
                (&sha1, TotpAlgorithm::Sha1, want1),
                (&sha256, TotpAlgorithm::Sha256, want256),
                (&sha512, TotpAlgorithm::Sha512, want512),
            ] {
                let key = TotpKey::from_bytes(seed.clone(), params(alg, 8, 30)).expect("key");
                assert_eq!(key.code_at(time).expose_secret(), want, "{alg:?} at {time}");
            }
        }
    }

    #[test]
    fn six_digit_code_is_the_last_six_of_the_eight_digit_code() {
        let seed = b"12345678901234567890".to_vec();
        let key = TotpKey::from_bytes(seed, params(TotpAlgorithm::Sha1, 6, 30)).expect("key");
        assert_eq!(key.code_at(59).expose_secret(), "287082");
    }

    #[test]
    fn short_vendor_secret_of_120_bits_is_accepted() {
        // The AUDD document's example secret.
        let key = TotpKey::from_base32("3EFTSWZWO5HTCLYGCEEHBCRP", TotpParams::default())
            .expect("120-bit secret accepted");
        assert_eq!(key.code_at(0).expose_secret().len(), 6);
    }

    #[test]
    fn base32_is_normalised_leniently() {
        let cases = [
            ("jbsw y3dp ehpk 3pxp", "JBSWY3DPEHPK3PXP"),
            ("JBSWY3DPEHPK3PXP====", "JBSWY3DPEHPK3PXP"),
            ("jbsw-y3dp-ehpk-3pxp", "JBSWY3DPEHPK3PXP"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_base32(input).expect(input), want);
        }
    }

    #[test]
    fn non_base32_secret_is_a_clear_error_without_the_secret() {
        let cases = [
            (
                "flkj32q979bv7f98327vf93q",
                TotpError::NotBase32 { position: 8 },
            ),
            ("JBSW1Y3D", TotpError::NotBase32 { position: 5 }),
            ("JBSWY3DPE", TotpError::BadLength { len: 9 }),
            ("JBSWY3DP", TotpError::TooShort { bits: 40 }),
        ];
        for (input, want) in cases {
            let err = TotpKey::from_base32(input, TotpParams::default()).expect_err(input);
            assert_eq!(err, want, "{input}");
            assert!(!err.to_string().contains(input));
        }
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        let cases = [
            (params(TotpAlgorithm::Sha1, 5, 30), TotpError::Digits(5)),
            (params(TotpAlgorithm::Sha1, 9, 30), TotpError::Digits(9)),
            (params(TotpAlgorithm::Sha1, 6, 0), TotpError::Period),
        ];
        for (p, want) in cases {
            assert_eq!(p.validate(), Err(want));
        }
    }

    #[test]
    fn debug_of_a_key_hides_the_secret() {
        let key = TotpKey::from_base32("JBSWY3DPEHPK3PXP", TotpParams::default()).expect("key");
        assert!(!format!("{key:?}").contains("JBSW"));
    }
}
