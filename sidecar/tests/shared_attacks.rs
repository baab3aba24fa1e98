//! What an app container can do with the Pod's ServiceAccount (the session
//! Role: read and update the session Secret and Lease) against the shared
//! session, tried as an attacker would against sidecar PROCESSES on the
//! real control plane and a simulated vendor.

mod common;
mod shared_session;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::PostParams;
use otpilot_api::session::SessionRecord;
use otpilot_profile::Session;
use otpilot_sim::Vendor;
use secrecy::SecretString;
use shared_session::*;

/// A client with only what an app container of the Pod has: the
/// ServiceAccount token bound to the session Role.
async fn app_client(kubeconfig: &std::path::Path, namespace: &str) -> (Api<Secret>, Api<Lease>) {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    (
        Api::namespaced(client.clone(), namespace),
        Api::namespaced(client, namespace),
    )
}

async fn session_data(secrets: &Api<Secret>) -> BTreeMap<String, Vec<u8>> {
    secrets
        .get("billing-session")
        .await
        .expect("the app may read the session Secret")
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_container_reads_only_ciphertext_and_gets_no_token_the_vendor_accepts() {
    let env = SessionNamespace::new("session-sealed").await;
    let v = vendor(
        "conduit",
        Vendor::Conduit,
        VendorOptions {
            access: Duration::from_secs(120),
            refresh: Duration::from_secs(600),
            ..VendorOptions::default()
        },
    )
    .await;
    let mounts = Mounts::new(&v.bundle());
    let (kubeconfig, sa_token) = env.kubeconfig_for(SHARED_SA).await;
    let mut args = mounts.args();
    args.extend(session_args("replica-0", env.ns.name()));
    let sidecar = Sidecar::spawn_with_env(
        &args,
        &[("KUBECONFIG", kubeconfig.display().to_string().as_str())],
    );
    let served = sidecar.wait_ready(Duration::from_secs(60)).await;

    // The app container reads the session Secret once the holder published.
    let (secrets, _) = app_client(&kubeconfig, env.ns.name()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let data = loop {
        let data = session_data(&secrets).await;
        if data.len() > 1 {
            break data;
        }
        assert!(
            Instant::now() < deadline,
            "nothing published:\n{}",
            sidecar.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        !data.contains_key("refresh-token") && !data.contains_key("access-token"),
        "plaintext tokens in the session Secret: {:?}",
        data.keys().collect::<Vec<_>>()
    );
    for (key, value) in &data {
        assert!(
            !String::from_utf8_lossy(value).contains(&served.token),
            "the served token is readable under {key}"
        );
    }

    // Every value it can read, tried as a refresh token and as a session at
    // the vendor: none is accepted.
    let engine = engine_for(&v.sim, "conduit", None);
    let presentation = engine.profile().token_presentation().clone();
    let as_session = |value: SecretString| Session {
        access_token: value.clone(),
        refresh_token: Some(value),
        expires_at: SystemTime::now(),
        refresh_expires_at: None,
        reenroll_required: false,
        last_code_step: None,
        presentation: presentation.clone(),
    };
    for (key, value) in &data {
        let value = SecretString::from(String::from_utf8_lossy(value).into_owned());
        assert!(
            engine
                .refresh(&inputs(None), &as_session(value))
                .await
                .is_err(),
            "the vendor accepted {key} as a refresh token"
        );
    }

    // Control: the same attempt with what the sidecars' key opens works, so
    // the attempt above was a real one.
    let scope = format!("{}/{CREDENTIAL}", env.ns.name());
    let record = SessionRecord::open(&data, &mounts.session_key, &scope)
        .expect("opens with the sidecars' key")
        .expect("a session");
    let refresh = record.refresh_token.clone().expect("a refresh token");
    assert!(
        engine
            .refresh(&inputs(None), &as_session(refresh))
            .await
            .is_ok(),
        "the sealed refresh token is a live one"
    );
    sidecar
        .assert_no_secret_leaked(&[v.secrets.clone(), vec![served.token, sa_token]].concat())
        .await;
}

/// Writes the Lease as the app container can: any holder, any duration,
/// renewed now, no proof.
async fn forge_lease(leases: &Api<Lease>, holder: &str) {
    loop {
        let mut lease = leases.get("billing-session").await.expect("Lease");
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.holder_identity = Some(holder.to_owned());
        spec.lease_duration_seconds = Some(31_536_000);
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        match leases
            .replace("billing-session", &PostParams::default(), &lease)
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("the app may update the Lease: {e}"),
        }
    }
}

/// Writes the session Secret as the app container can: a plaintext
/// session in the layout older sidecars trusted, a code step a century
/// ahead, and a large padding value.
async fn forge_session(secrets: &Api<Secret>) {
    let far = (SystemTime::now() + Duration::from_secs(3_600 * 24 * 365))
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
        .to_string();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
        .to_string();
    let forged: BTreeMap<&str, Vec<u8>> = BTreeMap::from([
        ("layout-version", b"1".to_vec()),
        ("access-token", b"forged-by-the-app".to_vec()),
        ("token-type", b"Bearer".to_vec()),
        ("obtained-at-ms", now.into_bytes()),
        ("expires-at-ms", far.into_bytes()),
        ("last-code-step", b"999999999999".to_vec()),
        ("holder", b"evil".to_vec()),
    ]);
    loop {
        let mut secret = secrets.get("billing-session").await.expect("Secret");
        secret.data = Some(
            forged
                .iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.clone())))
                .collect(),
        );
        match secrets
            .replace("billing-session", &PostParams::default(), &secret)
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("the app may update the session Secret: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_holder_and_a_far_future_code_step_do_not_stop_a_replica_logging_in() {
    let env = SessionNamespace::new("session-forged").await;
    let v = vendor("conduit", Vendor::Conduit, VendorOptions::default()).await;
    let enrolled = v.account().await;
    let mounts = Mounts::new(&v.bundle());
    let (kubeconfig, _) = env.kubeconfig_for(SHARED_SA).await;
    let (secrets, leases) = app_client(&kubeconfig, env.ns.name()).await;

    // Before any sidecar starts, the app holds the Lease for a year and
    // publishes its own session.
    forge_lease(&leases, "evil").await;
    forge_session(&secrets).await;

    let mut args = mounts.args();
    args.extend(session_args("replica-0", env.ns.name()));
    let sidecar = Sidecar::spawn_with_env(
        &args,
        &[("KUBECONFIG", kubeconfig.display().to_string().as_str())],
    );
    let token = sidecar.wait_ready(Duration::from_secs(60)).await;
    assert_ne!(
        token.token, "forged-by-the-app",
        "served the app's forged session"
    );
    assert_eq!(
        v.account().await.accepted_codes - enrolled.accepted_codes,
        1,
        "the replica logged in with a TOTP code (the far-future step did not stop it):\n{}",
        sidecar.output()
    );
    let (_, readyz) = sidecar.status("/readyz").await;
    assert!(readyz.contains("session mode: shared-holder"), "{readyz}");

    // The app keeps forging; the replica keeps serving the vendor's token.
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        forge_lease(&leases, "evil").await;
        forge_session(&secrets).await;
        let served = sidecar.token().await.expect("still serving");
        assert_ne!(served.token, "forged-by-the-app");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A second replica joining now also gets the real session, not the forgery.
    let mut args = mounts.args();
    args.extend(session_args("replica-1", env.ns.name()));
    let second = Sidecar::spawn_with_env(
        &args,
        &[("KUBECONFIG", kubeconfig.display().to_string().as_str())],
    );
    let second_token = second.wait_ready(Duration::from_secs(60)).await;
    assert_ne!(second_token.token, "forged-by-the-app");
    assert!(
        !sidecar.output().contains("forged-by-the-app")
            && !second.output().contains("forged-by-the-app"),
        "a forged value reached a log"
    );
}
