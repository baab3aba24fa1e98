//! No error, and no `Debug` of the engine's types, shows a secret input
//! value: every failure mode is provoked against a local server that echoes
//! the whole request (credentials, code and all) back in its error body.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use otpilot_profile::{
    Engine, FlowError, FlowKind, HttpSettings, Inputs, Profile, RetryPolicy, TotpKey, TotpParams,
};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const USERNAME: &str = "leaky-user-31337";
const PASSWORD: &str = "pw-SECRET-7781-xyz";
const API_KEY: &str = "ak-SECRET-4412-xyz";
const TOTP_SECRET: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";
const RECOVERY_CODE: &str = "RC-SECRET-9931";
const CLIENT_SECRET: &str = "cs-SECRET-6620-xyz";

/// A server on 127.0.0.1 answering `/status/NNN[/retry-after/S]` with that
/// status and a JSON body holding the whole request it received.
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let request = String::from_utf8_lossy(&buf).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                let status: u16 = parts.get(1).and_then(|s| s.parse().ok()).unwrap_or(500);
                let retry_after = parts
                    .get(3)
                    .map(|s| format!("Retry-After: {s}\r\n"))
                    .unwrap_or_default();
                let body = serde_json::json!({"error": "echo", "request": request}).to_string();
                let response = format!(
                    "HTTP/1.1 {status} Echo\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{retry_after}Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// A profile whose login step sends every secret to `path`, with extra
/// YAML for the step.
fn profile(path: &str, extra: &str) -> Arc<Profile> {
    let yaml = format!(
        r#"
secretValues: [client_secret]
headers: {{clientsecret: "{{{{ client_secret }}}}"}}
enroll:
  steps:
    - method: GET
      path: {path}
      extract:
        totp_secret: {{pointer: /request, as: base32Secret}}
login:
  steps:
    - name: leaky
      method: POST
      path: {path}
      headers: {{Authorization: "Key {{{{ api_key }}}}", X-User: "{{{{ username }}}}"}}
      body: {{password: "{{{{ password }}}}", code: "{{{{ totp }}}}", secret: "{{{{ totp_secret }}}}", client: "{{{{ client_secret }}}}"}}
{extra}
      extract:
        access_token: {{pointer: /token}}
recoveryLogin:
  steps:
    - method: POST
      path: {path}
      body: {{code: "{{{{ recovery_code }}}}", n: "{{{{ password + 1 }}}}"}}
      extract:
        access_token: {{pointer: /token}}
"#
    );
    Arc::new(Profile::from_yaml("leak.yaml", &yaml).unwrap_or_else(|e| panic!("{e}")))
}

fn inputs() -> Inputs {
    let params = TotpParams {
        period: 1,
        ..TotpParams::default()
    };
    Inputs {
        username: Some(USERNAME.into()),
        password: Some(SecretString::from(PASSWORD)),
        api_key: Some(SecretString::from(API_KEY)),
        totp: Some(TotpKey::from_base32(TOTP_SECRET, params).expect("key")),
        totp_params: Some(params),
        variables: BTreeMap::new(),
        secret_values: BTreeMap::from([(
            "client_secret".to_owned(),
            SecretString::from(CLIENT_SECRET),
        )]),
        ..Inputs::default()
    }
}

fn engine(base: &str, profile: Arc<Profile>) -> Engine {
    let settings = HttpSettings {
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        retry: RetryPolicy {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        allow_plain_http: true,
        ..HttpSettings::default()
    };
    Engine::new(profile, base, settings).expect("engine")
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(USERNAME),
        "{what} leaks the username: {text}"
    );
    assert_no_secret(what, text);
}

// The username is an identifier, not a secret: `Debug` of the inputs may
// show it (useful in logs); errors do not.
fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, API_KEY, TOTP_SECRET, RECOVERY_CODE, CLIENT_SECRET] {
        assert!(!text.contains(secret), "{what} leaks {secret}: {text}");
    }
    // The lower-case secret too, and any 6-digit code of it is short-lived
    // but secret: codes are scrubbed as well.
    assert!(
        !text.contains(&TOTP_SECRET.to_lowercase()),
        "{what}: {text}"
    );
}

fn check(what: &str, err: &FlowError) {
    assert_clean(what, &err.to_string());
    assert_clean(what, &format!("{err:?}"));
    assert_clean(what, &format!("{:?}", err.kind));
}

