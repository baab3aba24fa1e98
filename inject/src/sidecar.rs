//! The objects injected into a Pod: the native sidecar container, its
//! volumes, and what the app containers get (environment, token mount).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, KeyToPath, ProjectedVolumeSource,
    ResourceRequirements, SeccompProfile, SecretProjection, SecretVolumeSource, SecurityContext,
    Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use otpilot_api::ApiCredential;
use otpilot_api::common::{SecretKeyRef, SecretValue};
use otpilot_api::labels::runtime_secret_name;
use otpilot_api::sidecar::{TOKEN_REQUEST_HEADER, TOKEN_REQUEST_HEADER_VALUE, env};

use crate::annotations::InjectRequest;
use crate::config::InjectConfig;
use crate::probes;

/// Name of the injected container; its presence marks a Pod as injected.
pub const CONTAINER_NAME: &str = "otpilot-sidecar";
/// The UID and GID the sidecar runs as (distroless `nonroot`).
pub const RUN_AS_USER: i64 = 65532;

/// Volume with the `<credential>-runtime` Secret.
pub const RUNTIME_VOLUME: &str = "otpilot-runtime";
/// Volume with the password key of the user's Secret.
pub const PASSWORD_VOLUME: &str = "otpilot-password";
/// Volume with the API key of the user's Secret.
pub const API_KEY_VOLUME: &str = "otpilot-api-key";
/// Volume with the keys of `spec.secretValues`, one file per value name.
pub const SECRET_VALUES_VOLUME: &str = "otpilot-secret-values";
/// In-memory volume holding the token file, shared with app containers.
pub const TOKEN_VOLUME: &str = "otpilot-token";
/// Every volume name the injection may add.
pub const VOLUME_NAMES: [&str; 5] = [
    RUNTIME_VOLUME,
    PASSWORD_VOLUME,
    API_KEY_VOLUME,
    SECRET_VALUES_VOLUME,
    TOKEN_VOLUME,
];

/// Where the sidecar mounts the credential's runtime Secret.
pub const RUNTIME_DIR: &str = "/var/run/otpilot/runtime";
/// Where the sidecar mounts the password (one key of the user's Secret).
pub const PASSWORD_DIR: &str = "/var/run/otpilot/password";
/// Where the sidecar mounts the API key (one key of the user's Secret).
pub const API_KEY_DIR: &str = "/var/run/otpilot/api-key";
/// Files named after the values (snake_case names, which cannot collide
/// with the kubelet's `..data` entries).
pub const SECRET_VALUES_DIR: &str = "/var/run/otpilot/secret-values";
/// Mount points inside the sidecar that a token file must stay out of.
pub const SIDECAR_MOUNT_PATHS: [&str; 4] =
    [RUNTIME_DIR, PASSWORD_DIR, API_KEY_DIR, SECRET_VALUES_DIR];
/// File names of the password and API key in their volumes. Fixed names
/// rather than the Secret's key: a key like `..data` would collide with the
/// kubelet's own entries in a Secret volume.
pub const PASSWORD_FILE: &str = "password";
/// File name of the API key in its volume.
pub const API_KEY_FILE: &str = "api-key";

// Secret volume files are owned by root; the sidecar reads them as 65532
// through the "other" bits. Only the sidecar mounts these volumes, so
// "other" is the sidecar alone. No write or execute bits.
const SECRET_FILE_MODE: i32 = 0o444;
/// Size cap of the token file's in-memory volume.
const TOKEN_VOLUME_SIZE: &str = "1Mi";

