//! Turning a step's answer into values, and a finished flow into its
//! result: an enrollment or a session.

use std::time::{Duration, SystemTime};

use otpilot_api::profile::Step;
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::error::{FlowError, FlowErrorKind};
use crate::executor::{FlowRun, Response};
use crate::expiry;
use crate::extract::{self, Extracted};
use crate::totp::TotpParams;
use crate::{Enrollment, Session};

impl FlowRun<'_> {
    /// Runs the step's extractions. `lenient` (an `alreadyDone` answer):
    /// values the answer lacks are skipped, as if optional.
    pub(crate) fn extract(
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
            let raw: Option<Value> = if let Some(source) = &ex.value {
                let ctx = self.context(None);
                Some(Value::String(self.render(
                    format!("{at}.extract.{name}.value"),
                    source,
                    &ctx,
                )?))
            } else {
                read_raw(response, ex.pointer.as_deref(), ex.header.as_deref())
                    .or_else(|e| if optional { Ok(None) } else { Err(e) })
                    .map_err(fail)?
            };
            // `missing`: nothing to read anywhere, which an optional value
            // may be; a value that is there but unreadable is always an error.
            let mut missing = raw.is_none();
            let mut interpreted = match raw {
                Some(raw) => extract::interpret(ex.kind, &raw, ex.strip_spaces, now, defaults),
                None => Err(format!(
                    "{} (HTTP {})",
                    nothing_at(ex.pointer.as_deref(), ex.header.as_deref()),
                    response.status
                )),
            };
            if let (Err(first), Some(fallback)) = (&interpreted, &ex.fallback) {
                let (fp, fh) = (fallback.pointer.as_deref(), fallback.header.as_deref());
                let second = match read_raw(response, fp, fh) {
                    Ok(Some(raw)) => {
                        missing = false;
                        extract::interpret(fallback.kind, &raw, ex.strip_spaces, now, defaults)
                    }
                    Ok(None) => Err(nothing_at(fp, fh)),
                    Err(e) => Err(e),
                };
                interpreted =
                    second.map_err(|second| format!("{first}; its fallback neither: {second}"));
            }
            let interpreted = match interpreted {
                Ok(value) => value,
                Err(_) if optional && missing => continue,
                Err(reason) => return Err(fail(reason)),
            };
            match interpreted {
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

    pub(crate) fn totp_defaults(&self) -> TotpParams {
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

/// The raw value at a JSON pointer or header of the answer: `Ok(None)`
/// when there is nothing there, `Err` when the body cannot be searched.
/// A pointer into a body that is not JSON reads the whole body only for
/// the empty pointer.
fn read_raw(
    response: &Response,
    pointer: Option<&str>,
    header: Option<&str>,
) -> Result<Option<Value>, String> {
    if let Some(pointer) = pointer {
        return match &response.json {
            Some(body) => Ok(extract::at_pointer(body, pointer).cloned()),
            None if pointer.is_empty() && !response.body.is_empty() => Ok(Some(Value::String(
                String::from_utf8_lossy(&response.body).trim().to_owned(),
            ))),
            None => Err("the response body is not JSON".into()),
        };
    }
    Ok(header.and_then(|h| {
        response
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(|v| Value::String(v.to_owned()))
    }))
}

/// Where a value was looked for and not found, for messages.
fn nothing_at(pointer: Option<&str>, header: Option<&str>) -> String {
    match (pointer, header) {
        (Some(p), _) => format!("nothing at JSON pointer '{p}'"),
        (_, Some(h)) => format!("no header {h}"),
        _ => "no value".to_owned(),
    }
}
