use super::*;
use crate::error::LoadError;
use crate::load::Profile;

pub(crate) const MINIMAL: &str = r#"
enroll:
  steps:
    - method: GET
      path: /secret
      extract:
        totp_secret: {pointer: /secret, as: base32Secret}
    - method: POST
      path: /enable
      body: {code: "{{ totp }}"}
login:
  steps:
    - method: POST
      path: /login
      body: {user: "{{ username }}", code: "{{ totp }}"}
      extract:
        access_token: {pointer: /token}
"#;

fn problems(yaml: &str) -> Vec<String> {
    match Profile::from_yaml("test.yaml", yaml) {
        Ok(_) => vec![],
        Err(LoadError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn minimal_profile_loads_and_knows_which_steps_send_a_code() {
    let p = Profile::from_yaml("test.yaml", MINIMAL).expect("valid");
    let enroll = p.step_info(FlowKind::Enroll);
    assert!(!enroll[0].uses_totp());
    assert!(enroll[1].uses_totp());
    assert!(p.step_info(FlowKind::Login)[0].uses_totp());
    assert!(!p.has_flow(FlowKind::Refresh));
}

#[test]
fn undefined_value_is_reported_with_its_field_path() {
    let yaml = MINIMAL.replace(
        r#"code: "{{ totp }}"}
      extract"#,
        r#"code: "{{ otp }}"}
      extract"#,
    );
    let got = problems(&yaml);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("login.steps[0].body.code: undefined value 'otp'"),
        "{got:?}"
    );
}

#[test]
fn inconsistent_profiles_are_rejected_with_the_field_path() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "totp before the secret is extracted",
            "    - method: GET\n      path: /secret\n",
            "    - method: GET\n      path: /secret\n      headers: {X-OTP: \"{{ totp }}\"}\n",
        ),
        (
            "value from a later step",
            "path: /enable",
            "path: /enable/{{ later }}",
        ),
        ("syntax error", "path: /login", "path: /login/{{ username "),
        ("path without slash", "path: /login", "path: login"),
        (
            "status out of range",
            "body: {code: \"{{ totp }}\"}\nlogin",
            "body: {code: \"{{ totp }}\"}\n      responses: [{status: [42], outcome: fail}]\nlogin",
        ),
        (
            "secret extracted as a string",
            "{pointer: /secret, as: base32Secret}",
            "{pointer: /secret}",
        ),
        (
            "two sources",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token, header: X-Token}",
        ),
        (
            "login without token",
            "access_token: {pointer: /token}",
            "other: {pointer: /token}",
        ),
        (
            "recovery code outside recoveryLogin",
            "user: \"{{ username }}\"",
            "user: \"{{ recovery_code }}\"",
        ),
        (
            "replacesActiveSecret outside enroll",
            "login:\n  steps:",
            "login:\n  replacesActiveSecret: true\n  steps:",
        ),
    ];
    let want_paths = [
        "enroll.steps[0].headers.X-OTP",
        "enroll.steps[1].path",
        "login.steps[0].path",
        "login.steps[0].path",
        "enroll.steps[1].responses[0].status",
        "enroll.steps[0].extract.totp_secret.as",
        "login.steps[0].extract.access_token",
        "login.steps",
        "login.steps[0].body.user",
        "login.replacesActiveSecret",
    ];
    for ((what, from, to), want) in cases.iter().zip(want_paths) {
        assert!(MINIMAL.contains(from), "{what}: fixture lacks {from:?}");
        let got = problems(&MINIMAL.replacen(from, to, 1));
        assert!(
            got.iter().any(|p| p.starts_with(want)),
            "{what}: want a problem at {want}, got {got:?}"
        );
    }
}

/// (behaviour, fixture text, replacement, the whole problem expected).
type Case = (&'static str, &'static str, &'static str, &'static str);

fn assert_cases(cases: &[Case]) {
    for (what, from, to, want) in cases {
        let fixture = format!("variables: {{org: acme}}\n{MINIMAL}");
        assert!(fixture.contains(from), "{what}: fixture lacks {from:?}");
        let got = problems(&fixture.replacen(from, to, 1));
        assert!(
            got.iter().any(|p| p == want),
            "{what}: want {want:?}, got {got:?}"
        );
    }
}

