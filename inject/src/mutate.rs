//! The mutation: a Pod, its ApiCredential and the installation's settings
//! in, patch operations or a refusal out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, LocalObjectReference, Pod, PodSpec};
use otpilot_api::ApiCredential;
use otpilot_api::conditions::READY;
use otpilot_api::labels::{INJECTED_LABEL, INJECTED_LABEL_VALUE, recovery_secret_name};

use crate::annotations::{self, AnnotationError, InjectRequest, paths_overlap};
use crate::config::{InjectConfig, WhenNotReady};
use crate::decision::{Decision, DenyReason};
use crate::patch::{PatchBuilder, SerializeError};
use crate::sidecar::{self, SecretRefs};

/// Decides what to do with a Pod at admission.
///
/// `credential` is the ApiCredential named by the Pod's `otpilot.dev/inject`
/// annotation, looked up by the caller in the Pod's namespace (`None`: not
/// found). The Pod's `metadata.namespace` must be set (the admission
/// request's namespace; see [`crate::review()`]).
pub fn mutate(pod: &Pod, credential: Option<&ApiCredential>, config: &InjectConfig) -> Decision {
    if already_injected(pod) {
        return Decision::untouched();
    }
    let no_annotations = BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&no_annotations);
    let request = match annotations::parse(annotations, config) {
        Ok(None) => return Decision::untouched(),
        Ok(Some(request)) => request,
        Err(error) => return Decision::deny(annotation_reason(&error), error.to_string()),
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = &request.credential;
    let Some(credential) = credential else {
        return Decision::deny(DenyReason::CredentialNotFound, unavailable(name, namespace));
    };
    if credential.metadata.namespace.as_deref() != Some(namespace) {
        return Decision::deny(
            DenyReason::CrossNamespace,
            format!(
                "ApiCredential {name} is not in namespace {namespace}: a Pod can only use an \
                 ApiCredential in its own namespace"
            ),
        );
    }
    if credential.metadata.name.as_deref() != Some(name.as_str()) {
        return Decision::deny(DenyReason::CredentialNotFound, unavailable(name, namespace));
    }
    let mut warnings = Vec::new();
    if !is_ready(credential) {
        match config.when_not_ready {
            WhenNotReady::Refuse => {
                return Decision::deny(
                    DenyReason::CredentialNotReady,
                    unavailable(name, namespace),
                );
            }
            WhenNotReady::Inject => warnings.push(format!(
                "ApiCredential {name} in namespace {namespace} is not Ready: the app containers \
                 wait for the sidecar's startup probe; see `kubectl get apicredential {name} -n \
                 {namespace}`"
            )),
        }
    }
    let refs = SecretRefs::of(name, credential);
    if let Some(decision) = forbidden_secret(&refs, name) {
        return decision;
    }
    let Some(spec) = pod.spec.as_ref() else {
        return Decision::deny(DenyReason::InvalidRequest, "the Pod has no spec");
    };
    if let Err(message) = unsafe_pod(spec) {
        return Decision::deny(DenyReason::UnsafePod, message);
    }
    if let Err(message) = conflicts(spec, &request) {
        return Decision::deny(DenyReason::Conflict, message);
    }
    if spec.share_process_namespace == Some(true) {
        warnings.push(
            "shareProcessNamespace is on: the app containers can see the sidecar's process and, \
             running as the same user or as root, read its password file through /proc"
                .to_owned(),
        );
    }
    if runs_as_default(spec) {
        warnings.push(format!(
            "the Pod runs as ServiceAccount default: the operator grants it ApiCredential \
             {name}'s shared session, and with it every Pod of namespace {namespace} that runs \
             as default; give the Pod a ServiceAccount of its own (spec.serviceAccountName)"
        ));
    }
    let refresh_before = refresh_before(credential, &mut warnings);
    match patch(
        pod.metadata.labels.as_ref(),
        spec,
        &request,
        &refs,
        refresh_before,
        config,
        &mut warnings,
    ) {
        Ok(patch) => Decision::Allow { patch, warnings },
        Err(error) => Decision::deny(DenyReason::InvalidRequest, error.to_string()),
    }
}

/// The credential's `spec.token.refreshBefore`, for the sidecar's
/// `--refresh-before`; absent, the sidecar's default lead applies. The
/// schema's pattern keeps it parseable; one that still is not (too large)
/// is left out with a warning rather than refusing the Pod.
fn refresh_before(
    credential: &ApiCredential,
    warnings: &mut Vec<String>,
) -> Option<std::time::Duration> {
    let lead = &credential.spec.token.as_ref()?.refresh_before;
    match lead.parse() {
        Ok(lead) => Some(lead),
        Err(error) => {
            warnings.push(format!(
                "spec.token.refreshBefore of the ApiCredential is not usable ({error}): the \
                 sidecar uses its default"
            ));
            None
        }
    }
}

