//! TOTP (RFC 6238) on the verifier's side: secrets, otpauth URIs, and code
//! verification with a skew window and §5.2 replay protection. The HOTP
//! arithmetic itself is `totp-rs`'s.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rand::RngCore;

use crate::config::{TotpAlgorithm, TotpParams};

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No step in the window produces this code.
    Invalid,
    /// The code is right but for a step at or before the last accepted one.
    Reused,
}

/// `n` random bytes for a new TOTP secret.
pub fn new_secret(n: usize) -> Vec<u8> {
    let mut bytes = vec![0_u8; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn to_base32(bytes: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, bytes)
}

/// Decodes base32 leniently: any case, spaces and padding ignored.
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &cleaned)
        .filter(|bytes| !bytes.is_empty())
}

fn generator(secret: &[u8], params: &TotpParams) -> totp_rs::Totp {
    let algorithm = match params.algorithm {
        TotpAlgorithm::Sha1 => totp_rs::Algorithm::SHA1,
        TotpAlgorithm::Sha256 => totp_rs::Algorithm::SHA256,
        TotpAlgorithm::Sha512 => totp_rs::Algorithm::SHA512,
    };
    // Vendor secrets can be shorter than the 128 bits totp-rs insists on
    // (AUDD's are 120): digits and period are validated in SimConfig.
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(params.digits)
        .with_step_duration(params.period_secs.max(1))
        .with_secret(secret.to_vec())
        .build_noncompliant()
}

/// The time step `unix_secs` falls in.
pub fn step_at(unix_secs: u64, params: &TotpParams) -> u64 {
    unix_secs / params.period_secs.max(1)
}

/// Verifies `code` at `unix_secs`, accepting steps within `window` of the
/// current one. With `replay_protection`, a match at or before `last_step`
/// is `Reused`. Returns the matched step, to be stored as the new last step.
pub fn verify(
    secret: &[u8],
    params: &TotpParams,
    unix_secs: u64,
    window: u32,
    last_step: Option<u64>,
    replay_protection: bool,
    code: &str,
) -> Result<u64, Rejection> {
    let code = code.trim();
    if code.len() != usize::from(params.digits) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::Invalid);
    }
    let totp = generator(secret, params);
    let current = step_at(unix_secs, params);
    let mut reused = false;
    // Newest step first, so a code valid in two steps counts as the fresh one.
    for step in (current.saturating_sub(u64::from(window))..=current + u64::from(window)).rev() {
        let expected = totp.generate(step * params.period_secs.max(1)).to_string();
        if !constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            continue;
        }
        if replay_protection && last_step.is_some_and(|last| step <= last) {
            reused = true;
            continue;
        }
        return Ok(step);
    }
    Err(if reused {
        Rejection::Reused
    } else {
        Rejection::Invalid
    })
}

// Comparing codes byte by byte in constant time keeps the comparison from
// leaking how many leading digits were right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// Label characters that must be escaped; '@' and '.' stay readable as in the
// vendors' examples (`Acreto:user@domain.com`).
const LABEL: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'`');

