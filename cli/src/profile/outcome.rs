//! What `profile try` keeps and prints once a flow is done, and the text
//! of an extracted value for `--show-secrets`.

use otpilot_profile::{Checkpoint, FlowKind, FlowRun};
use secrecy::ExposeSecret;

use super::state::{State, StoredSession, StoredTotp, unix_seconds};
use crate::args::TryArgs;

/// An extracted value as text, for `--show-secrets`.
pub fn value_of(checkpoint: &Checkpoint, name: &str) -> String {
    if name == "totp_secret"
        && let Some(key) = &checkpoint.totp
    {
        return key.secret_base32().expose_secret().to_owned();
    }
    if name == "recovery_codes"
        && let Some(codes) = &checkpoint.recovery_codes
    {
        return codes
            .iter()
            .map(|c| c.expose_secret().to_owned())
            .collect::<Vec<_>>()
            .join(",");
    }
    if let Some(t) = checkpoint.times.get(name) {
        return when(*t);
    }
    checkpoint
        .values
        .get(name)
        .map(|v| v.expose_secret().to_owned())
        .unwrap_or_else(|| "?".to_owned())
}

fn when(t: std::time::SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .and_then(|t| t.round(jiff::Unit::Second))
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// Keeps what the flow produced and says what it did.
pub fn finish(
    args: &TryArgs,
    run: FlowRun<'_>,
    state: &mut State,
    flow: FlowKind,
) -> anyhow::Result<()> {
    let kept = if args.state.is_some() {
        " (kept in the state file)"
    } else {
        " (not kept: no --state)"
    };
    match flow {
        FlowKind::Enroll => {
            let enrollment = run.into_enrollment().map_err(|e| anyhow::anyhow!("{e}"))?;
            let p = enrollment.totp.params();
            state.totp = Some(StoredTotp::from_key(&enrollment.totp));
            state.recovery_codes = enrollment
                .recovery_codes
                .iter()
                .map(|c| c.expose_secret().to_owned())
                .collect();
            state.last_code_step = enrollment.last_code_step.or(state.last_code_step);
            state.interrupted_enroll = None;
            state.session = None;
            println!(
                "Enrolled: TOTP secret ({}, {} digits, {} s){kept}, {} recovery code(s).",
                serde_json::to_value(p.algorithm)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                p.digits,
                p.period,
                enrollment.recovery_codes.len()
            );
            if args.show_secrets {
                println!(
                    "  TOTP secret: {}",
                    enrollment.totp.secret_base32().expose_secret()
                );
                for c in &enrollment.recovery_codes {
                    println!("  Recovery code: {}", c.expose_secret());
                }
            }
        }
        FlowKind::Login | FlowKind::Refresh | FlowKind::RecoveryLogin => {
            let session = run.into_session().map_err(|e| anyhow::anyhow!("{e}"))?;
            if flow == FlowKind::RecoveryLogin && !state.recovery_codes.is_empty() {
                state.recovery_codes.remove(0);
                println!(
                    "Used one recovery code; {} left in the state file.",
                    state.recovery_codes.len()
                );
            }
            state.last_code_step = session.last_code_step.or(state.last_code_step);
            state.session = Some(StoredSession {
                access_token: session.access_token.expose_secret().to_owned(),
                refresh_token: session
                    .refresh_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
                expires_at: unix_seconds(session.expires_at),
                refresh_expires_at: session.refresh_expires_at.map(unix_seconds),
            });
            let done = match flow {
                FlowKind::Refresh => "Refreshed",
                FlowKind::RecoveryLogin => "Logged in with a recovery code",
                _ => "Logged in",
            };
            println!(
                "{done}: access token{kept} expires {}; refresh token: {}.",
                when(session.expires_at),
                match (&session.refresh_token, session.refresh_expires_at) {
                    (Some(_), Some(t)) => format!("yes, expires {}", when(t)),
                    (Some(_), None) => "yes".to_owned(),
                    (None, _) => "none".to_owned(),
                }
            );
            if session.reenroll_required {
                println!("The vendor asks for a new enrollment: run --flow enroll.");
            }
            if args.show_secrets {
                let (header, value) = session.authorization();
                println!("  {header}: {}", value.expose_secret());
            }
        }
        FlowKind::Disable => {
            state.totp = None;
            state.recovery_codes.clear();
            state.session = None;
            state.last_code_step = None;
            println!("MFA is off at the vendor; the state file's secret and codes were dropped.");
        }
    }
    Ok(())
}