/// The native sidecar: an init container with `restartPolicy: Always`.
/// `refresh_before` is the credential's `spec.token.refreshBefore`.
pub fn container(
    request: &InjectRequest,
    spec_refs: &SecretRefs,
    refresh_before: Option<std::time::Duration>,
    config: &InjectConfig,
) -> Container {
    let api_addr = format!("127.0.0.1:{}", request.api_port);
    let proxy_addr = format!("127.0.0.1:{}", request.proxy_port);
    let mut args = vec![
        "run".to_owned(),
        "--runtime-dir".to_owned(),
        RUNTIME_DIR.to_owned(),
    ];
    if spec_refs.password.is_some() {
        args.extend([
            "--password-file".to_owned(),
            format!("{PASSWORD_DIR}/{PASSWORD_FILE}"),
        ]);
    }
    if spec_refs.api_key.is_some() {
        args.extend([
            "--api-key-file".to_owned(),
            format!("{API_KEY_DIR}/{API_KEY_FILE}"),
        ]);
    }
    for value in &spec_refs.secret_values {
        args.extend([
            "--secret-value".to_owned(),
            format!("{}={SECRET_VALUES_DIR}/{}", value.name, value.name),
        ]);
    }
    args.extend([
        "--api-addr".to_owned(),
        api_addr.clone(),
        "--proxy-addr".to_owned(),
        proxy_addr,
        // Probes and metrics on the Pod IP, which the kubelet and
        // Prometheus reach; `/token` and the proxy stay on loopback. An
        // IPv6 Pod IP comes without brackets: the sidecar reads the part
        // after the last ':' as the port.
        "--admin-addr".to_owned(),
        format!("$({}):{}", probes::POD_IP_ENV, request.admin_port),
        // The replicas of one credential share one vendor session through
        // its Lease and session Secret (docs/shared-session.md); without the
        // Pod's ServiceAccount token or the permission, the sidecar logs in
        // alone and says so.
        "--session-credential".to_owned(),
        request.credential.clone(),
    ]);
    if request.proxy_require_header {
        args.push("--proxy-require-header".to_owned());
    }
    if let Some(proxy) = &config.egress_proxy {
        args.extend(["--egress-proxy".to_owned(), proxy.clone()]);
        if let Some(list) = &config.egress_no_proxy {
            args.extend(["--egress-no-proxy".to_owned(), list.clone()]);
        }
    }
    if let Some(lead) = refresh_before {
        args.extend([
            "--refresh-before".to_owned(),
            lead.as_secs_f64().to_string(),
        ]);
    }
    let mut mounts = vec![read_only_mount(RUNTIME_VOLUME, RUNTIME_DIR)];
    if spec_refs.password.is_some() {
        mounts.push(read_only_mount(PASSWORD_VOLUME, PASSWORD_DIR));
    }
    if spec_refs.api_key.is_some() {
        mounts.push(read_only_mount(API_KEY_VOLUME, API_KEY_DIR));
    }
    if !spec_refs.secret_values.is_empty() {
        mounts.push(read_only_mount(SECRET_VALUES_VOLUME, SECRET_VALUES_DIR));
    }
    if let Some(token_file) = &request.token_file {
        // App containers run as other users than the sidecar (65532): the
        // file is world-readable, in a memory volume only this Pod mounts.
        args.extend([
            "--token-file".to_owned(),
            token_file.path.clone(),
            "--token-file-mode".to_owned(),
            "0644".to_owned(),
        ]);
        mounts.push(VolumeMount {
            name: TOKEN_VOLUME.to_owned(),
            mount_path: token_file.dir.clone(),
            ..VolumeMount::default()
        });
    }
    Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(
            request
                .image
                .clone()
                .unwrap_or_else(|| config.sidecar_image.clone()),
        ),
        image_pull_policy: config.image_pull_policy.clone(),
        command: Some(vec![config.sidecar_binary.clone()]),
        args: Some(args),
        restart_policy: Some("Always".to_owned()),
        env: Some(vec![probes::pod_ip_env()]),
        ports: Some(vec![probes::admin_port(request.admin_port)]),
        startup_probe: Some(probes::startup(config, &api_addr)),
        liveness_probe: Some(probes::liveness()),
        readiness_probe: probes::readiness(request.readiness),
        resources: Some(resources(config)),
        security_context: Some(restricted_security_context()),
        volume_mounts: Some(mounts),
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    }
}

/// The Secret references the sidecar mounts, taken from the credential's spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRefs {
    /// The runtime Secret's name (`<credential>-runtime`).
    pub runtime: String,
    /// Absent for vendors whose profile uses no password.
    pub password: Option<SecretKeyRef>,
    /// Absent for vendors whose profile uses no API key.
    pub api_key: Option<SecretKeyRef>,
    /// `spec.secretValues`: further vendor secrets, by template name.
    pub secret_values: Vec<SecretValue>,
}

impl SecretRefs {
    /// The references of `credential`, named `credential_name`.
    pub fn of(credential_name: &str, credential: &ApiCredential) -> Self {
        SecretRefs {
            runtime: runtime_secret_name(credential_name),
            password: credential.spec.password_secret_ref.clone(),
            api_key: credential.spec.api_key_secret_ref.clone(),
            secret_values: credential.spec.secret_values.clone(),
        }
    }
}