#[tokio::test]
async fn no_error_or_debug_output_contains_a_secret() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = echo_server().await;
    let i = inputs();
    let mut kinds = Vec::new();

    let cases: Vec<(&str, &str, &str)> = vec![
        ("vendor error echoing the request", "/status/400", ""),
        ("success without the token", "/status/200", ""),
        (
            "code rejected",
            "/status/421",
            "      responses: [{status: [421], outcome: codeRejected}]",
        ),
        (
            "code already used, every time",
            "/status/409",
            "      responses: [{status: [409], outcome: codeAlreadyUsed}]",
        ),
        (
            "TOTP header refused",
            "/status/424",
            "      responses: [{status: [424], outcome: retryWithTotpHeader}]",
        ),
        ("locked out for an hour", "/status/429/retry-after/3600", ""),
        (
            "locked out with a rule",
            "/status/403",
            "      responses: [{status: [403], outcome: lockedOut}]",
        ),
        ("gateway errors until retries run out", "/status/502", ""),
        (
            "failure explained by the profile",
            "/status/418",
            "      responses: [{status: [418], outcome: fail, message: teapot}]",
        ),
        (
            "unknown outcome of a step not safe to repeat",
            "/status/500",
            "      safeToRepeat: false",
        ),
    ];
    for (what, path, extra) in cases {
        let e = engine(&base, profile(path, extra));
        let err = e.login(&i).await.expect_err(what);
        check(what, &err);
        kinds.push(err.category());
    }

    // Unreachable vendor.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let e = engine(&format!("http://{closed}"), profile("/status/200", ""));
    let err = e.login(&i).await.expect_err("unreachable");
    check("unreachable", &err);
    kinds.push(err.category());

    let e = engine(&base, profile("/status/200", ""));
    // A missing input.
    let no_password = Inputs {
        password: None,
        ..i.clone()
    };
    let err = e.login(&no_password).await.expect_err("missing password");
    check("missing input", &err);
    assert!(err.to_string().contains("'password'"), "{err}");
    // A template that fails at run time on a secret value.
    let err = e
        .recovery_login(&i, &SecretString::from(RECOVERY_CODE))
        .await
        .expect_err("render error");
    check("render error", &err);
    // A "secret" that is not base32 (the echoed request).
    let err = e
        .enroll(&Inputs {
            totp: None,
            ..i.clone()
        })
        .await
        .expect_err("not base32");
    check("extract error", &err);
    // A flow the profile lacks.
    let err = e.disable(&i).await.expect_err("no disable flow");
    check("no flow", &err);
    assert_eq!(err.flow, FlowKind::Disable);

    for category in [
        "VendorError",
        "UnexpectedResponse",
        "CodeRejected",
        "CodeAlreadyUsed",
        "LockedOut",
        "VendorUnreachable",
        "OutcomeUnknown",
    ] {
        assert!(
            kinds.contains(&category),
            "{category} not provoked: {kinds:?}"
        );
    }

    // Debug of every type holding secrets.
    assert_no_secret("Inputs", &format!("{i:?}"));
    assert_clean("Engine", &format!("{e:?}"));
}

/// A checkpoint taken after a step that sent a code and extracted a value
/// holding every secret (the echoed request) shows none of them, nor the
/// code, in its `Debug`.
#[tokio::test]
async fn a_checkpoint_after_a_step_shows_no_secret_and_no_code() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = echo_server().await;
    let yaml = r#"
enroll:
  steps:
    - method: GET
      path: /status/200
      extract:
        totp_secret: {pointer: /request, as: base32Secret}
login:
  steps:
    - name: echo
      method: POST
      path: /status/200
      headers: {Authorization: "Key {{ api_key }}"}
      body: {password: "{{ password }}", code: "{{ totp }}", secret: "{{ totp_secret }}"}
      extract:
        echoed: {pointer: /request}
    - method: POST
      path: /status/200
      extract:
        access_token: {pointer: /request}
"#;
    let profile = Arc::new(Profile::from_yaml("echo.yaml", yaml).expect("loads"));
    let e = engine(&base, profile);
    let i = inputs();
    let mut run = e.start(FlowKind::Login, &i).expect("start");
    run.step().await.expect("the echo step succeeds");
    let checkpoint = run.checkpoint();
    let step = checkpoint.last_code_step.expect("a code was sent");
    let code = i.totp.as_ref().expect("key").code_for_step(step);
    assert!(
        checkpoint.values.contains_key("echoed"),
        "the step extracted the echoed request"
    );
    for (what, text) in [
        ("Checkpoint", format!("{checkpoint:?}")),
        ("FlowRun", format!("{run:?}")),
    ] {
        assert_clean(what, &text);
        assert!(
            !text.contains(secrecy::ExposeSecret::expose_secret(&code)),
            "{what} leaks the code: {text}"
        );
    }
}

#[tokio::test]
async fn vendor_error_shows_its_error_fields_but_not_the_echoed_request() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = echo_server().await;
    let e = engine(&base, profile("/status/400", ""));
    let err = e.login(&inputs()).await.expect_err("400");
    let text = err.to_string();
    assert!(
        text.contains("HTTP 400") && text.contains("error: echo"),
        "{text}"
    );
    assert!(
        !text.contains("request"),
        "the echoed request is left out: {text}"
    );
    assert_no_secret("vendor error", &text);
    assert_no_secret("vendor error (Debug)", &format!("{err:?}"));
}
