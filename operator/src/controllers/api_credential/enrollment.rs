//! Crash-safe enrollment. The rule: before any vendor call, the state that
//! call depends on is in the `<name>-recovery` Secret (the checkpoint
//! record, written after every step and before the first); recovery codes
//! are there the moment they appear; the runtime Secret gets the seed only
//! once the vendor confirmed it. A restart resumes from the stored record and
//! never starts a second enrollment while one is stored.

use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use otpilot_api::ApiCredential;
use otpilot_api::api_credential::EnrollmentState;
use otpilot_api::labels;
use otpilot_api::runtime_secret::{RuntimeBundle, StoredTotp, StoredTotpParams};
use otpilot_profile::{Checkpoint, Engine, FlowErrorKind, FlowKind, Inputs};
use secrecy::{ExposeSecret, SecretString};

use super::answer_write;
use super::dereference::Resolved;
use super::failure::EnrollmentError;
use super::looking;
use super::recovery_vendor::{self, Vendor};
use super::secrets::{self, SecretsError, Stored};
use crate::context::Context;
use crate::failpoint;

/// What to do about enrollment, from what the Secrets hold (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAction {
    /// The runtime Secret says Enrolled: nothing to send to the vendor.
    AlreadyEnrolled,
    /// A checkpoint is stored: continue that enrollment, never a new one.
    Resume,
    /// Nothing stored: start enrolling.
    Start,
}

pub fn next_action(runtime_state: Option<EnrollmentState>, has_checkpoint: bool) -> NextAction {
    match (runtime_state, has_checkpoint) {
        (Some(EnrollmentState::Enrolled), _) => NextAction::AlreadyEnrolled,
        (_, true) => NextAction::Resume,
        (_, false) => NextAction::Start,
    }
}

/// The runtime Secret's content before and after enrollment (pure).
pub fn runtime_bundle(
    credential: &ApiCredential,
    resolved: &Resolved,
    totp: Option<StoredTotp>,
    last_code_step: Option<u64>,
) -> RuntimeBundle {
    RuntimeBundle {
        enrollment_state: if totp.is_some() {
            EnrollmentState::Enrolled
        } else {
            EnrollmentState::Pending
        },
        base_url: credential.spec.base_url.clone(),
        username: credential.spec.username.clone(),
        profile_name: resolved.profile_name.clone(),
        profile_yaml: resolved.profile_yaml.clone(),
        variables: credential.spec.variables.clone(),
        totp,
        last_code_step,
        tls_crt: resolved
            .client_certificate
            .as_ref()
            .map(|c| c.chain_pem.clone()),
        tls_key: resolved
            .client_certificate
            .as_ref()
            .map(|c| c.key_pem.clone()),
        server_ca: resolved.server_ca.clone(),
    }
}

pub fn inputs(credential: &ApiCredential, resolved: &Resolved) -> Inputs {
    Inputs {
        username: Some(credential.spec.username.clone()),
        password: resolved.password.clone(),
        api_key: resolved.api_key.clone(),
        secret_values: resolved.secret_values.clone(),
        totp_overrides: credential.spec.totp.clone().unwrap_or_default(),
        variables: credential.spec.variables.clone(),
        ..Inputs::default()
    }
}

/// Enrolls (or resumes enrolling) until the runtime Secret says Enrolled.
pub async fn ensure_enrolled(
    ctx: &Context,
    credential: &ApiCredential,
    resolved: &Resolved,
    engine: &Engine,
    secrets_api: &Api<Secret>,
    stored: &Stored,
) -> Result<(), EnrollmentError> {
    let action = next_action(stored.enrollment_state(), stored.checkpoint.is_some());
    let name = kube::ResourceExt::name_any(credential);
    tracing::info!(credential = name, ?action, "enrollment");
    if action == NextAction::AlreadyEnrolled {
        if stored.checkpoint.is_some() {
            // A crash after the runtime Secret said Enrolled and before the
            // checkpoint was removed: finish that clean-up.
            secrets::write_recovery(
                secrets_api,
                credential,
                None,
                &stored.recovery_codes,
                &stored.reenroll,
            )
            .await?;
        }
        return Ok(());
    }

    if let (Some(problem), NextAction::Start) = (&stored.runtime_error, action) {
        return Err(EnrollmentError::RuntimeUnreadable {
            runtime: labels::runtime_secret_name(&name),
            problem: problem.clone(),
        });
    }
    run_enroll_flow(
        ctx,
        credential,
        resolved,
        engine,
        secrets_api,
        stored,
        action,
        RuntimeWhileEnrolling::Pending,
    )
    .await
}

