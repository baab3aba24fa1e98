//! End to end on a real node (`scripts/node.sh up`: kubelet, containerd, runc): the chart
//! installed with the operator running as Pods (its webhook reached through its Service), the
//! simulator on the host at the bridge address, and workloads that are real Pods.
//!
//! Needs `OTPILOT_NODE_KUBECONFIG` and the images from `scripts/node/images.sh`; fails (never
//! skips) without them. `scripts/test.sh` runs this binary in its own phase, one test at a
//! time (.config/nextest.toml), and prints each case's Pods, phases and container states.

mod node_support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use node_support::held_back::{assert_app_waiting, failed_startup_probe_events};
use node_support::workloads::{
    AUDD_USERS, SIDECAR, all_ready, app_command, injected_deployment, the_answered_calls,
};
use node_support::*;
use otpilot_api::ApiCredential;
use otpilot_sim::Vendor;
use otpilot_tests::node::{
    APP_IMAGE, RELEASE_NAMESPACE, container, container_log, describe_pod, pods_of, wait_for_pod,
};
use otpilot_tests::webhook::wait_until_webhook_answers;
use serde_json::json;

#[tokio::test]
async fn the_operator_runs_as_pods_and_its_webhook_answers_through_its_service() {
    let world = world("operator-pods", LONG_LIVED).await;
    let pods = kube::Api::<Pod>::namespaced(world.cluster.client(), RELEASE_NAMESPACE)
        .list(&ListParams::default())
        .await
        .expect("list operator Pods")
        .items;
    println!("operator Pods in {RELEASE_NAMESPACE}:");
    assert!(!pods.is_empty(), "no operator Pod");
    for pod in &pods {
        println!("{}", describe_pod(pod));
        assert!(all_ready(pod), "operator Pod not Running and Ready");
    }
    // The API server calls the webhook at the Service's endpoints (Pod IPs).
    wait_until_webhook_answers(&world.ns)
        .await
        .expect("the webhook (operator Pods) answers through its Service");
    println!("the webhook answered a dry-run Pod through its Service");
    // The operator, in a Pod, reached the vendor on the host: the credential is Ready.
    println!("vendor reached from the operator Pods: {CREDENTIAL} Ready");
}

