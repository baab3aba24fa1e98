//! Pods the sidecar's startup probe holds back: the kubelet reports each failed probe as an
//! event carrying the sidecar's reason, and the app container waits (`PodInitializing`).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use otpilot_sim::{Faults, SimHandle};
use otpilot_tests::TestNamespace;
use otpilot_tests::node::{APP_IMAGE, container, describe_pod, events, wait_for_pod};
use serde_json::json;

use super::workloads::{SIDECAR, all_ready, app_command, the_answered_calls};
use super::{
    CREDENTIAL, LONG_LIVED, Setup, assert_no_secrets, ready_condition, wait_for_condition,
    wait_until_ready, world_with,
};

/// The case: with the webhook set to inject when the credential is not Ready (the vendor is
/// down), the Pod is admitted and its app held back, the events say why, and the app starts
/// in the same Pod, with no restart, once the vendor is back and the credential Ready.
pub async fn case() {
    let setup = Setup {
        chart_values: INJECT_WHEN_NOT_READY,
        vendor_down: true,
        ..Setup::audd(LONG_LIVED)
    };
    let world = world_with("held-back", setup).await;
    let credential = wait_for_condition(&world.ns, CREDENTIAL, "False").await;
    println!(
        "ApiCredential {CREDENTIAL}: {:?}",
        ready_condition(&credential)
    );
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "held-back", "annotations": {"otpilot.dev/inject": CREDENTIAL}},
        "spec": {"terminationGracePeriodSeconds": 2,
                 "containers": [{"name": "app", "image": APP_IMAGE, "imagePullPolicy": "Never",
                                 "command": app_command(false)}]}
    }))
    .expect("Pod");
    world
        .ns
        .api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("the webhook admits the Pod (whenNotReady: Inject)");
    println!("  Pod held-back admitted with the sidecar although {CREDENTIAL} is not Ready");
    let events = failed_startup_probe_events(&world.ns, "held-back").await;
    let pod = world
        .ns
        .api::<Pod>()
        .get("held-back")
        .await
        .expect("get Pod");
    println!("{}", describe_pod(&pod));
    println!("  events:\n    {}", events.join("\n    "));
    assert_app_waiting(&pod);
    // The sidecar's reason, in the kubelet's event: what it waits for.
    assert!(
        events
            .iter()
            .any(|e| e.contains("Startup probe failed") && e.contains("not enrolled yet")),
        "no event gives the sidecar's reason"
    );
    let uid = pod.metadata.uid.clone();

    bring_vendor_back(&world.sim).await;
    let back = jiff::Timestamp::now().as_second();
    println!("vendor back at {back}");
    wait_until_ready(&world.ns, CREDENTIAL).await;
    let pod = wait_for_pod(
        &world.ns,
        "held-back",
        "Running and Ready",
        Duration::from_secs(120),
        all_ready,
    )
    .await;
    println!("{}", describe_pod(&pod));
    assert_eq!(pod.metadata.uid, uid, "the same Pod");
    let app_started = container(&pod, "app")
        .and_then(|s| s.state.clone()?.running?.started_at)
        .map(|t| t.0.as_second())
        .expect("the app is running");
    assert!(
        app_started >= back,
        "the app started before the vendor was back"
    );
    for c in [SIDECAR, "app"] {
        assert_eq!(
            container(&pod, c).map(|s| s.restart_count),
            Some(0),
            "{c} restarted"
        );
    }
    let calls = the_answered_calls(&world, "held-back", 0).await;
    println!(
        "  app started at {app_started} (vendor back at {back}), first call answered at {}",
        calls[0]
    );
    assert_no_secrets("the Pod's events", &events.join("\n"));
}

/// The chart setting under which the webhook admits a Pod whose credential is not Ready.
pub const INJECT_WHEN_NOT_READY: &[&str] = &["webhook.whenNotReady=Inject"];

/// The Pod's events, once one says its startup probe failed (up to 120 s).
pub async fn failed_startup_probe_events(ns: &TestNamespace, pod: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let events = events(ns, pod).await;
        if events.iter().any(|e| e.contains("Startup probe failed")) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "no failed startup probe reported; events:\n  {}",
            events.join("\n  ")
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Fails unless the Pod's app container has never started and is waiting.
pub fn assert_app_waiting(pod: &Pod) {
    let app = container(pod, "app").expect("app container status");
    assert!(!app.started.unwrap_or(false), "the app container started");
    assert!(
        app.state
            .as_ref()
            .is_some_and(|s| s.running.is_none() && s.terminated.is_none()),
        "the app container is not waiting"
    );
}

/// Clears the vendor's faults (it answers again).
pub async fn bring_vendor_back(sim: &SimHandle) {
    sim.admin()
        .expect("admin client")
        .set_faults(&Faults::default())
        .await
        .expect("clear the vendor's faults");
}
