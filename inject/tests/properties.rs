//! Properties that hold for every Pod shape × annotation set × credential ×
//! installation setting: the patch applies, injecting twice changes
//! nothing, the sidecar is first, the user's objects keep their order, and
//! nothing mounts a Secret the sidecar does not need.

mod support;

use k8s_openapi::api::core::v1::{Container, Pod};
use otpilot_api::ApiCredential;
use otpilot_api::sidecar::env;
use otpilot_inject::annotations::{API_PORT, PROXY_PORT, SIDECAR_IMAGE, TOKEN_FILE};
use otpilot_inject::sidecar::CONTAINER_NAME;
use otpilot_inject::{Decision, InjectConfig, WhenNotReady, mutate};
use support::*;

fn pod_shapes() -> Vec<(&'static str, Pod)> {
    vec![
        ("one container", pod().injecting().build()),
        (
            "init containers, volumes, several containers with env and mounts",
            pod()
                .injecting()
                .init_containers(vec![container("migrate"), container("seed")])
                .secret_volume("tls", "app-tls")
                .containers(vec![
                    with_mount(with_env(container("app"), "LOG", "info"), "tls", "/tls"),
                    container("worker"),
                    with_env(
                        container("metrics"),
                        env::TOKEN_URL,
                        "http://elsewhere/token",
                    ),
                ])
                .build(),
        ),
        (
            "empty init container and volume lists",
            pod().injecting().init_containers(vec![]).build(),
        ),
    ]
}

fn annotation_sets() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        vec![],
        vec![(API_PORT, "9001"), (PROXY_PORT, "9002")],
        vec![(TOKEN_FILE, "/var/run/otpilot/token/token")],
        vec![
            (TOKEN_FILE, "/run/secrets/vendor/token"),
            (SIDECAR_IMAGE, "mine:2"),
        ],
    ]
}

fn credentials() -> Vec<ApiCredential> {
    vec![
        credential().build(),
        credential().api_key("vendor-api", "key").build(),
        credential()
            .api_key("vendor-login", "api-key")
            .ready_condition("False", "EnrollmentPending", "")
            .build(),
    ]
}

fn configs() -> Vec<InjectConfig> {
    vec![
        InjectConfig {
            allow_image_override: true,
            ..config()
        },
        InjectConfig {
            allow_image_override: true,
            when_not_ready: WhenNotReady::Inject,
            ..config()
        },
    ]
}

fn names(containers: &[Container]) -> Vec<&str> {
    containers.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn every_injection_applies_cleanly_is_idempotent_and_mounts_only_what_the_sidecar_needs() {
    let mut injected_count = 0;
    for (shape, base) in pod_shapes() {
        for annotations in annotation_sets() {
            for cred in credentials() {
                for config in configs() {
                    let mut builder = PodBuilderFrom(base.clone());
                    for (k, v) in &annotations {
                        builder = builder.annotated(k, v);
                    }
                    let before = builder.0;
                    let case = format!(
                        "{shape} / {annotations:?} / {:?} / {:?}",
                        cred.spec.api_key_secret_ref, config.when_not_ready
                    );
                    let patch = match mutate(&before, Some(&cred), &config) {
                        Decision::Allow { patch, .. } => patch,
                        Decision::Deny { message, .. } => {
                            // The only refusal in this matrix: not Ready under Refuse.
                            assert_eq!(
                                config.when_not_ready,
                                WhenNotReady::Refuse,
                                "{case}: {message}"
                            );
                            assert!(message.contains("not Ready"), "{case}: {message}");
                            continue;
                        }
                    };
                    injected_count += 1;
                    let after = apply(&before, &patch);
                    assert_eq!(
                        mutate(&after, Some(&cred), &config),
                        Decision::untouched(),
                        "{case}: mutating the injected Pod again must change nothing"
                    );
                    check_invariants(&case, &before, &after, &cred);
                }
            }
        }
    }
    assert!(
        injected_count >= 24,
        "the matrix injected only {injected_count} Pods"
    );
}

struct PodBuilderFrom(Pod);

impl PodBuilderFrom {
    fn annotated(mut self, key: &str, value: &str) -> Self {
        self.0
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value.to_owned());
        self
    }
}

