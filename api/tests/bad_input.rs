//! Bad input for the runtime-Secret reader (issue 15): a valid Secret's
//! data, mutated at random (keys removed, values replaced by arbitrary
//! bytes, truncated or extended, unknown keys added), is read without a
//! panic, and a refusal never shows the TOTP seed or the private key.
//! proptest rather than cargo-fuzz: cargo-fuzz needs nightly's sanitizers;
//! these bounded cases run on stable in the normal suite, in about a second.

use std::collections::BTreeMap;

use otpilot_api::api_credential::EnrollmentState;
use otpilot_api::profile::TotpAlgorithm;
use otpilot_api::runtime_secret::{RuntimeBundle, StoredTotp, StoredTotpParams, keys};
use proptest::prelude::*;
use secrecy::SecretString;

const KEYS: [&str; 14] = [
    keys::LAYOUT_VERSION,
    keys::ENROLLMENT_STATE,
    keys::BASE_URL,
    keys::USERNAME,
    keys::PROFILE_NAME,
    keys::PROFILE,
    keys::VARIABLES,
    keys::TOTP_SECRET,
    keys::TOTP_PARAMS,
    keys::LAST_CODE_STEP,
    keys::TLS_CRT,
    keys::TLS_KEY,
    keys::SERVER_CA,
    "unknown-key",
];

fn valid(seed: &str, key_body: &str) -> BTreeMap<String, Vec<u8>> {
    RuntimeBundle {
        enrollment_state: EnrollmentState::Enrolled,
        base_url: "https://api.vendor.example".into(),
        username: "bot@example.com".into(),
        profile_name: "goaxr".into(),
        profile_yaml: "enroll: {steps: []}\nlogin: {steps: []}\n".into(),
        variables: BTreeMap::from([("org".into(), "acme".into())]),
        totp: Some(StoredTotp {
            secret: SecretString::from(seed.to_owned()),
            params: StoredTotpParams {
                algorithm: TotpAlgorithm::Sha1,
                digits: 6,
                period: 30,
            },
        }),
        last_code_step: Some(58_000_000),
        tls_crt: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()),
        tls_key: Some(SecretString::from(format!(
            "-----BEGIN PRIVATE KEY-----\n{key_body}\n-----END PRIVATE KEY-----\n"
        ))),
        server_ca: None,
    }
    .to_data()
}

#[derive(Debug, Clone)]
enum Edit {
    Remove,
    Replace(Vec<u8>),
    ReplaceText(String),
    Truncate(usize),
    Append(Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        Just(Edit::Remove),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Edit::Replace),
        // Text near what the reader expects: numbers, states, JSON.
        prop_oneof![
            "[0-9 \\-+]{0,24}",
            "(NotStarted|Pending|Enrolled|Disabled|enrolled|)[ \n]?",
            "\\{\"algorithm\": ?\"(SHA1|SHA256|MD5|)\", ?\"digits\": ?-?[0-9]{0,4}, ?\"period\": ?-?[0-9e.]{0,24}\\}",
            "\\{(\"[a-z]{0,4}\": ?(\"[a-z]{0,4}\"|[0-9]{1,3}|null|\\[\\]))?\\}",
            ".{0,40}",
        ]
        .prop_map(Edit::ReplaceText),
        (0usize..64).prop_map(Edit::Truncate),
        proptest::collection::vec(any::<u8>(), 1..8).prop_map(Edit::Append),
    ]
}

fn apply(data: &mut BTreeMap<String, Vec<u8>>, key: &str, edit: &Edit) {
    match edit {
        Edit::Remove => {
            data.remove(key);
        }
        Edit::Replace(bytes) => {
            data.insert(key.to_owned(), bytes.clone());
        }
        Edit::ReplaceText(text) => {
            data.insert(key.to_owned(), text.clone().into_bytes());
        }
        Edit::Truncate(n) => {
            if let Some(v) = data.get_mut(key) {
                v.truncate(*n);
            }
        }
        Edit::Append(bytes) => data
            .entry(key.to_owned())
            .or_default()
            .extend_from_slice(bytes),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_mutated_runtime_secret_is_read_or_refused_without_showing_its_secrets(
        seed in "[A-Z2-7]{24,40}",
        key_body in "[A-Za-z0-9+/]{40,64}",
        edits in proptest::collection::vec((0..KEYS.len(), edit()), 0..6),
    ) {
        let mut data = valid(&seed, &key_body);
        for (key, e) in &edits {
            apply(&mut data, KEYS[*key], e);
        }
        match RuntimeBundle::from_data(&data) {
            Ok(bundle) => {
                let debug = format!("{bundle:?}");
                prop_assert!(!debug.contains(&seed) && !debug.contains(&key_body), "{}", debug);
            }
            Err(error) => {
                for text in [error.to_string(), format!("{error:?}")] {
                    prop_assert!(!text.contains(&seed), "the seed in {}", text);
                    prop_assert!(!text.contains(&key_body), "the key in {}", text);
                    prop_assert!(!text.is_empty());
                }
            }
        }
    }

    #[test]
    fn a_secret_value_in_the_wrong_key_is_not_shown_either(
        seed in "[A-Z2-7]{24,40}",
        key in 0..KEYS.len(),
    ) {
        // The seed pasted where a number, a state or JSON belongs.
        let mut data = valid(&seed, "KEYBODYKEYBODYKEYBODYKEYBODY");
        data.insert(KEYS[key].to_owned(), seed.clone().into_bytes());
        if let Err(error) = RuntimeBundle::from_data(&data) {
            prop_assert!(!error.to_string().contains(&seed), "{}", error);
        }
        // And inside the JSON keys, where a parser would quote it back.
        for (key, json) in [
            (keys::TOTP_PARAMS, format!(r#"{{"algorithm":"{seed}","digits":6,"period":30}}"#)),
            (keys::TOTP_PARAMS, format!(r#"{{"algorithm":"SHA1","digits":"{seed}","period":30}}"#)),
            (keys::VARIABLES, format!(r#"{{"org":["{seed}"]}}"#)),
            (keys::VARIABLES, format!(r#"["{seed}"]"#)),
        ] {
            let mut data = valid(&seed, "KEYBODYKEYBODYKEYBODYKEYBODY");
            data.insert(key.to_owned(), json.into_bytes());
            let error = RuntimeBundle::from_data(&data).expect_err("wrong shape");
            prop_assert!(!error.to_string().contains(&seed), "{}", error);
        }
    }
}
