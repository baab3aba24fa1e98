//! Deletion. With `deletionPolicy: Retain` nothing happens at the vendor;
//! with `Disable` the profile's disable flow turns MFA off first (finalizer
//! `otpilot.dev/cleanup`). The owned Secrets go by garbage collection.

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::api_credential::{DeletionPolicy, EnrollmentState};
use otpilot_profile::{Engine, HttpSettings, TotpKey, TotpParams};

use super::dereference;
use super::enrollment::inputs;
use super::failure::flow_reason;
use super::secrets;
use super::{Error, engine_settings};
use crate::context::Context;
use otpilot_api::conditions::reasons as local;

/// What deletion does at the vendor (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionAction {
    /// Nothing (`Retain`, or nothing was ever sent with a secret).
    LeaveAsIs,
    /// Turn MFA off with the runtime Secret's secret.
    Disable,
    /// Enrollment was under way: MFA may be on with the checkpoint's
    /// secret (the last step's answer may have been lost). Look first (a
    /// login with it); turn MFA off only if it is on.
    DisableIfOn,
}

pub fn deletion_action(
    policy: DeletionPolicy,
    state: Option<EnrollmentState>,
    checkpoint_has_secret: bool,
) -> DeletionAction {
    match (policy, state) {
        (DeletionPolicy::Retain, _) => DeletionAction::LeaveAsIs,
        (DeletionPolicy::Disable, Some(EnrollmentState::Enrolled)) => DeletionAction::Disable,
        (DeletionPolicy::Disable, _) if checkpoint_has_secret => DeletionAction::DisableIfOn,
        (DeletionPolicy::Disable, _) => DeletionAction::LeaveAsIs,
    }
}

pub async fn cleanup(credential: &ApiCredential, ctx: &Context) -> Result<Action, Error> {
    let namespace = credential.namespace().unwrap_or_default();
    let name = credential.name_any();
    let secrets_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let stored = secrets::read(&secrets_api, &name)
        .await
        .map_err(|e| Error::disable(local::KUBERNETES_ERROR, e.to_string(), None))?;
    let action = deletion_action(
        credential.spec.deletion_policy,
        stored.enrollment_state(),
        stored.checkpoint.is_some(),
    );
    if action == DeletionAction::LeaveAsIs {
        tracing::info!(credential = name, policy = ?credential.spec.deletion_policy, "deleted; MFA left as it is at the vendor");
        return Ok(Action::await_change());
    }
    let resolved = dereference::resolve(&ctx.client, &namespace, &credential.spec)
        .await
        .map_err(|e| Error::disable(e.reason(), e.to_string(), None))?;
    let settings: HttpSettings = engine_settings(&resolved, ctx);
    let engine = Engine::new(
        resolved.profile.clone(),
        &credential.spec.base_url,
        settings,
    )
    .map_err(|e| Error::disable(local::KUBERNETES_ERROR, e.to_string(), None))?
    .with_timer(ctx.timer.clone());
    let key = match action {
        DeletionAction::Disable => {
            let Some(totp) = stored.runtime.as_ref().and_then(|r| r.totp.as_ref()) else {
                return Ok(Action::await_change());
            };
            let key = TotpKey::from_base32(
                secrecy::ExposeSecret::expose_secret(&totp.secret),
                TotpParams {
                    algorithm: totp.params.algorithm,
                    digits: totp.params.digits,
                    period: totp.params.period,
                },
            )
            .map_err(|e| Error::disable(local::CHECKPOINT_UNREADABLE, e.to_string(), None))?;
            if let Some(step) = stored.runtime.as_ref().and_then(|r| r.last_code_step) {
                ctx.timer.mark_used(&key, step);
            }
            key
        }
        _ => {
            let record = stored
                .checkpoint
                .as_ref()
                .map(|r| secrecy::ExposeSecret::expose_secret(r).to_owned())
                .unwrap_or_default();
            let checkpoint = otpilot_profile::Checkpoint::from_record(&record, engine.profile())
                .map_err(|e| Error::disable(local::CHECKPOINT_UNREADABLE, e.to_string(), None))?;
            let Some(key) = checkpoint.totp.clone() else {
                return Ok(Action::await_change());
            };
            if let Some(step) = checkpoint.last_code_step {
                ctx.timer.mark_used(&key, step);
            }
            // The step current now too: a code sent just before a crash.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            ctx.timer.mark_used(&key, key.step_at(now));
            let look = inputs(credential, &resolved).with_totp(key.clone());
            match engine.login(&look).await {
                Ok(_) => tracing::info!(
                    credential = name,
                    "deleted mid-enrollment, and MFA is on with the checkpoint's secret: turning it off"
                ),
                Err(e) if is_refusal(&e.kind) => {
                    tracing::info!(
                        credential = name,
                        "deleted mid-enrollment; the checkpoint's secret does not log in, so MFA is not on with it: nothing to turn off"
                    );
                    return Ok(Action::await_change());
                }
                Err(e) => return Err(disable_error(&e)),
            }
            key
        }
    };
    let inputs = inputs(credential, &resolved).with_totp(key);
    engine
        .disable(&inputs)
        .await
        .map_err(|e| disable_error(&e))?;
    ctx.metrics.enrollment_finished("Disabled");
    tracing::info!(credential = name, "MFA turned off at the vendor");
    Ok(Action::await_change())
}