#[tokio::test]
async fn injected_pods_start_the_app_after_the_sidecar_is_ready_and_reach_the_vendor() {
    let world = world("injected-deployment", LONG_LIVED).await;
    world
        .ns
        .api::<Deployment>()
        .create(
            &PostParams::default(),
            &injected_deployment("app", 2, AUDD_USERS),
        )
        .await
        .expect("create the Deployment");
    // The replicas share one vendor session (docs/shared-session.md): one
    // sidecar holds the Lease and logs in, the other serves what it publishes.
    let mut modes = Vec::new();
    for pod in pods_of(&world.ns, "app", 2).await {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let pod = wait_for_pod(
            &world.ns,
            &name,
            "Running and Ready",
            Duration::from_secs(180),
            all_ready,
        )
        .await;
        println!("{}", describe_pod(&pod));
        // The injected native sidecar: an init container that keeps running.
        let spec = pod.spec.clone().unwrap_or_default();
        let sidecar_spec = spec
            .init_containers
            .iter()
            .flatten()
            .find(|c| c.name == SIDECAR)
            .expect("the webhook injected the sidecar");
        assert_eq!(sidecar_spec.restart_policy.as_deref(), Some("Always"));
        assert!(
            sidecar_spec.startup_probe.is_some(),
            "sidecar has a startup probe"
        );
        let started = |c: &str| {
            container(&pod, c)
                .and_then(|s| s.state.clone()?.running?.started_at)
                .map(|t| t.0.as_second())
                .unwrap_or_else(|| panic!("{c} not running"))
        };
        let (sidecar_started, app_started) = (started(SIDECAR), started("app"));
        // The startup probe passes once the sidecar holds a token: its first "new token" log
        // line (it logged in) or "serving the shared session" (it follows the replica that
        // did). The kubelet starts the app only after that.
        let sidecar_log = container_log(&world.ns, &name, SIDECAR).await;
        let token_line = sidecar_log
            .lines()
            .find(|l| l.contains("\"new token\"") || l.contains("\"serving the shared session\""))
            .unwrap_or_else(|| panic!("the sidecar never held a token:\n{sidecar_log}"));
        // The holder got the token from the vendor; a follower from the session Secret.
        let source = if token_line.contains("\"new token\"") {
            "from the vendor"
        } else {
            "from the shared session"
        };
        println!("  first token {source}");
        modes.push(source);
        let token_at: serde_json::Value = serde_json::from_str(token_line).expect("JSON log line");
        let token_at = token_at["timestamp"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .expect("timestamp")
            .as_second();
        println!(
            "  sidecar started {sidecar_started}, token (startup probe can pass) {token_at}, app started {app_started}"
        );
        assert!(
            sidecar_started <= token_at && token_at <= app_started,
            "the app started before the sidecar was ready"
        );
        let calls = the_answered_calls(&world, &name, 0).await;
        println!(
            "  app -> sidecar proxy -> vendor: {} answered call(s), first at {}",
            calls.len(),
            calls[0]
        );
        assert_no_secrets("the sidecar's log", &sidecar_log);
        assert_no_secrets("the Pod's status", &format!("{:?}", pod.status));
    }
    // With their real ServiceAccount tokens, through the Role the webhook granted.
    modes.sort();
    assert_eq!(
        modes,
        ["from the shared session", "from the vendor"],
        "one replica logs in and holds the shared session, the other follows it"
    );
}

#[tokio::test]
async fn a_job_with_the_sidecar_completes() {
    let world = world("job", LONG_LIVED).await;
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "report"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": "report"}, "annotations": {"otpilot.dev/inject": CREDENTIAL}},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "app", "image": APP_IMAGE, "imagePullPolicy": "Never",
                                    "command": app_command(true)}]
                }
            }
        }
    }))
    .expect("Job");
    let jobs = world.ns.api::<Job>();
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create the Job");
    let pod = pods_of(&world.ns, "report", 1).await.remove(0);
    let name = pod.metadata.name.clone().unwrap_or_default();
    let pod = wait_for_pod(
        &world.ns,
        &name,
        "Succeeded",
        Duration::from_secs(180),
        |p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"),
    )
    .await;
    println!("{}", describe_pod(&pod));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let conditions = jobs
            .get("report")
            .await
            .expect("get Job")
            .status
            .unwrap_or_default()
            .conditions
            .unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
        {
            println!("  Job report: Complete");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Job not Complete: {conditions:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!the_answered_calls(&world, &name, 0).await.is_empty());
}

