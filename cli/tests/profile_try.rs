//! `kubectl otpilot profile try` against the simulator over real HTTPS
//! (mTLS for AUDD): enroll → login → refresh → recovery login for every
//! built-in profile (where it has the flow),
//! an enrollment interrupted and resumed from the state file, and no secret
//! in any output unless `--show-secrets`.

mod support;

use support::*;

async fn enroll_login_refresh(profile: &str, vendor: otpilot_sim::Vendor) {
    let v = Vendored::start(vendor).await;
    let mut outputs = String::new();

    let enroll = v.try_flow(profile, "enroll", &[]).await;
    enroll.assert_ok();
    assert!(
        enroll.stdout.contains("[1/"),
        "{profile}: steps printed\n{}",
        enroll.stdout
    );
    assert!(
        enroll.stdout.contains("Enrolled: TOTP secret"),
        "{}",
        enroll.stdout
    );
    outputs.push_str(&enroll.all());
    let account = v
        .sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert!(account.enrolled, "{profile}: the vendor shows MFA on");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(v.state())
            .expect("state")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the state file is private");
    }

    let login = v.try_flow(profile, "login", &[]).await;
    login.assert_ok();
    assert!(
        login.stdout.contains("Logged in: access token"),
        "{}",
        login.stdout
    );
    outputs.push_str(&login.all());

    let refresh = v.try_flow(profile, "refresh", &[]).await;
    outputs.push_str(&refresh.all());
    if matches!(profile, "audd" | "conduit") {
        refresh.assert_ok();
        assert!(
            refresh.stdout.contains("Refreshed: access token"),
            "{}",
            refresh.stdout
        );
    } else {
        assert_eq!(refresh.code, Some(1), "{profile} has no refresh flow");
        assert!(
            refresh.stderr.contains("the profile has no such flow"),
            "{}",
            refresh.stderr
        );
    }

    let values = v.secret_values();
    assert!(
        values.len() >= 4,
        "{profile}: seed and token are scanned for"
    );
    assert_no_secrets(&outputs, &values, "profile try output");

    // Asked for, the token is shown (so the scan above would see a leak).
    let shown = v.try_flow(profile, "login", &["--show-secrets"]).await;
    shown.assert_ok();
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(v.state()).expect("state")).expect("json");
    let access = state["session"]["accessToken"].as_str().expect("token");
    assert!(
        shown.stdout.contains(access),
        "--show-secrets shows the token"
    );

    if profile != "acreto" {
        let codes = state["recoveryCodes"].as_array().map_or(0, Vec::len);
        let recovery = v.try_flow(profile, "recovery-login", &[]).await;
        recovery.assert_ok();
        assert!(
            recovery
                .stdout
                .contains(&format!("Used one recovery code; {} left", codes - 1)),
            "{}",
            recovery.stdout
        );
        let left = v
            .sim
            .admin()
            .expect("admin")
            .account(USERNAME)
            .await
            .expect("account");
        assert_eq!(
            left.recovery_codes_left,
            codes - 1,
            "the vendor took the code"
        );
        assert_no_secrets(&recovery.all(), &values, "recovery-login output");
    }
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audd_enroll_login_refresh() {
    enroll_login_refresh("audd", otpilot_sim::Vendor::Audd).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn goaxr_enroll_login_refresh() {
    enroll_login_refresh("goaxr", otpilot_sim::Vendor::Goaxr).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conduit_enroll_login_refresh() {
    enroll_login_refresh("conduit", otpilot_sim::Vendor::Conduit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acreto_enroll_login_refresh() {
    enroll_login_refresh("acreto", otpilot_sim::Vendor::Acreto).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cryptr_enroll_login_refresh() {
    enroll_login_refresh("cryptr", otpilot_sim::Vendor::Cryptr).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_enrollment_resumes_from_the_state_file() {
    let v = Vendored::start(otpilot_sim::Vendor::Conduit).await;
    let first = v.try_flow("conduit", "enroll", &["--max-steps", "2"]).await;
    first.assert_ok();
    assert!(
        first.stdout.contains("Stopped after 2 step(s)"),
        "{}",
        first.stdout
    );
    let state = std::fs::read_to_string(v.state()).expect("state");
    assert!(
        state.contains("interruptedEnroll"),
        "the checkpoint is kept"
    );
    let account = v
        .sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert!(!account.enrolled, "not enrolled yet");

    let second = v.try_flow("conduit", "enroll", &[]).await;
    second.assert_ok();
    assert!(
        second
            .stdout
            .contains("Resuming the interrupted enrollment at step 3"),
        "{}",
        second.stdout
    );
    assert!(
        !second.stdout.contains("[1/"),
        "steps already done are not run again\n{}",
        second.stdout
    );
    let account = v
        .sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert!(account.enrolled, "enrolled after the resume");
    let state = std::fs::read_to_string(v.state()).expect("state");
    assert!(
        !state.contains("interruptedEnroll"),
        "the checkpoint is gone once enrolled"
    );

    v.try_flow("conduit", "login", &[]).await.assert_ok();
    let values = v.secret_values();
    assert_no_secrets(
        &format!("{}{}", first.all(), second.all()),
        &values,
        "output",
    );
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vendor_secret_value_is_sent_from_its_file_and_never_shown() {
    const CLIENT_SECRET: &str = "cli-conduit-client-secret-7f3a";
    let v = Vendored::start_with(otpilot_sim::Vendor::Conduit, |config| {
        config.with_client_credentials("otpilot-cli", CLIENT_SECRET)
    })
    .await;
    std::fs::write(v.path("client-secret"), format!("{CLIENT_SECRET}\n")).expect("file");
    let secret_value = format!("client_secret={}", path_str(&v.path("client-secret")));
    let client = [
        "--var",
        "client_id=otpilot-cli",
        "--secret-value",
        &secret_value,
    ];
    let mut values = vec![CLIENT_SECRET.to_owned()];

    // Without the client secret the vendor refuses the application.
    let refused = v
        .try_flow("conduit", "enroll", &["--var", "client_id=otpilot-cli"])
        .await;
    assert_eq!(refused.code, Some(1), "{}", refused.all());

    let enroll = v.try_flow("conduit", "enroll", &client).await;
    enroll.assert_ok();
    let login = v.try_flow("conduit", "login", &client).await;
    login.assert_ok();
    assert!(
        login.stdout.contains("Logged in: access token"),
        "{}",
        login.stdout
    );

    // A name the profile does not declare is refused before any call.
    let unknown = format!("client_token={}", path_str(&v.path("client-secret")));
    let typo = v
        .try_flow("conduit", "login", &["--secret-value", &unknown])
        .await;
    assert_eq!(typo.code, Some(1), "{}", typo.all());
    assert!(
        typo.stderr
            .contains("no secret value named 'client_token' (it uses client_secret)"),
        "{}",
        typo.stderr
    );

    values.extend(v.secret_values());
    for run in [&refused, &enroll, &login, &typo] {
        assert_no_secrets(&run.all(), &values, "output");
    }
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn login_without_an_enrollment_says_what_to_do() {
    let v = Vendored::start(otpilot_sim::Vendor::Goaxr).await;
    let run = v.try_flow("goaxr", "login", &[]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("no TOTP secret is known: enroll first"),
        "{}",
        run.stderr
    );
    assert_no_secrets(&run.all(), &v.secret_values(), "output");
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enrollment_killed_part_way_resumes_from_the_state_file() {
    let v = Vendored::start(otpilot_sim::Vendor::Conduit).await;
    let admin = v.sim.admin().expect("admin");
    // Slow answers, so that the process is killed in the middle of the flow.
    admin
        .set_faults(&otpilot_sim::Faults {
            latency_ms: 700,
            ..otpilot_sim::Faults::default()
        })
        .await
        .expect("set faults");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-otpilot"))
        .args(v.try_args("conduit", "enroll", &[]))
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn kubectl-otpilot");
    // Killed once the first step's checkpoint is on disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(v.state()).is_ok_and(|s| s.contains("interruptedEnroll")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint in the state file"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the enrollment ended before it was killed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().await.expect("kill");
    let killed = Run::from(child.wait_with_output().await.expect("output"));
    admin.clear_faults().await.expect("clear faults");

    let resumed = v.try_flow("conduit", "enroll", &[]).await;
    resumed.assert_ok();
    assert!(
        resumed
            .stdout
            .contains("Resuming the interrupted enrollment at step"),
        "{}",
        resumed.stdout
    );
    let account = admin.account(USERNAME).await.expect("account");
    assert!(account.enrolled, "enrolled after the resume");
    v.try_flow("conduit", "login", &[]).await.assert_ok();
    assert_no_secrets(
        &format!("{}{}", killed.all(), resumed.all()),
        &v.secret_values(),
        "output",
    );
    v.sim.shutdown().await;
}
