//! How the kubelet watches the injected sidecar: the admin port on the Pod
//! IP (`otpilot-admin`) that its HTTP probes and Prometheus reach, and the
//! startup, liveness and (per Pod) readiness probes.

use k8s_openapi::api::core::v1::{
    ContainerPort, EnvVar, EnvVarSource, ExecAction, HTTPGetAction, ObjectFieldSelector, Probe,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use otpilot_api::sidecar::ADMIN_PORT_NAME;

use crate::annotations::Readiness;
use crate::config::InjectConfig;

/// The variable the sidecar container gets the Pod IP in (downward API),
/// expanded by the kubelet in `--admin-addr $(OTPILOT_POD_IP):<port>`.
pub const POD_IP_ENV: &str = "OTPILOT_POD_IP";

// Startup: poll each second, give enrollment and the first login up to 10
// minutes before the kubelet restarts the sidecar (the app waits meanwhile).
const STARTUP_PERIOD_SECONDS: i32 = 1;
const STARTUP_FAILURE_THRESHOLD: i32 = 600;
const LIVENESS_PERIOD_SECONDS: i32 = 10;
const LIVENESS_FAILURE_THRESHOLD: i32 = 3;
// Readiness (annotation otpilot.dev/readiness: token): out of the
// Services after 3 failed probes 5 s apart; back after one success.
const READINESS_PERIOD_SECONDS: i32 = 5;
const READINESS_FAILURE_THRESHOLD: i32 = 3;
const PROBE_TIMEOUT_SECONDS: i32 = 2;

/// `OTPILOT_POD_IP` from `status.podIP`.
pub fn pod_ip_env() -> EnvVar {
    EnvVar {
        name: POD_IP_ENV.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: "status.podIP".to_owned(),
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// The admin port, declared by name for probes and PodMonitors.
pub fn admin_port(port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(ADMIN_PORT_NAME.to_owned()),
        container_port: i32::from(port),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }
}

/// Startup stays an exec probe on loopback: its output (why there is no
/// token yet: not enrolled, a refused password) reaches the Pod's Events,
/// where a failed HTTP probe reports only its status code.
pub fn startup(config: &InjectConfig, api_addr: &str) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec![
                config.sidecar_binary.clone(),
                "probe".to_owned(),
                "ready".to_owned(),
                "--api-addr".to_owned(),
                api_addr.to_owned(),
            ]),
        }),
        period_seconds: Some(STARTUP_PERIOD_SECONDS),
        timeout_seconds: Some(PROBE_TIMEOUT_SECONDS),
        failure_threshold: Some(STARTUP_FAILURE_THRESHOLD),
        ..Probe::default()
    }
}

/// `/healthz` on the admin port: fails once a task of the sidecar died.
pub fn liveness() -> Probe {
    http(
        "/healthz",
        LIVENESS_PERIOD_SECONDS,
        LIVENESS_FAILURE_THRESHOLD,
    )
}

/// `/readyz` on the admin port for `token`; none for `none`.
pub fn readiness(mode: Readiness) -> Option<Probe> {
    match mode {
        Readiness::None => None,
        Readiness::Token => Some(http(
            "/readyz",
            READINESS_PERIOD_SECONDS,
            READINESS_FAILURE_THRESHOLD,
        )),
    }
}

fn http(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(ADMIN_PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(PROBE_TIMEOUT_SECONDS),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}
