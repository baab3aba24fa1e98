//! Go-style durations for the command line (`300ms`, `1.5h`, `2h45m`), parsed
//! with checked arithmetic: a value too large for the simulator is an error,
//! never an overflow panic.

use std::time::Duration;

/// A duration that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty input.
    #[error("failed to read a duration: it is empty (write e.g. 30s, 5m, 1h30m)")]
    Empty,
    /// A leading `-`: lifetimes and periods cannot be negative.
    #[error("failed to read duration {0:?}: it is negative; durations here must be positive")]
    Negative(String),
    /// Not `<number><unit>...`.
    #[error(
        "failed to read duration {0:?}: write numbers with units ns, us, ms, s, m or h (e.g. 1h30m)"
    )]
    Syntax(String),
    /// An unknown unit.
    #[error("failed to read duration {text:?}: unknown unit {unit:?} (use ns, us, ms, s, m or h)")]
    Unit {
        /// The whole input.
        text: String,
        /// The unit found.
        unit: String,
    },
    /// More than Go's limit (about 292 years), or too many digits.
    #[error("failed to read duration {0:?}: it is too large (at most about 292 years)")]
    Overflow(String),
}

// Go's own bound: a duration is an i64 count of nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration (`1h30m`, `1.5s`, `300ms`; `0` alone). A bare
/// integer means seconds, as this command line always accepted.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.starts_with('-') {
        return Err(DurationError::Negative(text.to_owned()));
    }
    let body = text.strip_prefix('+').unwrap_or(text);
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = body
            .parse()
            .map_err(|_| DurationError::Overflow(text.to_owned()))?;
        return checked(u128::from(secs) * 1_000_000_000, text);
    }
    let syntax = || DurationError::Syntax(text.to_owned());
    let overflow = || DurationError::Overflow(text.to_owned());
    let mut rest = body;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(syntax)?;
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(syntax());
        }
        let scale = unit_nanos(unit).ok_or_else(|| DurationError::Unit {
            text: text.to_owned(),
            unit: unit.to_owned(),
        })?;
        // Digits beyond what fits are an overflow, not a panic.
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| overflow())?
        };
        let mut nanos = whole.checked_mul(scale).ok_or_else(overflow)?;
        // The fraction, digit by digit, down to the nanosecond.
        let mut place = scale;
        for digit in fraction.bytes() {
            place /= 10;
            nanos = nanos
                .checked_add(u128::from(digit - b'0') * place)
                .ok_or_else(overflow)?;
        }
        total = total.checked_add(nanos).ok_or_else(overflow)?;
        if total > MAX_NANOS {
            return Err(overflow());
        }
        rest = tail;
    }
    checked(total, text)
}

fn checked(nanos: u128, text: &str) -> Result<Duration, DurationError> {
    if nanos > MAX_NANOS {
        return Err(DurationError::Overflow(text.to_owned()));
    }
    let nanos = u64::try_from(nanos).map_err(|_| DurationError::Overflow(text.to_owned()))?;
    Ok(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_exactly() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let cases: &[(&str, Duration)] = &[
            ("0", s(0)),
            ("2", s(2)),
            ("2s", s(2)),
            ("+2s", s(2)),
            ("300ms", ms(300)),
            ("1.5s", ms(1500)),
            (".5s", ms(500)),
            ("1.5h", s(5400)),
            ("5m", s(300)),
            ("1h", s(3600)),
            ("2h45m", s(2 * 3600 + 45 * 60)),
            ("1h0m30s", s(3630)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("2562047h", s(2_562_047 * 3600)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_or_huge_durations_are_errors_not_panics() {
        type Expect = fn(&DurationError) -> bool;
        let cases: &[(&str, Expect)] = &[
            ("", |e| matches!(e, DurationError::Empty)),
            ("-5s", |e| matches!(e, DurationError::Negative(_))),
            ("5d", |e| matches!(e, DurationError::Unit { .. })),
            ("x", |e| matches!(e, DurationError::Syntax(_))),
            ("s", |e| matches!(e, DurationError::Syntax(_))),
            ("1..5s", |e| matches!(e, DurationError::Syntax(_))),
            ("5s10", |e| matches!(e, DurationError::Syntax(_))),
            ("2562048h", |e| matches!(e, DurationError::Overflow(_))),
            ("18446744073709551616", |e| {
                matches!(e, DurationError::Overflow(_))
            }),
            ("99999999999999999999999999999999999999999h", |e| {
                matches!(e, DurationError::Overflow(_))
            }),
            ("9223372036854775807s", |e| {
                matches!(e, DurationError::Overflow(_))
            }),
            ("2000000h2000000h", |e| {
                matches!(e, DurationError::Overflow(_))
            }),
        ];
        for (text, expected) in cases {
            let e = parse(text).expect_err(text);
            assert!(expected(&e), "{text}: {e:?}");
            assert!(e.to_string().starts_with("failed to read"), "{e}");
        }
    }
}
