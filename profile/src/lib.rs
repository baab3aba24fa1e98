//! otpilot profile engine: runs a vendor's MFA flows (enroll, login,
//! refresh, recovery login, disable) from a declarative profile.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use otpilot_profile::{builtin, Engine, HttpSettings, Inputs};
//! let profile = builtin::get("acreto").expect("built in");
//! let engine = Engine::new(profile, "https://api.example", HttpSettings::default())?;
//! let inputs = Inputs { username: Some("svc@example.com".into()), ..Inputs::default() };
//! let enrollment = engine.enroll(&inputs).await?;
//! let session = engine.login(&inputs.with_totp(enrollment.totp.clone())).await?;
//! # let _ = session; Ok(()) }
//! ```

#![warn(missing_docs)]

#[cfg(test)]
mod bad_input;
mod body;
pub mod builtin;
mod check;
mod checkpoint_record;
mod classify;
mod egress;
mod error;
mod executor;
mod expiry;
mod extract;
mod flow_kind;
pub mod http;
mod kinds;
mod load;
mod otpauth;
mod presentation;
mod request;
mod results;
mod retry;
mod secret;
mod template;
mod timing;
mod totp;
pub mod url_scope;
mod vendor_clock;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use otpilot_api::api_credential::TotpOverrides;
use secrecy::SecretString;

pub use checkpoint_record::{CheckpointRecordError, RECORD_VERSION, profile_digest};
#[cfg(feature = "cli")]
pub use egress::EgressArgs;
pub use egress::{Egress, EgressConfig};
pub use error::{ClientError, FlowError, FlowErrorKind, FlowKind, LoadError, Problem, StepRef};
pub use executor::{Checkpoint, FlowRun, StepReport};
pub use http::{ClientIdentity, EgressProxy, HttpSettings, build_client};
pub use load::{Profile, StepInfo};
pub use presentation::{TokenPresentation, TokenVerdict, token_verdict};
pub use retry::RetryPolicy;
pub use timing::{Clock, Code, CodeTimer, ManualClock, SystemClock};
pub use totp::{TotpError, TotpKey, TotpParams};
pub use vendor_clock::{OffsetSettings, VendorClock};

/// What a flow is run with. `Debug` shows no secret.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The account's user name.
    pub username: Option<String>,
    /// The account's password.
    pub password: Option<SecretString>,
    /// The account's API key.
    pub api_key: Option<SecretString>,
    /// The enrolled TOTP secret (login, refresh, recovery login, disable).
    pub totp: Option<TotpKey>,
    /// TOTP parameters overriding the profile's defaults for a secret the
    /// vendor hands out without parameters.
    pub totp_params: Option<TotpParams>,
    /// TOTP parameters that win over everything else: over the profile's
    /// defaults, over what the vendor advertised, and over the parameters of
    /// `totp` (an `ApiCredential`'s `spec.totp`).
    pub totp_overrides: TotpOverrides,
    /// Values for the profile's variables, overriding its defaults.
    pub variables: BTreeMap<String, String>,
    /// Values of the profile's `secretValues` (vendor secrets beyond the
    /// password and the API key, e.g. Conduit's `client_secret`), by name.
    /// Scrubbed from errors like the password. Only the names the profile
    /// declares are used: callers refuse others with
    /// [`Profile::undeclared_secret_value`], naming their own field.
    pub secret_values: BTreeMap<String, SecretString>,
}

impl Inputs {
    /// The same inputs with a TOTP secret.
    pub fn with_totp(&self, key: TotpKey) -> Self {
        Self {
            totp: Some(key),
            ..self.clone()
        }
    }
}

/// The result of enrolling: the secret the vendor now knows, and the
/// recovery codes. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The TOTP secret and its parameters.
    pub totp: TotpKey,
    /// Recovery codes, normalised to the form the vendor accepts.
    pub recovery_codes: Vec<SecretString>,
    /// The time step of the last code sent (never to be reused).
    pub last_code_step: Option<u64>,
    /// Other values the flow extracted (e.g. a vendor's token id).
    pub values: BTreeMap<String, SecretString>,
}

/// A logged-in session. `Debug` shows no token.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token.
    pub access_token: SecretString,
    /// The refresh token, if the vendor has one.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires.
    pub expires_at: SystemTime,
    /// When the refresh token expires, if known.
    pub refresh_expires_at: Option<SystemTime>,
    /// The vendor says the account must be enrolled again (Cryptr, after a
    /// recovery code was used).
    pub reenroll_required: bool,
    /// The time step of the last code sent.
    pub last_code_step: Option<u64>,
    /// How the access token is sent to the vendor's API (the profile's
    /// `tokenPresentation`).
    pub presentation: TokenPresentation,
}

