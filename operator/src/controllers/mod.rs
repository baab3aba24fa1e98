//! The controllers, one module each, run side by side until shutdown.

pub mod api_credential;
pub mod client_ca;
pub mod profile;
pub mod session_grants;
mod stream_errors;

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::conditions::Desired;
use crate::context::{Context, FIELD_MANAGER};

pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    tokio::join!(
        client_ca::run(ctx.clone(), shutdown.clone()),
        profile::run(ctx.clone(), shutdown.clone()),
        session_grants::run(ctx.clone(), shutdown.clone()),
        api_credential::run(ctx, shutdown),
    );
}

/// Writes `status` by server-side apply (field manager `otpilot-operator`,
/// forced: the operator owns status).
pub async fn apply_status<K>(
    api: &Api<K>,
    name: &str,
    status: serde_json::Value,
) -> kube::Result<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Serialize,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// One Event per condition that changed (Normal when it holds, Warning when
/// not). Messages are the conditions' messages, which never carry secrets.
pub async fn publish_transitions<K>(ctx: &Context, obj: &K, changed: &[&Desired])
where
    K: Resource<DynamicType = ()>,
{
    let reference = obj.object_ref(&());
    for d in changed {
        // Expiring is the one condition whose True is bad news.
        // Running low on recovery codes is a warning while MFA still works.
        use otpilot_api::conditions::reasons::{RECOVERY_CODES_EXHAUSTED, RECOVERY_CODES_LOW};
        let good = d.ok != (d.type_ == otpilot_api::conditions::EXPIRING)
            && d.reason != RECOVERY_CODES_LOW
            && d.reason != RECOVERY_CODES_EXHAUSTED;
        let event = Event {
            type_: if good {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: d.reason.to_owned(),
            note: Some(format!("{}: {}", d.type_, d.message)),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(%error, reason = d.reason, "failed to publish an Event");
        }
    }
}
