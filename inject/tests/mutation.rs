//! The injection mutation: what an admitted Pod gets.

mod support;

use k8s_openapi::api::core::v1::{Container, Pod};
use otpilot_api::api_credential::TokenSpec;
use otpilot_api::labels::{INJECTED_LABEL, INJECTED_LABEL_VALUE};
use otpilot_api::sidecar::env;
use otpilot_inject::annotations::{
    ADMIN_PORT, API_PORT, INJECT, INJECTED, PROXY_PORT, PROXY_REQUIRE_HEADER, READINESS,
    SIDECAR_IMAGE, TOKEN_FILE,
};
use otpilot_inject::sidecar::CONTAINER_NAME;
use otpilot_inject::{Decision, DenyReason, InjectConfig, mutate};
use pretty_assertions::assert_eq;
use serde_json::json;
use support::*;

fn sidecar(pod: &Pod) -> &Container {
    let init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .expect("the Pod has init containers");
    init.iter()
        .find(|c| c.name == CONTAINER_NAME)
        .expect("the sidecar is among the init containers")
}

fn env_of(container: &Container) -> Vec<(String, String)> {
    container
        .env
        .iter()
        .flatten()
        .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn a_pod_without_the_annotation_is_untouched() {
    let decision = mutate(&pod().build(), Some(&credential().build()), &config());
    assert_eq!(decision, Decision::untouched());
    let decision = mutate(&pod().annotated("other", "x").build(), None, &config());
    assert_eq!(decision, Decision::untouched());
}

#[test]
fn an_annotated_pod_gets_the_native_sidecar_exactly_as_specified() {
    let pod = pod().injecting().build();
    let (patched, warnings) = injected(&pod, &credential().build(), &config());
    assert_eq!(warnings, Vec::<String>::new());
    let spec = patched.spec.as_ref().expect("spec");
    let expected_sidecar = json!({
        "name": "otpilot-sidecar",
        "image": IMAGE,
        "command": ["/usr/local/bin/otpilot-sidecar"],
        "args": ["run",
            "--runtime-dir", "/var/run/otpilot/runtime",
            "--password-file", "/var/run/otpilot/password/password",
            "--api-addr", "127.0.0.1:8181",
            "--proxy-addr", "127.0.0.1:8182",
            "--admin-addr", "$(OTPILOT_POD_IP):8183",
            "--session-credential", CREDENTIAL],
        "restartPolicy": "Always",
        "env": [{"name": "OTPILOT_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"name": "otpilot-admin", "containerPort": 8183, "protocol": "TCP"}],
        "startupProbe": {
            "exec": {"command": ["/usr/local/bin/otpilot-sidecar", "probe", "ready", "--api-addr", "127.0.0.1:8181"]},
            "periodSeconds": 1, "timeoutSeconds": 2, "failureThreshold": 600
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "otpilot-admin"},
            "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3
        },
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
            "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "privileged": false,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}
        },
        "volumeMounts": [
            {"name": "otpilot-runtime", "mountPath": "/var/run/otpilot/runtime", "readOnly": true},
            {"name": "otpilot-password", "mountPath": "/var/run/otpilot/password", "readOnly": true}
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError"
    });
    assert_eq!(
        serde_json::to_value(sidecar(&patched)).expect("json"),
        expected_sidecar
    );
    assert_eq!(
        serde_json::to_value(&spec.volumes).expect("json"),
        json!([
            {"name": "otpilot-runtime", "secret": {"secretName": "vendor-runtime", "defaultMode": 0o444}},
            {"name": "otpilot-password", "secret": {"secretName": "vendor-login", "defaultMode": 0o444,
                "items": [{"key": "password", "path": "password"}]}}
        ])
    );
    assert_eq!(
        env_of(&spec.containers[0]),
        vec![
            (
                env::TOKEN_URL.to_owned(),
                "http://127.0.0.1:8181/token".to_owned()
            ),
            (
                env::TOKEN_HEADER.to_owned(),
                "Otpilot-Request: true".to_owned()
            ),
            (
                env::PROXY_URL.to_owned(),
                "http://127.0.0.1:8182".to_owned()
            ),
        ]
    );
    assert_eq!(
        patched
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(INJECTED))
            .map(String::as_str),
        Some(CREDENTIAL)
    );
    assert_eq!(
        patched
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(INJECTED_LABEL))
            .map(String::as_str),
        Some(INJECTED_LABEL_VALUE)
    );
    assert_eq!(
        sidecar(&patched).readiness_probe,
        None,
        "no readiness probe unless the Pod asks (annotation {READINESS})"
    );
}

