//! The workloads the cases run: an app container (busybox) that calls the vendor through the
//! injected sidecar's proxy and logs each call, and readings of its log.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use otpilot_tests::node::{APP_IMAGE, container_log};
use serde_json::json;

use super::{CREDENTIAL, USERNAME, World};

/// The injected sidecar container.
pub const SIDECAR: &str = "otpilot-sidecar";

/// What AUDD's app calls: the account's user list.
pub const AUDD_USERS: &str = "/users";

/// Running, and every container (the native sidecar included) ready.
pub fn all_ready(pod: &Pod) -> bool {
    let status = pod.status.clone().unwrap_or_default();
    status.phase.as_deref() == Some("Running")
        && status
            .init_container_statuses
            .iter()
            .flatten()
            .all(|c| c.ready)
        && status.container_statuses.iter().flatten().all(|c| c.ready)
}

/// A Deployment of `replicas` Pods annotated for the world's credential, whose app calls
/// `path` at the vendor every 2 s.
pub fn injected_deployment(name: &str, replicas: i32, path: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"otpilot.dev/inject": CREDENTIAL}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{"name": "app", "image": APP_IMAGE, "imagePullPolicy": "Never",
                                    "command": app_command_calling(path, false)}]
                }
            }
        }
    }))
    .expect("Deployment")
}

/// An app container that calls AUDD's user list (see [`app_command_calling`]).
pub fn app_command(once: bool) -> Vec<String> {
    app_command_calling(AUDD_USERS, once)
}

/// An app container (busybox) that says when it started, then calls `path` at the vendor
/// through the sidecar's proxy every 2 s (`call <unix time>: <answer>`), or once when `once`.
pub fn app_command_calling(path: &str, once: bool) -> Vec<String> {
    let call = format!(r#"echo "call $(date +%s): $(wget -qO- "$OTPILOT_PROXY_URL{path}" 2>&1)""#);
    let script = if once {
        format!(
            "echo \"app started $(date +%s)\"; {call}; wget -qO- \"$OTPILOT_PROXY_URL{path}\" >/dev/null"
        )
    } else {
        format!("echo \"app started $(date +%s)\"; while true; do {call}; sleep 2; done")
    };
    vec!["sh".to_owned(), "-c".to_owned(), script]
}

/// The app's call lines: `(unix time, answered by the vendor)`. An answer names the account
/// (AUDD's user list `"username":"…"`, Cryptr's user `"email":"…"`); a failed call prints
/// wget's error instead.
pub fn calls(log: &str) -> Vec<(i64, bool)> {
    let named = format!("\":\"{USERNAME}\"");
    log.lines()
        .filter_map(|l| {
            let (at, answer) = l.strip_prefix("call ")?.split_once(':')?;
            Some((at.parse().ok()?, answer.contains(&named)))
        })
        .collect()
}

/// Unix times of the app's calls the vendor answered.
pub fn answered_calls(log: &str) -> Vec<i64> {
    calls(log)
        .into_iter()
        .filter_map(|(at, answered)| answered.then_some(at))
        .collect()
}

/// The app's calls answered by the vendor after unix time `after`, once there is one.
pub async fn the_answered_calls(world: &World, pod: &str, after: i64) -> Vec<i64> {
    // Up to a minute past `after` (the rotation case waits for a certificate to expire).
    let wait = (after - jiff::Timestamp::now().as_second())
        .max(0)
        .unsigned_abs()
        + 60;
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        let log = container_log(&world.ns, pod, "app").await;
        let calls: Vec<i64> = answered_calls(&log)
            .into_iter()
            .filter(|t| *t > after)
            .collect();
        if !calls.is_empty() {
            return calls;
        }
        assert!(
            Instant::now() < deadline,
            "pod {pod}: no call answered by the vendor after {after}; app log:\n{log}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[test]
fn calls_are_read_from_the_app_log() {
    let audd = r#"{"users":[{"id":"1","username":"payments-bot"}]}"#;
    let cryptr = r#"{"__type__":"User","id":"u1","email":"payments-bot","totp_enrolled":true}"#;
    let cases = [
        ("", vec![]),
        ("app started 5", vec![]),
        (&*format!("call 10: {audd}"), vec![(10, true)]),
        (&*format!("call 11: {cryptr}"), vec![(11, true)]),
        (
            &*format!(
                "call 10: {audd}\ncall 12: wget: server returned error: HTTP/1.1 502\ncall 14: {cryptr}"
            ),
            vec![(10, true), (12, false), (14, true)],
        ),
        (
            r#"call 10: {"users":[{"id":"1","username":"other"}]}"#,
            vec![(10, false)],
        ),
        (&*format!("call x: {audd}"), vec![]),
    ];
    for (log, want) in cases {
        assert_eq!(calls(log), want, "{log}");
    }
}
