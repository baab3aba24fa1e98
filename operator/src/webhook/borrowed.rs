//! Before a Pod is admitted with a sidecar, the metadata (never the data)
//! of each Secret its ApiCredential names as an input is read, and the
//! decision goes through `otpilot_inject::borrowed::refuse_borrowed`: no
//! Pod mounts another credential's Secrets or a ClientCA's key.

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_inject::Decision;
use otpilot_inject::borrowed::{SecretMeta, named_secrets, refuse_borrowed};

/// `decision`, refused when `credential` names one of otpilot's own Secrets.
/// Only an allowed Pod that gets a sidecar is checked (no read otherwise).
pub async fn check(client: &Client, credential: &ApiCredential, decision: Decision) -> Decision {
    match &decision {
        Decision::Allow { patch, .. } if !patch.is_empty() => {}
        _ => return decision,
    }
    let Some(namespace) = credential.namespace() else {
        return decision;
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut found = Vec::new();
    for (field, name) in named_secrets(credential) {
        let meta = match api.get_metadata_opt(&name).await {
            Ok(Some(secret)) => SecretMeta::Found(Box::new(secret.metadata)),
            Ok(None) => SecretMeta::NotFound,
            Err(error) => SecretMeta::Failed(error.to_string()),
        };
        found.push((field, name, meta));
    }
    refuse_borrowed(decision, &credential.name_any(), &found)
}
