//! ApiCredential: dereference → enrollment → Secrets → status. With
//! `deletionPolicy: Disable`, under the `otpilot.dev/cleanup` finalizer
//! (deletion runs [`cleanup`]); `Retain` needs none ([`deletion_guard`]).
//!
//! Input problems (a missing Secret, an unknown profile, a vendor that is
//! down) are not reconcile errors: they become conditions, and the object is
//! requeued with capped backoff, so it recovers on its own once fixed.

mod adopt;
mod answer_write;
mod certificate;
mod cleanup;
mod deletion_guard;
mod dereference;
mod enrollment;
mod failure;
mod looking;
mod notices;
mod pass;
mod recovery_vendor;
mod reenroll;
mod requests;
mod secrets;
mod seed_check;
mod seed_verdict;
mod status;
mod watch_scope;
mod withdraw;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};
use otpilot_api::labels;
use otpilot_api::{ApiCredential, ClientCA, ClusterMfaProfile};
use tokio_util::sync::CancellationToken;

use crate::backoff::retry_delay;
use crate::conditions;
use crate::context::Context;
use pass::engine_settings;

const CONTROLLER: &str = "apicredential";
/// How often a healthy credential is looked at again.
const RESYNC: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to write the status of ApiCredential {name}: {source}")]
    WriteStatus {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to turn MFA off at the vendor before deletion: {message}")]
    Disable {
        reason: &'static str,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    fn disable(reason: &'static str, message: String, retry_after: Option<Duration>) -> Self {
        Error::Disable {
            reason,
            message,
            retry_after,
        }
    }

    fn category(&self) -> &'static str {
        match self {
            Error::WriteStatus { .. } => otpilot_api::conditions::reasons::KUBERNETES_ERROR,
            Error::Disable { reason, .. } => reason,
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.category()
                }
                _ => "KubernetesError",
            },
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Disable { retry_after, .. } => *retry_after,
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.retry_after()
                }
                _ => None,
            },
            Error::WriteStatus { .. } => None,
        }
    }
}

pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let credentials: Api<ApiCredential> = match &ctx.watch_namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let owned: Vec<Api<Secret>> =
        match watch_scope::owned_secrets(ctx.watch_namespace.as_deref(), &ctx.secret_namespaces) {
            watch_scope::Scope::All => vec![Api::all(ctx.client.clone())],
            watch_scope::Scope::Namespaces(namespaces) => namespaces
                .iter()
                .map(|ns| Api::namespaced(ctx.client.clone(), ns))
                .collect(),
        };
    // Only otpilot's own Secrets are watched and cached: caching every
    // Secret of the cluster costs memory in proportion to the cluster.
    let owned_config = watcher::Config::default().labels(&format!(
        "{}={}",
        labels::MANAGED_BY,
        labels::MANAGED_BY_VALUE
    ));
    let mut controller = Controller::new(credentials, watcher::Config::default());
    let store = controller.store();
    let by_ca = store.clone();
    for api in owned {
        controller = controller.owns(api, owned_config.clone());
    }
    controller
        // A ClientCA's edit (a namespace no longer allowed, a narrower
        // issuance policy) reaches its credentials now, not at their resync.
        .watches(
            Api::<ClientCA>::all(ctx.client.clone()),
            watcher::Config::default(),
            move |ca| {
                let name = ca.name_any();
                by_ca
                    .state()
                    .into_iter()
                    .filter(|c| {
                        c.spec
                            .client_certificate
                            .as_ref()
                            .is_some_and(|cert| cert.ca_ref == name)
                    })
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            Api::<ClusterMfaProfile>::all(ctx.client.clone()),
            watcher::Config::default(),
            move |profile| {
                let name = profile.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|c| c.spec.profile == name)
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                crate::controllers::stream_errors::log(CONTROLLER, &error);
            }
        })
        .await;
}

fn key(obj: &ApiCredential) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

async fn reconcile(obj: Arc<ApiCredential>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconciled(CONTROLLER);
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<ApiCredential> = Api::namespaced(ctx.client.clone(), &namespace);
    let deleting = obj.metadata.deletion_timestamp.is_some();
    let result = match deletion_guard::guard(
        obj.spec.deletion_policy,
        deletion_guard::has_finalizer(&obj),
    ) {
        deletion_guard::Guard::Finalize => finalize(&api, obj.clone(), &ctx).await,
        deletion_guard::Guard::Release => deletion_guard::release(&api, &obj)
            .await
            // The patch is the change the controller waits for.
            .map(|()| Action::await_change())
            .map_err(|source| {
                Error::Finalizer(Box::new(finalizer::Error::RemoveFinalizer(source)))
            }),
        deletion_guard::Guard::None if deleting => Ok(Action::await_change()),
        deletion_guard::Guard::None => apply(&obj, &ctx).await,
    };
    if result.is_ok() && deleting {
        ctx.succeeded(&key(&obj));
        ctx.metrics.credential(&key(&obj), None);
    }
    result
}

