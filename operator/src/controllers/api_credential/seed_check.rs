//! Whether the TOTP secret in the runtime Secret still works, and the
//! recovery-code path when the vendor refuses it.
//!
//! A secret is checked with a login when the operator has not seen the
//! vendor accept it (after a start, or when the runtime Secret changed).
//! It counts as refused only after codes from [`FRESH_STEPS`] different time
//! steps were refused while the vendor's clock is known (codes are computed
//! on it). Then ONE recovery code is spent — removed from `<name>-recovery`,
//! together with the refused secret, before the call, so no decision ever
//! spends a second — and the credential re-enrolls where the vendor
//! requires it (Cryptr) or allows it through its profile; otherwise the
//! status says what a person must do.

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::labels;
use otpilot_profile::{Engine, FlowKind, TotpKey, TotpParams};
use secrecy::{ExposeSecret, SecretString};

use super::dereference::Resolved;
use super::enrollment;
use super::failure::EnrollmentError;
use super::notices::Notice;
use super::recovery_vendor::{self, Vendor, Verdict};
use super::reenroll;
use super::secrets::{self, RECOVERY_REENROLL, ReenrollMark, ReenrollPhase, Stored};
use super::seed_verdict::{
    FRESH_STEPS, RecoveryAction, code_refused, recovery_action, secret_refused,
};
use crate::context::{Context, SeedCheck};

fn runtime_key(
    stored: &Stored,
    name: &str,
) -> Result<Option<(TotpKey, SecretString)>, EnrollmentError> {
    let Some(totp) = stored.runtime.as_ref().and_then(|r| r.totp.as_ref()) else {
        return Ok(None);
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
        runtime: labels::runtime_secret_name(name),
        problem: e.to_string(),
    })?;
    Ok(Some((key, totp.secret.clone())))
}

/// Remembers the secret the runtime Secret holds now as accepted (it was
/// just confirmed by the vendor).
pub async fn remember_current(
    ctx: &Context,
    credential: &ApiCredential,
    secrets_api: &Api<Secret>,
) {
    let key = format!(
        "{}/{}",
        credential.namespace().unwrap_or_default(),
        credential.name_any()
    );
    if let Ok(now) = secrets::read(secrets_api, &credential.name_any()).await
        && let Some(totp) = now.runtime.and_then(|r| r.totp)
    {
        ctx.record_seed_check(&key, totp.secret, SeedCheck::Works);
    }
}

