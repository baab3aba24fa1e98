//! The session driver: logs in, refreshes ahead of expiry, falls back and
//! backs off as `policy` decides, and publishes each new token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use otpilot_api::api_credential::EnrollmentState;
use otpilot_api::session::SessionRecord;
use otpilot_profile::{FlowError, FlowKind, Session};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::inputs::Prepared;
use crate::metrics::{FailureLabels, FlowLabels};
use crate::policy::{self, Attempt, Backoff, FailureClass, NextMove, RenewPolicy};
use crate::presentation;
use crate::state::{ServedToken, Shared};
use crate::token_file;

/// How the session behaves.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// When to renew and how long to serve.
    pub renew: RenewPolicy,
    /// Waits after failures.
    pub backoff: Backoff,
    /// Where to write the token, if anywhere.
    pub token_file: Option<PathBuf>,
    /// The token file's mode.
    pub token_file_mode: u32,
}

/// What a shared-session holder adds to the driver: the session it takes
/// over, and where to send each new one (to be published to the Secret).
#[derive(Debug, Default)]
pub struct Handoff {
    /// The session the previous holder published, if any.
    pub seed: Option<SessionRecord>,
    /// Receives every new session.
    pub publish: Option<mpsc::UnboundedSender<SessionRecord>>,
}

/// Runs until cancelled (standalone: no handoff).
pub async fn run(
    shared: Arc<Shared>,
    inputs: watch::Receiver<Option<Arc<Prepared>>>,
    config: SessionConfig,
    cancel: CancellationToken,
) {
    run_with(shared, inputs, config, cancel, Handoff::default()).await;
}

/// A published session as the engine's `Session`, to refresh it.
fn session_from_record(record: &SessionRecord, prepared: &Prepared) -> Session {
    Session {
        access_token: record.access_token.clone(),
        refresh_token: record.refresh_token.clone(),
        expires_at: record.expires_at,
        refresh_expires_at: record.refresh_expires_at,
        reenroll_required: false,
        last_code_step: record.last_code_step,
        presentation: prepared.engine.profile().token_presentation().clone(),
    }
}

/// A new session as the record a holder publishes (the holder's identity
/// and the highest code step are filled in by the publisher).
fn record_of(session: &Session, obtained_at: SystemTime) -> SessionRecord {
    SessionRecord {
        access_token: session.access_token.clone(),
        token_type: session.token_type().map(str::to_owned),
        obtained_at,
        expires_at: session.expires_at,
        refresh_token: session.refresh_token.clone(),
        refresh_expires_at: session.refresh_expires_at,
        last_code_step: session.last_code_step,
        holder: String::new(),
    }
}