/// What the runtime Secret says while the enroll flow runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeWhileEnrolling {
    /// `Pending`, no seed: a sidecar reports what it waits for.
    Pending,
    /// Unchanged: the seed in it keeps working until the new one is
    /// confirmed (a re-enrollment that replaces the active secret).
    Unchanged,
}

/// Runs (or resumes) the enroll flow, checkpointed in `<name>-recovery`
/// before every vendor call, until the runtime Secret holds the new seed.
/// The recovery Secret's re-enrollment record (`stored.reenroll`) is kept
/// while it runs and marked finished with the last write.
#[allow(clippy::too_many_arguments)]
pub async fn run_enroll_flow(
    ctx: &Context,
    credential: &ApiCredential,
    resolved: &Resolved,
    engine: &Engine,
    secrets_api: &Api<Secret>,
    stored: &Stored,
    action: NextAction,
    runtime_while: RuntimeWhileEnrolling,
) -> Result<(), EnrollmentError> {
    let name = kube::ResourceExt::name_any(credential);
    let inputs = inputs(credential, resolved);
    let profile = engine.profile();
    let mut run = match (action, &stored.checkpoint) {
        (NextAction::Resume, Some(record)) => {
            let checkpoint =
                Checkpoint::from_record(record.expose_secret(), profile).map_err(|source| {
                    EnrollmentError::Checkpoint {
                        recovery: labels::recovery_secret_name(&name),
                        source,
                    }
                })?;
            remember_used_steps(ctx, &checkpoint);
            looking::refuse_a_known_foreign_enrollment(&checkpoint, stored, &name)?;
            engine.resume(checkpoint, &inputs)?
        }
        _ => engine.start(FlowKind::Enroll, &inputs)?,
    };
    if runtime_while == RuntimeWhileEnrolling::Pending {
        // The runtime Secret exists from the start (Pending), so a sidecar
        // reports what it waits for.
        secrets::write_runtime(
            secrets_api,
            credential,
            &runtime_bundle(credential, resolved, None, None),
        )
        .await?;
    }
    failpoint::point("enroll-before-first-checkpoint").await;
    // Persisted before the first vendor call: from here on, a restart resumes.
    persist(secrets_api, credential, run.checkpoint(), engine, stored).await?;

    let resumed_at = (action == NextAction::Resume).then(|| run.checkpoint().next_step);
    let enrollment = loop {
        let index = run.checkpoint().next_step;
        failpoint::point(&format!("enroll-before-step-{index}")).await;
        let before = run.checkpoint().clone();
        match run.step().await {
            Ok(None) => break run.into_enrollment()?,
            Ok(Some(report)) if report.already_done => {
                // "Already done" says MFA is on, not that it is on with
                // this secret: look before going on.
                let last_code_step = looking::confirm_already_done(
                    engine,
                    &inputs,
                    &before,
                    &name,
                    secrets_api,
                    credential,
                    stored,
                )
                .await?;
                let mut checkpoint = run.checkpoint().clone();
                checkpoint.last_code_step = last_code_step.or(checkpoint.last_code_step);
                run = engine.resume(checkpoint, &inputs)?;
            }
            Ok(Some(_)) => {}
            Err(error) => {
                let safe = profile
                    .spec()
                    .enroll
                    .steps
                    .get(index)
                    .is_none_or(|s| s.safe_to_repeat);
                let seed = run.checkpoint().totp.clone();
                let Some(key) = seed.filter(|_| should_probe(safe, resumed_at, index, &error.kind))
                else {
                    return Err(error.into());
                };
                let last_code_step = looking::probe(engine, &inputs, key, &name, error).await?;
                // The step had taken effect: go on after it.
                let mut checkpoint = run.checkpoint().clone();
                checkpoint.next_step = index + 1;
                checkpoint.last_code_step = last_code_step.or(checkpoint.last_code_step);
                run = engine.resume(checkpoint, &inputs)?;
            }
        }
        // The answer is recorded first thing, through an API-server outage
        // too: values the vendor hands out once (goaxr's recovery codes)
        // are lost only by the process ending inside this one Secret write.
        failpoint::point(&format!("enroll-answered-step-{index}")).await;
        answer_write::retrying(&name, || {
            persist(secrets_api, credential, run.checkpoint(), engine, stored)
        })
        .await?;
        failpoint::point(&format!("enroll-after-step-{index}")).await;
    };
    let params = enrollment
        .totp
        .params()
        .overridden_by(&credential.spec.totp.clone().unwrap_or_default());
    let totp = StoredTotp {
        secret: enrollment.totp.secret_base32().clone(),
        params: StoredTotpParams {
            algorithm: params.algorithm,
            digits: params.digits,
            period: params.period,
        },
    };
    let codes = if enrollment.recovery_codes.is_empty() {
        stored.recovery_codes.clone()
    } else {
        enrollment.recovery_codes.clone()
    };
    secrets::write_runtime(
        secrets_api,
        credential,
        &runtime_bundle(credential, resolved, Some(totp), enrollment.last_code_step),
    )
    .await?;
    failpoint::point("enroll-after-runtime-write").await;
    // Only now may the checkpoint go: the runtime Secret holds the seed.
    secrets::write_recovery(
        secrets_api,
        credential,
        None,
        &codes,
        &stored.reenroll.finished(),
    )
    .await?;
    if !enrollment.recovery_codes.is_empty() {
        // New codes: the vendor enrolled with now issued them.
        let issuer = Vendor::of(&credential.spec.base_url, resolved.server_ca.as_deref());
        recovery_vendor::record(secrets_api, credential, &issuer).await?;
    }
    ctx.metrics.enrollment_finished("Enrolled");
    tracing::info!(credential = name, "enrolled");
    Ok(())
}