/// The volumes the sidecar mounts. The user's Secrets are projected with
/// `items`, so only the referenced key reaches the Pod.
pub fn volumes(refs: &SecretRefs, request: &InjectRequest) -> Vec<Volume> {
    let mut volumes = vec![Volume {
        name: RUNTIME_VOLUME.to_owned(),
        // The whole runtime Secret: every key in it is for the sidecar,
        // and the operator may add keys within a layout version.
        secret: Some(SecretVolumeSource {
            secret_name: Some(refs.runtime.clone()),
            default_mode: Some(SECRET_FILE_MODE),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }];
    if let Some(password) = &refs.password {
        volumes.push(single_key_volume(PASSWORD_VOLUME, password, PASSWORD_FILE));
    }
    if let Some(api_key) = &refs.api_key {
        volumes.push(single_key_volume(API_KEY_VOLUME, api_key, API_KEY_FILE));
    }
    if !refs.secret_values.is_empty() {
        volumes.push(secret_values_volume(&refs.secret_values));
    }
    if request.token_file.is_some() {
        volumes.push(Volume {
            name: TOKEN_VOLUME.to_owned(),
            // tmpfs: the token never touches the node's disk.
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_owned()),
                size_limit: Some(Quantity(TOKEN_VOLUME_SIZE.to_owned())),
            }),
            ..Volume::default()
        });
    }
    volumes
}

fn single_key_volume(name: &str, reference: &SecretKeyRef, file: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(reference.name.clone()),
            items: Some(vec![KeyToPath {
                key: reference.key.clone(),
                path: file.to_owned(),
                mode: None,
            }]),
            default_mode: Some(SECRET_FILE_MODE),
            optional: None,
        }),
        ..Volume::default()
    }
}

/// One volume for every secret value, whichever Secrets hold them: a
/// projection of just the referenced keys, each as a file named after the
/// value. The kubelet updates it atomically, as a Secret volume.
fn secret_values_volume(values: &[SecretValue]) -> Volume {
    let sources = values
        .iter()
        .map(|v| VolumeProjection {
            secret: Some(SecretProjection {
                name: v.secret_key_ref.name.clone(),
                items: Some(vec![KeyToPath {
                    key: v.secret_key_ref.key.clone(),
                    path: v.name.clone(),
                    mode: None,
                }]),
                optional: None,
            }),
            ..VolumeProjection::default()
        })
        .collect();
    Volume {
        name: SECRET_VALUES_VOLUME.to_owned(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(sources),
            default_mode: Some(SECRET_FILE_MODE),
        }),
        ..Volume::default()
    }
}

/// Environment every app container gets, in this order.
pub fn app_env(request: &InjectRequest) -> Vec<EnvVar> {
    let mut vars = vec![
        env_var(
            env::TOKEN_URL,
            format!("http://127.0.0.1:{}/token", request.api_port),
        ),
        env_var(
            env::TOKEN_HEADER,
            format!("{TOKEN_REQUEST_HEADER}: {TOKEN_REQUEST_HEADER_VALUE}"),
        ),
        env_var(
            env::PROXY_URL,
            format!("http://127.0.0.1:{}", request.proxy_port),
        ),
    ];
    if let Some(token_file) = &request.token_file {
        vars.push(env_var(env::TOKEN_FILE, token_file.path.clone()));
    }
    vars
}

/// The read-only token mount app containers get, when a token file is asked for.
pub fn app_token_mount(request: &InjectRequest) -> Option<VolumeMount> {
    request
        .token_file
        .as_ref()
        .map(|token_file| read_only_mount(TOKEN_VOLUME, &token_file.dir))
}

fn env_var(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value),
        value_from: None,
    }
}

fn read_only_mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

fn resources(config: &InjectConfig) -> ResourceRequirements {
    let r = &config.resources;
    let quantities = |pairs: &[(&str, Option<&String>)]| -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .filter_map(|(name, value)| value.map(|v| ((*name).to_owned(), Quantity(v.clone()))))
            .collect()
    };
    ResourceRequirements {
        requests: Some(quantities(&[
            ("cpu", Some(&r.cpu_request)),
            ("memory", Some(&r.memory_request)),
        ])),
        limits: Some(quantities(&[
            ("cpu", r.cpu_limit.as_ref()),
            ("memory", Some(&r.memory_limit)),
        ])),
        ..ResourceRequirements::default()
    }
}

/// The Pod Security Standards "restricted" profile, for the sidecar container.
pub fn restricted_security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        run_as_group: Some(RUN_AS_USER),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}