#[test]
fn extraction_template_cannot_use_a_code() {
    assert_cases(&[
        (
            "totp in an extraction value, where a code is known",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token}\n        nonce: {value: \"{{ totp }}\"}",
            "login.steps[0].extract.nonce.value: extraction templates may use only values \
                 known after the response; 'totp' is a code generated for a request",
        ),
        (
            "totp in an extraction value, before any secret",
            "{pointer: /secret, as: base32Secret}",
            "{value: \"{{ totp }}\", as: base32Secret}",
            "enroll.steps[0].extract.totp_secret.value: extraction templates may use only \
                 values known after the response; 'totp' is a code generated for a request",
        ),
    ]);
    // Where `totp` is not defined either, it is reported once, not also
    // as an undefined value.
    let yaml = format!("variables: {{org: acme}}\n{MINIMAL}").replacen(
        "{pointer: /secret, as: base32Secret}",
        "{value: \"{{ totp }}\", as: base32Secret}",
        1,
    );
    let got = problems(&yaml);
    assert_eq!(got.len(), 1, "{got:?}");
}

#[test]
fn reserved_names_must_be_read_with_the_kind_the_engine_stores_them_by() {
    assert_cases(&[
        (
            "access token read as an expiry",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token, as: jwtExp}",
            "login.steps[0].extract.access_token.as: 'access_token' is a token and must be \
                 read as string (the default), not jwtExp; to read its expiry, extract \
                 'expires_at' with as: jwtExp",
        ),
        (
            "refresh token read as an expiry",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token}\n        refresh_token: {pointer: /rt, as: epochSeconds}",
            "login.steps[0].extract.refresh_token.as: 'refresh_token' is a token and must be \
                 read as string (the default), not epochSeconds; to read its expiry, extract \
                 'refresh_expires_at' with as: epochSeconds",
        ),
        (
            "access token read as a secret",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token, as: otpauthUri}",
            "login.steps[0].extract.access_token.as: 'access_token' is a token and must be \
                 read as string (the default), not otpauthUri",
        ),
        (
            "expiry read as text",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token}\n        expires_at: {pointer: /exp}",
            "login.steps[0].extract.expires_at.as: 'expires_at' is an expiry and must be read \
                 as expiresIn, epochSeconds, epochMillis, rfc3339 or jwtExp, not string",
        ),
        (
            "refresh expiry read as recovery codes",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token}\n        refresh_expires_at: {pointer: /exp, as: recoveryCodes}",
            "login.steps[0].extract.refresh_expires_at.as: 'refresh_expires_at' is an expiry \
                 and must be read as expiresIn, epochSeconds, epochMillis, rfc3339 or jwtExp, not \
                 recoveryCodes",
        ),
        (
            "reenroll flag read as a time",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token}\n        reenroll_required: {pointer: /r, as: epochMillis}",
            "login.steps[0].extract.reenroll_required.as: 'reenroll_required' must be read as \
                 string (the default), not epochMillis: the session looks for the text 'true'",
        ),
        (
            "secret read as a time",
            "{pointer: /secret, as: base32Secret}",
            "{pointer: /secret, as: expiresIn}",
            "enroll.steps[0].extract.totp_secret.as: 'totp_secret' must be read as \
                 base32Secret or otpauthUri, not expiresIn (otherwise it shadows the TOTP secret \
                 instead of setting it)",
        ),
        (
            "recovery codes read as a time",
            "{pointer: /secret, as: base32Secret}",
            "{pointer: /secret, as: base32Secret}\n        recovery_codes: {pointer: /codes, as: rfc3339}",
            "enroll.steps[0].extract.recovery_codes.as: 'recovery_codes' must be read as \
                 recoveryCodes, not rfc3339",
        ),
    ]);
}

