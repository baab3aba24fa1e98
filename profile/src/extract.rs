//! Reading values out of responses: JSON pointers, otpauth URIs, recovery
//! codes in a vendor's shape, expiry instants. Pure functions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use otpilot_api::profile::ValueKind;
use secrecy::SecretString;
use serde_json::Value;

use crate::otpauth;
use crate::totp::{TotpKey, TotpParams};

/// A value read from a response, typed by its extraction's `as`.
#[derive(Debug, Clone)]
pub enum Extracted {
    /// Text.
    Text(SecretString),
    /// A TOTP secret with its parameters.
    Totp(TotpKey),
    /// Recovery codes.
    RecoveryCodes(Vec<SecretString>),
    /// An instant.
    Time(SystemTime),
}

/// What kind of JSON value is at a place, for messages that must not show
/// the value itself.
pub fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Text of a scalar: strings as they are, numbers and booleans printed.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Interprets a raw value per `kind`. `now` is for `expiresIn`; `defaults`
/// are the TOTP parameters a bare base32 secret gets.
pub fn interpret(
    kind: ValueKind,
    raw: &Value,
    strip_spaces: bool,
    now: SystemTime,
    defaults: TotpParams,
) -> Result<Extracted, String> {
    let text = || scalar_text(raw).ok_or_else(|| format!("expected text, found {}", describe(raw)));
    match kind {
        ValueKind::String => Ok(Extracted::Text(SecretString::from(text()?))),
        ValueKind::Base32Secret => {
            let s = text()?;
            // goaxr may hand out an otpauth URI where a secret is expected.
            let key = if s.trim_start().starts_with("otpauth:") {
                otpauth::parse(&s, defaults).map_err(|e| e.to_string())?.key
            } else {
                TotpKey::from_base32(&s, defaults).map_err(|e| e.to_string())?
            };
            Ok(Extracted::Totp(key))
        }
        ValueKind::OtpauthUri => {
            let uri = otpauth::parse(&text()?, defaults).map_err(|e| e.to_string())?;
            Ok(Extracted::Totp(uri.key))
        }
        ValueKind::RecoveryCodes => Ok(Extracted::RecoveryCodes(
            recovery_codes(raw, strip_spaces)?
                .into_iter()
                .map(SecretString::from)
                .collect(),
        )),
        ValueKind::ExpiresIn => {
            let lifetime = seconds(number(raw)?)?;
            let at = now
                .checked_add(lifetime)
                .ok_or_else(|| "a lifetime too long to be an expiry".to_owned())?;
            plausible(at, now)
        }
        ValueKind::EpochSeconds => plausible(epoch(number(raw)?)?, now),
        ValueKind::EpochMillis => plausible(epoch(number(raw)? / 1000.0)?, now),
        ValueKind::Rfc3339 => {
            let ts: jiff::Timestamp = text()?
                .parse()
                .map_err(|_| "expected an RFC 3339 timestamp".to_owned())?;
            let secs = ts.as_millisecond() as f64 / 1000.0;
            plausible(epoch(secs)?, now)
        }
        ValueKind::JwtExp => plausible(jwt_exp(&text()?)?, now),
    }
}

fn number(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "number out of range".to_owned()),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| "expected a number, found a string that is not one".to_owned()),
        other => Err(format!("expected a number, found {}", describe(other))),
    }
}

/// The longest an expiry may lie ahead. A vendor's tokens live minutes to
/// days; an instant further out is a unit mix-up or a hostile answer, and
/// an expiry that far would stop the session from ever being renewed.
pub const MAX_EXPIRY_AHEAD: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// A count of seconds as a duration: finite and not negative (`1e300`,
/// `"inf"`, `-5` and `NaN` are errors, never a panic).
fn seconds(secs: f64) -> Result<Duration, String> {
    if secs.is_nan() || secs.is_infinite() {
        return Err("expected a finite number of seconds".to_owned());
    }
    if secs < 0.0 {
        return Err("expected a number of seconds, found a negative one".to_owned());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| "a number of seconds out of range".to_owned())
}

/// An instant `secs` after the Unix epoch.
fn epoch(secs: f64) -> Result<SystemTime, String> {
    UNIX_EPOCH
        .checked_add(seconds(secs)?)
        .ok_or_else(|| "an instant out of range".to_owned())
}

/// The instant as an expiry, unless it is implausibly far ahead.
fn plausible(at: SystemTime, now: SystemTime) -> Result<Extracted, String> {
    match now.checked_add(MAX_EXPIRY_AHEAD) {
        Some(limit) if at > limit => Err(format!(
            "an expiry more than {} days ahead is not plausible (a unit mix-up?)",
            MAX_EXPIRY_AHEAD.as_secs() / 86_400
        )),
        _ => Ok(Extracted::Time(at)),
    }
}