#[test]
fn the_injected_label_joins_labels_the_pod_already_has() {
    let pod = pod().injecting().labelled("app", "web").build();
    let (patched, _) = injected(&pod, &credential().build(), &config());
    let labels = patched.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(
        labels.get(INJECTED_LABEL).map(String::as_str),
        Some(INJECTED_LABEL_VALUE)
    );
}

#[test]
fn readiness_token_gives_the_sidecar_an_http_readiness_probe_on_the_admin_port() {
    let pod = pod()
        .injecting()
        .annotated(READINESS, "token")
        .annotated(ADMIN_PORT, "9183")
        .build();
    let (patched, _) = injected(&pod, &credential().build(), &config());
    let sidecar = sidecar(&patched);
    assert_eq!(
        serde_json::to_value(&sidecar.readiness_probe).expect("json"),
        json!({
            "httpGet": {"path": "/readyz", "port": "otpilot-admin"},
            "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3
        })
    );
    assert_eq!(
        serde_json::to_value(&sidecar.ports).expect("json"),
        json!([{"name": "otpilot-admin", "containerPort": 9183, "protocol": "TCP"}])
    );
    let args = sidecar.args.clone().unwrap_or_default().join(" ");
    assert!(
        args.contains("--admin-addr $(OTPILOT_POD_IP):9183"),
        "{args}"
    );
}

#[test]
fn the_credentials_refresh_before_reaches_the_sidecar() {
    let cases = [
        (None, None),
        (Some("45s"), Some("45")),
        (Some("1m30s"), Some("90")),
        (Some("1500ms"), Some("1.5")),
    ];
    for (lead, flag) in cases {
        let mut credential = credential().build();
        credential.spec.token = lead.map(|l| TokenSpec {
            refresh_before: otpilot_api::duration::Duration::new(l),
        });
        let (patched, _) = injected(&pod().injecting().build(), &credential, &config());
        let args = sidecar(&patched).args.clone().unwrap_or_default();
        let got = args
            .iter()
            .position(|a| a == "--refresh-before")
            .map(|i| args[i + 1].as_str());
        assert_eq!(got, flag, "{lead:?}");
    }
}

#[test]
fn the_installations_egress_proxy_reaches_the_sidecar() {
    let flag = |args: &[String], name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let direct = injected(&pod().injecting().build(), &credential().build(), &config()).0;
    let args = sidecar(&direct).args.clone().unwrap_or_default();
    assert_eq!(flag(&args, "--egress-proxy"), None, "direct by default");

    let mut through = config();
    through.egress_proxy = Some("http://proxy.corp:3128".into());
    through.egress_no_proxy = Some("10.0.0.0/8,.svc".into());
    let patched = injected(&pod().injecting().build(), &credential().build(), &through).0;
    let args = sidecar(&patched).args.clone().unwrap_or_default();
    assert_eq!(
        flag(&args, "--egress-proxy").as_deref(),
        Some("http://proxy.corp:3128")
    );
    assert_eq!(
        flag(&args, "--egress-no-proxy").as_deref(),
        Some("10.0.0.0/8,.svc")
    );
}