#[test]
fn extraction_header_must_be_a_valid_header_name() {
    assert_cases(&[
        (
            "space in a header name",
            "access_token: {pointer: /token}",
            "access_token: {header: X Token}",
            "login.steps[0].extract.access_token.header: not a valid HTTP header name",
        ),
        (
            "colon in a header name",
            "access_token: {pointer: /token}",
            "access_token: {header: \"X-Token:\"}",
            "login.steps[0].extract.access_token.header: not a valid HTTP header name",
        ),
        (
            "empty header name",
            "access_token: {pointer: /token}",
            "access_token: {header: \"\"}",
            "login.steps[0].extract.access_token.header: not a valid HTTP header name",
        ),
    ]);
}

#[test]
fn names_cannot_shadow_template_functions() {
    let variable = format!("variables: {{range: x}}\n{MINIMAL}");
    let got = problems(&variable);
    assert!(
        got.iter().any(
            |p| p == "variables.range: 'range' is a template function and cannot be a variable"
        ),
        "{got:?}"
    );
    let extracted = MINIMAL.replacen(
        "    extract:\n",
        "    extract:\n        dict: {pointer: /x}\n",
        1,
    );
    assert_ne!(extracted, MINIMAL, "fixture has an extract block");
    let got = problems(&extracted);
    assert!(
            got.iter().any(|p| p.ends_with(
                ".extract.dict: 'dict' shadows the template function 'dict'; extract it under another name"
            )),
            "{got:?}"
        );
}

#[test]
fn secret_values_are_usable_and_their_names_checked() {
    let usable = format!(
        "secretValues: [client_secret]\nheaders: {{clientsecret: \"{{{{ client_secret }}}}\"}}\n{MINIMAL}"
    );
    assert_eq!(problems(&usable), Vec::<String>::new());
    let cases = [
        (
            "Client-Secret",
            "secretValues[Client-Secret]: a secret value name must be a letter or _ followed by letters, digits or _",
        ),
        (
            "password",
            "secretValues[password]: 'password' is a built-in value and cannot be a secret value",
        ),
        (
            "totp",
            "secretValues[totp]: 'totp' is a built-in value and cannot be a secret value",
        ),
        (
            "org",
            "secretValues[org]: 'org' is also a variable; a value is either secret or not",
        ),
        (
            "range",
            "secretValues[range]: 'range' is a template function and cannot be a secret value",
        ),
    ];
    for (name, want) in cases {
        let yaml = format!("variables: {{org: acme}}\nsecretValues: [{name}]\n{MINIMAL}");
        let got = problems(&yaml);
        assert!(
            got.iter().any(|p| p == want),
            "{name}: want {want:?}, got {got:?}"
        );
    }
    let shadowed = format!("secretValues: [client_secret]\n{MINIMAL}").replacen(
        "access_token: {pointer: /token}",
        "access_token: {pointer: /token}\n        client_secret: {pointer: /s}",
        1,
    );
    let got = problems(&shadowed);
    assert!(
        got.iter().any(|p| p
            == "login.steps[0].extract.client_secret: 'client_secret' shadows the secret \
                    value 'client_secret'; extract it under another name"),
        "{got:?}"
    );
}

#[test]
fn an_extraction_fallback_is_checked_like_the_extraction() {
    let with = |fallback: &str| {
        MINIMAL.replacen(
            "{pointer: /secret, as: base32Secret}",
            &format!("{{pointer: /uri, as: otpauthUri, fallback: {fallback}}}"),
            1,
        )
    };
    assert_eq!(
        problems(&with("{pointer: /secret, as: base32Secret}")),
        Vec::<String>::new()
    );
    let cases = [
        (
            "{as: base32Secret}",
            "enroll.steps[0].extract.totp_secret.fallback: set exactly one of pointer and header",
        ),
        (
            "{pointer: secret, as: base32Secret}",
            "enroll.steps[0].extract.totp_secret.fallback.pointer: a JSON pointer is empty or \
                 starts with '/'",
        ),
        (
            "{header: \"a b\", as: base32Secret}",
            "enroll.steps[0].extract.totp_secret.fallback.header: not a valid HTTP header name",
        ),
        (
            "{pointer: /s, as: rfc3339}",
            "enroll.steps[0].extract.totp_secret.fallback.as: 'totp_secret' must be read as \
                 base32Secret or otpauthUri, not rfc3339 (otherwise it shadows the TOTP secret \
                 instead of setting it)",
        ),
    ];
    for (fallback, want) in cases {
        let got = problems(&with(fallback));
        assert!(
            got.iter().any(|p| p == want),
            "{fallback}: want {want:?}, got {got:?}"
        );
    }
}

