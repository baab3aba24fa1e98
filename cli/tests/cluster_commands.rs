//! The cluster commands against a real control plane, the operator as a
//! process and the simulator: `status` of a Ready and of a failing
//! credential, `ca export`, `renew` and `reenroll`. No secret appears in
//! any output.

mod support;

use otpilot_api::ApiCredential;
use otpilot_sim::Vendor;
use otpilot_tests::{TestCluster, TestNamespace};
use support::cluster::*;
use support::operator::Operator;
use support::*;

fn kubeconfig() -> String {
    std::env::var(otpilot_tests::cluster::KUBECONFIG_ENV).expect(
        "OTPILOT_TEST_KUBECONFIG is not set: run `eval \"$(scripts/control-plane.sh up)\"` first",
    )
}

/// `kubectl otpilot ARGS… -n NS --kubeconfig …`.
async fn kubectl_otpilot(ns: &TestNamespace, args: &[&str]) -> Run {
    let kubeconfig = kubeconfig();
    let mut all = args.to_vec();
    all.extend(["-n", ns.name(), "--kubeconfig", &kubeconfig]);
    cli(&all, &[]).await
}

/// The runtime Secret's seed and the user's password and key.
async fn secret_values(ns: &TestNamespace, credential: &str) -> Vec<String> {
    let mut values = vec![PASSWORD.to_owned(), API_KEY.to_owned()];
    for key in ["totp-secret", "tls.key"] {
        let value = runtime_entry(ns, credential, key).await;
        if !value.is_empty() {
            values.push(value);
        }
    }
    values
}

async fn ready_credential(
    vendor: Vendor,
    profile: &str,
    test: &str,
) -> (TestCluster, TestNamespace, otpilot_sim::SimHandle, Operator) {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace(test).await.expect("namespace");
    install_crypto_provider();
    let sim = otpilot_sim::spawn(
        otpilot_sim::SimConfig::new(vendor)
            .with_period(std::time::Duration::from_secs(PERIOD_SECS))
            .with_account(otpilot_sim::AccountSpec::new(USERNAME, PASSWORD, API_KEY)),
    )
    .await
    .expect("simulator starts");
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    create_credential(&ns, "bot", profile, &sim, None).await;
    wait_for_ready(&ns, "bot", &operator).await;
    (cluster, ns, sim, operator)
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_a_ready_credential() {
    let (_cluster, ns, sim, _operator) =
        ready_credential(Vendor::Goaxr, "goaxr", "cli-status-ready").await;
    let run = kubectl_otpilot(&ns, &["status", "bot"]).await;
    run.assert_ok();
    let text = &run.stdout;
    assert!(!text.contains("NOT READY"), "{text}");
    assert!(
        text.starts_with(&format!("ApiCredential {}/bot", ns.name())),
        "{text}"
    );
    for words in [
        "Ready             True",
        "Enrolled          True",
        "State:           Enrolled",
        "Runtime:         bot-runtime",
        "Recovery:        bot-recovery",
        "Recent Events:",
    ] {
        assert!(text.contains(words), "{words:?} in\n{text}");
    }

    let json = kubectl_otpilot(&ns, &["status", "bot", "-o", "json"]).await;
    json.assert_ok();
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(value["ready"], true);
    assert_eq!(value["status"]["enrollment"], "Enrolled");
    let yaml = kubectl_otpilot(&ns, &["status", "bot", "-o", "yaml"]).await;
    yaml.assert_ok();
    assert!(yaml.stdout.contains("ready: true"), "{}", yaml.stdout);

    let values = secret_values(&ns, "bot").await;
    assert_no_secrets(
        &format!("{}{}{}", run.all(), json.all(), yaml.all()),
        &values,
        "status output",
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_of_a_failing_credential_names_the_fix_first() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("cli-status-failing")
        .await
        .expect("namespace");
    install_crypto_provider();
    let sim = otpilot_sim::spawn(
        otpilot_sim::SimConfig::new(Vendor::Goaxr)
            .with_account(otpilot_sim::AccountSpec::new(USERNAME, PASSWORD, API_KEY)),
    )
    .await
    .expect("simulator starts");
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    // No login Secret: the operator cannot read the password.
    create_credential(&ns, "bot", "goaxr", &sim, None).await;
    wait_for(&ns, "bot", &operator, "Ready=False", |c: &ApiCredential| {
        condition_is(c, "Ready", "False")
    })
    .await;

    let run = kubectl_otpilot(&ns, &["status", "bot"]).await;
    run.assert_ok();
    let first = run.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("NOT READY: ")
            && first.contains("SecretNotFound")
            && first.contains("create the Secret"),
        "the first line names the fix: {first}\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(LOGIN_SECRET),
        "the message names the Secret:\n{}",
        run.stdout
    );

    let missing = kubectl_otpilot(&ns, &["status", "nobody"]).await;
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ca_export_prints_the_client_ca_of_the_status() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("cli-ca-export").await.expect("namespace");
    let operator = Operator::start(ns.name()).await;
    let ca = create_client_ca(&cluster, &ns, &operator).await;
    let name = ca.metadata.name.clone().expect("name");
    let status = ca.status.expect("status");

    let run = kubectl_otpilot(&ns, &["ca", "export", &name]).await;
    run.assert_ok();
    let pem = status.certificate.expect("certificate");
    assert_eq!(run.stdout.trim_end(), pem.trim_end(), "stdout is the PEM");
    let fingerprint = status.fingerprint_sha256.expect("fingerprint");
    assert!(
        run.stderr
            .contains(&format!("SHA-256 fingerprint: {fingerprint}")),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("PRIVATE KEY"));
}
