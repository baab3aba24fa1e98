//! Running a flow: render each step, send it, classify the response, retry
//! within bounds, extract values. One step at a time, so that a caller
//! (the operator's enrollment) can persist a checkpoint between steps.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otpilot_api::profile::Step;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::classify::{
    AttemptFailure, Verdict, classify_in, effect_unknown, parse_retry_after, retry_delay,
};
use crate::error::{FlowError, FlowErrorKind, FlowKind, StepRef};
use crate::expiry;
use crate::extract::{self, Extracted};
use crate::load::StepInfo;
use crate::secret::{Scrubber, describe_body};
use crate::template;
use crate::totp::{TotpKey, TotpParams};
use crate::url_scope;
use crate::{Engine, Enrollment, Inputs, Session};

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
}

/// What a step that succeeded did.
struct StepDone {
    extracted: Vec<String>,
    already_done: bool,
}

/// A flow in progress.
pub struct FlowRun<'e> {
    engine: &'e Engine,
    inputs: Inputs,
    state: Checkpoint,
    scrubber: Scrubber,
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
        for s in [&inputs.password, &inputs.api_key].into_iter().flatten() {
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

    fn steps(&self) -> &'e [Step] {
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

    fn err(&self, index: Option<usize>, kind: FlowErrorKind) -> FlowError {
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

    fn context(&self, code: Option<&SecretString>) -> minijinja::Value {
        let mut ctx: BTreeMap<String, minijinja::Value> = BTreeMap::new();
        for (k, v) in &self.engine.profile().spec().variables {
            ctx.insert(k.clone(), v.as_str().into());
        }
        for (k, v) in &self.inputs.variables {
            ctx.insert(k.clone(), v.as_str().into());
        }
        if let Some(u) = &self.inputs.username {
            ctx.insert("username".into(), u.as_str().into());
        }
        if let Some(p) = &self.inputs.password {
            ctx.insert("password".into(), p.expose_secret().into());
        }
        if let Some(k) = &self.inputs.api_key {
            ctx.insert("api_key".into(), k.expose_secret().into());
        }
        if let Some(key) = self.totp_key() {
            ctx.insert(
                "totp_secret".into(),
                key.secret_base32().expose_secret().into(),
            );
        }
        if let Some(code) = code {
            ctx.insert("totp".into(), code.expose_secret().into());
        }
        if let Some(codes) = &self.state.recovery_codes {
            let list: Vec<String> = codes.iter().map(|c| c.expose_secret().to_owned()).collect();
            ctx.insert("recovery_codes".into(), minijinja::Value::from(list));
        }
        for (k, t) in &self.state.times {
            let secs = t
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            ctx.insert(k.clone(), secs.into());
        }
        for (k, v) in &self.state.values {
            ctx.insert(k.clone(), v.expose_secret().into());
        }
        minijinja::Value::from(ctx)
    }

    fn render(
        &self,
        field: String,
        source: &str,
        ctx: &minijinja::Value,
    ) -> Result<String, FlowErrorKind> {
        template::render(&self.engine.env, source, ctx).map_err(|message| FlowErrorKind::Render {
            field,
            message: self.scrubber.scrub(&message),
        })
    }

    fn render_json(
        &self,
        field: &str,
        value: &Value,
        ctx: &minijinja::Value,
    ) -> Result<Value, FlowErrorKind> {
        Ok(match value {
            Value::String(s) => Value::String(self.render(field.to_owned(), s, ctx)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.render_json(&format!("{field}[{i}]"), v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            self.render_json(&format!("{field}.{k}"), v, ctx)?,
                        ))
                    })
                    .collect::<Result<_, FlowErrorKind>>()?,
            ),
            other => other.clone(),
        })
    }

    fn build_request(
        &self,
        step: &Step,
        code: Option<&SecretString>,
        totp_header: Option<&str>,
    ) -> Result<reqwest::Request, FlowErrorKind> {
        let at = format!("{}.steps[{}]", self.state.flow, self.state.next_step);
        let ctx = self.context(code);
        let path = self.render(format!("{at}.path"), &step.path, &ctx)?;
        let mut url = url::Url::parse(&format!("{}{path}", self.engine.base_url)).map_err(|e| {
            FlowErrorKind::InvalidRequest {
                field: format!("{at}.path"),
                message: e.to_string(),
            }
        })?;
        if let Some(why) = url_scope::escape_from(&self.engine.base, &url) {
            return Err(FlowErrorKind::InvalidRequest {
                field: format!("{at}.path"),
                message: format!("refused to send the request: {why}"),
            });
        }
        if !step.query.is_empty() {
            let mut pairs = Vec::new();
            for (k, v) in &step.query {
                pairs.push((k.clone(), self.render(format!("{at}.query.{k}"), v, &ctx)?));
            }
            url.query_pairs_mut().extend_pairs(pairs);
        }
        let mut headers = HeaderMap::new();
        let mut put = |field: String, name: &str, value: String| -> Result<(), FlowErrorKind> {
            let invalid = |what: &str| FlowErrorKind::InvalidRequest {
                field: field.clone(),
                message: format!("not a valid header {what}"),
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("name"))?;
            let mut value = HeaderValue::from_str(&value).map_err(|_| invalid("value"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
            Ok(())
        };
        for (k, v) in &self.engine.profile().spec().headers {
            put(
                format!("headers.{k}"),
                k,
                self.render(format!("headers.{k}"), v, &ctx)?,
            )?;
        }
        for (k, v) in &step.headers {
            put(
                format!("{at}.headers.{k}"),
                k,
                self.render(format!("{at}.headers.{k}"), v, &ctx)?,
            )?;
        }
        if let (Some(name), Some(code)) = (totp_header, code) {
            put(
                format!("{at}.responses"),
                name,
                code.expose_secret().to_owned(),
            )?;
        }
        let method = match step.method {
            otpilot_api::profile::HttpMethod::Get => reqwest::Method::GET,
            otpilot_api::profile::HttpMethod::Post => reqwest::Method::POST,
            otpilot_api::profile::HttpMethod::Put => reqwest::Method::PUT,
            otpilot_api::profile::HttpMethod::Patch => reqwest::Method::PATCH,
            otpilot_api::profile::HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let mut req = self.engine.client.request(method, url).headers(headers);
        if let Some(body) = &step.body {
            req = req.json(&self.render_json(&format!("{at}.body"), body, &ctx)?);
        } else if let Some(form) = &step.form {
            let mut fields = Vec::new();
            for (k, v) in form {
                fields.push((k.clone(), self.render(format!("{at}.form.{k}"), v, &ctx)?));
            }
            req = req.form(&fields);
        }
        req.build().map_err(|e| FlowErrorKind::InvalidRequest {
            field: at,
            message: self.scrubber.scrub(&e.without_url().to_string()),
        })
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
        loop {
            let needs_code = info.uses_totp() || totp_header.is_some();
            let code = if needs_code {
                let key = self.totp_key().ok_or(FlowErrorKind::NoTotpSecret)?.clone();
                let code = self.engine.timer.next_code(&key).await;
                self.state.last_code_step = Some(code.step);
                self.scrubber.add(code.code.expose_secret());
                Some(code.code)
            } else {
                None
            };
            let request = self.build_request(step, code.as_ref(), totp_header.as_deref())?;
            attempts += 1;
            let answer = match self.engine.client.execute(request).await {
                Ok(r) => read(r).await,
                Err(e) => Err(e),
            };
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
                    });
                }
                Verdict::AlreadyDone => {
                    return Ok(StepDone {
                        extracted: self.extract(step, &response, true)?,
                        already_done: true,
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
                Verdict::CodeRejected => return Err(FlowErrorKind::CodeRejected { status }),
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

    /// Runs the step's extractions. `lenient` (an `alreadyDone` answer):
    /// values the answer lacks are skipped, as if optional.
    fn extract(
        &mut self,
        step: &Step,
        response: &Response,
        lenient: bool,
    ) -> Result<Vec<String>, FlowErrorKind> {
        let at = format!("{}.steps[{}]", self.state.flow, self.state.next_step);
        let now = self.engine.timer.clock().now();
        let defaults = self.totp_defaults();
        let mut names = Vec::new();
        for (name, ex) in &step.extract {
            let optional = ex.optional || lenient;
            let fail = |reason: String| FlowErrorKind::Extract {
                name: name.clone(),
                reason,
            };
            let raw: Option<Value> = if let Some(pointer) = &ex.pointer {
                match &response.json {
                    Some(body) => extract::at_pointer(body, pointer).cloned(),
                    None if pointer.is_empty() && !response.body.is_empty() => Some(Value::String(
                        String::from_utf8_lossy(&response.body).trim().to_owned(),
                    )),
                    None if optional => None,
                    None => return Err(fail("the response body is not JSON".into())),
                }
            } else if let Some(header) = &ex.header {
                response
                    .headers
                    .get(header.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(|v| Value::String(v.to_owned()))
            } else if let Some(source) = &ex.value {
                let ctx = self.context(None);
                Some(Value::String(self.render(
                    format!("{at}.extract.{name}.value"),
                    source,
                    &ctx,
                )?))
            } else {
                None
            };
            let Some(raw) = raw else {
                if optional {
                    continue;
                }
                let place = match (&ex.pointer, &ex.header) {
                    (Some(p), _) => format!("nothing at JSON pointer '{p}'"),
                    (_, Some(h)) => format!("no header {h}"),
                    _ => "no value".to_owned(),
                };
                return Err(fail(format!("{place} (HTTP {})", response.status)));
            };
            match extract::interpret(ex.kind, &raw, ex.strip_spaces, now, defaults).map_err(fail)? {
                Extracted::Text(t) => {
                    self.scrubber.add(t.expose_secret());
                    self.state.values.insert(name.clone(), t);
                }
                Extracted::Totp(key) => {
                    // What the vendor advertised (an otpauth URI) yields to spec.totp.
                    let key = key
                        .with_overrides(&self.inputs.totp_overrides)
                        .map_err(FlowErrorKind::InvalidTotpOverrides)?;
                    self.scrubber.add(key.secret_base32().expose_secret());
                    self.state.totp = Some(key);
                }
                Extracted::RecoveryCodes(codes) => {
                    for c in &codes {
                        self.scrubber.add(c.expose_secret());
                    }
                    self.state.recovery_codes = Some(codes);
                }
                Extracted::Time(t) => {
                    self.state.times.insert(name.clone(), t);
                }
            }
            names.push(name.clone());
        }
        // A new refresh token without its own expiry must not inherit the
        // old one's.
        if step.extract.contains_key("refresh_token")
            && !step.extract.contains_key("refresh_expires_at")
        {
            self.state.times.remove("refresh_expires_at");
        }
        Ok(names)
    }

    fn totp_defaults(&self) -> TotpParams {
        self.inputs
            .totp_params
            .unwrap_or_else(|| TotpParams::from(&self.engine.profile().spec().totp))
            .overridden_by(&self.inputs.totp_overrides)
    }

    /// The enrollment, once the flow is done.
    pub fn into_enrollment(self) -> Result<Enrollment, FlowError> {
        let Some(key) = self.state.totp.clone() else {
            return Err(self.err(None, FlowErrorKind::MissingResult("totp_secret".into())));
        };
        Ok(Enrollment {
            totp: key,
            recovery_codes: self.state.recovery_codes.clone().unwrap_or_default(),
            last_code_step: self.state.last_code_step,
            values: self.state.values.clone(),
        })
    }

    /// The session, once the flow is done.
    pub fn into_session(self) -> Result<Session, FlowError> {
        let values = &self.state.values;
        let Some(access_token) = values.get("access_token").cloned() else {
            return Err(self.err(None, FlowErrorKind::MissingResult("access_token".into())));
        };
        let now = self.engine.timer.clock().now();
        let spec = self.engine.profile().spec();
        let configured = spec
            .token_lifetime_seconds
            .and_then(|s| now.checked_add(Duration::from_secs(s)));
        let expires_at = expiry::decide(
            spec.token_expiry,
            self.state.times.get("expires_at").copied(),
            extract::jwt_exp(access_token.expose_secret()).ok(),
            configured,
            now,
        );
        let Some(expires_at) = expires_at else {
            return Err(self.err(None, FlowErrorKind::UnknownExpiry));
        };
        let refresh_token = values.get("refresh_token").cloned();
        let refresh_expires_at =
            self.state
                .times
                .get("refresh_expires_at")
                .copied()
                .or_else(|| {
                    refresh_token
                        .as_ref()
                        .and_then(|t| plausible_jwt_exp(t.expose_secret(), now))
                });
        let reenroll_required = values
            .get("reenroll_required")
            .is_some_and(|v| v.expose_secret().eq_ignore_ascii_case("true"));
        Ok(Session {
            access_token,
            refresh_token,
            expires_at,
            refresh_expires_at,
            reenroll_required,
            last_code_step: self.state.last_code_step,
            presentation: self.engine.profile().token_presentation().clone(),
        })
    }
}

/// A JWT's `exp`, unless it is absurd (more than a year ahead).
fn plausible_jwt_exp(token: &str, now: SystemTime) -> Option<SystemTime> {
    let exp = extract::jwt_exp(token).ok()?;
    now.checked_add(expiry::IMPLAUSIBLE_JWT_EXP)
        .is_none_or(|limit| exp <= limit)
        .then_some(exp)
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

/// A response read whole (bodies here are small).
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub json: Option<Value>,
}

async fn read(r: reqwest::Response) -> Result<Response, reqwest::Error> {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await?.to_vec();
    let json = serde_json::from_slice(&body).ok();
    Ok(Response {
        status,
        headers,
        body,
        json,
    })
}