fn disable_error(e: &otpilot_profile::FlowError) -> Error {
    let retry_after = match &e.kind {
        otpilot_profile::FlowErrorKind::LockedOut { retry_after, .. } => *retry_after,
        _ => None,
    };
    Error::disable(flow_reason(&e.kind), e.to_string(), retry_after)
}

/// The vendor answered and refused (as opposed to not answering).
fn is_refusal(kind: &otpilot_profile::FlowErrorKind) -> bool {
    use otpilot_profile::FlowErrorKind as K;
    matches!(
        kind,
        K::Status { .. }
            | K::CodeRejected { .. }
            | K::CodeAlreadyUsed { .. }
            | K::TotpHeaderRefused { .. }
    )
}

/// [`cleanup`], with a Warning Event while deletion waits for the vendor.
pub async fn cleanup_with_events(obj: &ApiCredential, ctx: &Context) -> Result<Action, Error> {
    let result = cleanup(obj, ctx).await;
    if let Err(Error::Disable {
        reason, message, ..
    }) = &result
    {
        // One reason for every failed disable, so a person (and an alert)
        // finds it; the cause's own reason is in the note.
        let event = Event {
            type_: EventType::Warning,
            reason: local::DISABLE_FAILED.to_owned(),
            note: Some(format!(
                "deletion waits: failed to turn MFA off at the vendor ({reason}: {message}); fix \
                 the cause, or set spec.deletionPolicy to Retain to delete without calling the vendor"
            )),
            action: "Delete".to_owned(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
            tracing::warn!(%error, "failed to publish an Event");
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_disable_reaches_the_vendor_when_mfa_is_or_may_be_on() {
        use DeletionAction as A;
        use DeletionPolicy::*;
        use EnrollmentState::*;
        let cases = [
            (Retain, Some(Enrolled), false, A::LeaveAsIs),
            (Retain, Some(Pending), true, A::LeaveAsIs),
            (Retain, None, false, A::LeaveAsIs),
            (Disable, Some(Enrolled), false, A::Disable),
            (Disable, Some(Enrolled), true, A::Disable),
            (Disable, Some(Pending), true, A::DisableIfOn),
            (Disable, None, true, A::DisableIfOn),
            (Disable, Some(Pending), false, A::LeaveAsIs),
            (Disable, None, false, A::LeaveAsIs),
        ];
        for (policy, state, checkpoint, want) in cases {
            assert_eq!(
                deletion_action(policy, state, checkpoint),
                want,
                "{policy:?} {state:?} checkpoint={checkpoint}"
            );
        }
    }
}