fn check_invariants(case: &str, before: &Pod, after: &Pod, cred: &ApiCredential) {
    let old = before.spec.as_ref().expect("spec");
    let new = after.spec.as_ref().expect("spec");
    let old_init = old.init_containers.clone().unwrap_or_default();
    let new_init = new.init_containers.clone().unwrap_or_default();
    // The sidecar first, then the user's init containers unchanged and in order.
    assert_eq!(
        new_init.first().map(|c| c.name.as_str()),
        Some(CONTAINER_NAME),
        "{case}"
    );
    assert_eq!(&new_init[1..], old_init.as_slice(), "{case}");
    assert_eq!(
        new_init[0].restart_policy.as_deref(),
        Some("Always"),
        "{case}"
    );
    // App containers: same names and order; only env and mounts added.
    assert_eq!(names(&new.containers), names(&old.containers), "{case}");
    for (old_c, new_c) in old.containers.iter().zip(&new.containers) {
        let old_env = old_c.env.clone().unwrap_or_default();
        let new_env = new_c.env.clone().unwrap_or_default();
        assert_eq!(
            &new_env[..old_env.len()],
            old_env.as_slice(),
            "{case}: {} keeps its env first",
            old_c.name
        );
        for required in [env::TOKEN_URL, env::TOKEN_HEADER, env::PROXY_URL] {
            assert_eq!(
                new_env.iter().filter(|v| v.name == required).count(),
                1,
                "{case}: {} has {required} once",
                new_c.name
            );
        }
        let old_mounts = old_c.volume_mounts.clone().unwrap_or_default();
        let new_mounts = new_c.volume_mounts.clone().unwrap_or_default();
        assert_eq!(
            &new_mounts[..old_mounts.len()],
            old_mounts.as_slice(),
            "{case}"
        );
        for added in &new_mounts[old_mounts.len()..] {
            assert_eq!(
                added.read_only,
                Some(true),
                "{case}: app containers mount the token read-only"
            );
        }
        let stripped = Container {
            env: None,
            volume_mounts: None,
            ..new_c.clone()
        };
        assert_eq!(
            stripped,
            Container {
                env: None,
                volume_mounts: None,
                ..old_c.clone()
            },
            "{case}"
        );
    }
    // Volumes: the user's first and unchanged; the added Secret volumes are
    // the runtime Secret and single referenced keys, never the recovery Secret.
    let old_volumes = old.volumes.clone().unwrap_or_default();
    let new_volumes = new.volumes.clone().unwrap_or_default();
    assert_eq!(
        &new_volumes[..old_volumes.len()],
        old_volumes.as_slice(),
        "{case}"
    );
    let name = cred.metadata.name.as_deref().expect("name");
    let mut referenced = Vec::new();
    if let Some(password) = &cred.spec.password_secret_ref {
        referenced.push((password.name.clone(), password.key.clone()));
    }
    if let Some(api_key) = &cred.spec.api_key_secret_ref {
        referenced.push((api_key.name.clone(), api_key.key.clone()));
    }
    for volume in &new_volumes[old_volumes.len()..] {
        let Some(secret) = &volume.secret else {
            continue;
        };
        let secret_name = secret.secret_name.clone().unwrap_or_default();
        assert_ne!(
            secret_name,
            format!("{name}-recovery"),
            "{case}: the recovery Secret is never mounted"
        );
        let mode = secret.default_mode.unwrap_or(0o644);
        assert_eq!(
            mode & 0o333,
            0,
            "{case}: Secret files are read-only ({mode:o})"
        );
        if secret_name == format!("{name}-runtime") {
            continue;
        }
        let items = secret.items.clone().unwrap_or_default();
        assert_eq!(
            items.len(),
            1,
            "{case}: {} projects exactly one key",
            volume.name
        );
        assert!(
            referenced.contains(&(secret_name.clone(), items[0].key.clone())),
            "{case}: {secret_name}/{} is not referenced by the credential",
            items[0].key
        );
    }
    // Mounted into the sidecar only; app containers mount only the token volume.
    for app in &new.containers {
        for mount in app.volume_mounts.iter().flatten() {
            assert!(
                !["otpilot-runtime", "otpilot-password", "otpilot-api-key"]
                    .contains(&mount.name.as_str()),
                "{case}: app container {} mounts {}",
                app.name,
                mount.name
            );
        }
    }
}