/// Checks the enrolled secret (see the module doc); `Ok` with an Event
/// when a recovery code was used and the credential re-enrolled.
pub async fn ensure_working(
    ctx: &Context,
    credential: &ApiCredential,
    resolved: &Resolved,
    engine: &Engine,
    secrets_api: &Api<Secret>,
    stored: &Stored,
) -> Result<Option<Notice>, EnrollmentError> {
    let name = credential.name_any();
    let cache_key = format!("{}/{}", credential.namespace().unwrap_or_default(), name);
    let Some((key, seed)) = runtime_key(stored, &name)? else {
        return Ok(None);
    };
    let runtime = labels::runtime_secret_name(&name);
    // Refusals so far count: an outage mid-check does not restart the
    // count, so wrong codes never pile up to a lock-out.
    let mut clock_known_before = false;
    let mut rejections = match ctx.seed_check(&cache_key, &seed) {
        Some(SeedCheck::Works) => return Ok(None),
        // Refused, undecided: not tried again until it changes (or the
        // operator restarts).
        Some(SeedCheck::Doubted) => return Err(doubted(&runtime)),
        Some(SeedCheck::Refused { steps, clock_known }) => {
            clock_known_before = clock_known;
            steps
        }
        None => 0,
    };
    if stored
        .reenroll
        .refused_secret
        .as_ref()
        .is_some_and(|r| r.expose_secret() == seed.expose_secret())
    {
        // Decided before (a code spent, or none to spend): not again.
        return Err(EnrollmentError::StoredSecretRefused {
            runtime: runtime.clone(),
            rejections: FRESH_STEPS,
            what: needs_a_person(resolved, &runtime, stored.recovery_codes.len()),
        });
    }
    if let Some(step) = stored.runtime.as_ref().and_then(|r| r.last_code_step) {
        ctx.timer.mark_used(&key, step);
    }
    let inputs = enrollment::inputs(credential, resolved).with_totp(key);
    let mut last_error = None;
    while rejections < FRESH_STEPS {
        match engine.login(&inputs).await {
            Ok(session) => {
                // A sidecar must not send a code from the step just used.
                if let Some(runtime) = &stored.runtime {
                    let bundle = enrollment::runtime_bundle(
                        credential,
                        resolved,
                        runtime.totp.clone(),
                        session.last_code_step.or(runtime.last_code_step),
                    );
                    secrets::write_runtime(secrets_api, credential, &bundle).await?;
                }
                ctx.record_seed_check(&cache_key, seed, SeedCheck::Works);
                return Ok(None);
            }
            Err(error) if code_refused(&error) => {
                rejections += 1;
                ctx.record_seed_check(
                    &cache_key,
                    seed.clone(),
                    SeedCheck::Refused {
                        steps: rejections,
                        clock_known: clock_known_before || engine.clock_offset_ms().is_some(),
                    },
                );
                tracing::info!(
                    credential = name,
                    rejections,
                    "the vendor refused a code from the stored secret"
                );
                last_error = Some(error);
            }
            Err(error) => return Err(error.into()),
        }
    }
    if !secret_refused(
        rejections,
        clock_known_before || engine.clock_offset_ms().is_some(),
    ) {
        if let Some(error) = &last_error {
            tracing::warn!(credential = name, %error, "the stored secret was refused, but the vendor's clock is unknown");
        }
        ctx.record_seed_check(&cache_key, seed, SeedCheck::Doubted);
        return Err(doubted(&runtime));
    }
    let plan = reenroll::plan_for(engine);
    let has_recovery = engine.profile().has_flow(FlowKind::RecoveryLogin);
    let action = recovery_action(stored.recovery_codes.len(), has_recovery, plan);
    tracing::warn!(
        credential = name,
        ?action,
        "the stored TOTP secret is refused by the vendor"
    );
    if !stored.recovery_codes.is_empty()
        && let Verdict::Differs(why) = recovery_vendor::verdict(
            stored.recovery_issuer.as_deref(),
            &Vendor::of(&credential.spec.base_url, resolved.server_ca.as_deref()),
        )
    {
        // Nothing is spent or recorded: put the vendor back and the check
        // runs again.
        return Err(EnrollmentError::RecoveryVendorMismatch {
            recovery: labels::recovery_secret_name(&name),
            why,
        });
    }
    let Some((code, rest)) = stored.recovery_codes.split_first() else {
        record_refused(
            secrets_api,
            credential,
            stored,
            &seed,
            &stored.recovery_codes,
        )
        .await?;
        return Err(EnrollmentError::StoredSecretRefused {
            runtime: runtime.clone(),
            rejections,
            what: match action {
                RecoveryAction::NoRecoveryFlow => format!(
                    "Profile {} has no recoveryLogin flow. {}",
                    resolved.profile_name,
                    reset_advice(&runtime)
                ),
                _ => format!("No recovery code is stored. {}", reset_advice(&runtime)),
            },
        });
    };
    if action == RecoveryAction::NoRecoveryFlow {
        record_refused(
            secrets_api,
            credential,
            stored,
            &seed,
            &stored.recovery_codes,
        )
        .await?;
        return Err(EnrollmentError::StoredSecretRefused {
            runtime: runtime.clone(),
            rejections,
            what: format!(
                "Profile {} has no recoveryLogin flow. {}",
                resolved.profile_name,
                reset_advice(&runtime)
            ),
        });
    }
    // Spent before it is sent: a crash after this never sends it twice,
    // and the refused secret is recorded so no second decision follows.
    let after = record_refused(secrets_api, credential, stored, &seed, rest).await?;
    let left = rest.len();
    ctx.metrics.enrollment_finished("RecoveryCodeUsed");
    match engine.recovery_login(&inputs, code).await {
        Ok(session) => {
            tracing::warn!(
                credential = name,
                codes_left = left,
                "logged in with a recovery code"
            );
            if action == RecoveryAction::UseCodeOnly {
                let required = if session.reenroll_required {
                    "The vendor requires a new enrollment now. "
                } else {
                    ""
                };
                return Err(EnrollmentError::StoredSecretRefused {
                    runtime: runtime.clone(),
                    rejections,
                    what: format!("{required}{}", needs_a_person(resolved, &runtime, left)),
                });
            }
            // Cryptr requires it after a recovery code; the enroll flow
            // replaces the active secret without needing a code.
            let mark = ReenrollMark {
                request: RECOVERY_REENROLL.to_owned(),
                phase: ReenrollPhase::Enroll,
            };
            let reenrolling = Stored {
                reenroll: after.reenroll.with(mark.clone()),
                ..after
            };
            secrets::write_recovery(
                secrets_api,
                credential,
                None,
                &reenrolling.recovery_codes,
                &reenrolling.reenroll,
            )
            .await?;
            reenroll::carry_on(
                ctx,
                credential,
                resolved,
                engine,
                secrets_api,
                &reenrolling,
                mark,
                plan,
                false,
            )
            .await?;
            remember_current(ctx, credential, secrets_api).await;
            Ok(Some(Notice {
                type_: EventType::Warning,
                reason: otpilot_api::conditions::reasons::RECOVERED_WITH_RECOVERY_CODE,
                note: format!(
                    "the vendor refused the stored TOTP secret; one recovery code logged in \
                     ({left} were left) and MFA was enrolled again with a new secret; the \
                     runtime Secret holds it"
                ),
            }))
        }
        Err(error) => Err(EnrollmentError::StoredSecretRefused {
            runtime: runtime.clone(),
            rejections,
            what: format!(
                "One recovery code was spent and the vendor refused it too ({error}); no other \
                 code is tried automatically ({left} left). {}",
                reset_advice(&runtime)
            ),
        }),
    }
}

fn doubted(runtime: &str) -> EnrollmentError {
    EnrollmentError::SecretDoubted {
        runtime: runtime.to_owned(),
    }
}

/// Stores `codes` and the refused secret before any vendor call.
async fn record_refused(
    secrets_api: &Api<Secret>,
    credential: &ApiCredential,
    stored: &Stored,
    seed: &SecretString,
    codes: &[SecretString],
) -> Result<Stored, EnrollmentError> {
    let mut reenroll = stored.reenroll.clone();
    reenroll.refused_secret = Some(seed.clone());
    secrets::write_recovery(secrets_api, credential, None, codes, &reenroll).await?;
    Ok(Stored {
        recovery_codes: codes.to_vec(),
        reenroll,
        ..stored.clone()
    })
}

fn reset_advice(runtime: &str) -> String {
    format!(
        "Reset MFA for the account at the vendor, then delete Secret {runtime} so that the \
         operator enrolls again"
    )
}

fn needs_a_person(resolved: &Resolved, runtime: &str, left: usize) -> String {
    format!(
        "One recovery code logged in ({left} left), but profile {} cannot enroll a new secret \
         without a working code (its enroll flow does not replace an active secret, and a \
         disable flow needs a code). {}",
        resolved.profile_name,
        reset_advice(runtime)
    )
}
