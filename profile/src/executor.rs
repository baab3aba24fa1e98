//! Running a flow: render each step, send it, classify the response, retry
//! within bounds, extract values. One step at a time, so that a caller
//! (the operator's enrollment) can persist a checkpoint between steps.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use otpilot_api::profile::Step;
use secrecy::{ExposeSecret, SecretString};

pub(crate) use crate::body::Response;
use crate::body::{ReadError, read_capped};
use crate::classify::{AttemptFailure, Verdict, classify_in, effect_unknown};
use crate::error::{FlowError, FlowErrorKind, FlowKind, StepRef};
use crate::load::StepInfo;
use crate::retry::{parse_retry_after, retry_delay};
use crate::secret::{Scrubber, describe_body};
use crate::totp::TotpKey;
use crate::vendor_clock;
use crate::{Engine, Inputs};

/// Everything a flow has learnt so far; enough to resume it.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The flow.
    pub flow: FlowKind,
    /// Index of the next step to run.
    pub next_step: usize,
    /// Text values extracted (and flow inputs such as a refresh token).
    pub values: BTreeMap<String, SecretString>,
    /// The TOTP secret, once known.
    pub totp: Option<TotpKey>,
    /// Recovery codes, once known.
    pub recovery_codes: Option<Vec<SecretString>>,
    /// Instants extracted.
    pub times: BTreeMap<String, SystemTime>,
    /// The last time step whose code was sent.
    pub last_code_step: Option<u64>,
}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// 0-based index.
    pub index: usize,
    /// The step's name.
    pub name: Option<String>,
    /// Names of the values it extracted.
    pub extracted: Vec<String>,
    /// The vendor answered that the step's effect had already happened
    /// (an `alreadyDone` rule): values that answer lacked were not
    /// extracted.
    pub already_done: bool,
    /// The HTTP status of the answer the step succeeded with (for a person
    /// trying a profile, e.g. `kubectl otpilot profile try`).
    pub status: u16,
}

/// What a step that succeeded did.
struct StepDone {
    extracted: Vec<String>,
    already_done: bool,
    status: u16,
}

/// A flow in progress.
pub struct FlowRun<'e> {
    pub(crate) engine: &'e Engine,
    pub(crate) inputs: Inputs,
    pub(crate) state: Checkpoint,
    pub(crate) scrubber: Scrubber,
}

impl std::fmt::Debug for FlowRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRun")
            .field("flow", &self.state.flow)
            .field("next_step", &self.state.next_step)
            .finish_non_exhaustive()
    }
}

impl<'e> FlowRun<'e> {
    pub(crate) fn new(engine: &'e Engine, inputs: &Inputs, state: Checkpoint) -> Self {
        let mut scrubber = Scrubber::default();
        if let Some(u) = &inputs.username {
            scrubber.add(u);
        }
        let secrets = [&inputs.password, &inputs.api_key].into_iter().flatten();
        for s in secrets.chain(inputs.secret_values.values()) {
            scrubber.add(s.expose_secret());
        }
        for key in [&inputs.totp, &state.totp].into_iter().flatten() {
            scrubber.add(key.secret_base32().expose_secret());
        }
        for v in state.values.values() {
            scrubber.add(v.expose_secret());
        }
        for c in state.recovery_codes.iter().flatten() {
            scrubber.add(c.expose_secret());
        }
        let mut inputs = inputs.clone();
        // Overrides were validated by `Engine::resume`, so this cannot fail.
        inputs.totp = inputs
            .totp
            .map(|key| key.with_overrides(&inputs.totp_overrides).unwrap_or(key));
        Self {
            engine,
            inputs,
            state,
            scrubber,
        }
    }

    /// The flow.
    pub fn flow(&self) -> FlowKind {
        self.state.flow
    }

    /// Whether every step has run.
    pub fn is_done(&self) -> bool {
        self.state.next_step >= self.steps().len()
    }