/// Whether a failed step should be resolved by looking (pure): a step not
/// safe to repeat, re-sent first thing after a resume, refused by the
/// vendor. Its first sending may have taken effect before the crash (e.g. MFA
/// activated), so a vendor refusing it again says nothing about the seed.
pub fn should_probe(
    safe_to_repeat: bool,
    resumed_at: Option<usize>,
    failed_index: usize,
    kind: &FlowErrorKind,
) -> bool {
    !safe_to_repeat
        && resumed_at == Some(failed_index)
        && matches!(
            kind,
            FlowErrorKind::Status { .. }
                | FlowErrorKind::CodeRejected { .. }
                | FlowErrorKind::CodeAlreadyUsed { .. }
        )
}

async fn persist(
    api: &Api<Secret>,
    credential: &ApiCredential,
    checkpoint: &Checkpoint,
    engine: &Engine,
    stored: &Stored,
) -> Result<(), SecretsError> {
    let record = checkpoint.to_record(engine.profile());
    let codes: Vec<SecretString> = checkpoint
        .recovery_codes
        .clone()
        .unwrap_or_else(|| stored.recovery_codes.clone());
    secrets::write_recovery(api, credential, Some(&record), &codes, &stored.reenroll).await
}

/// A resumed flow must not send a code from a step already used: the one
/// recorded, and the one current now (a code sent just before a crash may
/// not have been recorded).
fn remember_used_steps(ctx: &Context, checkpoint: &Checkpoint) {
    let Some(key) = &checkpoint.totp else {
        return;
    };
    if let Some(step) = checkpoint.last_code_step {
        ctx.timer.mark_used(key, step);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    ctx.timer.mark_used(key, key.step_at(now));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_action_never_starts_a_second_enrollment() {
        use EnrollmentState::*;
        let cases = [
            (None, false, NextAction::Start),
            (None, true, NextAction::Resume),
            (Some(NotStarted), false, NextAction::Start),
            (Some(Pending), false, NextAction::Start),
            (Some(Pending), true, NextAction::Resume),
            (Some(Enrolled), false, NextAction::AlreadyEnrolled),
            (Some(Enrolled), true, NextAction::AlreadyEnrolled),
        ];
        for (state, checkpoint, want) in cases {
            assert_eq!(
                next_action(state, checkpoint),
                want,
                "{state:?} checkpoint={checkpoint}"
            );
        }
    }

    #[test]
    fn only_a_refused_unsafe_step_right_after_resume_is_resolved_by_looking() {
        let refused = FlowErrorKind::Status {
            status: 404,
            detail: None,
        };
        let down = FlowErrorKind::Transport {
            attempts: 1,
            message: "refused".into(),
        };
        let cases = [
            (false, Some(2), 2, &refused, true),
            (true, Some(2), 2, &refused, false),
            (false, None, 2, &refused, false),
            (false, Some(1), 2, &refused, false),
            (false, Some(2), 2, &down, false),
            (
                false,
                Some(2),
                2,
                &FlowErrorKind::CodeRejected { status: 401 },
                true,
            ),
        ];
        for (safe, resumed, failed, kind, want) in cases {
            assert_eq!(
                should_probe(safe, resumed, failed, kind),
                want,
                "safe={safe} resumed={resumed:?} failed={failed} {kind:?}"
            );
        }
    }
}
