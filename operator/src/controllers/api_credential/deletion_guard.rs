//! Whether a credential carries the `otpilot.dev/cleanup` finalizer.
//!
//! Only `deletionPolicy: Disable` has vendor work to do on delete. A
//! `Retain` credential carries no finalizer, so deleting it (or its
//! namespace) completes even when the operator is gone; a finalizer left by
//! an earlier version, or by a policy since changed to `Retain`, is removed.
//! Changing the policy to `Retain` is also the way out of a `Disable`
//! deletion that cannot reach the vendor (docs/operator.md).

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::api_credential::DeletionPolicy;
use otpilot_api::labels::CLEANUP_FINALIZER;
use serde_json::json;

/// What to do about the finalizer before reconciling (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// `Disable`: kube's finalizer helper adds it and runs the cleanup.
    Finalize,
    /// `Retain`, no finalizer: reconcile (or, when deleting, nothing).
    None,
    /// `Retain` with our finalizer still on: take it off.
    Release,
}

pub fn guard(policy: DeletionPolicy, has_finalizer: bool) -> Guard {
    match (policy, has_finalizer) {
        (DeletionPolicy::Disable, _) => Guard::Finalize,
        (DeletionPolicy::Retain, false) => Guard::None,
        (DeletionPolicy::Retain, true) => Guard::Release,
    }
}

pub fn has_finalizer(credential: &ApiCredential) -> bool {
    credential
        .finalizers()
        .iter()
        .any(|f| f == CLEANUP_FINALIZER)
}

/// Removes our finalizer, keeping any other. The resourceVersion makes it a
/// compare-and-swap: a list changed meanwhile fails (409) and is retried
/// from a fresh read, never overwritten.
pub async fn release(api: &Api<ApiCredential>, credential: &ApiCredential) -> kube::Result<()> {
    let kept: Vec<&String> = credential
        .finalizers()
        .iter()
        .filter(|f| *f != CLEANUP_FINALIZER)
        .collect();
    let patch = json!({
        "metadata": {
            "resourceVersion": credential.resource_version(),
            "finalizers": kept,
        }
    });
    api.patch(
        &credential.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_disable_keeps_a_finalizer() {
        let cases = [
            (DeletionPolicy::Disable, false, Guard::Finalize),
            (DeletionPolicy::Disable, true, Guard::Finalize),
            (DeletionPolicy::Retain, false, Guard::None),
            (DeletionPolicy::Retain, true, Guard::Release),
        ];
        for (policy, has, expected) in cases {
            assert_eq!(guard(policy, has), expected, "{policy:?}, finalizer {has}");
        }
    }
}
