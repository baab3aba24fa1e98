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
    // Where pods share a session, the sidecar holding it is named in the
    // session Lease (`docs/shared-session.md`); this one is made by hand.
    let lease: k8s_openapi::api::coordination::v1::Lease =
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "bot-session", "labels": { "otpilot.dev/credential": "bot" } },
            "spec": { "holderIdentity": "web-7d9f8-x2x4q", "leaseDurationSeconds": 10 },
        }))
        .expect("Lease");
    ns.api::<k8s_openapi::api::coordination::v1::Lease>()
        .create(&kube::api::PostParams::default(), &lease)
        .await
        .expect("create Lease");

    let run = kubectl_otpilot(&ns, &["status", "bot"]).await;
    run.assert_ok();
    let text = &run.stdout;
    assert!(!text.contains("NOT READY"), "{text}");
    assert!(
        text.contains("held by pod web-7d9f8-x2x4q (Lease bot-session)"),
        "{text}"
    );
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
#[tokio::test(flavor = "multi_thread")]
async fn renew_issues_a_new_client_certificate() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("cli-renew").await.expect("namespace");
    install_crypto_provider();
    let sim = otpilot_sim::spawn(
        otpilot_sim::SimConfig::new(Vendor::Audd)
            .with_period(std::time::Duration::from_secs(PERIOD_SECS))
            .with_account(otpilot_sim::AccountSpec::new(USERNAME, PASSWORD, API_KEY)),
    )
    .await
    .expect("simulator starts");
    create_login_secret(&ns).await;
    create_server_ca(&ns, &sim).await;
    let operator = Operator::start(ns.name()).await;
    let ca = create_client_ca(&cluster, &ns, &operator).await;
    let ca_name = ca.metadata.name.clone().expect("name");
    let ca_pem = ca
        .status
        .and_then(|s| s.certificate)
        .expect("CA certificate");
    sim.admin()
        .expect("admin")
        .register_client_ca(&ca_pem)
        .await
        .expect("register the ClientCA with the vendor");
    create_credential(&ns, "bot", "audd", &sim, Some(&ca_name)).await;
    wait_for_ready(&ns, "bot", &operator).await;
    let before = otpilot_pki::certificate_info(&runtime_entry(&ns, "bot", "tls.crt").await)
        .expect("certificate")
        .serial;

    let run = kubectl_otpilot(&ns, &["renew", "bot", "--timeout", "90"]).await;
    run.assert_ok();
    let after = otpilot_pki::certificate_info(&runtime_entry(&ns, "bot", "tls.crt").await)
        .expect("certificate")
        .serial;
    assert_ne!(before, after, "a new certificate was issued");
    assert!(
        run.stdout
            .contains(&format!("Certificate serial: {after} (was {before})")),
        "{}",
        run.stdout
    );
    let credential = ns.api::<ApiCredential>().get("bot").await.expect("get");
    let annotation = credential
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(otpilot_api::labels::RENEW_CERTIFICATE_ANNOTATION))
        .cloned();
    assert_eq!(
        credential.status.and_then(|s| s.handled_renew_request),
        annotation,
        "the operator recorded the request it honoured"
    );
    let values = secret_values(&ns, "bot").await;
    assert_no_secrets(&run.all(), &values, "renew output");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reenroll_turns_mfa_over_to_a_new_seed() {
    let (_cluster, ns, sim, _operator) =
        ready_credential(Vendor::Cryptr, "cryptr", "cli-reenroll").await;
    let old_seed = runtime_entry(&ns, "bot", "totp-secret").await;

    // Without --yes and with no one to answer, nothing changes.
    let refused = kubectl_otpilot(&ns, &["reenroll", "bot"]).await;
    assert_eq!(refused.code, Some(1), "{}", refused.all());
    assert!(
        refused.stderr.contains("not confirmed"),
        "{}",
        refused.stderr
    );
    let credential = ns.api::<ApiCredential>().get("bot").await.expect("get");
    assert!(
        !credential
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(otpilot_api::labels::REENROLL_ANNOTATION),
        "no request without confirmation"
    );

    let run = kubectl_otpilot(&ns, &["reenroll", "bot", "--yes", "--timeout", "90"]).await;
    run.assert_ok();
    assert!(
        run.stdout.contains("Enrollment:         Enrolled"),
        "{}",
        run.stdout
    );
    let new_seed = runtime_entry(&ns, "bot", "totp-secret").await;
    assert_ne!(old_seed, new_seed, "a new seed is stored");
    let account = sim
        .admin()
        .expect("admin")
        .account(USERNAME)
        .await
        .expect("account");
    assert_eq!(
        account.totp_secret_base32.as_deref().map(normalise),
        Some(normalise(&new_seed)),
        "the vendor verifies codes with the new seed"
    );
    assert!(
        login_with_seed(&sim, &old_seed).await.is_err(),
        "the old seed is refused"
    );
    login_with_seed(&sim, &new_seed)
        .await
        .expect("the new seed is accepted");

    let mut values = secret_values(&ns, "bot").await;
    values.push(old_seed);
    assert_no_secrets(&run.all(), &values, "reenroll output");
    sim.shutdown().await;
}

fn normalise(seed: &str) -> String {
    seed.trim_end_matches('=').to_uppercase()
}

/// A Cryptr login at the simulator with `seed`.
async fn login_with_seed(sim: &otpilot_sim::SimHandle, seed: &str) -> Result<(), String> {
    use otpilot_profile::{Engine, HttpSettings, Inputs, TotpKey, TotpParams, builtin};
    use secrecy::SecretString;
    let key = TotpKey::from_base32(
        seed,
        TotpParams {
            period: PERIOD_SECS,
            ..TotpParams::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let settings = HttpSettings {
        server_ca_pem: Some(sim.server_ca_pem().to_owned()),
        ..HttpSettings::default()
    };
    let engine = Engine::new(
        builtin::get("cryptr").expect("built in"),
        &sim.base_url(),
        settings,
    )
    .map_err(|e| e.to_string())?;
    let inputs = Inputs {
        username: Some(USERNAME.into()),
        password: Some(SecretString::from(PASSWORD)),
        api_key: Some(SecretString::from(API_KEY)),
        totp: Some(key),
        ..Inputs::default()
    };
    engine
        .login(&inputs)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn reenroll_says_so_when_the_vendor_cannot_reenroll() {
    // goaxr refuses a second enrollment and its profile has no disable flow.
    let (_cluster, ns, sim, _operator) =
        ready_credential(Vendor::Goaxr, "goaxr", "cli-reenroll-unsupported").await;
    let seed = runtime_entry(&ns, "bot", "totp-secret").await;
    let run = kubectl_otpilot(&ns, &["reenroll", "bot", "--yes", "--timeout", "90"]).await;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stdout
            .contains("The operator handled the re-enroll request."),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("did not carry out the request: ReenrollUnsupported"),
        "{}",
        run.stderr
    );
    assert_eq!(
        runtime_entry(&ns, "bot", "totp-secret").await,
        seed,
        "the seed is kept"
    );
    assert_no_secrets(
        &run.all(),
        &secret_values(&ns, "bot").await,
        "reenroll output",
    );
    sim.shutdown().await;
}