/// `Disable`: kube's finalizer helper adds the finalizer before the first
/// apply and runs [`cleanup`] on delete.
async fn finalize(
    api: &Api<ApiCredential>,
    obj: Arc<ApiCredential>,
    ctx: &Arc<Context>,
) -> Result<Action, Error> {
    finalizer(api, labels::CLEANUP_FINALIZER, obj, |event| async {
        match event {
            finalizer::Event::Apply(o) => apply(&o, ctx).await,
            finalizer::Event::Cleanup(o) => cleanup::cleanup_with_events(&o, ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

fn error_policy(obj: Arc<ApiCredential>, error: &Error, ctx: Arc<Context>) -> Action {
    let attempts = ctx.failed(&key(&obj));
    let delay = retry_delay(attempts, error.retry_after());
    tracing::warn!(
        credential = key(&obj),
        error = %error,
        attempts,
        retry_in_s = delay.as_secs(),
        "reconcile failed"
    );
    ctx.metrics.reconcile_failed(CONTROLLER, error.category());
    Action::requeue(delay)
}

async fn apply(obj: &ApiCredential, ctx: &Context) -> Result<Action, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    if let Some(wait) = status::wait_before_retry(
        obj.status.as_ref(),
        obj.metadata.generation,
        jiff::Timestamp::now(),
    ) {
        return Ok(Action::requeue(wait));
    }
    let pass = pass::enroll(obj, ctx, &namespace).await;
    let ready = status::ready(&pass.certificate, &pass.enrolled);
    let desired = [pass.certificate.clone(), pass.enrolled.clone(), ready];

    let k = key(obj);
    let retry = pass.retry.map(|(needs_a_person, retry_after)| {
        let attempts = ctx.failed(&k);
        let mut delay = retry_delay(attempts, retry_after);
        if needs_a_person {
            // Retried slowly anyway: the fix may be outside the cluster.
            delay = delay.max(Duration::from_secs(60));
        }
        (attempts, delay)
    });
    let secrets_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let stored = secrets::read(&secrets_api, &name).await.unwrap_or_default();
    let now = Time(jiff::Timestamp::now());
    let new_status = status::build(
        obj.status.as_ref(),
        &desired,
        obj.metadata.generation,
        &now,
        &name,
        status::Observed {
            enrollment: Some(status::enrollment_state(
                status::observed_enrollment(stored.enrollment_state(), stored.checkpoint.is_some()),
                &pass.enrolled,
                pass.retry.is_some_and(|(person, _)| person),
            )),
            recovery_codes: (!stored.recovery_codes.is_empty())
                .then(|| u32::try_from(stored.recovery_codes.len()).unwrap_or(u32::MAX)),
            certificate_not_after: pass.certificate_not_after.map(Time),
            renewal_time: pass.renew_at.map(Time),
            failure: retry.map(|(attempts, delay)| status::Failure {
                attempts,
                next_retry: Time(now.0 + jiff::SignedDuration::try_from(delay).unwrap_or_default()),
            }),
            clock_offset_seconds: pass.clock_offset_ms.map(status::offset_seconds),
            handled_renew_request: pass.handled_renew.clone(),
            handled_reenroll_request: pass.handled_reenroll.clone(),
        },
    );
    ctx.metrics.credential(
        &k,
        Some(crate::metrics::CredentialFigures {
            ready: new_status
                .conditions
                .iter()
                .any(|c| c.type_ == otpilot_api::conditions::READY && c.status == "True"),
            certificate_not_after: new_status
                .certificate_not_after
                .as_ref()
                .map(|t| t.0.as_second()),
            recovery_codes: new_status.recovery_codes_remaining,
            clock_offset_seconds: new_status.clock_offset_seconds,
        }),
    );
    if obj.status.as_ref() != Some(&new_status) {
        let previous = obj
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        let changed = conditions::transitions(&previous, &desired);
        let api: Api<ApiCredential> = Api::namespaced(ctx.client.clone(), &namespace);
        super::apply_status(
            &api,
            &name,
            serde_json::to_value(&new_status).unwrap_or_default(),
        )
        .await
        .map_err(|source| Error::WriteStatus {
            name: name.clone(),
            source,
        })?;
        super::publish_transitions(ctx, obj, &changed).await;
    }
    let mut notices = pass.notices.clone();
    if let Some(skew) = status::clock_skew_news(
        obj.status.as_ref().and_then(|s| s.clock_offset_seconds),
        new_status.clock_offset_seconds,
    ) {
        notices.push(notices::clock_skew(skew));
    }
    notices::publish(ctx, obj, &notices).await;

    Ok(match retry {
        None => {
            ctx.succeeded(&k);
            let until_renewal = pass.renew_at.map(|t| {
                Duration::from_secs(
                    u64::try_from(jiff::Timestamp::now().duration_until(t).as_secs()).unwrap_or(0),
                )
            });
            Action::requeue(
                until_renewal
                    .map(|d| d.clamp(Duration::from_secs(1), RESYNC))
                    .unwrap_or(RESYNC),
            )
        }
        Some((attempts, delay)) => {
            ctx.metrics.reconcile_failed(CONTROLLER, desired[1].reason);
            tracing::info!(
                credential = k,
                reason = desired[1].reason,
                message = desired[1].message,
                attempts,
                retry_in_s = delay.as_secs(),
                "not ready"
            );
            Action::requeue(delay)
        }
    })
}
