//! Enrollment, with re-enrollment on request (`otpilot.dev/reenroll`).
//!
//! A re-enrollment is crash-safe the way the first enrollment is: before
//! the first vendor call its mark (request value and phase) is in
//! `<name>-recovery`, the enroll flow's checkpoint joins it, and the last
//! write removes both and remembers the request as handled. A restart
//! finishes a re-enrollment under way before anything else.

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::labels;
use otpilot_profile::{
    Checkpoint, Engine, FlowError, FlowErrorKind, FlowKind, TotpKey, TotpParams,
};
use secrecy::ExposeSecret;

use super::dereference::Resolved;
use super::enrollment::{self, NextAction, RuntimeWhileEnrolling};
use super::failure::EnrollmentError;
use super::notices::Notice;
use super::requests::{self, ReenrollAction, ReenrollPlan};
use super::secrets::{self, RECOVERY_REENROLL, ReenrollMark, ReenrollPhase, Stored};
use super::seed_check;
use crate::context::Context;
use crate::failpoint;

/// What the pass did about a re-enroll request.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The request value now handled, to record in status.
    pub handled: Option<String>,
    pub notice: Option<Notice>,
}

/// Event reasons.
pub const REENROLLED: &str = otpilot_api::conditions::reasons::REENROLLED;
pub const REENROLL_UNSUPPORTED: &str = otpilot_api::conditions::reasons::REENROLL_UNSUPPORTED;
pub const REENROLL_NOT_NEEDED: &str = otpilot_api::conditions::reasons::REENROLL_NOT_NEEDED;

pub fn plan_for(engine: &Engine) -> ReenrollPlan {
    let profile = engine.profile();
    requests::reenroll_plan(
        profile
            .flow(FlowKind::Enroll)
            .is_some_and(|f| f.replaces_active_secret),
        profile.has_flow(FlowKind::Disable),
    )
}

