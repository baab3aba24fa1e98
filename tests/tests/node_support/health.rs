//! The sidecar's health as the node sees it: HTTP probes on the admin port `otpilot-admin` (on
//! the Pod IP, which the host reaches over the bridge), no token there, a container restart
//! when one of its tasks dies, and the two readiness modes of `otpilot.dev/readiness`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use kube::api::{ObjectMeta, PostParams};
use otpilot_tests::TestNamespace;
use otpilot_tests::node::{APP_IMAGE, container};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::CREDENTIAL;
use super::workloads::{SIDECAR, app_command};

/// The admin port's default and name (`otpilot_api::sidecar`).
pub const ADMIN_PORT: u16 = otpilot_api::sidecar::DEFAULT_ADMIN_PORT;
pub const ADMIN_PORT_NAME: &str = otpilot_api::sidecar::ADMIN_PORT_NAME;

/// A Pod named `name` injected with the world's credential, with `annotations` besides.
pub fn injected_pod(name: &str, annotations: &[(&str, &str)]) -> Pod {
    let mut all = serde_json::Map::new();
    all.insert("otpilot.dev/inject".to_owned(), json!(CREDENTIAL));
    for (k, v) in annotations {
        all.insert((*k).to_owned(), json!(v));
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": all},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "app", "image": APP_IMAGE, "imagePullPolicy": "Never",
                            "command": app_command(false)}]
        }
    }))
    .expect("Pod")
}

pub async fn create(ns: &TestNamespace, pod: &Pod) {
    ns.api::<Pod>()
        .create(&PostParams::default(), pod)
        .await
        .expect("create the Pod");
}

/// The injected sidecar container of `pod`'s spec.
pub fn sidecar_spec(pod: &Pod) -> &Container {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .and_then(|c| c.iter().find(|c| c.name == SIDECAR))
        .expect("the webhook injected the sidecar")
}

pub fn pod_ip(pod: &Pod) -> IpAddr {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok())
        .expect("the Pod has an IP")
}

/// One `GET` over plain HTTP/1.1 (the admin port speaks nothing else): status and body, or the
/// connection error.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let ask = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nOtpilot-Request: true\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), ask)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 5 s"))?
}

/// The Pod's Ready condition.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The sidecar container's restarts.
pub fn sidecar_restarts(pod: &Pod) -> i32 {
    container(pod, SIDECAR).map_or(0, |c| c.restart_count)
}

/// A copy of an injected Pod's spec under a new name, with `env` added to the sidecar: the Pod
/// carries the webhook's marker, so the webhook leaves it as it is.
/// The sidecar image with failpoints (a debug build), loaded by scripts/node/images.sh.
const FAILPOINT_SIDECAR_IMAGE: &str = "localhost/otpilot/sidecar-failpoints:dev";

