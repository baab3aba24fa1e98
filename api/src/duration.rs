//! Durations in the Go format Kubernetes users already write
//! (`2160h`, `30m`, `1h30m`, `90s`), kept as strings in the API.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A duration such as `2160h`, `45m` or `1h30m` (units: h, m, s, ms).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct Duration(String);

/// The pattern the API server enforces; `Duration::parse` accepts exactly this.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$";

impl Duration {
    /// A duration from its Go-duration text (not checked: see `Duration::parse`).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the Go-style text into a std duration.
    pub fn parse(&self) -> Result<std::time::Duration, InvalidDuration> {
        parse_go_duration(&self.0)
    }
}

/// A duration string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDuration(pub String);

impl std::error::Error for InvalidDuration {}

impl std::fmt::Display for InvalidDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid duration {:?}: expected a number with a unit, like 2160h, 30m, 1h30m or 90s",
            self.0
        )
    }
}

/// Parses a Go-style duration (`2160h`, `1h30m`, `90s`, `250ms`, `1.5s`;
/// no sign, no `us`/`ns`). The one parser of the project: it never panics,
/// and a value too large for a duration is an error. (kube-core's
/// `Duration::from_str` panics on overflow, e.g. `99999999999999999999h`.)
pub fn parse_go_duration(text: &str) -> Result<std::time::Duration, InvalidDuration> {
    let invalid = || InvalidDuration(text.to_owned());
    if text.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        if number_len == 0 {
            return Err(invalid());
        }
        let value: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(invalid()),
        };
        total += value * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": 32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_durations_parse_to_seconds() {
        let cases = [
            ("2160h", 2160 * 3600),
            ("30m", 1800),
            ("1h30m", 5400),
            ("90s", 90),
            ("1h0m0s", 3600),
        ];
        for (text, seconds) in cases {
            assert_eq!(
                Duration::new(text).parse(),
                Ok(std::time::Duration::from_secs(seconds)),
                "{text}"
            );
        }
        assert_eq!(
            Duration::new("1.5s").parse(),
            Ok(std::time::Duration::from_millis(1500))
        );
    }

    #[test]
    fn huge_durations_are_errors_not_panics() {
        for text in [
            "99999999999999999999h",
            "99999999999999999999999999999999999999999s",
            "1e300s",
            "5124095576030431h",
        ] {
            let got = std::panic::catch_unwind(|| parse_go_duration(text))
                .unwrap_or_else(|_| panic!("{text}: panicked"));
            assert!(got.is_err(), "{text}: {got:?}");
        }
    }

    #[test]
    fn malformed_durations_are_rejected_with_the_input_named() {
        for text in ["", "10", "h", "10d", "1h-5m", "abc"] {
            let error = Duration::new(text).parse().expect_err(text);
            assert!(error.to_string().contains("invalid duration"), "{text}");
        }
    }
}