/// Runs until cancelled, continuing `handoff.seed` and reporting each new
/// session to `handoff.publish`.
pub async fn run_with(
    shared: Arc<Shared>,
    mut inputs: watch::Receiver<Option<Arc<Prepared>>>,
    config: SessionConfig,
    cancel: CancellationToken,
    handoff: Handoff,
) {
    let mut seed = handoff.seed;
    let mut session: Option<Session> = None;
    let mut next = NextMove {
        attempt: Attempt::Login,
        wait: Duration::ZERO,
    };
    let mut due = Instant::now();
    let mut failures = 0u32;
    let mut last_failure: Option<String> = None;
    let mut last_class: Option<FailureClass> = None;
    let mut account: Option<(String, Option<String>)> = None;
    let mut inputs_changed = false;
    loop {
        let prepared = inputs.borrow_and_update().clone();
        let prepared = match prepared {
            Some(p) if p.enrollment_state == EnrollmentState::Enrolled => Some(p),
            Some(p) => {
                shared.set_not_ready_reason(format!(
                    "the credential is not enrolled yet (enrollment-state {:?}); waiting for the operator",
                    p.enrollment_state
                ));
                None
            }
            None => None,
        };
        let Some(prepared) = prepared else {
            tokio::select! {
                () = cancel.cancelled() => return,
                changed = inputs.changed() => if changed.is_err() { return },
            }
            inputs_changed = true;
            continue;
        };
        let now_account = (prepared.base_url.clone(), prepared.inputs.username.clone());
        if account.as_ref().is_some_and(|a| *a != now_account) {
            // Another vendor or account: the session belongs to the old one.
            tracing::info!("the vendor or account changed; logging in afresh");
            session = None;
            next.attempt = Attempt::Login;
            due = Instant::now();
        }
        account = Some(now_account);
        if let Some(mut record) = seed.take() {
            // Taking over a shared session: never reuse its code step, and
            // refresh rather than log in while its refresh token lives. A
            // step far ahead of now would stop every code: ignored.
            if let Some(key) = prepared.inputs.totp.as_ref() {
                let now_s = SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                record.last_code_step = crate::sharing::decide::usable_code_step(
                    record.last_code_step,
                    now_s,
                    key.params().period,
                );
                if let Some(step) = record.last_code_step {
                    prepared.engine.timer().mark_used(key, step);
                }
            }
            let now = SystemTime::now();
            let plan = crate::sharing::decide::takeover(
                Some(&record),
                prepared.engine.profile().has_flow(FlowKind::Refresh),
                now,
                &config.renew,
                rand::random::<f64>(),
            );
            session = Some(session_from_record(&record, &prepared));
            next.attempt = plan.attempt;
            due = Instant::now() + plan.at.duration_since(now).unwrap_or_default();
            tracing::info!(
                next = next.attempt.as_str(),
                next_in_ms =
                    u64::try_from(plan.at.duration_since(now).unwrap_or_default().as_millis())
                        .unwrap_or(u64::MAX),
                "continuing the published session"
            );
        }
        if std::mem::take(&mut inputs_changed) && last_class.is_some_and(policy::new_inputs_may_fix)
        {
            // New inputs may be the fix: try them now rather than after the backoff.
            last_class = None;
            due = Instant::now();
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = inputs.changed() => {
                if changed.is_err() { return }
                inputs_changed = true;
                continue;
            }
            () = shared.refresh_requested() => {
                if due > Instant::now() {
                    tracing::info!("the vendor refused the token; renewing now");
                    due = Instant::now();
                }
                continue;
            }
            () = tokio::time::sleep_until(due.into()) => {}
        }

        let has_refresh_flow = prepared.engine.profile().has_flow(FlowKind::Refresh);
        let attempt = match (&next.attempt, &session) {
            (Attempt::Refresh, Some(s)) if has_refresh_flow && s.refresh_token.is_some() => {
                Attempt::Refresh
            }
            _ => Attempt::Login,
        };
        shared.set_not_ready_reason(match &last_failure {
            Some(failure) => format!(
                "a {} is under way; the previous attempt failed {failure}",
                attempt.as_str()
            ),
            None => format!("a {} is under way", attempt.as_str()),
        });
        let started = Instant::now();
        let result = tokio::select! {
            () = cancel.cancelled() => return,
            r = run_attempt(&prepared, attempt, session.as_ref()) => r,
        };
        shared
            .metrics
            .flow_duration
            .get_or_create(&FlowLabels {
                flow: attempt.as_str(),
            })
            .observe(started.elapsed().as_secs_f64());
        if let Some(offset_ms) = prepared.engine.clock_offset_ms() {
            // Milliseconds to seconds for the gauge; the precision loss is nil
            // for any offset a vendor could have.
            #[allow(clippy::cast_precision_loss)]
            shared
                .metrics
                .vendor_clock_offset_seconds
                .set(offset_ms as f64 / 1000.0);
        }

        match result {
            Ok(new_session) => {
                failures = 0;
                last_failure = None;
                last_class = None;
                match attempt {
                    Attempt::Login => shared.metrics.logins.inc(),
                    Attempt::Refresh => shared.metrics.refreshes.inc(),
                };
                let obtained_at = SystemTime::now();
                let renew_at = policy::renew_at(
                    obtained_at,
                    new_session.expires_at,
                    &config.renew,
                    rand::random::<f64>(),
                );
                next = NextMove {
                    attempt: policy::next_after_success(
                        has_refresh_flow,
                        new_session.refresh_token.is_some(),
                        new_session.refresh_expires_at,
                        renew_at,
                    ),
                    wait: renew_at.duration_since(obtained_at).unwrap_or_default(),
                };
                due = Instant::now() + next.wait;
                publish(&shared, &new_session, obtained_at, &config).await;
                if let Some(sink) = &handoff.publish {
                    let _ = sink.send(record_of(&new_session, obtained_at));
                }
                tracing::info!(
                    flow = attempt.as_str(),
                    expires_in_s = new_session
                        .expires_at
                        .duration_since(obtained_at)
                        .unwrap_or_default()
                        .as_secs(),
                    next = next.attempt.as_str(),
                    next_in_ms = u64::try_from(next.wait.as_millis()).unwrap_or(u64::MAX),
                    "new token"
                );
                session = Some(new_session);
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let class = policy::classify(&error);
                shared
                    .metrics
                    .failures
                    .get_or_create(&FailureLabels {
                        flow: attempt.as_str(),
                        reason: class.as_str(),
                    })
                    .inc();
                next = policy::after_failure(
                    attempt,
                    class,
                    failures,
                    &config.backoff,
                    rand::random::<f64>(),
                );
                due = Instant::now() + next.wait;
                tracing::warn!(
                    flow = attempt.as_str(),
                    reason = class.as_str(),
                    failures,
                    next = next.attempt.as_str(),
                    retry_in_ms = u64::try_from(next.wait.as_millis()).unwrap_or(u64::MAX),
                    error = %error,
                    "failed to get a token"
                );
                let failure = format!("({}): {error}", class.as_str());
                shared.set_not_ready_reason(format!(
                    "the last {} failed {failure}; retrying in {} s",
                    attempt.as_str(),
                    next.wait.as_secs()
                ));
                last_failure = Some(failure);
                last_class = Some(class);
            }
        }
    }
}

async fn run_attempt(
    prepared: &Prepared,
    attempt: Attempt,
    session: Option<&Session>,
) -> Result<Session, FlowError> {
    match (attempt, session) {
        (Attempt::Refresh, Some(s)) => prepared.engine.refresh(&prepared.inputs, s).await,
        _ => prepared.engine.login(&prepared.inputs).await,
    }
}

async fn publish(
    shared: &Shared,
    session: &Session,
    obtained_at: SystemTime,
    config: &SessionConfig,
) {
    let serve_until = policy::serve_until(obtained_at, session.expires_at, &config.renew);
    let token = match ServedToken::render(
        &session.access_token,
        presentation::proxy_header(session),
        session.token_type(),
        session.expires_at,
        serve_until,
        shared.next_generation(),
    ) {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(error = %error, "failed to publish the new token");
            return;
        }
    };
    let plain = token.plain.clone();
    shared.publish(token);
    shared.set_not_ready_reason("its renewal has not succeeded yet".into());
    if let Some(path) = config.token_file.clone() {
        let mode = config.token_file_mode;
        let written =
            tokio::task::spawn_blocking(move || token_file::write_atomically(&path, &plain, mode))
                .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(error = %error, "failed to write the token file"),
            Err(join) => tracing::error!(error = %join, "failed to write the token file"),
        }
    }
}