    /// The state to persist to resume later with [`Engine::resume`].
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.state
    }

    pub(crate) fn steps(&self) -> &'e [Step] {
        self.engine
            .profile()
            .flow(self.state.flow)
            .map(|f| f.steps.as_slice())
            .unwrap_or(&[])
    }

    /// The TOTP secret the flow uses: the one it enrolled or generated,
    /// else the one it was given.
    pub(crate) fn totp_key(&self) -> Option<&TotpKey> {
        self.state.totp.as_ref().or(self.inputs.totp.as_ref())
    }

    pub(crate) fn err(&self, index: Option<usize>, kind: FlowErrorKind) -> FlowError {
        FlowError {
            flow: self.state.flow,
            step: index.map(|i| StepRef {
                index: i,
                name: self.steps().get(i).and_then(|s| s.name.clone()),
            }),
            kind,
        }
    }

    /// Runs the next step; `None` when the flow is done.
    pub async fn step(&mut self) -> Result<Option<StepReport>, FlowError> {
        let index = self.state.next_step;
        let steps = self.steps();
        let Some(step) = steps.get(index) else {
            return Ok(None);
        };
        let info = self
            .engine
            .profile()
            .step_info(self.state.flow)
            .get(index)
            .cloned()
            .unwrap_or_default();
        match self.run_step(step, &info).await {
            Ok(done) => {
                self.state.next_step += 1;
                Ok(Some(StepReport {
                    index,
                    name: step.name.clone(),
                    extracted: done.extracted,
                    already_done: done.already_done,
                    status: done.status,
                }))
            }
            Err(kind) => Err(self.err(Some(index), kind)),
        }
    }

    /// Runs every remaining step.
    pub async fn run_to_end(&mut self) -> Result<(), FlowError> {
        while self.step().await?.is_some() {}
        Ok(())
    }

    fn check_inputs(&self, info: &StepInfo) -> Result<(), FlowErrorKind> {
        for name in &info.refs {
            let present = match name.as_str() {
                "totp" | "totp_secret" => {
                    if self.totp_key().is_none() {
                        return Err(FlowErrorKind::NoTotpSecret);
                    }
                    true
                }
                "username" => self.inputs.username.is_some(),
                "password" => self.inputs.password.is_some(),
                "api_key" => self.inputs.api_key.is_some(),
                "recovery_codes" => self.state.recovery_codes.is_some(),
                other => {
                    self.state.values.contains_key(other)
                        || self.state.times.contains_key(other)
                        || self.inputs.variables.contains_key(other)
                        || self
                            .engine
                            .profile()
                            .spec()
                            .secret_values
                            .iter()
                            .any(|n| n == other)
                        || self.engine.profile().spec().variables.contains_key(other)
                }
            };
            if !present {
                let hint = match name.as_str() {
                    "username" => " (set the ApiCredential's username)",
                    "password" => " (set the ApiCredential's passwordSecretRef)",
                    "api_key" => " (set the ApiCredential's apiKeySecretRef)",
                    "refresh_token" => " (the session has no refresh token: log in again)",
                    _ => " (an earlier step's response did not carry it)",
                };
                return Err(FlowErrorKind::MissingInput {
                    name: name.clone(),
                    hint: hint.to_owned(),
                });
            }
        }
        Ok(())
    }

    async fn sleep(&self, d: Duration) {
        self.engine.timer.clock().sleep(d).await;
    }

    async fn run_step(&mut self, step: &Step, info: &StepInfo) -> Result<StepDone, FlowErrorKind> {
        self.check_inputs(info)?;
        let policy = self.engine.settings.retry;
        let mut totp_header: Option<String> = None;
        let mut attempts = 0u32;
        let mut code_tries = 0u32;
        let mut retried_on_vendor_time = false;
        loop {
            let needs_code = info.uses_totp() || totp_header.is_some();
            let offset_used = self.engine.vendor_clock.offset_ms();
            let code = if needs_code {
                let key = self.totp_key().ok_or(FlowErrorKind::NoTotpSecret)?.clone();
                let code = self
                    .engine
                    .timer
                    .next_code_on_vendor_time(&key, offset_used)
                    .await;
                self.state.last_code_step = Some(code.step);
                self.scrubber.add(code.code.expose_secret());
                Some((key, code))
            } else {
                None
            };
            let request = self.build_request(
                step,
                code.as_ref().map(|(_, c)| &c.code),
                totp_header.as_deref(),
            )?;
            attempts += 1;
            let sent = self.engine.timer.clock().now();
            let limit = self.engine.profile().spec().limits.max_response_bytes();
            let answer = match self.engine.client.execute(request).await {
                Ok(r) => match read_capped(r, limit).await {
                    Ok(r) => Ok(r),
                    Err(ReadError::Transport(e)) => Err(e),
                    // Not retried: a vendor that answers this once will
                    // again, and each try costs the cap in memory.
                    Err(ReadError::TooLarge { status }) => {
                        return Err(FlowErrorKind::ResponseTooLarge {
                            status,
                            limit_bytes: limit,
                        });
                    }
                },
                Err(e) => Err(e),
            };
            if let Ok(r) = &answer {
                self.observe_vendor_clock(sent, r);
            }
            let response = match answer {
                Ok(r) => r,
                Err(e) => {
                    let failure = if e.is_connect() || tls_refused(&e) {
                        AttemptFailure::NotSent
                    } else {
                        AttemptFailure::AnswerLost
                    };
                    if !step.safe_to_repeat && effect_unknown(failure) {
                        return Err(FlowErrorKind::OutcomeUnknown {
                            what: self.transport_message(&e),
                        });
                    }
                    self.retry_or(attempts, None, || self.transport(attempts, &e))
                        .await?;
                    continue;
                }
            };
            let now = self.engine.timer.clock().now();
            let retry_after = response
                .headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now));
            let status = response.status;
            tracing::debug!(flow = %self.state.flow, step = self.state.next_step, status, "vendor answered");
            let verdict = classify_in(
                self.state.flow,
                status,
                response.json.as_ref(),
                &step.responses,
            );
            if !step.safe_to_repeat
                && matches!(verdict, Verdict::Transient | Verdict::Fail(_))
                && effect_unknown(AttemptFailure::Answered(status))
            {
                let detail = self
                    .detail(&response, None)
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                return Err(FlowErrorKind::OutcomeUnknown {
                    what: format!("the vendor answered HTTP {status}{detail}"),
                });
            }
            match verdict {
                Verdict::Success => {
                    return Ok(StepDone {
                        extracted: self.extract(step, &response, false)?,
                        already_done: false,
                        status,
                    });
                }
                Verdict::AlreadyDone => {
                    return Ok(StepDone {
                        extracted: self.extract(step, &response, true)?,
                        already_done: true,
                        status,
                    });
                }
                Verdict::LoginRequired => {
                    return Err(FlowErrorKind::LoginRequired {
                        status,
                        detail: self.detail(&response, None),
                    });
                }
                Verdict::RetryWithTotpHeader(header) => {
                    if totp_header.is_some() {
                        return Err(FlowErrorKind::TotpHeaderRefused { header, status });
                    }
                    if self.totp_key().is_none() {
                        return Err(FlowErrorKind::NoTotpSecret);
                    }
                    // Not a failure: the protocol's second leg.
                    attempts -= 1;
                    totp_header = Some(header);
                }
                Verdict::CodeAlreadyUsed => {
                    code_tries += 1;
                    if !needs_code || code_tries > policy.max_code_retries {
                        return Err(FlowErrorKind::CodeAlreadyUsed { tries: code_tries });
                    }
                    // The timer waits for the next time step by itself.
                    attempts -= 1;
                }
                Verdict::CodeRejected => {
                    // A vendor whose clock is elsewhere refuses the first
                    // code of an engine that has not heard from it yet
                    // (AUDD's login is one call that carries the code): the
                    // refusal's `Date` tells where its clock is; one more
                    // code on that time, once.
                    let retry = code.as_ref().filter(|(key, c)| {
                        !retried_on_vendor_time
                            && vendor_clock::worth_a_retry_on_vendor_time(
                                crate::timing::unix_millis(sent),
                                c.step,
                                key.params().period,
                                offset_used,
                                self.engine.vendor_clock.offset_ms(),
                            )
                    });
                    let Some((key, refused)) = retry else {
                        return Err(FlowErrorKind::CodeRejected { status });
                    };
                    tracing::info!(
                        flow = %self.state.flow,
                        step = self.state.next_step,
                        offset_ms = self.engine.vendor_clock.offset_ms(),
                        "code refused, and the vendor's clock is a time step away: \
                         one more code on its time"
                    );
                    self.engine.timer.release(key, refused);
                    retried_on_vendor_time = true;
                    attempts -= 1;
                }
                Verdict::LockedOut => {
                    // Only a lock-out that says when it ends is waited out,
                    // with jitter so replicas sharing an account do not
                    // return at the same instant.
                    let delay = retry_after.and_then(|d| {
                        retry_delay(&policy, attempts, Some(d), rand::random::<f64>())
                    });
                    match delay {
                        Some(d) => self.sleep(d).await,
                        None => {
                            return Err(FlowErrorKind::LockedOut {
                                status,
                                retry_after,
                            });
                        }
                    }
                }
                Verdict::RateLimited => {
                    self.retry_or(attempts, retry_after, || FlowErrorKind::LockedOut {
                        status,
                        retry_after,
                    })
                    .await?
                }
                Verdict::Transient => {
                    let detail = self.detail(&response, None);
                    self.retry_or(attempts, retry_after, || FlowErrorKind::Unavailable {
                        attempts,
                        status,
                        detail,
                    })
                    .await?
                }
                Verdict::Fail(message) => {
                    return Err(FlowErrorKind::Status {
                        status,
                        detail: self.detail(&response, message),
                    });
                }
            }
        }
    }

    /// Learns the vendor's clock from an answer's `Date` header.
    fn observe_vendor_clock(&self, sent: SystemTime, response: &Response) {
        let received = self.engine.timer.clock().now();
        let Some(vendor_date) = response
            .headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
            .map(|z| SystemTime::from(z.timestamp()))
        else {
            return;
        };
        let kept = self
            .engine
            .vendor_clock
            .observe(vendor_clock::OffsetSample {
                sent,
                received,
                vendor_date,
            });
        tracing::debug!(
            kept,
            offset_ms = self.engine.vendor_clock.offset_ms(),
            "vendor clock sample"
        );
    }

    /// Sleeps before the next attempt, or returns the error to give up with.
    async fn retry_or(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        give_up: impl FnOnce() -> FlowErrorKind,
    ) -> Result<(), FlowErrorKind> {
        match retry_delay(
            &self.engine.settings.retry,
            attempts,
            retry_after,
            rand::random::<f64>(),
        ) {
            Some(d) => {
                tracing::debug!(delay_ms = d.as_millis() as u64, attempts, "retrying");
                self.sleep(d).await;
                Ok(())
            }
            None => Err(give_up()),
        }
    }

    fn transport(&self, attempts: u32, e: &reqwest::Error) -> FlowErrorKind {
        FlowErrorKind::Transport {
            attempts,
            message: self.transport_message(e),
        }
    }

    /// What went wrong in transport, with its causes, scrubbed and without
    /// the URL.
    fn transport_message(&self, e: &reqwest::Error) -> String {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "request failed"
        };
        let mut message = kind.to_owned();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        self.scrubber.scrub(&message)
    }

    fn detail(&self, response: &Response, message: Option<String>) -> Option<String> {
        message.or_else(|| {
            describe_body(&response.body, response.json.as_ref())
                .map(|text| self.scrubber.scrub(&text))
        })
    }
}

/// Whether the TLS layer failed (a handshake refused, e.g. TLS 1.3's late
/// "certificate required" alert): the vendor's application never got the
/// request.
fn tls_refused(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        source = s.source();
    }
    false
}
