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
        if value.chars().count() >= 4 {
            self.needles.push(SecretString::from(value.to_owned()));
        }
    }

    /// The text with every known value replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
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
    fn excerpt_cuts_long_text() {
        assert_eq!(excerpt("  short ", 10), "short");
        assert_eq!(excerpt("abcdefghijkl", 4), "abcd…");
    }
}