#[test]
fn the_api_key_is_mounted_alone_from_its_secret_and_passed_to_the_sidecar() {
    let cred = credential().api_key("vendor-login", "api-key").build();
    let (patched, _) = injected(&pod().injecting().build(), &cred, &config());
    let args = sidecar(&patched).args.clone().unwrap_or_default();
    let flag = args
        .iter()
        .position(|a| a == "--api-key-file")
        .expect("--api-key-file passed");
    assert_eq!(args[flag + 1], "/var/run/otpilot/api-key/api-key");
    let volumes =
        serde_json::to_value(&patched.spec.as_ref().expect("spec").volumes).expect("json");
    assert_eq!(
        volumes[2],
        json!({"name": "otpilot-api-key", "secret": {"secretName": "vendor-login", "defaultMode": 0o444,
            "items": [{"key": "api-key", "path": "api-key"}]}})
    );
}

#[test]
fn secret_values_are_projected_key_by_key_into_one_volume_and_passed_as_flags() {
    let cred = credential()
        .secret_value("client_secret", "conduit-app", "secret")
        .secret_value("signing_key", "other-secret", "key.pem")
        .build();
    let (patched, _) = injected(&pod().injecting().build(), &cred, &config());
    let container = sidecar(&patched);
    let args = container.args.clone().unwrap_or_default();
    let values: Vec<&str> = args
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "--secret-value")
        .map(|(i, _)| args[i + 1].as_str())
        .collect();
    assert_eq!(
        values,
        vec![
            "client_secret=/var/run/otpilot/secret-values/client_secret",
            "signing_key=/var/run/otpilot/secret-values/signing_key"
        ]
    );
    let mounts = serde_json::to_value(&container.volume_mounts).expect("json");
    assert!(
        mounts.as_array().expect("mounts").contains(&json!({
            "name": "otpilot-secret-values", "mountPath": "/var/run/otpilot/secret-values",
            "readOnly": true})),
        "{mounts}"
    );
    let volumes =
        serde_json::to_value(&patched.spec.as_ref().expect("spec").volumes).expect("json");
    let volume = volumes
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "otpilot-secret-values")
        .expect("the secret values volume");
    assert_eq!(
        volume,
        &json!({"name": "otpilot-secret-values", "projected": {"defaultMode": 0o444, "sources": [
            {"secret": {"name": "conduit-app", "items": [{"key": "secret", "path": "client_secret"}]}},
            {"secret": {"name": "other-secret", "items": [{"key": "key.pem", "path": "signing_key"}]}}
        ]}})
    );
    // Only the sidecar mounts it.
    for app in patched.spec.as_ref().expect("spec").containers.iter() {
        assert!(
            app.volume_mounts
                .iter()
                .flatten()
                .all(|m| m.name != "otpilot-secret-values"),
            "{}",
            app.name
        );
    }
}

#[test]
fn a_credential_without_secret_values_gets_no_such_volume_or_flag() {
    let (patched, _) = injected(&pod().injecting().build(), &credential().build(), &config());
    let args = sidecar(&patched).args.clone().unwrap_or_default();
    assert!(!args.iter().any(|a| a == "--secret-value"), "{args:?}");
    let volumes = patched
        .spec
        .as_ref()
        .expect("spec")
        .volumes
        .clone()
        .unwrap_or_default();
    assert!(volumes.iter().all(|v| v.name != "otpilot-secret-values"));
}

#[test]
fn the_sidecar_goes_first_and_existing_init_containers_keep_their_order() {
    let pod = pod()
        .injecting()
        .init_containers(vec![container("migrate"), container("warm-up")])
        .build();
    let (patched, _) = injected(&pod, &credential().build(), &config());
    let names: Vec<_> = patched
        .spec
        .as_ref()
        .expect("spec")
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["otpilot-sidecar", "migrate", "warm-up"]);
}

