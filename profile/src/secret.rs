//! Keeping secret values out of errors and logs.

use secrecy::{ExposeSecret, SecretString};

/// Replaces every known secret value in a text with `***`.
///
/// Used on the few strings that come from outside the engine's control and
/// end up in an error (a vendor's error body, a template or transport error
/// message), so that a secret echoed back cannot leak.
#[derive(Default, Clone)]
pub struct Scrubber {
    needles: Vec<SecretString>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} values)", self.needles.len())
    }
}

impl Scrubber {
    /// Remembers a value to scrub. Values shorter than 4 characters are
    /// ignored: scrubbing them would mangle ordinary text.
    pub fn add(&mut self, value: &str) {
        if value.chars().count() < 4 {
            return;
        }
        // Vendors echo secrets in another case (base32 is case-insensitive,
        // goaxr hands it out lower-case): scrub every casing we can name.
        for variant in [value.to_owned(), value.to_lowercase(), value.to_uppercase()] {
            if !self.needles.iter().any(|n| n.expose_secret() == variant) {
                self.needles.push(SecretString::from(variant));
            }
        }
    }

    /// The text with every known value, and every word that looks like a
    /// credential, replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        mask_credential_like_words(&self.scrub_known(text))
    }

    fn scrub_known(&self, text: &str) -> String {
        let mut out = text.to_owned();
        // Longest first, so a value containing another is removed whole.
        let mut needles: Vec<&str> = self.needles.iter().map(|n| n.expose_secret()).collect();
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        for needle in needles {
            if out.contains(needle) {
                out = out.replace(needle, "***");
            }
        }
        out
    }
}

/// Keys whose values in a vendor's JSON error body explain the error and,
/// by convention, carry no credential. Everything else in the body is left
/// out of our errors: MFA responses hold secrets we may not know to scrub.
const ERROR_KEYS: &[&str] = &[
    "error",
    "error_description",
    "errorCode",
    "code",
    "message",
    "msg",
    "detail",
    "title",
    "reason",
];

/// What of a vendor's response body may appear in an error: for a JSON
/// object, only the well-known error fields (or the list of its keys when
/// it has none); for other text, a short excerpt. The caller scrubs it.
pub fn describe_body(body: &[u8], json: Option<&serde_json::Value>) -> Option<String> {
    match json {
        Some(serde_json::Value::Object(map)) => {
            let known: Vec<String> = ERROR_KEYS
                .iter()
                .filter_map(|key| match map.get(*key)? {
                    serde_json::Value::String(s) => Some(format!("{key}: {}", excerpt(s, 120))),
                    serde_json::Value::Number(n) => Some(format!("{key}: {n}")),
                    _ => None,
                })
                .collect();
            if known.is_empty() {
                let keys: Vec<&str> = map.keys().map(String::as_str).take(10).collect();
                Some(format!("a JSON object with keys {}", keys.join(", ")))
            } else {
                Some(known.join("; "))
            }
        }
        Some(serde_json::Value::String(s)) => Some(excerpt(s, 120)),
        Some(_) => Some("a JSON body without an error message".to_owned()),
        None => {
            let text = excerpt(&String::from_utf8_lossy(body), 120);
            (!text.is_empty()).then_some(text)
        }
    }
}

/// Masks words that look like credentials (tokens, keys, seeds): long runs
/// of token characters mixing letters and digits. Ordinary error prose has
/// none; a secret we did not know about would.
pub fn mask_credential_like_words(text: &str) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "-_.+/=".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let long = word.chars().count() >= 16;
        let mixed = word.chars().any(|c| c.is_ascii_digit())
            && word.chars().any(|c| c.is_ascii_alphabetic());
        if long && mixed {
            out.push_str("***");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_token_char(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Shortens a text to at most `max` characters, marking the cut.
pub fn excerpt(text: &str, max: usize) -> String {
    let trimmed = text.trim();
    if trimmed.chars().count() <= max {
        trimmed.to_owned()
    } else {
        let cut: String = trimmed.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubber_replaces_every_known_value_and_ignores_short_ones() {
        let mut s = Scrubber::default();
        s.add("hunter22");
        s.add("abc");
        s.add("hunter22-long");
        let cases = [
            ("password hunter22 wrong", "password *** wrong"),
            ("hunter22-long and hunter22", "*** and ***"),
            ("abc stays", "abc stays"),
        ];
        for (input, want) in cases {
            assert_eq!(s.scrub(input), want, "{input}");
        }
        assert!(!format!("{s:?}").contains("hunter"));
    }

    #[test]
    fn scrubber_catches_secrets_echoed_in_another_case() {
        let mut s = Scrubber::default();
        s.add("JBSWY3DPEHPK3PXP");
        assert_eq!(
            s.scrub("secret=jbswy3dpehpk3pxp&issuer=x"),
            "secret=***&issuer=x"
        );
    }

    #[test]
    fn credential_like_words_are_masked_and_prose_is_kept() {
        let cases = [
            ("invalid code", "invalid code"),
            (
                "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig expired",
                "token *** expired",
            ),
            ("seed GEZDGNBVGY3TQOJQ is wrong", "seed *** is wrong"),
            (
                "authentication_required_for_user",
                "authentication_required_for_user",
            ),
            ("error 16432: OTP required", "error 16432: OTP required"),
            (
                "request 2026-11-22T08:00:00Z failed",
                "request 2026-11-22T08:00:00Z failed",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(mask_credential_like_words(input), want, "{input}");
        }
    }

    #[test]
    fn only_error_fields_of_a_json_body_are_described() {
        let described = |json: serde_json::Value| {
            describe_body(json.to_string().as_bytes(), Some(&json)).expect("described")
        };
        let cases = [
            (
                serde_json::json!({"error": "invalid_code", "message": "Code invalid", "secret": "S3CR3T"}),
                "error: invalid_code; message: Code invalid",
            ),
            (
                serde_json::json!({"code": 16432, "recoveryCodes": ["AAAAA-BBBBB"]}),
                "code: 16432",
            ),
            (
                serde_json::json!({"token": "t", "refreshToken": "r"}),
                "a JSON object with keys refreshToken, token",
            ),
        ];
        for (json, want) in cases {
            assert_eq!(described(json), want);
        }
        assert_eq!(
            describe_body(b"<html>Bad Gateway</html>", None).as_deref(),
            Some("<html>Bad Gateway</html>")
        );
        assert_eq!(describe_body(b"", None), None);
    }

    #[test]
    fn excerpt_cuts_long_text() {
        assert_eq!(excerpt("  short ", 10), "short");
        assert_eq!(excerpt("abcdefghijkl", 4), "abcd…");
    }
}
