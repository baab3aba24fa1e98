//! Cross-checks our TOTP codes against an independent implementation,
//! Python's `pyotp`, on random secrets, algorithms, digits, periods and
//! times.
//!
//! The interpreter comes from `OTPILOT_PYTHON` (the project's test script
//! provides a venv with pyotp). Without it this test FAILS, in CI and
//! locally alike: it never skips. To run it locally:
//! `python3 -m venv /tmp/otpvenv && /tmp/otpvenv/bin/pip install pyotp`
//! then `OTPILOT_PYTHON=/tmp/otpvenv/bin/python cargo test -p otpilot-profile`.

use std::io::Write;
use std::process::{Command, Stdio};

use otpilot_api::profile::TotpAlgorithm;
use otpilot_profile::{TotpKey, TotpParams};
use rand::Rng;
use secrecy::ExposeSecret;

const SCRIPT: &str = r#"
import hashlib, json, sys
import pyotp
out = []
for case in json.load(sys.stdin):
    totp = pyotp.TOTP(case["secret"], digits=case["digits"], interval=case["period"],
                      digest=getattr(hashlib, case["algorithm"]))
    out.append(totp.at(case["time"]))
json.dump(out, sys.stdout)
"#;

fn python() -> String {
    match std::env::var("OTPILOT_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let context = if std::env::var_os("CI").is_some() {
                "CI is set, so the test script must provide it"
            } else {
                "set it to a Python with pyotp, e.g. `python3 -m venv /tmp/otpvenv && \
                 /tmp/otpvenv/bin/pip install pyotp`, then OTPILOT_PYTHON=/tmp/otpvenv/bin/python"
            };
            panic!("OTPILOT_PYTHON is not set: the pyotp cross-check cannot run ({context})");
        }
    }
}

#[test]
fn codes_match_pyotp_on_random_secrets() {
    let python = python();
    let mut rng = rand::rng();
    let mut keys = Vec::new();
    let mut cases = Vec::new();
    for _ in 0..300 {
        // 14 to 64 bytes: vendor secrets shorter than 128 bits included
        // (AUDD's are 15); pyotp refuses fewer than 112 bits.
        let len = rng.random_range(14..=64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let (algorithm, name) = match rng.random_range(0..3) {
            0 => (TotpAlgorithm::Sha1, "sha1"),
            1 => (TotpAlgorithm::Sha256, "sha256"),
            _ => (TotpAlgorithm::Sha512, "sha512"),
        };
        let params = TotpParams {
            algorithm,
            digits: rng.random_range(6..=8),
            period: *[1u64, 2, 15, 30, 60, 90]
                .get(rng.random_range(0..6))
                .unwrap_or(&30),
        };
        let time: u64 = rng.random_range(0..4_000_000_000);
        let key = TotpKey::from_bytes(bytes, params).expect("key");
        cases.push(serde_json::json!({
            "secret": key.secret_base32().expose_secret(),
            "algorithm": name,
            "digits": params.digits,
            "period": params.period,
            "time": time,
        }));
        keys.push((key, time));
    }

    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run OTPILOT_PYTHON={python}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(&cases).expect("json").as_bytes())
        .expect("write cases");
    let output = child.wait_with_output().expect("python finishes");
    assert!(
        output.status.success(),
        "pyotp failed (is pyotp installed for {python}?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Vec<String> = serde_json::from_slice(&output.stdout).expect("pyotp output");
    assert_eq!(theirs.len(), keys.len());
    for ((key, time), their) in keys.iter().zip(&theirs) {
        assert_eq!(
            key.code_at(*time).expose_secret(),
            their,
            "{:?} at {time}",
            key.params()
        );
    }
}