#[test]
fn a_variable_the_user_set_is_kept_and_noted_in_a_warning() {
    let app = with_env(container("app"), env::PROXY_URL, "http://my-proxy:3128");
    let pod = pod()
        .injecting()
        .containers(vec![app, container("worker")])
        .build();
    let (patched, warnings) = injected(&pod, &credential().build(), &config());
    let spec = patched.spec.as_ref().expect("spec");
    let app_env = env_of(&spec.containers[0]);
    assert_eq!(
        app_env.iter().filter(|(n, _)| n == env::PROXY_URL).count(),
        1
    );
    assert!(app_env.contains(&(env::PROXY_URL.to_owned(), "http://my-proxy:3128".to_owned())));
    assert!(app_env.iter().any(|(n, _)| n == env::TOKEN_URL));
    assert_eq!(
        env_of(&spec.containers[1]).len(),
        3,
        "the other container gets all three"
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("container app") && warnings[0].contains(env::PROXY_URL),
        "{warnings:?}"
    );
}

#[test]
fn ports_from_annotations_reach_the_arguments_probes_and_environment() {
    let pod = pod()
        .injecting()
        .annotated(API_PORT, "9101")
        .annotated(PROXY_PORT, "9102")
        .build();
    let (patched, _) = injected(&pod, &credential().build(), &config());
    let sidecar = sidecar(&patched);
    let args = sidecar.args.clone().unwrap_or_default().join(" ");
    assert!(
        args.contains("--api-addr 127.0.0.1:9101 --proxy-addr 127.0.0.1:9102"),
        "{args}"
    );
    let probe = sidecar
        .startup_probe
        .as_ref()
        .and_then(|p| p.exec.as_ref())
        .and_then(|e| e.command.clone());
    assert_eq!(
        probe.as_deref().and_then(|c| c.last()).map(String::as_str),
        Some("127.0.0.1:9101")
    );
    let app_env = env_of(&patched.spec.as_ref().expect("spec").containers[0]);
    assert!(app_env.contains(&(
        env::TOKEN_URL.to_owned(),
        "http://127.0.0.1:9101/token".to_owned()
    )));
    assert!(app_env.contains(&(
        env::PROXY_URL.to_owned(),
        "http://127.0.0.1:9102".to_owned()
    )));
}

#[test]
fn a_token_file_gets_an_in_memory_volume_writable_by_the_sidecar_and_read_only_in_apps() {
    let path = "/var/run/otpilot/token/token";
    let pod = pod()
        .injecting()
        .annotated(TOKEN_FILE, path)
        .containers(vec![
            container("app"),
            with_mount(container("worker"), "data", "/data"),
        ])
        .build();
    let (patched, _) = injected(&pod, &credential().build(), &config());
    let spec = patched.spec.as_ref().expect("spec");
    let volumes = serde_json::to_value(&spec.volumes).expect("json");
    assert_eq!(
        volumes[2],
        json!({"name": "otpilot-token", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}})
    );
    let sidecar = sidecar(&patched);
    let sidecar_mount = sidecar
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "otpilot-token")
        .expect("mounted");
    assert_eq!(
        (sidecar_mount.mount_path.as_str(), sidecar_mount.read_only),
        ("/var/run/otpilot/token", None)
    );
    assert!(sidecar.args.iter().flatten().any(|a| a == path));
    for app in &spec.containers {
        let mount = app
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "otpilot-token")
            .expect("app mount");
        assert_eq!(
            (mount.mount_path.as_str(), mount.read_only),
            ("/var/run/otpilot/token", Some(true)),
            "{}",
            app.name
        );
        assert!(
            env_of(app).contains(&(env::TOKEN_FILE.to_owned(), path.to_owned())),
            "{}",
            app.name
        );
    }
    let worker_mounts: Vec<_> = spec.containers[1]
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        worker_mounts,
        ["data", "otpilot-token"],
        "the worker's own mount stays first"
    );
}