impl Session {
    /// The header and value that present the access token to the vendor,
    /// e.g. `Authorization: jwt <token>` for goaxr.
    pub fn authorization(&self) -> (reqwest::header::HeaderName, SecretString) {
        (
            self.presentation.header().clone(),
            self.presentation.value(&self.access_token),
        )
    }

    /// The token's type, to report with it (`Bearer`, `jwt`), or `None`
    /// when the vendor takes the bare token.
    pub fn token_type(&self) -> Option<&str> {
        self.presentation.scheme()
    }
}

/// Why a base URL cannot be used, if it cannot: not `https` (plain `http`
/// only when allowed, for tests), credentials in it, a query or fragment
/// (steps append paths and queries to it).
fn base_url_problem(url: &url::Url, allow_plain_http: bool) -> Option<String> {
    match url.scheme() {
        "https" => {}
        "http" if allow_plain_http => {}
        "http" => {
            return Some(
                "plain http:// would send credentials, codes and tokens in clear text; \
                 use https://"
                    .to_owned(),
            );
        }
        other => return Some(format!("scheme {other} is not https")),
    }
    if url.host().is_none() {
        return Some("it has no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("it carries credentials (user@host); remove them".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Some("it has a query or fragment; steps add their own".to_owned());
    }
    None
}

/// Runs a profile's flows against one vendor base URL.
pub struct Engine {
    profile: Arc<Profile>,
    base_url: String,
    base: url::Url,
    client: reqwest::Client,
    settings: HttpSettings,
    timer: Arc<CodeTimer>,
    vendor_clock: Arc<VendorClock>,
    env: minijinja::Environment<'static>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("profile", &self.profile.origin())
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine for a vendor at `base_url` (paths of steps are appended
    /// to it), with its own code timer on the system clock.
    pub fn new(
        profile: Arc<Profile>,
        base_url: &str,
        settings: HttpSettings,
    ) -> Result<Self, ClientError> {
        let parsed = url::Url::parse(base_url).map_err(|e| ClientError::BaseUrl(e.to_string()))?;
        base_url_problem(&parsed, settings.allow_plain_http)
            .map_or(Ok(()), |p| Err(ClientError::BaseUrl(p)))?;
        let client = http::build_client(&settings)?;
        Ok(Self {
            profile,
            base_url: base_url.trim_end_matches('/').to_owned(),
            base: parsed,
            client,
            settings,
            timer: Arc::new(CodeTimer::new(Arc::new(SystemClock))),
            vendor_clock: Arc::new(VendorClock::default()),
            env: template::environment(),
        })
    }

    /// Uses a shared code timer (one per process, so that no two flows on
    /// the same secret send codes from the same time step).
    pub fn with_timer(mut self, timer: Arc<CodeTimer>) -> Self {
        self.timer = timer;
        self
    }

    /// The code timer.
    pub fn timer(&self) -> &Arc<CodeTimer> {
        &self.timer
    }

    /// Uses a shared estimate of the vendor's clock (one per vendor base
    /// URL), so that a new engine computes its first code on the vendor's
    /// time before it has seen an answer of its own.
    pub fn with_vendor_clock(mut self, vendor_clock: Arc<VendorClock>) -> Self {
        self.vendor_clock = vendor_clock;
        self
    }

    /// The estimate of the vendor's clock, from its answers' `Date`.
    pub fn vendor_clock(&self) -> &Arc<VendorClock> {
        &self.vendor_clock
    }

    /// Milliseconds the vendor's clock is ahead of ours (negative: behind),
    /// once an answer has shown it; codes are computed on that time. For
    /// metrics and status.
    pub fn clock_offset_ms(&self) -> Option<i64> {
        self.vendor_clock.offset_ms()
    }

    /// Now on the vendor's clock, as far as it is known.
    pub(crate) fn vendor_now(&self) -> std::time::SystemTime {
        vendor_clock::shifted(
            self.timer.clock().now(),
            self.vendor_clock.offset_ms().unwrap_or(0),
        )
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Starts a flow, to drive step by step.
    pub fn start(&self, flow: FlowKind, inputs: &Inputs) -> Result<FlowRun<'_>, FlowError> {
        self.start_with(flow, inputs, BTreeMap::new(), BTreeMap::new())
    }

    fn start_with(
        &self,
        flow: FlowKind,
        inputs: &Inputs,
        values: BTreeMap<String, SecretString>,
        times: BTreeMap<String, SystemTime>,
    ) -> Result<FlowRun<'_>, FlowError> {
        if !self.profile.has_flow(flow) {
            return Err(FlowError {
                flow,
                step: None,
                kind: FlowErrorKind::NotDefined,
            });
        }
        let totp = match self
            .profile
            .flow(flow)
            .and_then(|f| f.generate_secret.as_ref())
        {
            Some(generate) => Some(self.generate_secret(generate.bytes, inputs).map_err(
                |error| FlowError {
                    flow,
                    step: None,
                    kind: FlowErrorKind::InvalidTotpOverrides(error),
                },
            )?),
            None => None,
        };
        self.open(
            Checkpoint {
                flow,
                next_step: 0,
                values,
                totp,
                recovery_codes: None,
                times,
                last_code_step: None,
            },
            inputs,
        )
    }

    /// A fresh secret for a profile that generates its own, with the
    /// parameters a vendor-given bare secret would get.
    fn generate_secret(&self, bytes: u8, inputs: &Inputs) -> Result<TotpKey, TotpError> {
        let mut secret = vec![0u8; usize::from(bytes)];
        rand::fill(secret.as_mut_slice());
        let params = inputs
            .totp_params
            .unwrap_or_else(|| TotpParams::from(&self.profile.spec().totp))
            .overridden_by(&inputs.totp_overrides);
        TotpKey::from_bytes(secret, params)
    }

    /// Resumes a flow from a checkpoint persisted earlier, by this or
    /// another process that may have stopped at any point.
    ///
    /// The checkpoint's last code step is marked used on the code timer,
    /// and so is the step current now when the next step may send a code:
    /// the interrupted process may have sent one just before it stopped,
    /// too late to record it.
    pub fn resume(
        &self,
        checkpoint: Checkpoint,
        inputs: &Inputs,
    ) -> Result<FlowRun<'_>, FlowError> {
        let next_sends_code = self
            .profile
            .step_info(checkpoint.flow)
            .get(checkpoint.next_step)
            .is_some_and(StepInfo::may_send_code);
        let recorded = checkpoint.last_code_step;
        let run = self.open(checkpoint, inputs)?;
        if let Some(key) = run.totp_key() {
            let now = timing::unix_millis(self.vendor_now()) / 1000;
            if let Some(step) =
                timing::used_step_on_resume(recorded, key.step_at(now), next_sends_code)
            {
                self.timer.mark_used(key, step);
            }
        }
        Ok(run)
    }

    /// A run from a checkpoint, without the code-step bookkeeping of
    /// [`Engine::resume`].
    fn open(&self, checkpoint: Checkpoint, inputs: &Inputs) -> Result<FlowRun<'_>, FlowError> {
        // Refuse unusable overrides before any request, not at the first code.
        if let Err(error) = TotpParams::default()
            .overridden_by(&inputs.totp_overrides)
            .validate()
        {
            return Err(FlowError {
                flow: checkpoint.flow,
                step: None,
                kind: FlowErrorKind::InvalidTotpOverrides(error),
            });
        }
        Ok(FlowRun::new(self, inputs, checkpoint))
    }

    /// Enrolls the account in TOTP MFA.
    pub async fn enroll(&self, inputs: &Inputs) -> Result<Enrollment, FlowError> {
        let mut run = self.start(FlowKind::Enroll, inputs)?;
        run.run_to_end().await?;
        run.into_enrollment()
    }

    /// Logs in with username, password, API key and a TOTP code.
    pub async fn login(&self, inputs: &Inputs) -> Result<Session, FlowError> {
        let mut run = self.start(FlowKind::Login, inputs)?;
        run.run_to_end().await?;
        run.into_session()
    }

    /// Exchanges the session's refresh token for new tokens.
    pub async fn refresh(&self, inputs: &Inputs, session: &Session) -> Result<Session, FlowError> {
        let mut values = BTreeMap::new();
        values.insert("access_token".to_owned(), session.access_token.clone());
        if let Some(r) = &session.refresh_token {
            values.insert("refresh_token".to_owned(), r.clone());
        }
        let mut times = BTreeMap::new();
        if let Some(t) = session.refresh_expires_at {
            times.insert("refresh_expires_at".to_owned(), t);
        }
        let mut run = self.start_with(FlowKind::Refresh, inputs, values, times)?;
        // The old access token's expiry must not survive a refresh that
        // does not extract one.
        run.run_to_end().await?;
        run.into_session()
    }

    /// Logs in with a recovery code instead of a TOTP code.
    pub async fn recovery_login(
        &self,
        inputs: &Inputs,
        recovery_code: &SecretString,
    ) -> Result<Session, FlowError> {
        let mut values = BTreeMap::new();
        values.insert("recovery_code".to_owned(), recovery_code.clone());
        let mut run = self.start_with(FlowKind::RecoveryLogin, inputs, values, BTreeMap::new())?;
        run.run_to_end().await?;
        run.into_session()
    }

    /// Turns MFA off at the vendor.
    pub async fn disable(&self, inputs: &Inputs) -> Result<(), FlowError> {
        let mut run = self.start(FlowKind::Disable, inputs)?;
        run.run_to_end().await
    }
}
