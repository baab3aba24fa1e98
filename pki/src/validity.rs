//! Validity periods: when an issued certificate starts and stops being valid.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::error::PkiError;

/// How far notBefore is set back from "now", so a peer whose clock runs a
/// little behind ours still accepts a certificate issued a moment ago.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(5 * 60);

/// The notBefore and notAfter of a certificate, whole seconds (X.509 keeps no more).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// The validity of a certificate issued at `now` for `validity`: backdated
/// by [`CLOCK_SKEW_ALLOWANCE`] and, when an issuer's own window is given,
/// kept inside it (a certificate cannot usefully outlive its CA).
pub(crate) fn window(
    now: Timestamp,
    validity: Duration,
    issuer: Option<Window>,
) -> Result<Window, PkiError> {
    if validity.is_zero() {
        return Err(invalid("the duration is zero"));
    }
    let now =
        Timestamp::from_second(now.as_second()).map_err(|_| invalid("now is out of range"))?;
    let validity =
        SignedDuration::try_from(validity).map_err(|_| invalid("the duration is too long"))?;
    let skew = SignedDuration::try_from(CLOCK_SKEW_ALLOWANCE)
        .map_err(|_| invalid("the clock skew allowance is out of range"))?;
    let mut not_before = now
        .checked_sub(skew)
        .map_err(|_| invalid("now is out of range"))?;
    let mut not_after = now
        .checked_add(validity)
        .map_err(|_| invalid("the certificate would expire after the year 9999"))?;
    if let Some(issuer) = issuer {
        if now >= issuer.not_after {
            return Err(PkiError::CaExpired {
                not_after: issuer.not_after,
            });
        }
        not_before = not_before.max(issuer.not_before);
        not_after = not_after.min(issuer.not_after);
    }
    if not_after <= not_before {
        return Err(invalid(
            "the certificate would end before it starts (the CA is not valid yet)",
        ));
    }
    Ok(Window {
        not_before,
        not_after,
    })
}

fn invalid(reason: &str) -> PkiError {
    PkiError::InvalidValidity {
        reason: reason.to_owned(),
    }
}

/// rcgen takes `time` values.
pub(crate) fn to_offset_date_time(at: Timestamp) -> Result<time::OffsetDateTime, PkiError> {
    time::OffsetDateTime::from_unix_timestamp(at.as_second())
        .map_err(|_| invalid("the time is out of range for a certificate"))
}

/// x509-parser gives ASN.1 times.
pub(crate) fn from_asn1(at: x509_parser::time::ASN1Time) -> Result<Timestamp, PkiError> {
    Timestamp::from_second(at.timestamp()).map_err(|_| PkiError::InvalidCertificate {
        reason: "a validity time is out of range".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("test timestamp")
    }

    #[test]
    fn issued_certificates_are_backdated_for_clock_skew_and_cut_to_whole_seconds() {
        let window = window(
            at("2026-03-01T12:00:00.75Z"),
            Duration::from_secs(3600),
            None,
        )
        .expect("window");
        assert_eq!(window.not_before, at("2026-03-01T11:55:00Z"));
        assert_eq!(window.not_after, at("2026-03-01T13:00:00Z"));
    }

    #[test]
    fn a_certificate_never_outlives_or_predates_its_issuer() {
        let issuer = Window {
            not_before: at("2026-03-01T11:58:00Z"),
            not_after: at("2026-03-01T12:30:00Z"),
        };
        let window = window(
            at("2026-03-01T12:00:00Z"),
            Duration::from_secs(3600),
            Some(issuer),
        )
        .expect("window");
        assert_eq!(window.not_before, at("2026-03-01T11:58:00Z"));
        assert_eq!(window.not_after, at("2026-03-01T12:30:00Z"));
    }

    #[test]
    fn an_expired_issuer_issues_nothing() {
        let issuer = Window {
            not_before: at("2025-01-01T00:00:00Z"),
            not_after: at("2026-01-01T00:00:00Z"),
        };
        let error = window(
            at("2026-03-01T12:00:00Z"),
            Duration::from_secs(3600),
            Some(issuer),
        )
        .expect_err("expired issuer");
        assert!(matches!(error, PkiError::CaExpired { .. }), "{error:?}");
    }

    #[test]
    fn a_certificate_that_would_end_before_its_issuer_starts_is_an_error() {
        let issuer = Window {
            not_before: at("2026-03-01T12:04:00Z"),
            not_after: at("2027-03-01T12:00:00Z"),
        };
        let error = window(
            at("2026-03-01T12:00:00Z"),
            Duration::from_secs(60),
            Some(issuer),
        )
        .expect_err("empty window");
        assert!(error.to_string().contains("not valid yet"), "{error}");
    }

    #[test]
    fn zero_and_absurd_durations_are_errors_not_panics() {
        let now = at("2026-03-01T12:00:00Z");
        for validity in [
            Duration::ZERO,
            Duration::MAX,
            Duration::from_secs(10_000 * 365 * 86400),
        ] {
            let error = window(now, validity, None).expect_err("invalid validity");
            assert!(
                matches!(error, PkiError::InvalidValidity { .. }),
                "{validity:?}: {error:?}"
            );
        }
    }
}