/// An `otpauth://totp/` URI. With `all_params` every parameter is spelled
/// out (Acreto's style); otherwise only `secret` and `issuer`, plus any
/// parameter that differs from the SHA1/6/30 default.
pub fn otpauth_uri(
    issuer: &str,
    account: &str,
    secret_b32: &str,
    params: &TotpParams,
    all_params: bool,
) -> String {
    let label = format!(
        "{}:{}",
        utf8_percent_encode(issuer, LABEL),
        utf8_percent_encode(account, LABEL)
    );
    let defaults = TotpParams::default();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if all_params {
        query
            .append_pair("algorithm", params.algorithm.as_str())
            .append_pair("digits", &params.digits.to_string())
            .append_pair("issuer", issuer)
            .append_pair("period", &params.period_secs.to_string())
            .append_pair("secret", secret_b32);
    } else {
        query
            .append_pair("secret", secret_b32)
            .append_pair("issuer", issuer);
        if params.algorithm != defaults.algorithm {
            query.append_pair("algorithm", params.algorithm.as_str());
        }
        if params.digits != defaults.digits {
            query.append_pair("digits", &params.digits.to_string());
        }
        if params.period_secs != defaults.period_secs {
            query.append_pair("period", &params.period_secs.to_string());
        }
    }
    format!("otpauth://totp/{label}?{}", query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 Appendix B: the SHA1 seed "12345678901234567890", 8 digits.
    const RFC_SEED: &[u8] = b"12345678901234567890";

    fn rfc_params(algorithm: TotpAlgorithm) -> TotpParams {
        TotpParams {
            algorithm,
            digits: 8,
            period_secs: 30,
        }
    }

    #[test]
    fn rfc6238_sha1_vectors_verify() {
        let params = rfc_params(TotpAlgorithm::Sha1);
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(
                verify(RFC_SEED, &params, time, 0, None, true, code),
                Ok(time / 30),
                "time {time}"
            );
        }
    }

    #[test]
    fn rfc6238_sha256_and_sha512_vectors_verify() {
        let seed256 = b"12345678901234567890123456789012";
        let seed512 = b"1234567890123456789012345678901234567890123456789012345678901234";
        let p256 = rfc_params(TotpAlgorithm::Sha256);
        let p512 = rfc_params(TotpAlgorithm::Sha512);
        assert!(verify(seed256, &p256, 59, 0, None, true, "46119246").is_ok());
        assert!(verify(seed512, &p512, 59, 0, None, true, "90693936").is_ok());
        assert!(verify(seed256, &p256, 1_111_111_109, 0, None, true, "68084774").is_ok());
        assert!(verify(seed512, &p512, 1_111_111_109, 0, None, true, "25091201").is_ok());
    }

    #[test]
    fn code_from_previous_step_is_accepted_within_one_step_window() {
        let params = rfc_params(TotpAlgorithm::Sha1);
        // "94287082" is the code of step 1 (t=59); at t=61 we are in step 2.
        assert_eq!(
            verify(RFC_SEED, &params, 61, 1, None, true, "94287082"),
            Ok(1)
        );
        assert_eq!(
            verify(RFC_SEED, &params, 61, 0, None, true, "94287082"),
            Err(Rejection::Invalid)
        );
        assert_eq!(
            verify(RFC_SEED, &params, 91, 1, None, true, "94287082"),
            Err(Rejection::Invalid)
        );
    }

    #[test]
    fn reused_code_in_same_step_is_rejected() {
        let params = rfc_params(TotpAlgorithm::Sha1);
        let step = verify(RFC_SEED, &params, 59, 1, None, true, "94287082");
        assert_eq!(step, Ok(1));
        assert_eq!(
            verify(RFC_SEED, &params, 59, 1, Some(1), true, "94287082"),
            Err(Rejection::Reused)
        );
    }

    #[test]
    fn reuse_is_accepted_when_replay_protection_is_off() {
        let params = rfc_params(TotpAlgorithm::Sha1);
        assert_eq!(
            verify(RFC_SEED, &params, 59, 0, Some(1), false, "94287082"),
            Ok(1)
        );
    }

    #[test]
    fn code_of_an_earlier_step_than_the_last_accepted_is_rejected_as_reused() {
        let params = rfc_params(TotpAlgorithm::Sha1);
        // Step 2 was used; the step-1 code is still in the window but older.
        assert_eq!(
            verify(RFC_SEED, &params, 61, 1, Some(2), true, "94287082"),
            Err(Rejection::Reused)
        );
    }

    #[test]
    fn malformed_codes_are_invalid_not_errors() {
        let params = TotpParams::default();
        for code in ["", "12345", "1234567", "abcdef", "12 456", "١٢٣٤٥٦"] {
            assert_eq!(
                verify(b"secret-bytes-123", &params, 1000, 1, None, true, code),
                Err(Rejection::Invalid)
            );
        }
    }

    #[test]
    fn base32_round_trips_leniently() {
        let bytes = new_secret(15);
        let text = to_base32(&bytes);
        assert_eq!(text.len(), 24);
        assert_eq!(from_base32(&text.to_lowercase()), Some(bytes));
        // The AUDD document's example secret is 120 bits.
        assert_eq!(
            from_base32("3EFTSWZWO5HTCLYGCEEHBCRP").map(|b| b.len()),
            Some(15)
        );
        assert_eq!(from_base32("not base32!"), None);
    }

    #[test]
    fn otpauth_uri_spells_out_parameters_when_asked() {
        let params = TotpParams {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period_secs: 2,
        };
        assert_eq!(
            otpauth_uri("Acreto", "user@domain.com", "ABC", &params, true),
            "otpauth://totp/Acreto:user@domain.com?algorithm=SHA1&digits=6&issuer=Acreto&period=2&secret=ABC"
        );
        assert_eq!(
            otpauth_uri(
                "Conduit",
                "test@test.gr",
                "ABC",
                &TotpParams::default(),
                false
            ),
            "otpauth://totp/Conduit:test@test.gr?secret=ABC&issuer=Conduit"
        );
        assert_eq!(
            otpauth_uri("Conduit", "a b", "ABC", &params, false),
            "otpauth://totp/Conduit:a%20b?secret=ABC&issuer=Conduit&period=2"
        );
    }
}
