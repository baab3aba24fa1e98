//! Builders for the mutation tests: Pods, ApiCredentials and configs that
//! read like the case they describe.

#![allow(dead_code)]

pub mod chart;
pub mod webhook;

use std::collections::BTreeMap;

use json_patch::PatchOperation;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, Pod, PodSpec, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use otpilot_api::common::SecretKeyRef;
use otpilot_api::{ApiCredential, ApiCredentialSpec, ApiCredentialStatus};
use otpilot_inject::annotations::INJECT;
use otpilot_inject::{Decision, InjectConfig, mutate};

pub const NAMESPACE: &str = "payments";
pub const CREDENTIAL: &str = "vendor";
pub const IMAGE: &str = "registry.example/otpilot-sidecar:0.1.0";

pub fn config() -> InjectConfig {
    InjectConfig::new(IMAGE)
}

pub fn container(name: &str) -> Container {
    Container {
        name: name.to_owned(),
        image: Some(format!("{name}:1")),
        ..Container::default()
    }
}

pub fn with_env(mut c: Container, name: &str, value: &str) -> Container {
    c.env.get_or_insert_with(Vec::new).push(EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        value_from: None,
    });
    c
}

pub fn with_port(mut c: Container, port: i32) -> Container {
    c.ports.get_or_insert_with(Vec::new).push(ContainerPort {
        container_port: port,
        ..ContainerPort::default()
    });
    c
}

pub fn with_mount(mut c: Container, volume: &str, path: &str) -> Container {
    c.volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            name: volume.to_owned(),
            mount_path: path.to_owned(),
            ..VolumeMount::default()
        });
    c
}

/// A Pod in [`NAMESPACE`] with one app container named `app`.
pub struct PodBuilder {
    pod: Pod,
}

pub fn pod() -> PodBuilder {
    PodBuilder {
        pod: Pod {
            metadata: ObjectMeta {
                name: Some("web-0".to_owned()),
                namespace: Some(NAMESPACE.to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![container("app")],
                // A ServiceAccount of its own: no warning about `default`.
                service_account_name: Some("web".to_owned()),
                ..PodSpec::default()
            }),
            status: None,
        },
    }
}

impl PodBuilder {
    pub fn annotated(mut self, key: &str, value: &str) -> Self {
        self.pod
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn labelled(mut self, key: &str, value: &str) -> Self {
        self.pod
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// `otpilot.dev/inject: vendor`
    pub fn injecting(self) -> Self {
        self.annotated(INJECT, CREDENTIAL)
    }

    pub fn containers(mut self, containers: Vec<Container>) -> Self {
        self.spec().containers = containers;
        self
    }

    pub fn init_containers(mut self, containers: Vec<Container>) -> Self {
        self.spec().init_containers = Some(containers);
        self
    }

    pub fn secret_volume(mut self, name: &str, secret: &str) -> Self {
        self.spec()
            .volumes
            .get_or_insert_with(Vec::new)
            .push(Volume {
                name: name.to_owned(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.to_owned()),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
        self
    }

    pub fn in_namespace(mut self, namespace: Option<&str>) -> Self {
        self.pod.metadata.namespace = namespace.map(str::to_owned);
        self
    }

    fn spec(&mut self) -> &mut PodSpec {
        self.pod.spec.get_or_insert_with(PodSpec::default)
    }

    pub fn build(self) -> Pod {
        self.pod
    }
}

/// A Ready ApiCredential [`CREDENTIAL`] in [`NAMESPACE`], password in
/// Secret `vendor-login` key `password`.
pub struct CredentialBuilder {
    credential: ApiCredential,
}

pub fn credential() -> CredentialBuilder {
    let spec: ApiCredentialSpec = serde_json::from_value(serde_json::json!({
        "profile": "audd",
        "baseUrl": "https://api.vendor.example",
        "username": "svc-payments",
        "passwordSecretRef": {"name": "vendor-login", "key": "password"},
    }))
    .expect("a valid spec");
    let mut credential = ApiCredential::new(CREDENTIAL, spec);
    credential.metadata.namespace = Some(NAMESPACE.to_owned());
    CredentialBuilder { credential }.ready_condition("True", "Reconciled", "")
}

impl CredentialBuilder {
    pub fn ready_condition(mut self, status: &str, reason: &str, message: &str) -> Self {
        let condition = Condition {
            type_: "Ready".to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            last_transition_time: Time("2026-01-01T00:00:00Z".parse().expect("a valid timestamp")),
            observed_generation: None,
        };
        self.credential.status = Some(ApiCredentialStatus {
            conditions: vec![condition],
            ..ApiCredentialStatus::default()
        });
        self
    }

    pub fn without_status(mut self) -> Self {
        self.credential.status = None;
        self
    }

    pub fn api_key(mut self, secret: &str, key: &str) -> Self {
        self.credential.spec.api_key_secret_ref = Some(SecretKeyRef {
            name: secret.to_owned(),
            key: key.to_owned(),
        });
        self
    }

    pub fn password(mut self, secret: &str, key: &str) -> Self {
        self.credential.spec.password_secret_ref = Some(SecretKeyRef {
            name: secret.to_owned(),
            key: key.to_owned(),
        });
        self
    }

    pub fn secret_value(mut self, name: &str, secret: &str, key: &str) -> Self {
        self.credential
            .spec
            .secret_values
            .push(otpilot_api::common::SecretValue {
                name: name.to_owned(),
                secret_key_ref: SecretKeyRef {
                    name: secret.to_owned(),
                    key: key.to_owned(),
                },
            });
        self
    }

    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.credential.metadata.namespace = Some(namespace.to_owned());
        self
    }

    pub fn build(self) -> ApiCredential {
        self.credential
    }
}

/// Applies a patch the way the API server does and returns the new Pod.
pub fn apply(pod: &Pod, patch: &[PatchOperation]) -> Pod {
    let mut document = serde_json::to_value(pod).expect("a Pod serializes");
    json_patch::patch(&mut document, patch).expect("the patch applies to the Pod it was made for");
    serde_json::from_value(document).expect("the patched Pod is still a Pod")
}

/// Mutates, expects an admission with a patch, and returns the patched Pod
/// and the warnings.
pub fn injected(
    pod: &Pod,
    credential: &ApiCredential,
    config: &InjectConfig,
) -> (Pod, Vec<String>) {
    match mutate(pod, Some(credential), config) {
        Decision::Allow { patch, warnings } => {
            assert!(
                !patch.is_empty(),
                "expected the Pod to be injected, got no patch"
            );
            (apply(pod, &patch), warnings)
        }
        Decision::Deny { reason, message } => {
            panic!("expected the Pod to be injected, got {reason:?}: {message}")
        }
    }
}

/// Expects a refusal and returns it.
pub fn denied(decision: Decision) -> (otpilot_inject::DenyReason, String) {
    match decision {
        Decision::Deny { reason, message } => (reason, message),
        Decision::Allow { patch, .. } => {
            panic!("expected a refusal, got a patch of {} ops", patch.len())
        }
    }
}