/// A Pod that names no ServiceAccount runs as `default` (the API server
/// fills that in before the webhook sees it).
fn runs_as_default(spec: &PodSpec) -> bool {
    spec.service_account_name
        .as_deref()
        .or(spec.service_account.as_deref())
        .is_none_or(|name| name.is_empty() || name == "default")
}

/// A Pod carrying the marker annotation or the sidecar container was
/// injected before (or by hand): leave it exactly as it is.
fn already_injected(pod: &Pod) -> bool {
    let marked = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(annotations::INJECTED));
    let has_sidecar = pod.spec.as_ref().is_some_and(|spec| {
        spec.init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .any(|c| c.name == sidecar::CONTAINER_NAME)
    });
    marked || has_sidecar
}

fn annotation_reason(error: &AnnotationError) -> DenyReason {
    match error {
        AnnotationError::CrossNamespace { .. } => DenyReason::CrossNamespace,
        _ => DenyReason::InvalidAnnotation,
    }
}

/// Whether the Ready condition is True. Why it is not stays out of every
/// answer: a review can be forged for any namespace (see [`unavailable`]).
fn is_ready(credential: &ApiCredential) -> bool {
    credential
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .is_some_and(|c| c.status == "True")
}

/// The one refusal for a credential that is missing or not Ready. Both say
/// the same, byte for byte, and carry nothing from the credential's status:
/// anything that reaches the webhook port can send a review claiming any
/// namespace, and must not learn from the answer whether a credential
/// exists there or why it is not Ready. The Pod's creator reads the details
/// with kubectl, as far as their own rights go.
pub(crate) fn unavailable(name: &str, namespace: &str) -> String {
    format!(
        "ApiCredential {name} in namespace {namespace} is missing or not Ready (named by \
         annotation {}); see `kubectl get apicredential {name} -n {namespace}`",
        annotations::INJECT
    )
}

/// The recovery Secret is never mounted into a Pod, even when a spec names it.
fn forbidden_secret(refs: &SecretRefs, credential: &str) -> Option<Decision> {
    let recovery = recovery_secret_name(credential);
    let named = [
        refs.password.as_ref().map(|r| ("passwordSecretRef", r)),
        refs.api_key.as_ref().map(|r| ("apiKeySecretRef", r)),
    ];
    let values = refs
        .secret_values
        .iter()
        .map(|v| ("secretValues", &v.secret_key_ref));
    named.into_iter().flatten().chain(values).find(|(_, r)| r.name == recovery).map(|(field, _)| {
        Decision::deny(
            DenyReason::ForbiddenSecret,
            format!(
                "ApiCredential {credential} names its recovery Secret {recovery} in spec.{field}: \
                 the recovery codes are never mounted into a Pod; keep the password, API key and \
                 secret values in a Secret of their own"
            ),
        )
    })
}

/// Pods the sidecar cannot protect its token in.
fn unsafe_pod(spec: &PodSpec) -> Result<(), String> {
    if spec.host_network == Some(true) {
        // 127.0.0.1 would be the node's: every process on it could ask for the token.
        return Err(format!(
            "the Pod uses hostNetwork: the sidecar's token API on 127.0.0.1 would be open to \
             every process on the node; remove hostNetwork or annotation {}",
            annotations::INJECT
        ));
    }
    if spec.host_pid == Some(true) {
        // Every process of the node, and the app containers through it,
        // could read the sidecar's memory and its password file via /proc.
        return Err(format!(
            "the Pod uses hostPID: its containers would see every process of the node, the \
             sidecar's included, and could read its memory and files through /proc; remove \
             hostPID or annotation {}",
            annotations::INJECT
        ));
    }
    if spec.os.as_ref().is_some_and(|os| os.name != "linux") {
        return Err("the sidecar runs on Linux nodes only (spec.os.name)".to_owned());
    }
    Ok(())
}

