//! The new-seed case: a person asks for re-enrollment (`otpilot.dev/reenroll`), and the
//! running sidecar's log shows it reloading its inputs and then logging in (with a TOTP code
//! of the seed the vendor now verifies with).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use otpilot_api::ApiCredential;
use otpilot_api::labels::REENROLL_ANNOTATION;
use otpilot_sim::Vendor;
use otpilot_tests::TestNamespace;
use otpilot_tests::node::{container, container_log, describe_pod, events, pods_of, wait_for_pod};
use serde_json::json;

use super::seeds::{runtime_seed, vendor_seed};
use super::workloads::{SIDECAR, all_ready, calls, injected_deployment, the_answered_calls};
use super::{CREDENTIAL, LONG_LIVED, Setup, USERNAME, assert_no_secrets, world_with};

/// The case: a Deployment runs, a person asks for a new seed, the running sidecar takes it.
pub async fn case() {
    // Cryptr re-enrolls in place (its enroll flow replaces the active secret). 60 s access
    // tokens: the sidecar logs in again (a client token and a TOTP code) every ~30 s, and the
    // token it holds outlives the kubelet's update of the Secret volume (sync every 10 s).
    let setup = Setup {
        vendor: Vendor::Cryptr,
        access_token_lifetime: Some(Duration::from_secs(60)),
        ..Setup::audd(LONG_LIVED)
    };
    let world = world_with("new-seed", setup).await;
    let old_seed = runtime_seed(&world.ns).await.expect("an enrolled seed");
    assert_eq!(vendor_seed(&world.sim).await, Some(old_seed.clone()));
    let user_id = world
        .sim
        .admin()
        .expect("admin client")
        .account(USERNAME)
        .await
        .expect("the account")
        .id;
    let deployment = injected_deployment(
        "reseeded",
        1,
        &format!("/api/v2/org/default/users/{user_id}"),
    );
    world
        .ns
        .api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create the Deployment");
    let name = pods_of(&world.ns, "reseeded", 1)
        .await
        .remove(0)
        .metadata
        .name
        .unwrap_or_default();
    let pod = wait_for_pod(
        &world.ns,
        &name,
        "Running and Ready",
        Duration::from_secs(180),
        all_ready,
    )
    .await;
    println!("{}", describe_pod(&pod));
    let first = the_answered_calls(&world, &name, 0).await[0];
    println!("  app -> sidecar proxy -> Cryptr answered at {first}; asking for a new seed");

    let handled = request_reenrollment(&world.ns, "node-e2e-new-seed").await;
    let new_seed = runtime_seed(&world.ns).await.expect("a seed");
    assert_ne!(new_seed, old_seed, "the runtime Secret holds a new seed");
    // The vendor verifies codes with the new seed alone: the old one's codes are refused.
    assert_eq!(vendor_seed(&world.sim).await, Some(new_seed));
    println!("  runtime Secret: new seed (digests differ); the vendor verifies with it alone");
    println!(
        "  credential events:\n    {}",
        events(&world.ns, CREDENTIAL).await.join("\n    ")
    );

    // After the request, the running sidecar reloaded the Secret and logged in: with a code
    // of the new seed, the only one the vendor accepts by then.
    let (reloaded, logged_in) = wait_for_login_after_reload(&world.ns, &name, handled).await;
    println!("  sidecar: inputs reloaded at {reloaded}, logged in at {logged_in}");
    let after_login = the_answered_calls(&world, &name, logged_in.as_second()).await;
    let log = container_log(&world.ns, &name, "app").await;
    let failed: Vec<i64> = calls(&log)
        .into_iter()
        .filter(|(at, answered)| *at >= first && !answered)
        .map(|(at, _)| at)
        .collect();
    println!(
        "  app: call answered at {} after that login; {} failed call(s) since the first answer",
        after_login[0],
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "calls failed at {failed:?}; app log:\n{log}"
    );
    let pod = world.ns.api::<Pod>().get(&name).await.expect("get Pod");
    println!("{}", describe_pod(&pod));
    for c in [SIDECAR, "app"] {
        assert_eq!(
            container(&pod, c).map(|s| s.restart_count),
            Some(0),
            "{c} restarted"
        );
    }
    assert_no_secrets(
        "the sidecar's log",
        &container_log(&world.ns, &name, SIDECAR).await,
    );
}

