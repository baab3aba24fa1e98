//! The objects of a credential's shared session (`docs/shared-session.md`):
//! the `<name>-session` Lease and Secret, a Role naming exactly those two,
//! and a RoleBinding listing the ServiceAccounts of the Pods that use the
//! credential, and the writes that keep them so.
//!
//! Every write is idempotent and safe against a concurrent writer
//! (create-if-missing, replace on the read `resourceVersion`, retry on 409).
//!
//! All four objects are owned by the ApiCredential (deleted with it) with a
//! non-controller owner reference: a session Secret changing at every token
//! refresh must not wake the ApiCredential controller.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::labels;
use otpilot_api::session::{
    empty_data, session_lease_name, session_role_name, session_role_ref, session_role_rules,
    session_secret_name,
};

use super::decision::{BindingChange, binding_change};

use crate::context::FIELD_MANAGER;

/// Conflicting writers are retried this often before giving up.
const ATTEMPTS: usize = 5;

fn owner(credential: &ApiCredential) -> Option<Vec<OwnerReference>> {
    credential.controller_owner_ref(&()).map(|mut o| {
        o.controller = Some(false);
        vec![o]
    })
}

/// Metadata of every session object of `credential` (pure).
pub fn metadata(credential: &ApiCredential, name: String, kind: Option<&str>) -> ObjectMeta {
    let mut labels = BTreeMap::from([
        (
            labels::MANAGED_BY.to_owned(),
            labels::MANAGED_BY_VALUE.to_owned(),
        ),
        (labels::CREDENTIAL.to_owned(), credential.name_any()),
    ]);
    if let Some(kind) = kind {
        labels.insert(labels::SECRET_KIND.to_owned(), kind.to_owned());
    }
    ObjectMeta {
        name: Some(name),
        namespace: credential.namespace(),
        labels: Some(labels),
        owner_references: owner(credential),
        ..ObjectMeta::default()
    }
}

/// The session objects created once and then written by the sidecars (pure).
pub fn lease_and_secret(credential: &ApiCredential) -> (Lease, Secret) {
    let name = credential.name_any();
    let lease = Lease {
        metadata: metadata(credential, session_lease_name(&name), None),
        spec: Some(LeaseSpec::default()),
    };
    let secret = Secret {
        metadata: metadata(
            credential,
            session_secret_name(&name),
            Some(labels::kinds::SESSION),
        ),
        type_: Some("Opaque".to_owned()),
        data: Some(
            empty_data()
                .into_iter()
                .map(|(k, v)| (k, ByteString(v)))
                .collect(),
        ),
        ..Secret::default()
    };
    (lease, secret)
}

/// The Role (pure).
pub fn role(credential: &ApiCredential) -> Role {
    let name = credential.name_any();
    Role {
        metadata: metadata(credential, session_role_name(&name), None),
        rules: Some(session_role_rules(&name)),
    }
}

async fn create_if_missing<K>(api: &Api<K>, object: &K) -> kube::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}

/// Ensures the Lease, the session Secret and the Role exist.
pub async fn ensure(client: &Client, credential: &ApiCredential) -> kube::Result<()> {
    let namespace = credential.namespace().unwrap_or_default();
    let (lease, secret) = lease_and_secret(credential);
    // Created once, never overwritten: the sidecars write them.
    create_if_missing(
        &Api::<Lease>::namespaced(client.clone(), &namespace),
        &lease,
    )
    .await?;
    create_if_missing(
        &Api::<Secret>::namespaced(client.clone(), &namespace),
        &secret,
    )
    .await?;
    let roles = Api::<Role>::namespaced(client.clone(), &namespace);
    let role = role(credential);
    roles
        .patch(
            &session_role_name(&credential.name_any()),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&role),
        )
        .await?;
    Ok(())
}

/// Makes the RoleBinding's subjects exactly `desired` (creating it when a
/// Pod needs it), re-reading on a conflict. Returns the change made. The
/// Lease, Secret and Role must exist already ([`ensure`]) when `desired`
/// names anyone.
pub async fn bind(
    client: &Client,
    credential: &ApiCredential,
    desired: &[Subject],
) -> kube::Result<BindingChange> {
    let namespace = credential.namespace().unwrap_or_default();
    let bindings = Api::<RoleBinding>::namespaced(client.clone(), &namespace);
    let name = session_role_name(&credential.name_any());
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let current = bindings.get_opt(&name).await?;
        let change = binding_change(
            current.as_ref().map(|b| b.subjects.as_deref()),
            desired.to_vec(),
        );
        let result = match (change.clone(), current) {
            (BindingChange::Keep, _) => return Ok(change),
            (
                BindingChange::Create(subjects) | BindingChange::Replace(subjects),
                Some(mut binding),
            ) => {
                binding.subjects = Some(subjects);
                // The read resourceVersion: a concurrent writer → 409 → again.
                bindings
                    .replace(&name, &PostParams::default(), &binding)
                    .await
            }
            (BindingChange::Create(subjects) | BindingChange::Replace(subjects), None) => {
                let binding = RoleBinding {
                    metadata: metadata(credential, name.clone(), None),
                    role_ref: session_role_ref(&credential.name_any()),
                    subjects: Some(subjects),
                };
                bindings.create(&PostParams::default(), &binding).await
            }
        };
        match result {
            Ok(_) => return Ok(change),
            Err(kube::Error::Api(status)) if status.code == 409 => last = Some(status),
            Err(error) => return Err(error),
        }
    }
    Err(kube::Error::Api(last.expect("a conflict was seen")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use otpilot_api::ApiCredentialSpec;

    fn credential() -> ApiCredential {
        let spec: ApiCredentialSpec = serde_json::from_value(serde_json::json!({
            "profile": "conduit",
            "baseUrl": "https://vendor.example",
            "username": "bot",
        }))
        .expect("a minimal spec");
        let mut c = ApiCredential::new("billing", spec);
        c.metadata.namespace = Some("team-a".into());
        c.metadata.uid = Some("u-1".into());
        c
    }

    #[test]
    fn session_objects_are_owned_without_being_controlled_and_labelled() {
        let c = credential();
        let (lease, secret) = lease_and_secret(&c);
        let role = role(&c);
        for meta in [&lease.metadata, &secret.metadata, &role.metadata] {
            let owners = meta.owner_references.as_ref().expect("owned");
            assert_eq!(owners[0].uid, "u-1");
            assert_eq!(owners[0].controller, Some(false));
            let labels = meta.labels.as_ref().expect("labels");
            assert_eq!(labels[labels::CREDENTIAL], "billing");
            assert_eq!(labels[labels::MANAGED_BY], "otpilot");
            assert_eq!(meta.namespace.as_deref(), Some("team-a"));
        }
        assert_eq!(secret.metadata.name.as_deref(), Some("billing-session"));
        assert_eq!(
            secret.metadata.labels.as_ref().expect("labels")[labels::SECRET_KIND],
            "session"
        );
        assert_eq!(lease.metadata.name.as_deref(), Some("billing-session"));
        assert_eq!(
            role.metadata.name.as_deref(),
            Some("otpilot-session-billing")
        );
    }
}
