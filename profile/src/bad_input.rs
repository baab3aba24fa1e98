//! Bad input (issue 15), as properties over bounded random cases so they
//! run in the normal suite in seconds: the profile loader, the otpauth URI
//! parser and the recovery-code parser never panic, and their errors never
//! show a secret they were given. proptest, not cargo-fuzz: cargo-fuzz
//! needs nightly's sanitizers, and these run on stable.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::extract::{interpret, recovery_codes};
use crate::otpauth;
use crate::totp::TotpParams;
use crate::{Profile, builtin};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A built-in profile's YAML with random edits: bytes removed, replaced
/// or inserted (YAML punctuation and template syntax weighted in).
fn mutated_profile() -> impl Strategy<Value = String> {
    let sources: Vec<&'static str> = builtin::SOURCES.iter().map(|(_, y)| *y).collect();
    let piece = prop_oneof![
        Just(String::new()),
        "[:{}\\[\\],&*!|>#'\" \n\t-]{1,4}",
        "\\{\\{ ?[a-z_]{0,12} ?(\\| ?[a-z0-9]{0,10})? ?\\}\\}",
        "(steps|extract|pointer|as|responses|status|outcome|method|path|body|variables|secretValues|fallback): ",
        "-?[0-9]{1,20}(\\.[0-9]{0,5})?(e[0-9]{1,3})?",
        ".{0,12}",
    ];
    (
        proptest::sample::select(sources),
        proptest::collection::vec((any::<prop::sample::Index>(), 0usize..24, piece), 1..5),
    )
        .prop_map(|(source, edits)| {
            let mut text = source.to_owned();
            for (at, remove, insert) in edits {
                let mut start = at.index(text.len() + 1);
                while !text.is_char_boundary(start) {
                    start -= 1;
                }
                let mut end = (start + remove).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(start..end, &insert);
            }
            text
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_loader_reads_or_refuses_any_mutation_of_a_builtin(yaml in mutated_profile()) {
        if let Err(error) = Profile::from_yaml("mutated.yaml", &yaml) {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn the_loader_reads_or_refuses_arbitrary_text(yaml in ".{0,200}") {
        let _ = Profile::from_yaml("arbitrary.yaml", &yaml);
    }

    #[test]
    fn an_otpauth_uri_is_parsed_or_refused_without_showing_its_secret(
        secret in "[A-Z2-7]{16,52}",
        kind in prop_oneof![Just("totp".to_owned()), Just("hotp".to_owned()), Just("TOTP".to_owned()), Just("".to_owned()), "[a-z]{1,12}"],
        label in "[A-Za-z0-9 :%@.]{0,20}",
        params in proptest::collection::vec(
            (
                prop_oneof![Just("algorithm".to_owned()), Just("digits".to_owned()), Just("period".to_owned()), Just("issuer".to_owned()), "[a-z]{1,8}"],
                prop_oneof![
                    "(SHA1|SHA256|SHA512|sha-256|MD5|)",
                    "-?[0-9]{0,25}",
                    "[A-Za-z0-9%&=#?/ ]{0,12}",
                ],
            ),
            0..5,
        ),
        wrapped in any::<bool>(),
    ) {
        let mut uri = format!("otpauth://{kind}/{label}?secret={secret}");
        for (k, v) in &params {
            uri.push_str(&format!("&{k}={v}"));
        }
        let input = if wrapped {
            format!(
                "https://chart.example/chart?cht=qr&chl={}",
                percent_encoding::utf8_percent_encode(&uri, percent_encoding::NON_ALPHANUMERIC)
            )
        } else {
            uri
        };
        if let Err(error) = otpauth::parse(&input, TotpParams::default()) {
            let text = format!("{error} {error:?}");
            prop_assert!(!text.contains(&secret), "{}", text);
            prop_assert!(!text.contains(&secret.to_lowercase()), "{}", text);
        }
    }

    #[test]
    fn a_secret_in_the_wrong_place_of_an_otpauth_uri_is_not_shown(
        secret in "[A-Z2-7]{16,52}",
        place in 0usize..5,
    ) {
        let uri = match place {
            0 => format!("otpauth://{secret}/bot?secret=JBSWY3DPEHPK3PXP"),
            1 => format!("otpauth://totp/bot?secret=JBSWY3DPEHPK3PXP&algorithm={secret}"),
            2 => format!("otpauth://totp/bot?secret=JBSWY3DPEHPK3PXP&digits={secret}"),
            3 => format!("{secret}://totp/bot"),
            _ => format!("otpauth://totp/bot?secret={secret}0189"),
        };
        if let Err(error) = otpauth::parse(&uri, TotpParams::default()) {
            let text = format!("{error} {error:?}");
            prop_assert!(!text.contains(&secret), "{}", text);
            prop_assert!(!text.to_uppercase().contains(&secret), "{}", text);
        }
    }

    #[test]
    fn recovery_codes_are_read_or_refused_without_showing_a_code(
        codes in proptest::collection::vec("[A-Za-z0-9]{8,12}", 0..12),
        noise in proptest::collection::vec(
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| json!(f)),
                Just(json!({})),
                Just(json!([])),
                "[ \n\r,]{0,3}".prop_map(Value::from),
            ],
            0..3,
        ),
        shape in 0usize..4,
        strip in any::<bool>(),
    ) {
        let raw = match shape {
            0 => Value::from(codes.clone()),
            1 => Value::from(codes.join("\n")),
            2 => {
                let mut items: Vec<Value> = codes.iter().cloned().map(Value::from).collect();
                items.extend(noise);
                Value::from(items)
            }
            _ => json!({"codes": codes.clone()}),
        };
        match recovery_codes(&raw, strip) {
            Ok(read) => {
                prop_assert!(!read.is_empty());
                prop_assert!(read.iter().all(|c| !c.is_empty()));
                if strip {
                    prop_assert!(read.iter().all(|c| !c.chars().any(char::is_whitespace)));
                }
            }
            Err(error) => {
                for code in &codes {
                    prop_assert!(!error.contains(code.as_str()), "{}", error);
                }
            }
        }
    }

    #[test]
    fn any_json_value_is_read_or_refused_as_every_kind(
        raw in prop_oneof![
            Just(Value::Null),
            any::<f64>().prop_map(|f| json!(f)),
            any::<i64>().prop_map(Value::from),
            ".{0,40}".prop_map(Value::from),
            "[A-Za-z0-9_\\-]{0,20}\\.[A-Za-z0-9_\\-]{0,40}\\.[A-Za-z0-9_\\-]{0,10}".prop_map(Value::from),
            proptest::collection::vec(".{0,8}", 0..4).prop_map(Value::from),
        ],
        strip in any::<bool>(),
    ) {
        use otpilot_api::profile::ValueKind;
        let now = std::time::SystemTime::now();
        for kind in [
            ValueKind::String,
            ValueKind::Base32Secret,
            ValueKind::OtpauthUri,
            ValueKind::RecoveryCodes,
            ValueKind::ExpiresIn,
            ValueKind::EpochSeconds,
            ValueKind::EpochMillis,
            ValueKind::Rfc3339,
            ValueKind::JwtExp,
        ] {
            let _ = interpret(kind, &raw, strip, now, TotpParams::default());
        }
    }
}
