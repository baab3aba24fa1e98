//! Support for the end-to-end tests on the one-node cluster (`scripts/node.sh up`): the chart
//! installed with the operator as Pods, and readable Pod states, events and logs for the test
//! log (every case prints its Pods' phases and container states).
//!
//! The same tests run against another cluster (kind in `.github/workflows/e2e-kind.yml`) when
//! these variables say where it is; `scripts/node-e2e.sh` sets the first itself for the local
//! node:
//!
//! | variable | what | local node |
//! |---|---|---|
//! | `OTPILOT_NODE_KUBECONFIG` | the cluster's kubeconfig | written by `scripts/node.sh up` |
//! | `OTPILOT_NODE_HOST_ADDRESS` | the host's address as Pods reach it: the simulator binds it | the bridge, 10.88.0.1 |
//! | `OTPILOT_HELM` | the `helm` binary | the one `scripts/build-control-plane.sh` builds |
//!
//! Image names are fixed (`localhost/otpilot/{operator,sidecar,app}:dev`, never pulled): a
//! cluster must have them loaded under these names (`scripts/node/images.sh` locally, `kind
//! load docker-image` on kind).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Event, Node, Pod};
use kube::Client;
use kube::api::{Api, ListParams, LogParams};

use crate::TestNamespace;

/// The environment variable naming the node cluster's kubeconfig.
pub const NODE_KUBECONFIG_ENV: &str = "OTPILOT_NODE_KUBECONFIG";
/// The address of the node's bridge (otpilotcni0): the host as Pods see it.
pub const BRIDGE_ADDRESS: [u8; 4] = [10, 88, 0, 1];
/// Overrides [`BRIDGE_ADDRESS`] for another cluster (kind: its Docker network's gateway).
pub const HOST_ADDRESS_ENV: &str = "OTPILOT_NODE_HOST_ADDRESS";
/// A `helm` binary to use instead of building one.
pub const HELM_ENV: &str = "OTPILOT_HELM";
/// Images `scripts/node/images.sh` imports into the node's containerd.
/// The operator's image repository (tag [`IMAGE_TAG`]).
pub const OPERATOR_IMAGE: &str = "localhost/otpilot/operator";
/// The sidecar's image repository (tag [`IMAGE_TAG`]).
pub const SIDECAR_IMAGE: &str = "localhost/otpilot/sidecar";
/// A busybox image for the tests' app containers.
pub const APP_IMAGE: &str = "localhost/otpilot/app:dev";
/// The tag of the operator and sidecar images.
pub const IMAGE_TAG: &str = "dev";
/// The chart's release name.
pub const RELEASE: &str = "otpilot";
/// Where the chart runs the operator.
pub const RELEASE_NAMESPACE: &str = "otpilot-system";

