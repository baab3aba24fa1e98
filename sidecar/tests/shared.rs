//! Many replicas, one identity: sidecar PROCESSES with a real ServiceAccount
//! token share one vendor session through a Lease and the session Secret on
//! the real control plane, against a simulator that rejects code reuse.

mod common;
mod shared_session;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use k8s_openapi::api::core::v1::Event;
use otpilot_sim::Vendor;
use shared_session::*;

const REPLICAS: usize = 20;
const ACCESS: Duration = Duration::from_secs(8);
const REFRESH: Duration = Duration::from_secs(120);

async fn mode_of(sidecar: &Sidecar) -> Option<String> {
    let metrics = sidecar.metrics().await;
    metrics.lines().find_map(|l| {
        let rest = l.strip_prefix("otpilot_sidecar_session_mode{mode=\"")?;
        let (mode, value) = rest.split_once("\"} ")?;
        (value.trim() == "1").then(|| mode.to_owned())
    })
}

async fn holders(sidecars: &[Option<Sidecar>]) -> Vec<usize> {
    let mut found = Vec::new();
    for (i, s) in sidecars.iter().enumerate() {
        if let Some(s) = s
            && mode_of(s).await.as_deref() == Some("shared-holder")
        {
            found.push(i);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_replicas_share_one_login_and_hand_over_without_another() {
    let env = SessionNamespace::new("shared-session").await;
    let v = vendor(
        "conduit",
        Vendor::Conduit,
        VendorOptions {
            access: ACCESS,
            refresh: REFRESH,
            ..VendorOptions::default()
        },
    )
    .await;
    let enrolled = v.account().await;
    let mounts = Mounts::new(&v.bundle());
    let (kubeconfig, sa_token) = env.kubeconfig_for(SHARED_SA).await;
    let kubeconfig = kubeconfig.display().to_string();

    let mut sidecars: Vec<Option<Sidecar>> = (0..REPLICAS)
        .map(|i| {
            let mut args = mounts.args();
            args.extend(session_args(&format!("replica-{i}"), env.ns.name()));
            Some(Sidecar::spawn_with_env(
                &args,
                &[("KUBECONFIG", kubeconfig.as_str())],
            ))
        })
        .collect();

    // All ready, serving one token, after exactly one TOTP login.
    let mut tokens = BTreeSet::new();
    for s in sidecars.iter().flatten() {
        tokens.insert(s.wait_ready(Duration::from_secs(60)).await.token);
    }
    let after_start = v.account().await;
    assert_eq!(
        after_start.accepted_codes - enrolled.accepted_codes,
        1,
        "exactly one TOTP login for {REPLICAS} replicas; holder output:\n{}",
        sidecars[0]
            .as_ref()
            .map(Sidecar::output)
            .unwrap_or_default()
    );
    let holder = holders(&sidecars).await;
    assert_eq!(holder.len(), 1, "one holder: {holder:?}");
    let (_, readyz) = sidecars[(holder[0] + 1) % REPLICAS]
        .as_ref()
        .expect("follower")
        .status("/readyz")
        .await;
    assert!(readyz.contains("session mode: shared-follower"), "{readyz}");

    // The holder dies without a word (SIGKILL): another takes the Lease and
    // continues with the published refresh token, not a TOTP login.
    let killed = holder[0];
    drop(sidecars[killed].take());
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_holder = loop {
        let found = holders(&sidecars).await;
        if let [one] = found[..] {
            break one;
        }
        assert!(Instant::now() < deadline, "no new holder: {found:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_ne!(new_holder, killed);

    // Several cycles of short tokens: one refresh per cycle for all
    // replicas, no TOTP login, and every replica keeps serving.
    let before = v.account().await;
    let run_for = ACCESS * 3;
    let started = Instant::now();
    let mut refused = 0u32;
    while started.elapsed() < run_for {
        for s in sidecars.iter().flatten() {
            match s.token().await {
                Ok(t) => {
                    assert!(t.expires_at > SystemTime::now(), "served an expired token");
                    tokens.insert(t.token);
                }
                Err(_) => refused += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = v.account().await;
    let refreshes = after.refreshes - before.refreshes;
    // Renewed at half-life (8 s tokens, 60 s minimum lead): about 6 in 24 s
    // for everyone together; one per replica would be over a hundred.
    assert!(
        (2..=10).contains(&refreshes),
        "{refreshes} refreshes in {run_for:?} across {} replicas",
        REPLICAS - 1
    );
    assert_eq!(
        after.accepted_codes, after_start.accepted_codes,
        "no TOTP login after the first"
    );
    assert!(
        tokens.len() as u64 >= refreshes,
        "followers served the refreshed tokens ({} distinct)",
        tokens.len()
    );
    // Followers may miss a beat while the holder changes hands, never after.
    assert_eq!(
        refused,
        0,
        "a replica stopped serving; new holder output:\n{}",
        sidecars[new_holder]
            .as_ref()
            .map(Sidecar::output)
            .unwrap_or_default()
    );

    // The session never shows: not in any output or metric, not in Events.
    let mut secrets = v.secrets.clone();
    secrets.extend(tokens.iter().cloned());
    secrets.push(sa_token);
    for s in sidecars.iter().flatten() {
        s.assert_no_secret_leaked(&secrets).await;
    }
    let events = env
        .ns
        .api::<Event>()
        .list(&Default::default())
        .await
        .expect("events");
    let events = serde_json::to_string(&events).expect("json");
    for secret in &secrets {
        assert!(!events.contains(secret.as_str()), "a secret in an Event");
    }
}

#[tokio::test]
async fn a_replica_without_the_binding_logs_in_alone_and_says_why() {
    let env = SessionNamespace::new("shared-session-denied").await;
    let v = vendor("conduit", Vendor::Conduit, VendorOptions::default()).await;
    let enrolled = v.account().await;
    let mounts = Mounts::new(&v.bundle());
    let (kubeconfig, _) = env.kubeconfig_for("stranger").await;
    let mut args = mounts.args();
    args.extend(session_args("lonely", env.ns.name()));
    let sidecar = Sidecar::spawn_with_env(
        &args,
        &[("KUBECONFIG", kubeconfig.display().to_string().as_str())],
    );
    // It first waits 15 s for a grant that may be on its way.
    sidecar.wait_ready(Duration::from_secs(60)).await;
    let (_, readyz) = sidecar.status("/readyz").await;
    assert!(
        readyz.contains("session mode: standalone") && readyz.contains("may not use Lease"),
        "{readyz}"
    );
    assert_eq!(mode_of(&sidecar).await.as_deref(), Some("standalone"));
    assert!(
        sidecar
            .output()
            .contains("may not use Lease billing-session"),
        "the log says why:\n{}",
        sidecar.output()
    );
    assert_eq!(
        v.account().await.accepted_codes - enrolled.accepted_codes,
        1
    );
}

#[tokio::test]
async fn a_replica_whose_binding_arrives_a_few_seconds_late_shares_the_session() {
    use k8s_openapi::api::rbac::v1::RoleBinding;
    use kube::api::PostParams;
    use otpilot_api::session::{service_account_subject, session_role_name};

    let env = SessionNamespace::new("shared-session-late").await;
    let v = vendor("conduit", Vendor::Conduit, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let (kubeconfig, _) = env.kubeconfig_for("stranger").await;
    let mut args = mounts.args();
    args.extend(session_args("late", env.ns.name()));
    let sidecar = Sidecar::spawn_with_env(
        &args,
        &[("KUBECONFIG", kubeconfig.display().to_string().as_str())],
    );
    // The operator grants the Pod's ServiceAccount after the API server
    // stored the Pod: here, a few seconds after the sidecar started.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let bindings = env.ns.api::<RoleBinding>();
    let name = session_role_name(CREDENTIAL);
    let mut binding = bindings.get(&name).await.expect("RoleBinding");
    binding
        .subjects
        .get_or_insert_with(Vec::new)
        .push(service_account_subject(env.ns.name(), "stranger"));
    bindings
        .replace(&name, &PostParams::default(), &binding)
        .await
        .expect("bind the late ServiceAccount");

    sidecar.wait_ready(Duration::from_secs(60)).await;
    let mode = mode_of(&sidecar).await;
    assert!(
        matches!(mode.as_deref(), Some("shared-holder" | "shared-follower")),
        "{mode:?}; output:\n{}",
        sidecar.output()
    );
}

#[tokio::test]
async fn a_replica_with_no_kubernetes_identity_logs_in_alone() {
    let v = vendor("conduit", Vendor::Conduit, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let mut args = mounts.args();
    args.extend(session_args("nobody", "default"));
    let empty_home = tempfile::tempdir().expect("tempdir");
    let home = empty_home.path().display().to_string();
    let sidecar = Sidecar::spawn_with_env(
        &args,
        &[
            ("KUBECONFIG", "/nonexistent/kubeconfig"),
            ("HOME", home.as_str()),
            ("KUBERNETES_SERVICE_HOST", ""),
        ],
    );
    sidecar.wait_ready(Duration::from_secs(30)).await;
    let (_, readyz) = sidecar.status("/readyz").await;
    assert!(
        readyz.contains("session mode: standalone (no Kubernetes identity"),
        "{readyz}"
    );
}

#[tokio::test]
async fn the_service_account_may_use_its_session_and_read_no_other_secret() {
    let env = SessionNamespace::new("shared-session-rbac").await;
    let session = "billing-session";
    let cases = [
        ("get", "", "secrets", Some(session), true),
        ("watch", "", "secrets", Some(session), true),
        ("update", "", "secrets", Some(session), true),
        ("get", "coordination.k8s.io", "leases", Some(session), true),
        (
            "update",
            "coordination.k8s.io",
            "leases",
            Some(session),
            true,
        ),
        ("get", "", "secrets", Some("billing-runtime"), false),
        ("get", "", "secrets", Some("anything-else"), false),
        ("list", "", "secrets", None, false),
        ("watch", "", "secrets", None, false),
        ("create", "", "secrets", None, false),
        ("delete", "", "secrets", Some(session), false),
        ("get", "coordination.k8s.io", "leases", Some("other"), false),
        ("create", "coordination.k8s.io", "leases", None, false),
    ];
    for (verb, group, resource, name, allowed) in cases {
        assert_eq!(
            env.may(SHARED_SA, verb, group, resource, name).await,
            allowed,
            "{SHARED_SA} {verb} {resource}/{name:?}"
        );
        if allowed {
            assert!(
                !env.may("stranger", verb, group, resource, name).await,
                "stranger {verb} {resource}/{name:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_that_loses_the_lease_stops_refreshing_at_once() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use kube::api::PostParams;

    let access = Duration::from_secs(6);
    let env = SessionNamespace::new("shared-session-stolen").await;
    let v = vendor(
        "conduit",
        Vendor::Conduit,
        VendorOptions {
            access,
            refresh: REFRESH,
            ..VendorOptions::default()
        },
    )
    .await;
    let mounts = Mounts::new(&v.bundle());
    let (kubeconfig, _) = env.kubeconfig_for(SHARED_SA).await;
    let kubeconfig = kubeconfig.display().to_string();
    let sidecars: Vec<Option<Sidecar>> = (0..3)
        .map(|i| {
            let mut args = mounts.args();
            args.extend(session_args(&format!("replica-{i}"), env.ns.name()));
            Some(Sidecar::spawn_with_env(
                &args,
                &[("KUBECONFIG", kubeconfig.as_str())],
            ))
        })
        .collect();
    for s in sidecars.iter().flatten() {
        s.wait_ready(Duration::from_secs(30)).await;
    }
    let logins = v.account().await.accepted_codes;

    // Another replica takes the Lease (as one whose clock raced would): a
    // holder that proves its renewal with the session key.
    let leases = env.ns.api::<Lease>();
    let key = mounts.session_key.clone();
    let scope = format!("{}/{CREDENTIAL}", env.ns.name());
    let set_holder = |holder: Option<&str>| {
        let leases = leases.clone();
        let holder = holder.map(str::to_owned);
        let key = key.clone();
        let scope = scope.clone();
        async move {
            loop {
                let mut lease = leases.get("billing-session").await.expect("Lease");
                let now = k8s_openapi::jiff::Timestamp::from_microsecond(
                    k8s_openapi::jiff::Timestamp::now().as_microsecond(),
                )
                .expect("now");
                if let Some(holder) = &holder {
                    lease.metadata.annotations.get_or_insert_default().insert(
                        "otpilot.dev/holder-proof".to_owned(),
                        key.lease_proof(&scope, holder, now.as_microsecond(), 3600),
                    );
                }
                let spec = lease.spec.get_or_insert_with(Default::default);
                spec.holder_identity = holder.clone();
                spec.lease_duration_seconds = Some(3600);
                spec.renew_time = Some(MicroTime(now));
                match leases
                    .replace("billing-session", &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => return,
                    Err(kube::Error::Api(s)) if s.code == 409 => continue,
                    Err(e) => panic!("replace the Lease: {e}"),
                }
            }
        }
    };
    set_holder(Some("intruder")).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !holders(&sidecars).await.is_empty() {
        assert!(Instant::now() < deadline, "a replica still holds");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped = v.account().await;
    tokio::time::sleep(access * 2).await;
    let later = v.account().await;
    assert_eq!(
        (later.refreshes, later.accepted_codes),
        (stopped.refreshes, stopped.accepted_codes),
        "no replica refreshes or logs in without the Lease"
    );

    // Released: a replica takes over with the published refresh token.
    set_holder(None).await;
    for s in sidecars.iter().flatten() {
        s.wait_ready(Duration::from_secs(30)).await;
    }
    let after = v.account().await;
    assert_eq!(after.accepted_codes, logins, "no TOTP login to take over");
    assert!(
        after.refreshes > later.refreshes,
        "the new holder refreshed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_shut_down_releases_the_lease_so_another_takes_over_before_it_expires() {
    // A Lease of 60 s: a replica taking over well within it proves the
    // release, not the expiry.
    let env = SessionNamespace::new("shared-session-release").await;
    let v = vendor("conduit", Vendor::Conduit, VendorOptions::default()).await;
    let mounts = Mounts::new(&v.bundle());
    let (kubeconfig, _) = env.kubeconfig_for(SHARED_SA).await;
    let kubeconfig = kubeconfig.display().to_string();
    let mut sidecars: Vec<Option<Sidecar>> = (0..2)
        .map(|i| {
            let mut args = mounts.args();
            args.extend(session_args_with_lease(
                &format!("replica-{i}"),
                env.ns.name(),
                60,
            ));
            Some(Sidecar::spawn_with_env(
                &args,
                &[("KUBECONFIG", kubeconfig.as_str())],
            ))
        })
        .collect();
    for s in sidecars.iter().flatten() {
        s.wait_ready(Duration::from_secs(30)).await;
    }
    let holder = holders(&sidecars).await;
    assert_eq!(holder.len(), 1, "{holder:?}");
    let mut leaving = sidecars[holder[0]].take().expect("holder");
    leaving.sigterm();
    assert!(leaving.wait_exit(Duration::from_secs(15)).success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while holders(&sidecars).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the Lease was not released; the leaving holder said:\n{}",
            leaving.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