#[test]
fn the_image_annotation_is_used_only_where_the_installation_allows_it() {
    let pod = pod()
        .injecting()
        .annotated(SIDECAR_IMAGE, "registry.local/sidecar:dev")
        .build();
    let allowing = InjectConfig {
        allow_image_override: true,
        ..config()
    };
    let (patched, _) = injected(&pod, &credential().build(), &allowing);
    assert_eq!(
        sidecar(&patched).image.as_deref(),
        Some("registry.local/sidecar:dev")
    );
    let (reason, _) = denied(mutate(&pod, Some(&credential().build()), &config()));
    assert_eq!(reason, DenyReason::InvalidAnnotation);
}

#[test]
fn a_pod_injected_before_is_left_alone_whatever_its_annotations_say() {
    let marked = pod()
        .annotated(INJECT, "BROKEN/x")
        .annotated(INJECTED, "vendor")
        .build();
    assert_eq!(mutate(&marked, None, &config()), Decision::untouched());
    let by_hand = pod()
        .injecting()
        .init_containers(vec![container(CONTAINER_NAME)])
        .build();
    assert_eq!(mutate(&by_hand, None, &config()), Decision::untouched());
    let as_app = pod()
        .injecting()
        .containers(vec![container("app"), container(CONTAINER_NAME)])
        .build();
    assert_eq!(mutate(&as_app, None, &config()), Decision::untouched());
}

#[test]
fn the_proxy_header_annotation_reaches_the_sidecar_and_the_session_key_stays_in_it() {
    let pod = pod()
        .injecting()
        .containers(vec![container("app"), container("other-app")])
        .build();
    let (plain, _) = injected(&pod, &credential().build(), &config());
    let args = sidecar(&plain).args.clone().unwrap_or_default();
    assert!(
        !args.iter().any(|a| a == "--proxy-require-header"),
        "{args:?}"
    );
    let strict = pod_with(PROXY_REQUIRE_HEADER, "true");
    let (patched, _) = injected(&strict, &credential().build(), &config());
    let args = sidecar(&patched).args.clone().unwrap_or_default();
    assert!(
        args.iter().any(|a| a == "--proxy-require-header"),
        "{args:?}"
    );
    // The runtime Secret (and with it the session key) is mounted into the
    // sidecar only: app containers never get its volume.
    for container in &patched.spec.as_ref().expect("spec").containers {
        assert!(
            !container
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name == "otpilot-runtime"),
            "{} mounts the runtime Secret",
            container.name
        );
    }
}

fn pod_with(annotation: &str, value: &str) -> Pod {
    pod()
        .injecting()
        .annotated(annotation, value)
        .containers(vec![container("app"), container("other-app")])
        .build()
}

#[test]
fn the_installations_pull_secrets_reach_the_pod_without_repeating_its_own() {
    let names = |pod: &Pod| -> Option<Vec<String>> {
        let secrets = pod
            .spec
            .as_ref()
            .expect("spec")
            .image_pull_secrets
            .as_ref()?;
        Some(secrets.iter().map(|s| s.name.clone()).collect())
    };
    let with_secrets = InjectConfig {
        image_pull_secrets: vec!["registry".to_owned(), "own".to_owned()],
        ..config()
    };
    let mut own = pod().injecting().build();
    own.spec.as_mut().expect("spec").image_pull_secrets =
        Some(vec![k8s_openapi::api::core::v1::LocalObjectReference {
            name: "own".to_owned(),
        }]);
    // (pod, installation's settings, the Pod's pull Secrets after injection)
    let cases: [(Pod, &InjectConfig, Option<Vec<&str>>); 4] = [
        (
            pod().injecting().build(),
            &with_secrets,
            Some(vec!["registry", "own"]),
        ),
        (own.clone(), &with_secrets, Some(vec!["own", "registry"])),
        (pod().injecting().build(), &config(), None),
        (own, &config(), Some(vec!["own"])),
    ];
    for (pod, settings, expected) in cases {
        let (patched, _) = injected(&pod, &credential().build(), settings);
        let expected = expected.map(|v| v.into_iter().map(str::to_owned).collect::<Vec<_>>());
        assert_eq!(
            names(&patched),
            expected,
            "settings {:?}",
            settings.image_pull_secrets
        );
    }
}