#[tokio::test]
async fn a_pod_whose_credential_is_not_ready_is_refused_with_a_readable_message() {
    let world = world("not-ready", LONG_LIVED).await;
    // Nothing listens on port 1: this credential can never enroll.
    create_credential(
        &world.ns,
        "unreachable",
        "https://10.88.0.1:1",
        Vendor::Audd,
        &LONG_LIVED,
    )
    .await;
    let credential = wait_for_condition(&world.ns, "unreachable", "False").await;
    println!(
        "ApiCredential unreachable: {:?}",
        ready_condition(&credential)
    );
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "refused", "annotations": {"otpilot.dev/inject": "unreachable"}},
        "spec": {"containers": [{"name": "app", "image": APP_IMAGE, "imagePullPolicy": "Never", "command": app_command(true)}]}
    }))
    .expect("Pod");
    match world
        .ns
        .api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
    {
        Err(kube::Error::Api(status)) => {
            println!("  Pod refused ({}): {}", status.code, status.message);
            assert!(
                status.message.contains("unreachable") && status.message.contains("not Ready"),
                "{}",
                status.message
            );
            assert_no_secrets("the refusal", &status.message);
        }
        other => panic!("the Pod was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_renewed_client_certificate_reaches_the_running_sidecar_without_a_restart() {
    // Renewed 50 s before the end of a 60 s lifetime: every ~10 s.
    let world = world("rotation", CertificateLife("60s", "50s")).await;
    let first = world
        .ns
        .api::<ApiCredential>()
        .get(CREDENTIAL)
        .await
        .expect("get");
    let first_not_after = first
        .status
        .and_then(|s| s.certificate_not_after)
        .expect("certificateNotAfter")
        .0
        .as_second();
    let first_cert = runtime_certificate(&world.ns).await;
    world
        .ns
        .api::<Deployment>()
        .create(
            &PostParams::default(),
            &injected_deployment("rotating", 1, AUDD_USERS),
        )
        .await
        .expect("create the Deployment");
    let name = pods_of(&world.ns, "rotating", 1)
        .await
        .remove(0)
        .metadata
        .name
        .unwrap_or_default();
    wait_for_pod(
        &world.ns,
        &name,
        "Running and Ready",
        Duration::from_secs(180),
        all_ready,
    )
    .await;
    println!("first client certificate valid until {first_not_after}; waiting past it");
    // Calls answered after the first certificate expired used a renewed one.
    let calls = the_answered_calls(&world, &name, first_not_after + 5).await;
    let pod = world.ns.api::<Pod>().get(&name).await.expect("get Pod");
    println!("{}", describe_pod(&pod));
    assert_ne!(
        runtime_certificate(&world.ns).await,
        first_cert,
        "the certificate was renewed"
    );
    let reloads = container_log(&world.ns, &name, SIDECAR)
        .await
        .lines()
        .filter(|l| l.contains("\"inputs loaded\"") && l.contains("\"first\":false"))
        .count();
    println!(
        "  sidecar reloaded its inputs {reloads} time(s); call answered at {} (> {first_not_after})",
        calls[0]
    );
    assert!(reloads > 0, "the sidecar never reloaded the runtime Secret");
    for c in [SIDECAR, "app"] {
        assert_eq!(
            container(&pod, c).map(|s| s.restart_count),
            Some(0),
            "{c} restarted"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_keeps_the_app_from_starting_and_the_events_say_why() {
    const WRONG: &str = "not-the-password-5Zq";
    let world = world("wrong-password", LONG_LIVED).await;
    let patch = json!({"stringData": {"password": WRONG}});
    world
        .ns
        .api::<Secret>()
        .patch(LOGIN_SECRET, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("break the password");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "locked-out", "annotations": {"otpilot.dev/inject": CREDENTIAL}},
        "spec": {"containers": [{"name": "app", "image": APP_IMAGE, "imagePullPolicy": "Never", "command": app_command(false)}]}
    }))
    .expect("Pod");
    world
        .ns
        .api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .expect("create the Pod");
    // The kubelet reports each failed startup probe as an event, with the probe's answer.
    let events = failed_startup_probe_events(&world.ns, "locked-out").await;
    // A few more probe periods: the app must still not have started.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pod = world
        .ns
        .api::<Pod>()
        .get("locked-out")
        .await
        .expect("get Pod");
    println!("{}", describe_pod(&pod));
    println!("  events:\n    {}", events.join("\n    "));
    assert_app_waiting(&pod);
    let sidecar_log = container_log(&world.ns, "locked-out", SIDECAR).await;
    for (what, text) in [
        ("the Pod's events", events.join("\n")),
        ("the Pod's status", format!("{:?}", pod.status)),
        ("the sidecar's log", sidecar_log),
    ] {
        assert_no_secrets(what, &text);
        assert!(!text.contains(WRONG), "{what} holds the (wrong) password");
    }
}

/// `rbac.secretNamespaces`: the operator holds Secrets, Leases, Roles and RoleBindings in the
/// listed namespaces only (RoleBindings, no ClusterRoleBinding). Its Pods still reach Ready,
/// the credential Ready, an injected Pod its token, and the operator never asks for what it
/// was not granted (its owned-Secret watch covers the listed namespaces, not the cluster).
#[tokio::test]
async fn the_operator_works_with_secrets_granted_in_listed_namespaces_only() {
    let setup = Setup {
        secret_namespaces_rbac: true,
        ..Setup::audd(LONG_LIVED)
    };
    let world = world_with("rbac-narrow", setup).await;
    let operators = kube::Api::<Pod>::namespaced(world.cluster.client(), RELEASE_NAMESPACE);
    let bindings =
        kube::Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(world.cluster.client())
            .list(&ListParams::default())
            .await
            .expect("list ClusterRoleBindings")
            .items;
    assert!(
        !bindings.iter().any(|b| b
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.ends_with("-secrets"))),
        "no cluster-wide Secret binding in this mode"
    );
    // A credential in a namespace the list leaves out: the permission error on its status.
    let unlisted = world
        .cluster
        .namespace("rbac-unlisted")
        .await
        .expect("namespace");
    create_credential(
        &unlisted,
        "elsewhere",
        &world.sim.base_url(),
        Vendor::Conduit,
        &LONG_LIVED,
    )
    .await;
    let refused = wait_for_condition(&unlisted, "elsewhere", "False").await;
    let (_, reason, message) = ready_condition(&refused).expect("Ready");
    println!("  credential in an unlisted namespace: {reason}: {message}");
    assert_eq!(reason, "KubernetesError", "{message}");
    assert!(message.contains("forbidden"), "{message}");
    world
        .ns
        .api::<Deployment>()
        .create(
            &PostParams::default(),
            &injected_deployment("app", 1, AUDD_USERS),
        )
        .await
        .expect("create the Deployment");
    let pod = &pods_of(&world.ns, "app", 1).await[0];
    let name = pod.metadata.name.clone().unwrap_or_default();
    let pod = wait_for_pod(
        &world.ns,
        &name,
        "Running and Ready",
        Duration::from_secs(180),
        all_ready,
    )
    .await;
    println!("{}", describe_pod(&pod));
    let calls = the_answered_calls(&world, &name, 0).await;
    println!(
        "  app -> sidecar proxy -> vendor: {} answered call(s)",
        calls.len()
    );
    for operator in operators
        .list(&ListParams::default().labels("app.kubernetes.io/name=otpilot"))
        .await
        .expect("list operator Pods")
        .items
    {
        let pod_name = operator.metadata.name.clone().unwrap_or_default();
        let log = operators
            .logs(
                &pod_name,
                &kube::api::LogParams {
                    container: Some("operator".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("operator log");
        // Refused requests about this case's namespace, or cluster-wide (the Secret watch
        // before --secret-namespaces). Credentials in unlisted namespaces (the other cases'
        // and the one below) are refused by design: their status says so.
        let refused: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("forbidden") || l.contains("Forbidden"))
            .filter(|l| l.contains(world.ns.name()) || l.contains("at the cluster scope"))
            .collect();
        assert!(
            refused.is_empty(),
            "operator {pod_name} was refused:\n{}",
            refused.join("\n")
        );
    }
}

/// Probes and metrics on the admin port (HTTP, Pod IP), no token there, and a sidecar whose
/// task dies restarted by the kubelet (node_support::health).
#[tokio::test]
async fn the_sidecar_is_probed_over_http_on_its_admin_port_and_restarts_when_a_task_dies() {
    node_support::health::probes_and_restart_case().await;
}

/// `otpilot.dev/readiness` token vs none with the vendor down (node_support::readiness).
#[tokio::test]
async fn readiness_token_pulls_the_pod_out_of_ready_when_the_vendor_is_down_and_none_does_not() {
    node_support::readiness::readiness_case().await;
}

/// `spec.token.refreshBefore` sets when the injected sidecar renews (node_support::refresh).
#[tokio::test]
async fn refresh_before_of_the_credential_sets_when_the_injected_sidecar_renews() {
    node_support::refresh::refresh_before_case().await;
}

/// A new TOTP seed (re-enrollment on request) while a Deployment runs: picked up by the
/// running sidecar, which logs in with it, without a restart (node_support::reenroll).
#[tokio::test]
async fn a_new_seed_reaches_the_running_sidecar_without_a_restart() {
    node_support::reenroll::case().await;
}

/// `webhook.whenNotReady: Inject`: the Pod is admitted, its app held back with the sidecar's
/// reason in the events, and started once the credential is Ready (node_support::held_back).
/// Named to sort last: nextest runs this binary's tests one at a time in name order, and the
/// setting it changes is put back by the next test's chart install (a rollout); run last, no
/// test pays for that.
#[tokio::test]
async fn when_not_ready_inject_admits_the_pod_and_holds_the_app_until_the_credential_is_ready() {
    node_support::held_back::case().await;
}