/// Enrolls as [`enrollment::ensure_enrolled`] does, and acts on a pending
/// re-enroll request (or finishes one under way).
pub async fn ensure(
    ctx: &Context,
    credential: &ApiCredential,
    resolved: &Resolved,
    engine: &Engine,
    secrets_api: &Api<Secret>,
    stored: &Stored,
) -> Result<Outcome, EnrollmentError> {
    let handled_in_status = credential
        .status
        .as_ref()
        .and_then(|s| s.handled_reenroll_request.as_deref());
    let requested = requests::pending(
        credential
            .annotations()
            .get(labels::REENROLL_ANNOTATION)
            .map(String::as_str),
        &[handled_in_status, stored.reenroll.handled.as_deref()],
    );
    let enrolled =
        stored.enrollment_state() == Some(otpilot_api::api_credential::EnrollmentState::Enrolled);
    let plan = plan_for(engine);
    let action = requests::reenroll_action(
        requested,
        stored.reenroll.under_way.as_ref(),
        enrolled,
        plan,
    );
    let name = credential.name_any();
    match action {
        ReenrollAction::None if enrolled => {
            // Clean-up of a finished enrollment first, then the check.
            enrollment::ensure_enrolled(ctx, credential, resolved, engine, secrets_api, stored)
                .await?;
            let notice =
                seed_check::ensure_working(ctx, credential, resolved, engine, secrets_api, stored)
                    .await?;
            Ok(Outcome {
                handled: None,
                notice,
            })
        }
        ReenrollAction::None => {
            enrollment::ensure_enrolled(ctx, credential, resolved, engine, secrets_api, stored)
                .await?;
            // Just confirmed by the vendor: no check needed.
            seed_check::remember_current(ctx, credential, secrets_api).await;
            Ok(Outcome::default())
        }
        ReenrollAction::RecordAfterEnrollment(value) => {
            enrollment::ensure_enrolled(ctx, credential, resolved, engine, secrets_api, stored)
                .await?;
            Ok(Outcome {
                notice: Some(Notice {
                    type_: EventType::Normal,
                    reason: REENROLL_NOT_NEEDED,
                    note: format!(
                        "re-enroll request {value:?}: the credential was not enrolled yet; its \
                         enrollment made a new TOTP secret"
                    ),
                }),
                handled: Some(value),
            })
        }
        ReenrollAction::Refuse(value) => {
            enrollment::ensure_enrolled(ctx, credential, resolved, engine, secrets_api, stored)
                .await?;
            tracing::warn!(
                credential = name,
                "re-enroll request refused: the profile cannot re-enroll"
            );
            Ok(Outcome {
                notice: Some(Notice {
                    type_: EventType::Warning,
                    reason: REENROLL_UNSUPPORTED,
                    note: format!(
                        "re-enroll request {value:?} not carried out: profile {} has no disable \
                         flow and its enroll flow does not replace an active secret (the vendor \
                         refuses a second enrollment). Reset MFA for the account at the vendor, \
                         then delete Secret {} so that the operator enrolls again",
                        resolved.profile_name,
                        labels::runtime_secret_name(&name),
                    ),
                }),
                handled: Some(value),
            })
        }
        ReenrollAction::Begin(value) => {
            let mark = ReenrollMark {
                request: value,
                phase: plan.first_phase(),
            };
            tracing::info!(credential = name, ?plan, "re-enrolling on request");
            // Stored before the first vendor call: a restart finishes it.
            secrets::write_recovery(
                secrets_api,
                credential,
                None,
                &stored.recovery_codes,
                &stored.reenroll.with(mark.clone()),
            )
            .await?;
            carry_on(
                ctx,
                credential,
                resolved,
                engine,
                secrets_api,
                stored,
                mark,
                plan,
                false,
            )
            .await
        }
        ReenrollAction::Continue(mark) => {
            tracing::info!(credential = name, phase = ?mark.phase, "finishing a re-enrollment under way");
            carry_on(
                ctx,
                credential,
                resolved,
                engine,
                secrets_api,
                stored,
                mark,
                plan,
                true,
            )
            .await
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn carry_on(
    ctx: &Context,
    credential: &ApiCredential,
    resolved: &Resolved,
    engine: &Engine,
    secrets_api: &Api<Secret>,
    stored: &Stored,
    mut mark: ReenrollMark,
    plan: ReenrollPlan,
    resumed: bool,
) -> Result<Outcome, EnrollmentError> {
    let name = credential.name_any();
    let mut action = NextAction::Start;
    if mark.phase == ReenrollPhase::Disable {
        failpoint::point("reenroll-before-disable").await;
        disable_old_secret(ctx, credential, resolved, engine, stored, resumed).await?;
        failpoint::point("reenroll-after-disable").await;
        mark.phase = ReenrollPhase::Enroll;
        secrets::write_recovery(
            secrets_api,
            credential,
            None,
            &stored.recovery_codes,
            &stored.reenroll.with(mark.clone()),
        )
        .await?;
    } else if let Some(record) = &stored.checkpoint {
        let checkpoint = Checkpoint::from_record(record.expose_secret(), engine.profile())
            .map_err(|source| EnrollmentError::Checkpoint {
                recovery: labels::recovery_secret_name(&name),
                source,
            })?;
        let runtime_seed = stored
            .runtime
            .as_ref()
            .and_then(|r| r.totp.as_ref())
            .map(|t| t.secret.expose_secret().to_owned());
        let checkpoint_seed = checkpoint
            .totp
            .as_ref()
            .map(|k| k.secret_base32().expose_secret().to_owned());
        if requests::enroll_flow_finished(checkpoint_seed.as_deref(), runtime_seed.as_deref()) {
            // Done before a crash; only the clean-up was missing.
            secrets::write_recovery(
                secrets_api,
                credential,
                None,
                &stored.recovery_codes,
                &stored.reenroll.finished(),
            )
            .await?;
            return Ok(reenrolled(&mark.request));
        }
        action = NextAction::Resume;
    }
    // The enroll flow's writes carry the mark, with the phase it is in now.
    let during = Stored {
        reenroll: stored.reenroll.with(mark.clone()),
        ..stored.clone()
    };
    let runtime_while = match plan {
        // The old secret works until the new one is confirmed.
        ReenrollPlan::EnrollAgain => RuntimeWhileEnrolling::Unchanged,
        // MFA is off: the old secret is worthless now.
        _ => RuntimeWhileEnrolling::Pending,
    };
    enrollment::run_enroll_flow(
        ctx,
        credential,
        resolved,
        engine,
        secrets_api,
        &during,
        action,
        runtime_while,
    )
    .await?;
    seed_check::remember_current(ctx, credential, secrets_api).await;
    tracing::info!(
        credential = name,
        "re-enrolled: the vendor has the new TOTP secret"
    );
    Ok(reenrolled(&mark.request))
}

fn reenrolled(request: &str) -> Outcome {
    if request == RECOVERY_REENROLL {
        // After a recovery code: no request to record, and seed_check
        // publishes its own Event.
        return Outcome::default();
    }
    Outcome {
        handled: Some(request.to_owned()),
        notice: Some(Notice {
            type_: EventType::Normal,
            reason: REENROLLED,
            note: format!(
                "re-enroll request {request:?}: MFA is turned over to a new TOTP secret at the \
                 vendor; the runtime Secret holds it and the old one is no longer accepted"
            ),
        }),
    }
}

/// Turns MFA off with the secret in the runtime Secret. Sent again after a
/// restart, a refusal may mean the first sending took effect: then the
/// operator looks (a login with the old secret) instead of guessing.
async fn disable_old_secret(
    ctx: &Context,
    credential: &ApiCredential,
    resolved: &Resolved,
    engine: &Engine,
    stored: &Stored,
    resumed: bool,
) -> Result<(), EnrollmentError> {
    let name = credential.name_any();
    let runtime = stored.runtime.as_ref();
    let Some(totp) = runtime.and_then(|r| r.totp.as_ref()) else {
        // No old secret to turn off with: MFA went off before the crash
        // (the runtime Secret was set Pending only after the disable).
        tracing::info!(
            credential = name,
            "no old secret stored; MFA is already off"
        );
        return Ok(());
    };
    let key = TotpKey::from_base32(
        totp.secret.expose_secret(),
        TotpParams {
            algorithm: totp.params.algorithm,
            digits: totp.params.digits,
            period: totp.params.period,
        },
    )
    .map_err(|e| EnrollmentError::RuntimeUnreadable {
        runtime: labels::runtime_secret_name(&name),
        problem: e.to_string(),
    })?;
    if let Some(step) = runtime.and_then(|r| r.last_code_step) {
        ctx.timer.mark_used(&key, step);
    }
    let inputs = enrollment::inputs(credential, resolved).with_totp(key);
    let error = match engine.disable(&inputs).await {
        Ok(()) => {
            tracing::info!(credential = name, "MFA turned off with the old secret");
            return Ok(());
        }
        Err(error) => error,
    };
    if !(resumed && refused(&error)) {
        return Err(error.into());
    }
    tracing::info!(
        credential = name,
        "turning MFA off again was refused; logging in with the old secret to see whether it is still on"
    );
    match engine.login(&inputs).await {
        // Still on: the refusal stands.
        Ok(_) => Err(error.into()),
        Err(login) if refused(&login) => {
            tracing::info!(
                credential = name,
                "the old secret no longer logs in: MFA is off"
            );
            Ok(())
        }
        Err(login) => Err(login.into()),
    }
}

/// The vendor answered and said no (as opposed to not answering).
fn refused(error: &FlowError) -> bool {
    matches!(
        error.kind,
        FlowErrorKind::Status { .. }
            | FlowErrorKind::CodeRejected { .. }
            | FlowErrorKind::TotpHeaderRefused { .. }
            | FlowErrorKind::LoginRequired { .. }
    )
}