/// The host's address as Pods reach it: `OTPILOT_NODE_HOST_ADDRESS`, else the node's bridge.
pub fn host_address() -> IpAddr {
    match std::env::var(HOST_ADDRESS_ENV) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|e| panic!("{HOST_ADDRESS_ENV}={text:?} is not an IP address: {e}")),
        Err(_) => IpAddr::V4(Ipv4Addr::from(BRIDGE_ADDRESS)),
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("failed to run {command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

/// `helm upgrade --install` of charts/otpilot with the node's images (never pulled), waiting
/// until the operator Pods are Ready. Idempotent: every test calls it.
pub fn install_chart() {
    install_chart_with(&[]);
}

/// [`install_chart`] with further `--set` values (`key=value`); the values not given are the
/// chart's defaults again (no `--reuse-values`), so a test that changes a setting does not
/// leave it to the next one.
pub fn install_chart_with(extra_values: &[&str]) {
    let kubeconfig = std::env::var(NODE_KUBECONFIG_ENV).expect(NODE_KUBECONFIG_ENV);
    let root = repo_root();
    let helm = match std::env::var(HELM_ENV) {
        Ok(helm) => PathBuf::from(helm),
        Err(_) => {
            let bin = run(&mut Command::new(
                root.join("scripts/build-control-plane.sh"),
            ));
            PathBuf::from(bin.lines().last().unwrap_or_default().trim()).join("helm")
        }
    };
    let set = [
        format!("operator.image.repository={OPERATOR_IMAGE}"),
        format!("operator.image.tag={IMAGE_TAG}"),
        "operator.image.pullPolicy=Never".to_owned(),
        format!("sidecar.image.repository={SIDECAR_IMAGE}"),
        format!("sidecar.image.tag={IMAGE_TAG}"),
        "sidecar.image.pullPolicy=Never".to_owned(),
        "operator.logLevel=info".to_owned(),
    ];
    let mut command = Command::new(helm);
    command
        .args(["upgrade", "--install", RELEASE])
        .arg(root.join("charts/otpilot"))
        .args(["--namespace", RELEASE_NAMESPACE, "--create-namespace"])
        .args(["--wait", "--timeout", "180s", "--kubeconfig", &kubeconfig]);
    for value in set
        .iter()
        .map(String::as_str)
        .chain(extra_values.iter().copied())
    {
        command.args(["--set", value]);
    }
    run(&mut command);
}

/// `node <name> Ready=<status> (<kubelet version>, <runtime>)` for each node.
pub async fn nodes_line(client: &Client) -> String {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list nodes");
    nodes
        .items
        .iter()
        .map(|n| {
            let status = n.status.clone().unwrap_or_default();
            let ready = status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| c.status)
                .unwrap_or_default();
            let info = status.node_info.unwrap_or_default();
            format!(
                "node {} Ready={ready} ({}, {})",
                n.metadata.name.clone().unwrap_or_default(),
                info.kubelet_version,
                info.container_runtime_version
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn state_text(state: Option<&ContainerState>) -> String {
    let Some(state) = state else {
        return "unknown".to_owned();
    };
    if let Some(r) = &state.running {
        let at = r.started_at.as_ref().map(|t| t.0.to_string());
        return format!("running since {}", at.unwrap_or_default());
    }
    if let Some(w) = &state.waiting {
        return format!(
            "waiting ({}{})",
            w.reason.clone().unwrap_or_default(),
            w.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
    }
    if let Some(t) = &state.terminated {
        return format!(
            "terminated ({}, exit {}, {} .. {})",
            t.reason.clone().unwrap_or_default(),
            t.exit_code,
            t.started_at
                .as_ref()
                .map(|x| x.0.to_string())
                .unwrap_or_default(),
            t.finished_at
                .as_ref()
                .map(|x| x.0.to_string())
                .unwrap_or_default()
        );
    }
    "unknown".to_owned()
}

fn container_text(kind: &str, c: &ContainerStatus) -> String {
    format!(
        "    {kind} {}: {} started={} ready={} restarts={}",
        c.name,
        state_text(c.state.as_ref()),
        c.started.unwrap_or(false),
        c.ready,
        c.restart_count
    )
}

/// The Pod's phase and every container's state, one line each.
pub fn describe_pod(pod: &Pod) -> String {
    let status = pod.status.clone().unwrap_or_default();
    let mut lines = vec![format!(
        "  pod {} phase={} ip={}",
        pod.metadata.name.clone().unwrap_or_default(),
        status.phase.clone().unwrap_or_default(),
        status.pod_ip.clone().unwrap_or_default()
    )];
    for c in status.init_container_statuses.iter().flatten() {
        lines.push(container_text("init", c));
    }
    for c in status.container_statuses.iter().flatten() {
        lines.push(container_text("container", c));
    }
    lines.join("\n")
}

/// The named container's status in a Pod (init or app container).
pub fn container<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    let status = pod.status.as_ref()?;
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find(|c| c.name == name)
}

/// `reason: message` of every event about the object `name`, oldest first.
pub async fn events(namespace: &TestNamespace, name: &str) -> Vec<String> {
    let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let mut events = namespace
        .api::<Event>()
        .list(&params)
        .await
        .expect("list events")
        .items;
    events.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
    events
        .into_iter()
        .map(|e| {
            format!(
                "{} {}: {}",
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default().trim()
            )
        })
        .collect()
}

/// A container's log (empty when it has none yet).
pub async fn container_log(namespace: &TestNamespace, pod: &str, container: &str) -> String {
    let params = LogParams {
        container: Some(container.to_owned()),
        ..LogParams::default()
    };
    namespace
        .api::<Pod>()
        .logs(pod, &params)
        .await
        .unwrap_or_default()
}

/// Polls Pod `name` until `done` holds; panics with its state and events otherwise.
pub async fn wait_for_pod(
    namespace: &TestNamespace,
    name: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Pod) -> bool,
) -> Pod {
    let api = namespace.api::<Pod>();
    let deadline = Instant::now() + timeout;
    loop {
        let pod = api.get(name).await.expect("get Pod");
        if done(&pod) {
            return pod;
        }
        if Instant::now() > deadline {
            panic!(
                "Pod {name}: not {what} within {timeout:?}\n{}\nevents:\n  {}",
                describe_pod(&pod),
                events(namespace, name).await.join("\n  ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The Pods labelled `app=<app>`, once there are `count` of them.
pub async fn pods_of(namespace: &TestNamespace, app: &str, count: usize) -> Vec<Pod> {
    let params = ListParams::default().labels(&format!("app={app}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pods = namespace
            .api::<Pod>()
            .list(&params)
            .await
            .expect("list Pods")
            .items;
        if pods.len() >= count {
            return pods;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {count} Pods app={app} appeared within 60 s",
            pods.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Unix times of the `call <unix time>: <answer>` lines of an app log whose answer is the
/// vendor's user list naming `username` (a failed call prints wget's error instead).
pub fn answered_calls(log: &str, username: &str) -> Vec<i64> {
    let answer = format!("\"username\":\"{username}\"");
    log.lines()
        .filter(|l| l.contains(&answer))
        .filter_map(|l| l.strip_prefix("call ")?.split(':').next()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_calls_are_the_calls_the_vendor_answered() {
        let ok = r#"{"users":[{"id":"1","username":"bot"}]}"#;
        let cases = [
            ("", vec![]),
            ("app started 5", vec![]),
            (&*format!("call 10: {ok}"), vec![10]),
            (
                &*format!(
                    "call 10: {ok}\ncall 12: wget: server returned error: HTTP/1.1 502\ncall 14: {ok}"
                ),
                vec![10, 14],
            ),
            (
                r#"call 10: {"users":[{"id":"1","username":"other"}]}"#,
                vec![],
            ),
            (&*format!("call x: {ok}"), vec![]),
        ];
        for (log, want) in cases {
            assert_eq!(answered_calls(log, "bot"), want, "{log}");
        }
    }
}
