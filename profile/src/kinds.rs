//! Which kinds (`as:`) a reserved value name may be read with: the engine
//! stores a value by what its kind yields and reads reserved names from one
//! place only. Pure functions.

use otpilot_api::profile::ValueKind;

#[cfg(test)]
use crate::check::WELL_KNOWN;

/// The kinds that yield a point in time.
const TIME_KINDS: &[ValueKind] = &[
    ValueKind::ExpiresIn,
    ValueKind::EpochSeconds,
    ValueKind::EpochMillis,
    ValueKind::Rfc3339,
    ValueKind::JwtExp,
];

/// A kind as it is written in a profile's `as`.
fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::String => "string",
        ValueKind::Base32Secret => "base32Secret",
        ValueKind::OtpauthUri => "otpauthUri",
        ValueKind::RecoveryCodes => "recoveryCodes",
        ValueKind::ExpiresIn => "expiresIn",
        ValueKind::EpochSeconds => "epochSeconds",
        ValueKind::EpochMillis => "epochMillis",
        ValueKind::Rfc3339 => "rfc3339",
        ValueKind::JwtExp => "jwtExp",
    }
}

/// Why extraction `name` cannot be read `as: kind`, if it cannot. The
/// engine stores a value by what its kind yields (text, a TOTP key,
/// recovery codes, an instant) and reads reserved names from one place
/// only (`FlowRun::into_session`, `into_enrollment`), so a reserved name
/// read with another kind would be silently lost.
pub(crate) fn kind_problem(name: &str, kind: ValueKind) -> Option<String> {
    let k = kind_name(kind);
    let is_time = TIME_KINDS.contains(&kind);
    match name {
        "totp_secret" => match kind {
            ValueKind::Base32Secret | ValueKind::OtpauthUri => None,
            _ => Some(format!(
                "'totp_secret' must be read as base32Secret or otpauthUri, not {k} \
                 (otherwise it shadows the TOTP secret instead of setting it)"
            )),
        },
        "recovery_codes" => (kind != ValueKind::RecoveryCodes)
            .then(|| format!("'recovery_codes' must be read as recoveryCodes, not {k}")),
        "access_token" | "refresh_token" => (kind != ValueKind::String).then(|| {
            let expiry = if name == "access_token" {
                "expires_at"
            } else {
                "refresh_expires_at"
            };
            let hint = if is_time {
                format!("; to read its expiry, extract '{expiry}' with as: {k}")
            } else {
                String::new()
            };
            format!("'{name}' is a token and must be read as string (the default), not {k}{hint}")
        }),
        "expires_at" | "refresh_expires_at" => (!is_time).then(|| {
            format!(
                "'{name}' is an expiry and must be read as expiresIn, epochSeconds, \
                 epochMillis, rfc3339 or jwtExp, not {k}"
            )
        }),
        "reenroll_required" => (kind != ValueKind::String).then(|| {
            format!(
                "'reenroll_required' must be read as string (the default), not {k}: \
                 the session looks for the text 'true'"
            )
        }),
        _ => match kind {
            ValueKind::Base32Secret | ValueKind::OtpauthUri => {
                Some("a TOTP secret must be extracted as 'totp_secret'".to_owned())
            }
            ValueKind::RecoveryCodes => {
                Some("recovery codes must be extracted as 'recovery_codes'".to_owned())
            }
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_accept_exactly_the_kinds_the_session_reads() {
        use ValueKind as K;
        let all = [
            K::String,
            K::Base32Secret,
            K::OtpauthUri,
            K::RecoveryCodes,
            K::ExpiresIn,
            K::EpochSeconds,
            K::EpochMillis,
            K::Rfc3339,
            K::JwtExp,
        ];
        let allowed: &[(&str, &[ValueKind])] = &[
            ("totp_secret", &[K::Base32Secret, K::OtpauthUri]),
            ("recovery_codes", &[K::RecoveryCodes]),
            ("access_token", &[K::String]),
            ("refresh_token", &[K::String]),
            ("reenroll_required", &[K::String]),
            ("expires_at", TIME_KINDS),
            ("refresh_expires_at", TIME_KINDS),
            (
                "session_id",
                &[
                    K::String,
                    K::ExpiresIn,
                    K::EpochSeconds,
                    K::EpochMillis,
                    K::Rfc3339,
                    K::JwtExp,
                ],
            ),
        ];
        assert_eq!(
            allowed.len(),
            WELL_KNOWN.len() + 1,
            "every reserved name is covered"
        );
        for (name, ok) in allowed {
            for kind in all {
                let got = kind_problem(name, kind);
                assert_eq!(
                    got.is_none(),
                    ok.contains(&kind),
                    "{name} as {kind:?}: {got:?}"
                );
            }
        }
    }
}
