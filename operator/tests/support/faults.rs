//! What the operator fault tests share: a vendor with several accounts,
//! credentials for them, waiting on the operator's log, and the one verdict
//! every fault test ends with: nothing lost, one enrollment, no lock-out.

use std::time::{Duration, Instant};

use otpilot_api::ApiCredential;
use otpilot_sim::{AccountSpec, AccountState, SimConfig, SimHandle, Vendor};
use otpilot_tests::TestNamespace;

use super::{
    API_KEY, Operator, PASSWORD, credential, install_crypto_provider, runtime_seed, try_login,
};

/// A simulated vendor with one account per name in `usernames`.
pub async fn vendor_with_accounts(
    vendor: Vendor,
    period: Duration,
    usernames: &[String],
) -> SimHandle {
    install_crypto_provider();
    let mut config = SimConfig::new(vendor).with_period(period);
    for username in usernames {
        config = config.with_account(AccountSpec::new(username, PASSWORD, API_KEY));
    }
    otpilot_sim::spawn(config).await.expect("simulator starts")
}

/// The usual ApiCredential, for `username` and a TOTP step of `period_secs`.
pub fn credential_for(
    name: &str,
    profile: &str,
    base_url: &str,
    username: &str,
    period_secs: u32,
) -> ApiCredential {
    let mut c = credential(name, profile, base_url, "Retain");
    c.spec.username = username.to_owned();
    c.spec.totp.get_or_insert_default().period = Some(period_secs);
    c
}

/// Waits until the operator's log holds `needle`.
pub async fn wait_for_log(operator: &Operator, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !operator.log_text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "`{needle}` not in the operator log within {timeout:?}:\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The log line a failpoint writes.
pub fn failpoint_line(point: &str) -> String {
    format!("\"failpoint\":\"{point}\"")
}

/// The vendor's view of `username`.
pub async fn vendor_account(sim: &SimHandle, username: &str) -> AccountState {
    sim.admin()
        .expect("admin")
        .account(username)
        .await
        .expect("account")
}

/// The verdict: the vendor turned MFA on exactly once, with the seed the
/// runtime Secret holds; it refused no code and locked nothing; the status
/// counts the recovery codes the vendor still holds; and a login with the
/// Secrets' contents works.
pub async fn assert_one_clean_enrollment(
    ns: &TestNamespace,
    sim: &SimHandle,
    name: &str,
    username: &str,
    ready: &ApiCredential,
) {
    let account = vendor_account(sim, username).await;
    let counts = format!(
        "{name}: enrollments started {}, confirmed {}, codes accepted {}, refused {}, lock-outs {}",
        account.enrollments_started,
        account.enrollments_confirmed,
        account.accepted_codes,
        account.refused_codes,
        account.lockouts
    );
    println!("{counts}");
    assert!(account.enrolled, "{counts}");
    assert_eq!(account.enrollments_confirmed, 1, "one enrollment: {counts}");
    assert_eq!(account.refused_codes, 0, "no code refused: {counts}");
    assert_eq!(account.lockouts, 0, "no lock-out: {counts}");
    assert_eq!(account.locked_until_unix_ms, None, "{counts}");
    let seed = runtime_seed(ns, name).await;
    assert_eq!(
        account.totp_secret_base32.as_deref(),
        Some(seed.as_str()),
        "{name}: the vendor verifies with the seed the runtime Secret holds"
    );
    assert!(account.recovery_codes_left > 0, "{counts}");
    assert_eq!(
        ready
            .status
            .as_ref()
            .and_then(|s| s.recovery_codes_remaining),
        Some(u32::try_from(account.recovery_codes_left).expect("small")),
        "{name}: the recovery codes are all kept"
    );
    try_login(ns, name, None)
        .await
        .unwrap_or_else(|e| panic!("{name}: login with the Secrets' contents failed: {e}"));
}