pub fn copy_with_sidecar_env(injected: &Pod, name: &str, env: &[(&str, &str)]) -> Pod {
    let mut spec = injected.spec.clone().expect("spec");
    spec.node_name = None;
    let sidecar = spec
        .init_containers
        .iter_mut()
        .flatten()
        .find(|c| c.name == SIDECAR)
        .expect("the sidecar");
    // The failpoint exists only in debug builds: the debug build of the same source
    // (scripts/node/images.sh), for this copy alone.
    sidecar.image = Some(FAILPOINT_SIDECAR_IMAGE.to_owned());
    sidecar.image_pull_policy = Some("Never".to_owned());
    let vars = sidecar.env.get_or_insert_with(Vec::new);
    for (k, v) in env {
        vars.push(EnvVar {
            name: (*k).to_owned(),
            value: Some((*v).to_owned()),
            value_from: None,
        });
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: injected.metadata.labels.clone(),
            annotations: injected.metadata.annotations.clone(),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The injected Pod's probes are HTTP on `otpilot-admin`, `/metrics` answers on the Pod IP from
/// the host and `/token` does not (neither on the admin port nor on the API port, which listens
/// on the Pod's loopback only), and the Pod carries the `otpilot.dev/injected` label. Then a
/// copy whose sidecar's session task dies (the debug-build failpoint) sees the kubelet restart
/// the sidecar container, the cause in its last termination message.
pub async fn probes_and_restart_case() {
    let world = super::world("admin-port", super::LONG_LIVED).await;
    let ns = &world.ns;
    create(ns, &injected_pod("probed", &[])).await;
    let pod = otpilot_tests::node::wait_for_pod(
        ns,
        "probed",
        "Running and Ready",
        Duration::from_secs(180),
        super::workloads::all_ready,
    )
    .await;
    println!("{}", otpilot_tests::node::describe_pod(&pod));
    assert_eq!(
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(otpilot_api::labels::INJECTED_LABEL))
            .map(String::as_str),
        Some("true"),
        "the webhook labels injected Pods"
    );
    let spec = sidecar_spec(&pod);
    let liveness = spec.liveness_probe.clone().expect("a liveness probe");
    let http = liveness.http_get.expect("an HTTP liveness probe");
    assert_eq!(http.path.as_deref(), Some("/healthz"));
    assert_eq!(
        serde_json::to_value(&http.port).expect("json"),
        json!(ADMIN_PORT_NAME)
    );
    assert!(liveness.exec.is_none());
    let declared = spec.ports.iter().flatten().any(|p| {
        p.name.as_deref() == Some(ADMIN_PORT_NAME) && p.container_port == i32::from(ADMIN_PORT)
    });
    assert!(declared, "the sidecar declares port {ADMIN_PORT_NAME}");
    assert!(
        spec.readiness_probe.is_none(),
        "no readiness probe by default"
    );

    let ip = pod_ip(&pod);
    let admin = SocketAddr::new(ip, ADMIN_PORT);
    let (status, metrics) = http_get(admin, "/metrics")
        .await
        .expect("the admin port answers");
    println!("  GET {admin}/metrics from the host: {status}");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("otpilot_sidecar_session_mode"),
        "{metrics}"
    );
    for path in ["/healthz", "/readyz"] {
        let (status, _) = http_get(admin, path).await.expect("the admin port answers");
        assert_eq!(status, 200, "{path}");
    }
    let (status, body) = http_get(admin, "/token")
        .await
        .expect("the admin port answers");
    println!("  GET {admin}/token from the host: {status}");
    assert_eq!(status, 404, "the admin port serves no token: {body}");
    let api = SocketAddr::new(ip, otpilot_api::sidecar::DEFAULT_API_PORT);
    let outcome = http_get(api, "/token").await;
    println!("  GET {api}/token from the host: {outcome:?}");
    assert!(
        outcome.is_err(),
        "the token API must not answer on the Pod IP: {outcome:?}"
    );
    super::assert_no_secrets("the admin port's metrics", &metrics);

    // The same Pod, its sidecar's session task killed 15 s after start (once it served).
    let crashing = copy_with_sidecar_env(
        &pod,
        "crashing",
        &[
            ("OTPILOT_FAILPOINT", "sidecar-task-panic:session"),
            ("OTPILOT_FAILPOINT_AFTER_MS", "15000"),
        ],
    );
    create(ns, &crashing).await;
    let pod = otpilot_tests::node::wait_for_pod(
        ns,
        "crashing",
        "with a restarted sidecar",
        Duration::from_secs(180),
        |p| sidecar_restarts(p) >= 1,
    )
    .await;
    println!("{}", otpilot_tests::node::describe_pod(&pod));
    let last = container(&pod, SIDECAR)
        .and_then(|c| c.last_state.clone())
        .and_then(|s| s.terminated)
        .expect("the sidecar's last termination");
    println!(
        "  sidecar exited {}: {}",
        last.exit_code,
        last.message
            .clone()
            .unwrap_or_default()
            .lines()
            .last()
            .unwrap_or_default()
    );
    assert_eq!(last.exit_code, 1, "exits non-zero when a task dies");
    let message = last.message.unwrap_or_default();
    // The panic is in the last lines; which supervised task is reported first varies: the
    // session task itself, or one of its shared-session children that ends with it.
    assert!(
        message.contains("failpoint sidecar-task-panic:session")
            && message.contains("a supervised task ended; exiting so the container restarts"),
        "the cause is in the sidecar's last log lines:\n{message}"
    );
    super::assert_no_secrets("the sidecar's termination message", &message);
}