/// Names, ports and paths the Pod already uses that the sidecar needs.
fn conflicts(spec: &PodSpec, request: &InjectRequest) -> Result<(), String> {
    if let Some(volume) = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| sidecar::VOLUME_NAMES.contains(&v.name.as_str()))
    {
        return Err(format!(
            "the Pod already has a volume named {}, a name the otpilot sidecar uses: rename it",
            volume.name
        ));
    }
    let all_containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    for container in all_containers {
        for port in container.ports.iter().flatten() {
            let taken = [
                (annotations::API_PORT, request.api_port),
                (annotations::PROXY_PORT, request.proxy_port),
                (annotations::ADMIN_PORT, request.admin_port),
            ];
            if let Some((annotation, _)) = taken
                .iter()
                .find(|(_, p)| i32::from(*p) == port.container_port)
            {
                return Err(format!(
                    "container {} already uses port {}, which the sidecar would listen on: set \
                     annotation {annotation} to a free port",
                    container.name, port.container_port
                ));
            }
        }
    }
    if let Some(token_file) = &request.token_file {
        for container in &spec.containers {
            if let Some(mount) = container
                .volume_mounts
                .iter()
                .flatten()
                .find(|m| paths_overlap(&m.mount_path, &token_file.dir))
            {
                return Err(format!(
                    "container {} already mounts {}, which overlaps {} (the directory of \
                     annotation {}): pick another token file path",
                    container.name,
                    mount.mount_path,
                    token_file.dir,
                    annotations::TOKEN_FILE
                ));
            }
        }
    }
    Ok(())
}

fn patch(
    labels: Option<&BTreeMap<String, String>>,
    spec: &PodSpec,
    request: &InjectRequest,
    refs: &SecretRefs,
    refresh_before: Option<std::time::Duration>,
    config: &InjectConfig,
    warnings: &mut Vec<String>,
) -> Result<Vec<json_patch::PatchOperation>, SerializeError> {
    let mut patch = PatchBuilder::default();
    patch.add(
        &["metadata", "annotations", annotations::INJECTED],
        "marker annotation",
        &request.credential,
    )?;
    // The label lets PodMonitors and selectors find injected Pods.
    if labels.is_some() {
        patch.add(
            &["metadata", "labels", INJECTED_LABEL],
            "marker label",
            &INJECTED_LABEL_VALUE,
        )?;
    } else {
        patch.add(
            &["metadata", "labels"],
            "marker label",
            &BTreeMap::from([(INJECTED_LABEL, INJECTED_LABEL_VALUE)]),
        )?;
    }
    // First among the init containers: native sidecars start in order, so
    // every later init container (migrations, warm-ups) can already fetch a
    // token or call the vendor through the proxy.
    patch.prepend(
        &["spec", "initContainers"],
        spec.init_containers.is_some(),
        "sidecar container",
        &sidecar::container(request, refs, refresh_before, config),
    )?;
    patch.append(
        &["spec", "volumes"],
        spec.volumes.is_some(),
        "volume",
        &sidecar::volumes(refs, request),
    )?;
    patch.append(
        &["spec", "imagePullSecrets"],
        spec.image_pull_secrets.is_some(),
        "image pull secret",
        &missing_pull_secrets(spec, config),
    )?;
    let env = sidecar::app_env(request);
    let token_mount = sidecar::app_token_mount(request);
    for (index, container) in spec.containers.iter().enumerate() {
        let index = index.to_string();
        let missing: Vec<_> = env
            .iter()
            .filter(|var| !keeps_own_value(container, &var.name, warnings))
            .cloned()
            .collect();
        patch.append(
            &["spec", "containers", &index, "env"],
            container.env.is_some(),
            "environment variable",
            &missing,
        )?;
        patch.append(
            &["spec", "containers", &index, "volumeMounts"],
            container.volume_mounts.is_some(),
            "token volume mount",
            token_mount.as_slice(),
        )?;
    }
    Ok(patch.finish())
}

/// The installation's pull Secrets (for the sidecar image) the Pod does not name yet.
fn missing_pull_secrets(spec: &PodSpec, config: &InjectConfig) -> Vec<LocalObjectReference> {
    let named = |name: &str| {
        spec.image_pull_secrets
            .iter()
            .flatten()
            .any(|own| own.name == name)
    };
    config
        .image_pull_secrets
        .iter()
        .filter(|name| !named(name))
        .map(|name| LocalObjectReference { name: name.clone() })
        .collect()
}

/// A variable the user set themselves stays as they set it (noted in a warning).
fn keeps_own_value(container: &Container, name: &str, warnings: &mut Vec<String>) -> bool {
    let own = container.env.iter().flatten().any(|var| var.name == name);
    if own {
        warnings.push(format!(
            "container {} sets {name} itself: its value is kept, not the sidecar's",
            container.name
        ));
    }
    own
}
