//! Benchmark fixture: a simulated vendor (Conduit: no mTLS, `Bearer`, with
//! refresh) with one account enrolled by the engine, and the runtime
//! Secret and password file written under a directory, as the operator and
//! the kubelet would. Prints `BASE_URL=...` and `READY` once a fresh TOTP
//! step has begun, then runs until killed. Used by `bench/sidecar.sh`.
//!
//! `cargo run --release -p otpilot-sidecar --example bench_vendor -- /tmp/otpilot-bench`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otpilot_api::api_credential::EnrollmentState;
use otpilot_api::runtime_secret::{RuntimeBundle, StoredTotp, StoredTotpParams};
use otpilot_profile::{Engine, HttpSettings, Inputs, builtin};
use otpilot_sim::{AccountSpec, SimConfig, Vendor};
use secrecy::SecretString;

const USERNAME: &str = "bench@example.com";
const PASSWORD: &str = "bench password 1";
const API_KEY: &str = "bench-api-key-1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/otpilot-bench".into()),
    );
    let sim = otpilot_sim::spawn(
        SimConfig::new(Vendor::Conduit)
            .with_token_lifetimes(Duration::from_secs(3600), Duration::from_secs(7200))
            .with_account(AccountSpec::new(USERNAME, PASSWORD, API_KEY)),
    )
    .await?;
    let settings = HttpSettings {
        server_ca_pem: Some(sim.server_ca_pem().to_owned()),
        ..HttpSettings::default()
    };
    let profile = builtin::get("conduit").ok_or_else(|| anyhow::anyhow!("no conduit profile"))?;
    let engine = Engine::new(profile, &sim.base_url(), settings)?;
    let inputs = Inputs {
        username: Some(USERNAME.into()),
        password: Some(SecretString::from(PASSWORD)),
        api_key: Some(SecretString::from(API_KEY)),
        ..Inputs::default()
    };
    let enrollment = engine.enroll(&inputs).await?;
    let params = enrollment.totp.params();
    let yaml = builtin::SOURCES
        .iter()
        .find(|(n, _)| *n == "conduit")
        .map(|(_, y)| *y)
        .ok_or_else(|| anyhow::anyhow!("no conduit source"))?;
    let bundle = RuntimeBundle {
        enrollment_state: EnrollmentState::Enrolled,
        base_url: sim.base_url(),
        username: USERNAME.into(),
        profile_name: "conduit".into(),
        profile_yaml: yaml.into(),
        variables: BTreeMap::new(),
        totp: Some(StoredTotp {
            secret: enrollment.totp.secret_base32().clone(),
            params: StoredTotpParams {
                algorithm: params.algorithm,
                digits: params.digits,
                period: params.period,
            },
        }),
        last_code_step: enrollment.last_code_step,
        tls_crt: None,
        tls_key: None,
        server_ca: Some(sim.server_ca_pem().to_owned()),
    };
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&runtime)?;
    for (key, value) in bundle.to_data() {
        std::fs::write(runtime.join(key), value)?;
    }
    std::fs::write(dir.join("password"), PASSWORD)?;
    std::fs::write(dir.join("api-key"), API_KEY)?;
    println!("BASE_URL={}", sim.base_url());
    println!("ADMIN_URL={}", sim.admin_url());
    // Wait for a TOTP step after the enrollment's, so that start→ready
    // measures the sidecar, not the wait for a fresh code.
    let used = enrollment.last_code_step.unwrap_or(0);
    loop {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        if now / params.period > used && now % params.period < params.period / 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("READY");
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