/// The `exp` claim of a JWT, read without checking the signature (we are
/// the client; the server checks).
pub fn jwt_exp(token: &str) -> Result<SystemTime, String> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| "expected a JWT (three dot-separated parts)".to_owned())?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "the JWT payload is not base64url".to_owned())?;
    let claims: Value =
        serde_json::from_slice(&bytes).map_err(|_| "the JWT payload is not JSON".to_owned())?;
    let exp = claims
        .get("exp")
        .ok_or_else(|| "the JWT has no exp claim".to_owned())?;
    epoch(number(exp)?)
}

/// Recovery codes from a JSON array of strings, or one string with codes
/// separated by line breaks (or commas). With `strip_spaces`, whitespace
/// inside each code is removed (`"3892 3664"` → `"38923664"`).
pub fn recovery_codes(raw: &Value, strip_spaces: bool) -> Result<Vec<String>, String> {
    let items: Vec<String> = match raw {
        Value::Array(items) => items
            .iter()
            .map(|v| {
                scalar_text(v).ok_or_else(|| {
                    format!("expected recovery codes as text, found {}", describe(v))
                })
            })
            .collect::<Result<_, _>>()?,
        Value::String(s) => s.split(['\n', '\r', ',']).map(str::to_owned).collect(),
        other => {
            return Err(format!(
                "expected recovery codes as an array or a string, found {}",
                describe(other)
            ));
        }
    };
    let codes: Vec<String> = items
        .into_iter()
        .map(|c| {
            if strip_spaces {
                c.chars().filter(|ch| !ch.is_whitespace()).collect()
            } else {
                c.trim().to_owned()
            }
        })
        .filter(|c: &String| !c.is_empty())
        .collect();
    if codes.is_empty() {
        return Err("the vendor sent no recovery codes".to_owned());
    }
    Ok(codes)
}

