//! Adoption of the credential's own Secrets when they have no owner: after
//! a restore from backup (docs/operations.md, "Backup and restore"), whose
//! documented step removes the owner reference of the credential that is
//! gone. Adopted, they are garbage-collected with the credential again and
//! cached by the controller (its watch selects otpilot's labels).

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::labels;
use serde_json::json;

/// Whether a stored Secret is to be adopted (pure): only when nothing
/// controls it. A Secret another controller owns is left alone.
pub fn needs_adoption(meta: &ObjectMeta) -> bool {
    !meta
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true))
}

/// The owner references after adoption (pure): the ones there, then ours.
fn adopted_references(meta: &ObjectMeta, ours: OwnerReference) -> Vec<OwnerReference> {
    let mut references = meta.owner_references.clone().unwrap_or_default();
    references.retain(|o| o.uid != ours.uid);
    references.push(ours);
    references
}

/// Takes ownership of each Secret in `unowned` (runtime or recovery, by its
/// name), with otpilot's labels. The resourceVersion makes each patch a
/// compare-and-swap: a Secret changed meanwhile is adopted on the next pass.
pub async fn adopt(
    api: &Api<Secret>,
    credential: &ApiCredential,
    unowned: &[ObjectMeta],
) -> kube::Result<()> {
    let Some(ours) = credential.controller_owner_ref(&()) else {
        return Ok(());
    };
    for meta in unowned {
        let name = meta.name.clone().unwrap_or_default();
        let kind = if name == labels::runtime_secret_name(&credential.name_any()) {
            labels::kinds::RUNTIME
        } else {
            labels::kinds::RECOVERY
        };
        let patch = json!({
            "metadata": {
                "resourceVersion": meta.resource_version,
                "ownerReferences": adopted_references(meta, ours.clone()),
                "labels": {
                    labels::MANAGED_BY: labels::MANAGED_BY_VALUE,
                    labels::CREDENTIAL: credential.name_any(),
                    labels::SECRET_KIND: kind,
                },
            }
        });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tracing::info!(
            credential = credential.name_any(),
            secret = name,
            "adopted a Secret with no owner (restored from a backup?)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(uid: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: "otpilot.dev/v1alpha1".into(),
            kind: "ApiCredential".into(),
            name: "bot".into(),
            uid: uid.into(),
            controller: Some(controller),
            block_owner_deletion: Some(true),
        }
    }

    fn meta(references: Option<Vec<OwnerReference>>) -> ObjectMeta {
        ObjectMeta {
            owner_references: references,
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn only_secrets_nothing_controls_are_adopted() {
        let cases = [
            ("no owner references (restored)", meta(None), true),
            ("an empty list", meta(Some(vec![])), true),
            (
                "a non-controlling owner only",
                meta(Some(vec![reference("other", false)])),
                true,
            ),
            (
                "controlled by a credential",
                meta(Some(vec![reference("uid-1", true)])),
                false,
            ),
        ];
        for (case, meta, expected) in cases {
            assert_eq!(needs_adoption(&meta), expected, "{case}");
        }
    }

    #[test]
    fn adoption_keeps_other_owners_and_adds_ours_once() {
        let existing = meta(Some(vec![
            reference("other", false),
            reference("uid-1", false),
        ]));
        let after = adopted_references(&existing, reference("uid-1", true));
        let uids: Vec<(&str, Option<bool>)> = after
            .iter()
            .map(|o| (o.uid.as_str(), o.controller))
            .collect();
        assert_eq!(uids, [("other", Some(false)), ("uid-1", Some(true))]);
    }
}
