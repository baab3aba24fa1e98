//! Session grants: the ServiceAccounts of the injected Pods the API server
//! stored may use their credential's shared session, and no others.
//!
//! Per ApiCredential, the `otpilot-session-<name>` RoleBinding lists exactly
//! the ServiceAccounts of its live injected Pods in its namespace (see
//! [`decision`]); an account is taken out when its last such Pod is gone.
//! The Lease, Secret and Role are created with the first Pod
//! ([`objects`]). Triggered by every change of an injected Pod, so a new
//! Pod's account is bound within moments of the Pod being stored, usually
//! before its sidecar starts (a sidecar that starts sooner waits for the
//! binding a few seconds before logging in alone).
//!
//! This replaces grants written at admission: the webhook answers whatever
//! reaches its port, and a made-up review must not bind anything.

pub mod decision;
pub mod objects;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use otpilot_api::ApiCredential;
use tokio_util::sync::CancellationToken;

use crate::backoff::retry_delay;
use crate::context::Context;
use decision::BindingChange;

const CONTROLLER: &str = "sessiongrants";
/// How often the grants are compared with the Pods when nothing changed
/// (repairs a RoleBinding edited by hand).
const RESYNC: Duration = Duration::from_secs(300);
/// Pods that can no longer run, left out of the list at the source.
const NOT_FINISHED: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// Why a pass failed; retried with backoff.
#[derive(Debug, thiserror::Error)]
#[error("failed to update the shared-session grants of ApiCredential {credential}: {source}")]
pub struct Error {
    credential: String,
    #[source]
    source: kube::Error,
}

pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let (credentials, pods): (Api<ApiCredential>, Api<Pod>) = match &ctx.watch_namespace {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    Controller::new(credentials, watcher::Config::default())
        // Every Pod is watched (RBAC and the API cannot select by
        // annotation) but none is cached: an injected Pod's change only
        // names its credential for a pass. The webhook now also labels the
        // Pods it injects (otpilot.dev/injected=true); a label selector
        // here would miss Pods injected by an older release, which keep
        // running unlabelled until they are replaced, so it waits a release.
        .watches(pods, watcher::Config::default(), |pod: Pod| {
            let credential = decision::injected_for(&pod)?.to_owned();
            Some(ObjectRef::<ApiCredential>::new(&credential).within(&pod.namespace()?))
        })
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                crate::controllers::stream_errors::log(CONTROLLER, &error);
            }
        })
        .await;
}

fn key(credential: &ApiCredential) -> String {
    format!(
        "{CONTROLLER}:{}/{}",
        credential.namespace().unwrap_or_default(),
        credential.name_any()
    )
}

async fn reconcile(credential: Arc<ApiCredential>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconciled(CONTROLLER);
    if credential.metadata.deletion_timestamp.is_some() {
        // The session objects are owned by it and go with it.
        return Ok(Action::await_change());
    }
    let name = credential.name_any();
    let namespace = credential.namespace().unwrap_or_default();
    let failed = |source| Error {
        credential: format!("{namespace}/{name}"),
        source,
    };
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default().fields(NOT_FINISHED))
        .await
        .map_err(failed)?;
    let desired = decision::subjects(&pods.items, &name, &namespace);
    if !desired.is_empty() {
        objects::ensure(&ctx.client, &credential)
            .await
            .map_err(failed)?;
    }
    let change = objects::bind(&ctx.client, &credential, &desired)
        .await
        .map_err(failed)?;
    if change != BindingChange::Keep {
        let accounts: Vec<&str> = desired.iter().map(|s| s.name.as_str()).collect();
        tracing::info!(
            credential = format!("{namespace}/{name}"),
            service_accounts = ?accounts,
            "shared-session grants updated"
        );
    }
    ctx.succeeded(&key(&credential));
    Ok(Action::requeue(RESYNC))
}

fn error_policy(credential: Arc<ApiCredential>, error: &Error, ctx: Arc<Context>) -> Action {
    let attempts = ctx.failed(&key(&credential));
    let delay = retry_delay(attempts, None);
    tracing::warn!(
        error = %error,
        attempts,
        retry_in_s = delay.as_secs(),
        "session grants failed"
    );
    ctx.metrics.reconcile_failed(
        CONTROLLER,
        otpilot_api::conditions::reasons::KUBERNETES_ERROR,
    );
    Action::requeue(delay)
}
