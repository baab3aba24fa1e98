//! Ambiguous vendor answers during enrollment, resolved by looking (a
//! login with the enrollment's secret) instead of by guessing.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use otpilot_api::ApiCredential;
use otpilot_api::labels;
use otpilot_profile::{Checkpoint, Engine, FlowError, FlowErrorKind, Inputs};
use secrecy::ExposeSecret;

use super::failure::EnrollmentError;
use super::secrets::{self, Stored};

/// Looks whether the vendor already knows the checkpoint's seed, by logging
/// in with it (one code): the time step of that code if it does, the step's
/// own error if not.
pub async fn probe(
    engine: &Engine,
    inputs: &Inputs,
    key: otpilot_profile::TotpKey,
    name: &str,
    step_error: FlowError,
) -> Result<Option<u64>, EnrollmentError> {
    tracing::info!(
        credential = name,
        "a resumed step was refused; logging in with the stored seed to see whether it took effect"
    );
    match engine.login(&inputs.with_totp(key.clone())).await {
        Ok(session) => {
            tracing::warn!(
                credential = name,
                "the vendor already had MFA on with the stored seed; values the interrupted \
                 step returned (recovery codes, if it carried them) were not received"
            );
            Ok(session.last_code_step)
        }
        Err(login_error) => {
            tracing::info!(credential = name, error = %login_error, "the stored seed does not log in");
            Err(step_error.into())
        }
    }
}

/// A step answered "already done" (AUDD's `enable`: 409, already enabled).
/// After a crash that is our own earlier sending; on a fresh start it is an
/// enrollment this operator does not know (a runtime Secret deleted by
/// hand, another tool). A login with the enrollment's secret tells them
/// apart: the time step of that login if it works. If the vendor refuses
/// it, the secret is recorded as refused with the checkpoint from before
/// the step, so no later pass sends another code for it.
pub async fn confirm_already_done(
    engine: &Engine,
    inputs: &Inputs,
    before: &Checkpoint,
    name: &str,
    secrets_api: &Api<Secret>,
    credential: &ApiCredential,
    stored: &Stored,
) -> Result<Option<u64>, EnrollmentError> {
    let Some(key) = before.totp.clone() else {
        return Ok(None);
    };
    tracing::info!(
        credential = name,
        "the vendor says the step was already done; logging in with this enrollment's secret"
    );
    match engine.login(&inputs.with_totp(key.clone())).await {
        Ok(session) => Ok(session.last_code_step),
        Err(error) if refused(&error) => {
            let mut reenroll = stored.reenroll.clone();
            reenroll.refused_secret = Some(key.secret_base32().clone());
            let record = before.to_record(engine.profile());
            secrets::write_recovery(
                secrets_api,
                credential,
                Some(&record),
                &stored.recovery_codes,
                &reenroll,
            )
            .await?;
            Err(foreign(name))
        }
        Err(error) => Err(error.into()),
    }
}

/// A resumed checkpoint whose secret was found refused before: stop
/// without calling the vendor again.
pub fn refuse_a_known_foreign_enrollment(
    checkpoint: &Checkpoint,
    stored: &Stored,
    name: &str,
) -> Result<(), EnrollmentError> {
    let refused = stored.reenroll.refused_secret.as_ref();
    match (&checkpoint.totp, refused) {
        (Some(key), Some(r)) if key.secret_base32().expose_secret() == r.expose_secret() => {
            Err(foreign(name))
        }
        _ => Ok(()),
    }
}

fn foreign(name: &str) -> EnrollmentError {
    EnrollmentError::AlreadyEnrolledAtVendor {
        recovery: labels::recovery_secret_name(name),
    }
}

/// The vendor answered and said no (as opposed to not answering).
fn refused(error: &FlowError) -> bool {
    matches!(
        error.kind,
        FlowErrorKind::Status { .. }
            | FlowErrorKind::CodeRejected { .. }
            | FlowErrorKind::CodeAlreadyUsed { .. }
            | FlowErrorKind::TotpHeaderRefused { .. }
    )
}