/// The value at a JSON pointer (`""` is the whole document).
pub fn at_pointer<'a>(body: &'a Value, pointer: &str) -> Option<&'a Value> {
    body.pointer(pointer).filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    fn codes(raw: Value, strip: bool) -> Vec<String> {
        recovery_codes(&raw, strip).expect("codes")
    }

    #[test]
    fn recovery_codes_come_in_every_vendor_shape() {
        let cases: Vec<(&str, Value, bool, Vec<&str>)> = vec![
            (
                "AUDD array",
                json!(["ABCDE-FGHIJ", "KLMNO-PQRST"]),
                false,
                vec!["ABCDE-FGHIJ", "KLMNO-PQRST"],
            ),
            (
                "Cryptr newline string",
                json!("aaaa-1111\nbbbb-2222\r\ncccc-3333\n"),
                false,
                vec!["aaaa-1111", "bbbb-2222", "cccc-3333"],
            ),
            (
                "Conduit spaced digits",
                json!(["3892 3664", "3676 4634"]),
                true,
                vec!["38923664", "36764634"],
            ),
            (
                "numbers in an array",
                json!([12345678, 87654321]),
                false,
                vec!["12345678", "87654321"],
            ),
        ];
        for (what, raw, strip, want) in cases {
            assert_eq!(codes(raw, strip), want, "{what}");
        }
    }

    #[test]
    fn unusable_recovery_codes_are_errors() {
        for raw in [json!({}), json!([]), json!(""), json!([{"a": 1}])] {
            assert!(recovery_codes(&raw, false).is_err(), "{raw}");
        }
    }

    #[test]
    fn expiries_are_read_in_every_form() {
        let now = UNIX_EPOCH + Duration::from_secs(1_699_990_000);
        let p = TotpParams::default();
        // header {"alg":"HS256"}, payload {"exp":1700000000}
        let jwt = format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.sig",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(br#"{"exp":1700000000,"sub":"x"}"#)
        );
        let cases: Vec<(ValueKind, Value, u64)> = vec![
            (ValueKind::ExpiresIn, json!(600), 1_699_990_600),
            (ValueKind::ExpiresIn, json!("300"), 1_699_990_300),
            (ValueKind::EpochSeconds, json!(1_700_000_000), 1_700_000_000),
            (
                ValueKind::EpochMillis,
                json!(1_700_000_000_000u64),
                1_700_000_000,
            ),
            (
                ValueKind::Rfc3339,
                json!("2023-11-14T22:13:20Z"),
                1_700_000_000,
            ),
            (ValueKind::JwtExp, json!(jwt), 1_700_000_000),
        ];
        for (kind, raw, want) in cases {
            match interpret(kind, &raw, false, now, p).expect("time") {
                Extracted::Time(t) => assert_eq!(
                    t.duration_since(UNIX_EPOCH).expect("after epoch").as_secs(),
                    want,
                    "{kind:?}"
                ),
                other => panic!("{kind:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_jwt_and_bad_numbers_are_errors() {
        let p = TotpParams::default();
        let now = SystemTime::now();
        for (kind, raw) in [
            (ValueKind::JwtExp, json!("not-a-jwt")),
            (ValueKind::JwtExp, json!("a.!!!.c")),
            (ValueKind::ExpiresIn, json!("soon")),
            (ValueKind::EpochSeconds, json!({})),
            (ValueKind::Rfc3339, json!("yesterday")),
        ] {
            assert!(
                interpret(kind, &raw, false, now, p).is_err(),
                "{kind:?} {raw}"
            );
        }
    }

    #[test]
    fn hostile_expiries_are_errors_never_panics() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let p = TotpParams::default();
        let jwt = |payload: &str| {
            json!(format!(
                "eyJhbGciOiJIUzI1NiJ9.{}.sig",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.as_bytes())
            ))
        };
        let cases: Vec<(&str, ValueKind, Value)> = vec![
            ("huge lifetime", ValueKind::ExpiresIn, json!(1e300)),
            ("infinite lifetime", ValueKind::ExpiresIn, json!("inf")),
            ("NaN lifetime", ValueKind::ExpiresIn, json!("NaN")),
            ("negative lifetime", ValueKind::ExpiresIn, json!(-5)),
            (
                "lifetime of u64::MAX",
                ValueKind::ExpiresIn,
                json!(u64::MAX),
            ),
            (
                "eleven years ahead",
                ValueKind::ExpiresIn,
                json!(11 * 366 * 86_400),
            ),
            ("huge epoch", ValueKind::EpochSeconds, json!(1e300)),
            ("negative epoch", ValueKind::EpochSeconds, json!(-1)),
            ("infinite epoch", ValueKind::EpochSeconds, json!("-inf")),
            (
                "epoch ms in seconds' place",
                ValueKind::EpochSeconds,
                json!(1_700_000_000_000u64),
            ),
            ("huge epoch ms", ValueKind::EpochMillis, json!(1e300)),
            (
                "year 9999",
                ValueKind::Rfc3339,
                json!("9999-12-31T23:59:59Z"),
            ),
            ("far JWT exp", ValueKind::JwtExp, jwt(r#"{"exp":1e300}"#)),
            (
                "JWT exp of u64::MAX",
                ValueKind::JwtExp,
                jwt(r#"{"exp":18446744073709551615}"#),
            ),
            ("negative JWT exp", ValueKind::JwtExp, jwt(r#"{"exp":-1}"#)),
            (
                "JWT exp in year 3000",
                ValueKind::JwtExp,
                jwt(r#"{"exp":32503680000}"#),
            ),
        ];
        for (what, kind, raw) in cases {
            let got = std::panic::catch_unwind(|| interpret(kind, &raw, false, now, p))
                .unwrap_or_else(|_| panic!("{what}: panicked"));
            assert!(got.is_err(), "{what}: {got:?}");
        }
        // At the edge: a plausible far expiry still reads.
        assert!(interpret(ValueKind::ExpiresIn, &json!(365 * 86_400), false, now, p).is_ok());
    }

    #[test]
    fn secrets_are_read_from_base32_or_otpauth() {
        let p = TotpParams::default();
        let now = SystemTime::now();
        let cases = [
            (ValueKind::Base32Secret, "3eft swzw o5ht clyg ceeh bcrp"),
            (
                ValueKind::Base32Secret,
                "otpauth://totp/x?secret=3EFTSWZWO5HTCLYGCEEHBCRP",
            ),
            (
                ValueKind::OtpauthUri,
                "otpauth://totp/x?secret=3EFTSWZWO5HTCLYGCEEHBCRP",
            ),
        ];
        for (kind, raw) in cases {
            match interpret(kind, &json!(raw), false, now, p).expect(raw) {
                Extracted::Totp(k) => {
                    assert_eq!(
                        k.secret_base32().expose_secret(),
                        "3EFTSWZWO5HTCLYGCEEHBCRP"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
        let err = interpret(
            ValueKind::Base32Secret,
            &json!("flkj32q979bv7f98327vf93q"),
            false,
            now,
            p,
        )
        .expect_err("goaxr's example secret is not base32");
        assert!(err.contains("not base32"), "{err}");
    }

    #[test]
    fn scalars_become_text() {
        assert_eq!(scalar_text(&json!(21589)).as_deref(), Some("21589"));
        assert_eq!(scalar_text(&json!(true)).as_deref(), Some("true"));
        assert_eq!(scalar_text(&json!([1])), None);
        assert_eq!(at_pointer(&json!({"a": {"b": 1}}), "/a/b"), Some(&json!(1)));
        assert_eq!(at_pointer(&json!({"a": null}), "/a"), None);
    }
}
