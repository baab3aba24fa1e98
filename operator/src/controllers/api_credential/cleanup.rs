//! Deletion. With `deletionPolicy: Retain` nothing happens at the vendor;
//! with `Disable` the profile's disable flow turns MFA off first (finalizer
//! `otpilot.dev/cleanup`). The owned Secrets go by garbage collection.

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::api_credential::{DeletionPolicy, EnrollmentState};
use otpilot_profile::{Engine, HttpSettings, TotpKey, TotpParams};

use super::dereference;
use super::enrollment::{flow_reason, inputs};
use super::secrets;
use super::{Error, engine_settings};
use crate::context::Context;
use crate::controllers::reasons as local;

/// Whether deletion must call the vendor (pure).
pub fn must_disable(policy: DeletionPolicy, state: Option<EnrollmentState>) -> bool {
    policy == DeletionPolicy::Disable && state == Some(EnrollmentState::Enrolled)
}

pub async fn cleanup(credential: &ApiCredential, ctx: &Context) -> Result<Action, Error> {
    let namespace = credential.namespace().unwrap_or_default();
    let name = credential.name_any();
    let secrets_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let stored = secrets::read(&secrets_api, &name)
        .await
        .map_err(|e| Error::disable(local::KUBERNETES_ERROR, e.to_string(), None))?;
    if !must_disable(credential.spec.deletion_policy, stored.enrollment_state()) {
        tracing::info!(credential = name, policy = ?credential.spec.deletion_policy, "deleted; MFA left as it is at the vendor");
        return Ok(Action::await_change());
    }
    let resolved = dereference::resolve(&ctx.client, &namespace, &credential.spec)
        .await
        .map_err(|e| Error::disable(e.reason(), e.to_string(), None))?;
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
    let settings: HttpSettings = engine_settings(&resolved);
    let engine = Engine::new(
        resolved.profile.clone(),
        &credential.spec.base_url,
        settings,
    )
    .map_err(|e| Error::disable(local::KUBERNETES_ERROR, e.to_string(), None))?
    .with_timer(ctx.timer.clone());
    let inputs = inputs(credential, &resolved).with_totp(key);
    engine.disable(&inputs).await.map_err(|e| {
        let retry_after = match &e.kind {
            otpilot_profile::FlowErrorKind::LockedOut { retry_after, .. } => *retry_after,
            _ => None,
        };
        Error::disable(flow_reason(&e.kind), e.to_string(), retry_after)
    })?;
    ctx.metrics.enrollment_finished("Disabled");
    tracing::info!(credential = name, "MFA turned off at the vendor");
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_enrolled_credential_with_policy_disable_calls_the_vendor() {
        use DeletionPolicy::*;
        use EnrollmentState::*;
        let cases = [
            (Retain, Some(Enrolled), false),
            (Retain, None, false),
            (Disable, Some(Enrolled), true),
            (Disable, Some(Pending), false),
            (Disable, None, false),
        ];
        for (policy, state, want) in cases {
            assert_eq!(must_disable(policy, state), want, "{policy:?} {state:?}");
        }
    }
}