#[test]
fn extraction_cannot_shadow_a_variable_or_an_input() {
    assert_cases(&[
        (
            "shadows a profile variable",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token}\n        org: {pointer: /org}",
            "login.steps[0].extract.org: 'org' shadows the profile variable 'org'; extract it \
                 under another name",
        ),
        (
            "shadows the password",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token}\n        password: {pointer: /pw}",
            "login.steps[0].extract.password: 'password' shadows the input 'password'; an \
                 input cannot be extracted",
        ),
        (
            "shadows the code",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token}\n        totp: {pointer: /code}",
            "login.steps[0].extract.totp: 'totp' shadows the input 'totp'; an input cannot be \
                 extracted",
        ),
        (
            "shadows the recovery code",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token}\n        recovery_code: {pointer: /code}",
            "login.steps[0].extract.recovery_code: 'recovery_code' shadows the input \
                 'recovery_code'; an input cannot be extracted",
        ),
        (
            "shadows the TOTP secret input with text",
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token}\n        totp_secret: {pointer: /s}",
            "login.steps[0].extract.totp_secret.as: 'totp_secret' must be read as \
                 base32Secret or otpauthUri, not string (otherwise it shadows the TOTP secret \
                 instead of setting it)",
        ),
    ]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = format!("variables: {{org: acme}}\n{MINIMAL}").replacen(
        "access_token: {pointer: /token}",
        "access_token: {header: X Token, as: jwtExp}\n        \
             org: {value: \"{{ totp }}\"}",
        1,
    );
    let got = problems(&yaml);
    let want_starts = [
        "login.steps[0].extract.access_token.header: not a valid HTTP header name",
        "login.steps[0].extract.access_token.as: 'access_token' is a token",
        "login.steps[0].extract.org: 'org' shadows the profile variable 'org'",
        "login.steps[0].extract.org.value: extraction templates may use only values",
    ];
    for want in want_starts {
        assert!(
            got.iter().any(|p| p.starts_with(want)),
            "want {want:?} in {got:?}"
        );
    }
    assert_eq!(got.len(), want_starts.len(), "{got:?}");
    // Names and kinds only: no value from the profile is echoed.
    assert!(got.iter().all(|p| !p.contains("acme")), "{got:?}");
}

#[test]
fn legitimate_extractions_still_load() {
    let yaml = format!("variables: {{org: acme}}\n{MINIMAL}").replacen(
        "access_token: {pointer: /token}",
        "access_token: {header: X-Auth-Token}\n        \
                 refresh_token: {pointer: /rt, optional: true}\n        \
                 expires_at: {value: \"600\", as: expiresIn}\n        \
                 refresh_expires_at: {pointer: /rt, as: jwtExp, optional: true}\n        \
                 reenroll_required: {pointer: /reenroll, optional: true}\n        \
                 issued: {pointer: /iat, as: epochSeconds}\n        \
                 tenant: {value: \"{{ org }}-{{ username }}-{{ totp_secret }}\"}",
        1,
    ) + "recoveryLogin:\n  steps:\n    - method: POST\n      path: /recover\n      \
               body: {code: \"{{ recovery_code }}\"}\n      extract:\n        \
               access_token: {pointer: /token}\n        \
               spent: {value: \"{{ recovery_code }}\"}\n";
    let p = Profile::from_yaml("test.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"));
    assert!(p.step_info(FlowKind::Login)[0].uses_totp());
    assert!(!p.step_info(FlowKind::RecoveryLogin)[0].uses_totp());
}