/// Annotates the credential with a re-enroll request and waits until the operator records it
/// as handled (`status.handledReenrollRequest`): the vendor then verifies with the new seed
/// and the runtime Secret holds it. Returns when the test saw it handled.
pub async fn request_reenrollment(ns: &TestNamespace, request: &str) -> Timestamp {
    let api = ns.api::<ApiCredential>();
    let patch = json!({"metadata": {"annotations": {REENROLL_ANNOTATION: request}}});
    api.patch(CREDENTIAL, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate the credential");
    let asked = Instant::now();
    let deadline = asked + Duration::from_secs(90);
    loop {
        let credential = api.get(CREDENTIAL).await.expect("get ApiCredential");
        let status = credential.status.unwrap_or_default();
        if status.handled_reenroll_request.as_deref() == Some(request) {
            println!(
                "re-enroll request {request:?} handled by the operator in {:.1} s",
                asked.elapsed().as_secs_f64()
            );
            return Timestamp::now();
        }
        assert!(
            Instant::now() < deadline,
            "re-enroll request {request:?} not handled within 90 s: {:?}",
            status.conditions
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the sidecar's log shows after `after`: when it first reloaded its inputs, and when it
/// first logged in after that reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterReload {
    pub reloaded: Timestamp,
    pub logged_in: Option<Timestamp>,
}

/// Reads the sidecar's JSON log lines (pure): the first `inputs loaded` reload (`first:false`)
/// after `after`, and the first `new token` of a login (not a refresh) after that reload.
pub fn after_reload(log: &str, after: Timestamp) -> Option<AfterReload> {
    let lines: Vec<(Timestamp, &str)> = log
        .lines()
        .filter_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            let at = value["timestamp"].as_str()?.parse().ok()?;
            Some((at, line))
        })
        .filter(|(at, _)| *at > after)
        .collect();
    let reloaded = lines
        .iter()
        .find(|(_, l)| l.contains("\"inputs loaded\"") && l.contains("\"first\":false"))?
        .0;
    let logged_in = lines
        .iter()
        .filter(|(at, _)| *at > reloaded)
        .find(|(_, l)| l.contains("\"new token\"") && l.contains("\"flow\":\"login\""))
        .map(|(at, _)| *at);
    Some(AfterReload {
        reloaded,
        logged_in,
    })
}

/// Waits until the sidecar of Pod `pod` reloaded its inputs after `after` and then logged in;
/// up to 100 s: the kubelet's Secret volume update (sync every 10 s) plus a token's renewal.
pub async fn wait_for_login_after_reload(
    ns: &TestNamespace,
    pod: &str,
    after: Timestamp,
) -> (Timestamp, Timestamp) {
    let deadline = Instant::now() + Duration::from_secs(100);
    loop {
        let log = container_log(ns, pod, SIDECAR).await;
        if let Some(AfterReload {
            reloaded,
            logged_in: Some(logged_in),
        }) = after_reload(&log, after)
        {
            return (reloaded, logged_in);
        }
        assert!(
            Instant::now() < deadline,
            "the sidecar did not reload its inputs and log in after {after}; its log:\n{log}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[test]
fn a_login_counts_only_after_a_reload_that_came_after_the_request() {
    let line = |at: &str, message: &str, fields: &str| {
        format!(r#"{{"timestamp":"{at}","level":"INFO","message":"{message}"{fields}}}"#)
    };
    let reload = |at| line(at, "inputs loaded", r#","first":false"#);
    let first_load = |at| line(at, "inputs loaded", r#","first":true"#);
    let login = |at| line(at, "new token", r#","flow":"login""#);
    let refresh = |at| line(at, "new token", r#","flow":"refresh""#);
    let t = |s: &str| s.parse::<Timestamp>().expect("timestamp");
    let after = t("2026-12-03T10:00:00Z");
    let cases: [(Vec<String>, Option<AfterReload>); 6] = [
        (vec![], None),
        // Before the request: neither counts.
        (
            vec![
                reload("2026-12-03T09:59:59Z"),
                login("2026-12-03T09:59:59.5Z"),
            ],
            None,
        ),
        // The first load is not a reload.
        (
            vec![
                first_load("2026-12-03T10:00:01Z"),
                login("2026-12-03T10:00:02Z"),
            ],
            None,
        ),
        // Reloaded, no login yet (a refresh is not a login).
        (
            vec![
                login("2026-12-03T10:00:01Z"),
                reload("2026-12-03T10:00:02Z"),
                refresh("2026-12-03T10:00:03Z"),
            ],
            Some(AfterReload {
                reloaded: t("2026-12-03T10:00:02Z"),
                logged_in: None,
            }),
        ),
        (
            vec![
                reload("2026-12-03T10:00:02Z"),
                login("2026-12-03T10:00:09Z"),
                login("2026-12-03T10:00:40Z"),
            ],
            Some(AfterReload {
                reloaded: t("2026-12-03T10:00:02Z"),
                logged_in: Some(t("2026-12-03T10:00:09Z")),
            }),
        ),
        // Lines that are not JSON (a panic, say) are skipped.
        (
            vec![
                "not json".to_owned(),
                reload("2026-12-03T10:00:02Z"),
                login("2026-12-03T10:00:03Z"),
            ],
            Some(AfterReload {
                reloaded: t("2026-12-03T10:00:02Z"),
                logged_in: Some(t("2026-12-03T10:00:03Z")),
            }),
        ),
    ];
    for (lines, want) in cases {
        let log = lines.join("\n");
        assert_eq!(after_reload(&log, after), want, "{log}");
    }
}
