//! The engine against the simulator's injected faults, over real HTTPS:
//! transient errors are retried within the policy's bounds, a vendor that
//! is down or slow fails in bounded attempts and time, a lock-out surfaces
//! its Retry-After without a retry storm, a revoked refresh token and a
//! wrong-shaped answer are clear errors that show no secret.
//!
//! Requests are counted with a tracing subscriber that records the
//! executor's "vendor answered" and "retrying" events on the test's thread
//! (tokio's test runtime is single-threaded, so each test sees only its
//! own engine). Real time, small numbers: 2 s TOTP periods, sub-second
//! backoff, timeouts of half a second. Bounds on waiting are asserted on the
//! waits the engine asked its clock for (a `RecordingClock`), never on a
//! wall clock that a loaded machine stretches.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use otpilot_profile::{
    Clock, CodeTimer, Engine, Enrollment, FlowError, FlowErrorKind, HttpSettings, Inputs, Profile,
    RetryPolicy, Session, TotpKey, TotpParams, builtin,
};
use otpilot_sim::{AccountSpec, AdminClient, Faults, SimConfig, SimHandle, Vendor};
use secrecy::{ExposeSecret, SecretString};
use tracing::field::{Field, Visit};
use tracing::span;
use tracing::{Event, Metadata, Subscriber};

// Conduit: no mTLS, a refresh flow, a password step before the code step
// (so a fault can be met without spending a TOTP step), and lock-out on
// the code step. Conduit accepts the current step only; 2 s leaves the
// engine's 500 ms end-of-step margin.
const PERIOD_SECS: u64 = 2;
const USERNAME: &str = "faulty-bot@example.com";
const PASSWORD: &str = "pw-7781-correct-horse";
const API_KEY: &str = "ak-4412-5pv515CM2uL4VAE";

/// Small bounds so that giving up takes well under a second of backoff.
const POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    base: Duration::from_millis(100),
    cap: Duration::from_millis(200),
    max_retry_after: Duration::from_secs(2),
    max_code_retries: 2,
};
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------
// Counting requests: the executor logs every response and every retry.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    flow: String,
    step: u64,
    status: u16,
}

#[derive(Debug, Default)]
struct Seen {
    answers: Vec<Answer>,
    retries: usize,
}

#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

impl Recorder {
    /// Records the engine's events on this thread until the guard drops.
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let recorder = Self::default();
        let guard = tracing::subscriber::set_default(recorder.clone());
        (recorder, guard)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reset(&self) {
        *self.lock() = Seen::default();
    }

    /// Statuses the vendor answered to one step of one flow, in order.
    fn statuses(&self, flow: &str, step: u64) -> Vec<u16> {
        self.lock()
            .answers
            .iter()
            .filter(|a| a.flow == flow && a.step == step)
            .map(|a| a.status)
            .collect()
    }

    fn answers(&self) -> Vec<Answer> {
        self.lock().answers.clone()
    }

    fn retries(&self) -> usize {
        self.lock().retries
    }

    fn count_status(&self, status: u16) -> usize {
        self.lock()
            .answers
            .iter()
            .filter(|a| a.status == status)
            .count()
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    flow: Option<String>,
    step: Option<u64>,
    status: Option<u64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "step" => self.step = Some(value),
            "status" => self.status = Some(value),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(value) = u64::try_from(value) {
            self.record_u64(field, value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message = Some(text),
            "flow" => self.flow = Some(text),
            _ => {}
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("otpilot_profile")
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut seen = self.lock();
        match fields.message.as_deref() {
            Some("vendor answered") => {
                if let (Some(flow), Some(step), Some(status)) =
                    (fields.flow, fields.step, fields.status)
                {
                    seen.answers.push(Answer {
                        flow,
                        step,
                        status: u16::try_from(status).unwrap_or(0),
                    });
                }
            }
            Some("retrying") => seen.retries += 1,
            _ => {}
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

// ---------------------------------------------------------------------------
// Fixture.

struct Fixture {
    sim: SimHandle,
    admin: AdminClient,
    inputs: Inputs,
}

fn install_crypto_provider() {
    // Several tests race to install it; the loser's error is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn fixture(configure: impl FnOnce(SimConfig) -> SimConfig) -> Fixture {
    install_crypto_provider();
    let config = SimConfig::new(Vendor::Conduit)
        .with_period(Duration::from_secs(PERIOD_SECS))
        .with_account(AccountSpec::new(USERNAME, PASSWORD, API_KEY));
    let sim = otpilot_sim::spawn(configure(config))
        .await
        .expect("simulator starts");
    let admin = sim.admin().expect("admin client");
    let inputs = Inputs {
        username: Some(USERNAME.into()),
        password: Some(SecretString::from(PASSWORD)),
        api_key: Some(SecretString::from(API_KEY)),
        totp_params: Some(TotpParams {
            period: PERIOD_SECS,
            ..TotpParams::default()
        }),
        ..Inputs::default()
    };
    Fixture { sim, admin, inputs }
}

impl Fixture {
    /// A new engine (own connection pool, own code timer).
    /// An engine whose waits are recorded by `clock` (real time still
    /// passes: the simulator's TOTP runs on it).
    fn engine_with_clock(
        &self,
        retry: RetryPolicy,
        request_timeout: Duration,
        clock: &RecordingClock,
    ) -> Engine {
        self.engine(retry, request_timeout)
            .with_timer(Arc::new(CodeTimer::new(Arc::new(clock.clone()))))
    }

    fn engine(&self, retry: RetryPolicy, request_timeout: Duration) -> Engine {
        let settings = HttpSettings {
            server_ca_pem: Some(self.sim.server_ca_pem().to_owned()),
            request_timeout,
            connect_timeout: request_timeout,
            retry,
            ..HttpSettings::default()
        };
        Engine::new(profile(), &self.sim.base_url(), settings).expect("engine")
    }

    async fn set_faults(&self, faults: Faults) {
        self.admin.set_faults(&faults).await.expect("set faults");
    }

    async fn clear_faults(&self) {
        self.admin.clear_faults().await.expect("clear faults");
    }

    async fn account(&self) -> otpilot_sim::AccountState {
        self.admin.account(USERNAME).await.expect("account state")
    }
}

fn profile() -> Arc<Profile> {
    builtin::get("conduit").expect("built-in conduit profile")
}

async fn enroll(f: &Fixture, engine: &Engine) -> Enrollment {
    let enrollment = engine.enroll(&f.inputs).await.expect("enroll");
    assert!(f.account().await.enrolled, "the vendor shows 2FA on");
    enrollment
}

/// A base32 secret the vendor has not enrolled (a distinct one per `n`,
/// so that the engine's code timer never makes a wrong login wait).
fn wrong_key(n: u8, params: TotpParams) -> TotpKey {
    let secret = base32::encode(
        base32::Alphabet::Rfc4648 { padding: false },
        &[n.wrapping_add(0x5a); 20],
    );
    TotpKey::from_base32(&secret, params).expect("wrong key")
}

/// Every secret a flow's error could leak.
fn secrets(enrollment: Option<&Enrollment>, sessions: &[&Session]) -> Vec<String> {
    let mut all = vec![PASSWORD.to_owned(), API_KEY.to_owned(), USERNAME.to_owned()];
    if let Some(e) = enrollment {
        all.push(e.totp.secret_base32().expose_secret().to_owned());
        all.extend(
            e.recovery_codes
                .iter()
                .map(|c| c.expose_secret().to_owned()),
        );
    }
    for s in sessions {
        all.push(s.access_token.expose_secret().to_owned());
        all.extend(s.refresh_token.iter().map(|t| t.expose_secret().to_owned()));
    }
    all
}

fn assert_no_secret(err: &FlowError, secrets: &[String]) {
    let shown = format!("{err}\n{err:?}");
    for s in secrets {
        assert!(!shown.contains(s.as_str()), "a secret leaked into: {shown}");
    }
}

/// The longest the engine may spend backing off between `attempts`
/// requests: each delay is below the cap (Retry-After aside).
fn max_backoff(policy: &RetryPolicy) -> Duration {
    policy.cap * policy.max_attempts.saturating_sub(1)
}

// ---------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn transient_503s_are_retried_and_the_login_succeeds() {
    let (rec, _guard) = Recorder::install();
    let f = fixture(|c| c).await;
    let policy = RetryPolicy {
        max_attempts: 4,
        base: Duration::from_millis(200),
        ..POLICY
    };
    let engine = f.engine(policy, REQUEST_TIMEOUT);
    let enrollment = enroll(&f, &engine).await;
    let inputs = f.inputs.with_totp(enrollment.totp.clone());

    // Every call answers 503 until the engine has met two of them; the
    // fault then clears during the backoff before the third attempt.
    f.set_faults(Faults {
        error_status: Some(503),
        error_fraction: Some(1.0),
        ..Faults::default()
    })
    .await;
    rec.reset();
    let clear_after_two = async {
        while rec.count_status(503) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        f.clear_faults().await;
    };
    let (session, ()) = tokio::join!(engine.login(&inputs), clear_after_two);
    let session = session.expect("login succeeds once the 503s stop");
    assert!(!session.access_token.expose_secret().is_empty());

    assert_eq!(
        rec.statuses("login", 0),
        vec![503, 503, 200],
        "the password step was retried until it succeeded: {:?}",
        rec.answers()
    );
    assert_eq!(rec.statuses("login", 1), vec![200], "authorize: once");
    assert_eq!(rec.statuses("login", 2), vec![200], "verify: once");
    assert_eq!(rec.retries(), 2, "two backoffs, no more");
    assert!(
        rec.statuses("login", 0).len() <= policy.max_attempts as usize,
        "within the policy's bound"
    );
    f.sim.shutdown().await;
}

#[tokio::test]
async fn a_vendor_that_stays_down_fails_after_a_bounded_number_of_attempts_within_a_bounded_time() {
    let (rec, _guard) = Recorder::install();
    let f = fixture(|c| c).await;
    enroll(&f, &f.engine(POLICY, REQUEST_TIMEOUT)).await;

    // A new engine: no connection open, so every attempt is refused before
    // TLS (the simulator drops new connections while down).
    let clock = RecordingClock::default();
    let engine = f.engine_with_clock(POLICY, REQUEST_TIMEOUT, &clock);
    f.set_faults(Faults {
        down: true,
        ..Faults::default()
    })
    .await;
    rec.reset();
    let err = engine.login(&f.inputs).await.expect_err("vendor down");
    let waited = clock.total();

    assert!(
        matches!(err.kind, FlowErrorKind::Transport { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(err.category(), "VendorUnreachable", "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "login steps[0] 'password-login': could not reach the vendor after 3 attempt(s): "
        ),
        "{text}"
    );
    assert_eq!(rec.retries(), 2, "max_attempts - 1 backoffs");
    assert!(rec.answers().is_empty(), "the vendor never answered");
    let bound = max_backoff(&POLICY);
    assert!(
        waited <= bound,
        "waited {waited:?} before giving up, bound {bound:?}"
    );
    assert_no_secret(&err, &secrets(None, &[]));

    // Back up: the same engine logs in (no poisoned connection pool).
    f.clear_faults().await;
    let enrolled = f.account().await;
    let key = TotpKey::from_base32(
        enrolled.totp_secret_base32.as_deref().expect("secret"),
        TotpParams {
            period: PERIOD_SECS,
            ..TotpParams::default()
        },
    )
    .expect("key");
    engine
        .login(&f.inputs.with_totp(key))
        .await
        .expect("login once the vendor is back");
    f.sim.shutdown().await;
}

#[tokio::test]
async fn a_vendor_that_goes_down_under_an_open_connection_fails_as_unavailable_after_bounded_attempts()
 {
    let (rec, _guard) = Recorder::install();
    let f = fixture(|c| c).await;
    // The engine that enrolled keeps its connection open: while down, the
    // simulator answers 503 on it (no Retry-After) instead of refusing.
    let clock = RecordingClock::default();
    let engine = f.engine_with_clock(POLICY, REQUEST_TIMEOUT, &clock);
    let enrollment = enroll(&f, &engine).await;
    f.set_faults(Faults {
        down: true,
        ..Faults::default()
    })
    .await;
    rec.reset();
    clock.reset();
    let err = engine
        .login(&f.inputs.with_totp(enrollment.totp.clone()))
        .await
        .expect_err("vendor down");
    let waited = clock.total();

    // Bounded: exactly max_attempts requests, within the backoff bound.
    assert_eq!(
        rec.statuses("login", 0),
        vec![503; POLICY.max_attempts as usize],
        "503 on the open connection, max_attempts times: {:?}",
        rec.answers()
    );
    assert_eq!(rec.retries(), 2, "max_attempts - 1 backoffs");
    let bound = max_backoff(&POLICY);
    assert!(
        waited <= bound,
        "waited {waited:?} before giving up, bound {bound:?}"
    );

    // A vendor that is down is not a lock-out: a 503 answered every time
    // must read as the vendor being unavailable, with the number of
    // attempts, not as "locked the account out".
    assert!(
        matches!(err.category(), "VendorUnreachable" | "VendorError"),
        "a down vendor reported as {}: {err}",
        err.category()
    );
    assert!(
        err.to_string().contains("3 attempt"),
        "says how many attempts: {err}"
    );
    f.sim.shutdown().await;
}

#[tokio::test]
async fn a_locked_out_account_reports_retry_after() {
    let (rec, _guard) = Recorder::install();
    let window = Duration::from_secs(30);
    let f = fixture(|c| c.with_lockout(2, window)).await;
    let clock = RecordingClock::default();
    let engine = f.engine_with_clock(POLICY, REQUEST_TIMEOUT, &clock);
    let enrollment = enroll(&f, &engine).await;
    let params = enrollment.totp.params();

    // Two wrong codes reach the threshold; each is refused once, never
    // retried.
    rec.reset();
    for n in 0..2 {
        let err = engine
            .login(&f.inputs.with_totp(wrong_key(n, params)))
            .await
            .expect_err("wrong secret");
        assert_eq!(err.category(), "CodeRejected", "{err}");
    }
    assert_eq!(rec.statuses("login", 2), vec![401, 401], "one try each");
    let locked = f.account().await;
    assert!(locked.locked_until_unix_ms.is_some(), "{locked:?}");

    // Now even the right secret meets the lock: 429 with Retry-After 30,
    // longer than the engine waits (max_retry_after 2 s): it gives up at
    // once and says when to try again.
    rec.reset();
    clock.reset();
    let err = engine
        .login(&f.inputs.with_totp(enrollment.totp.clone()))
        .await
        .expect_err("locked out");
    let FlowErrorKind::LockedOut {
        status,
        retry_after,
    } = &err.kind
    else {
        panic!("expected LockedOut, got {}: {err}", err.category());
    };
    assert_eq!(*status, 429, "{err}");
    let retry_after = retry_after.expect("Retry-After surfaced");
    assert!(
        retry_after > window - Duration::from_secs(5) && retry_after <= window,
        "Retry-After {retry_after:?} for a {window:?} lock"
    );
    assert_eq!(err.category(), "LockedOut");
    let text = err.to_string();
    assert!(
        text.starts_with("login steps[2] 'verify': the vendor has locked the account out"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("try again in {} s", retry_after.as_secs())),
        "{text}"
    );

    // No retry storm: one request to the locked step, no backoff, no
    // further failure counted by the vendor.
    assert_eq!(rec.statuses("login", 2), vec![429], "{:?}", rec.answers());
    assert_eq!(rec.retries(), 0);
    // The login itself may wait for a fresh TOTP step (up to one period,
    // plus the engine's guard past a step's start); it must not wait for
    // the lock.
    let waited = clock.total();
    let bound = Duration::from_secs(PERIOD_SECS + 1);
    assert!(waited <= bound, "waited {waited:?}: {:?}", clock.waits());
    let after = f.account().await;
    assert_eq!(after.failed_attempts, locked.failed_attempts);
    assert_eq!(after.locked_until_unix_ms, locked.locked_until_unix_ms);
    assert_no_secret(&err, &secrets(Some(&enrollment), &[]));
    f.sim.shutdown().await;
}

#[tokio::test]
async fn a_short_lock_out_is_waited_out_and_the_login_succeeds() {
    let (rec, _guard) = Recorder::install();
    // One wrong code locks for 4 s, within the 5 s the engine will wait.
    let f = fixture(|c| c.with_lockout(1, Duration::from_secs(4))).await;
    let policy = RetryPolicy {
        max_retry_after: Duration::from_secs(5),
        ..POLICY
    };
    let engine = f.engine(policy, REQUEST_TIMEOUT);
    let enrollment = enroll(&f, &engine).await;
    let err = engine
        .login(&f.inputs.with_totp(wrong_key(7, enrollment.totp.params())))
        .await
        .expect_err("wrong secret");
    assert_eq!(err.category(), "CodeRejected", "{err}");

    rec.reset();
    let session = engine
        .login(&f.inputs.with_totp(enrollment.totp.clone()))
        .await
        .expect("login after waiting out the lock");
    assert!(!session.access_token.expose_secret().is_empty());
    assert_eq!(
        rec.statuses("login", 2),
        vec![429, 200],
        "locked once, waited Retry-After, then let in: {:?}",
        rec.answers()
    );
    assert_eq!(rec.retries(), 1);
    f.sim.shutdown().await;
}

#[tokio::test]
async fn refresh_rejected_by_the_vendor_is_a_clear_error() {
    let (rec, _guard) = Recorder::install();
    let f = fixture(|c| c).await;
    let engine = f.engine(POLICY, REQUEST_TIMEOUT);
    let enrollment = enroll(&f, &engine).await;
    let inputs = f.inputs.with_totp(enrollment.totp.clone());
    let session = engine.login(&inputs).await.expect("login");
    assert!(session.refresh_token.is_some(), "conduit hands out one");

    f.set_faults(Faults {
        reject_refresh: true,
        ..Faults::default()
    })
    .await;
    rec.reset();
    let err = engine
        .refresh(&inputs, &session)
        .await
        .expect_err("refresh revoked");
    assert!(
        matches!(err.kind, FlowErrorKind::LoginRequired { status: 401, .. }),
        "{err}"
    );
    assert_eq!(err.category(), "LoginRequired");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "refresh steps[0] 'renew': the vendor refused the refresh token (HTTP 401: "
        ),
        "{text}"
    );
    assert!(text.ends_with("log in again"), "{text}");
    assert!(
        text.contains("refresh_token_revoked"),
        "the vendor's reason is shown: {text}"
    );
    assert_eq!(rec.statuses("refresh", 0), vec![401], "not retried");
    assert_eq!(rec.retries(), 0);
    assert_no_secret(&err, &secrets(Some(&enrollment), &[&session]));

    // The token is spent; a fresh login is the way back.
    f.clear_faults().await;
    let again = engine
        .refresh(&inputs, &session)
        .await
        .expect_err("spent refresh token");
    assert_eq!(again.category(), "LoginRequired", "{again}");
    engine.login(&inputs).await.expect("log in again");
    f.sim.shutdown().await;
}

#[tokio::test]
async fn a_slow_vendor_hits_the_request_timeout() {
    let (rec, _guard) = Recorder::install();
    let f = fixture(|c| c).await;
    let timeout = Duration::from_millis(500);
    let clock = RecordingClock::default();
    let engine = f.engine_with_clock(POLICY, timeout, &clock);
    f.set_faults(Faults {
        latency_ms: 1_500,
        ..Faults::default()
    })
    .await;
    let started = Instant::now();
    let err = engine.login(&f.inputs).await.expect_err("too slow");
    let elapsed = started.elapsed();

    assert!(
        matches!(err.kind, FlowErrorKind::Transport { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(err.category(), "VendorUnreachable");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "login steps[0] 'password-login': could not reach the vendor after 3 attempt(s): timed out"
        ),
        "{text}"
    );
    assert!(rec.answers().is_empty(), "no answer arrived in time");
    assert_eq!(rec.retries(), 2);
    // Three attempts each ended by the timeout (a lower bound on real
    // time, which load only stretches), two short backoffs in between.
    let floor = timeout * POLICY.max_attempts;
    assert!(elapsed >= floor, "took {elapsed:?}, at least {floor:?}");
    let waited = clock.total();
    assert!(
        waited <= max_backoff(&POLICY),
        "waited {waited:?} between attempts: {:?}",
        clock.waits()
    );
    assert_no_secret(&err, &secrets(None, &[]));
    f.sim.shutdown().await;
}

/// The simulator's status fault answers a JSON error body; answered with
/// 200 it is a success that holds none of what the profile extracts, and
/// answered with 500 it is a plain failure. (Non-JSON bodies that echo the
/// request back are covered against a local server in `secret_leak.rs`.)
#[tokio::test]
async fn garbage_from_the_vendor_is_a_clear_error_without_secrets() {
    let (rec, _guard) = Recorder::install();
    let f = fixture(|c| c).await;
    let engine = f.engine(POLICY, REQUEST_TIMEOUT);
    let enrollment = enroll(&f, &engine).await;
    let inputs = f.inputs.with_totp(enrollment.totp.clone());
    let session = engine.login(&inputs).await.expect("login");
    let secrets = secrets(Some(&enrollment), &[&session]);

    f.set_faults(Faults {
        error_status: Some(200),
        ..Faults::default()
    })
    .await;
    rec.reset();
    let err = engine.login(&inputs).await.expect_err("wrong-shaped 200");
    assert_eq!(err.category(), "UnexpectedResponse", "{err}");
    assert_eq!(
        err.to_string(),
        "login steps[0] 'password-login': could not read 'unauthorized_token' from the \
         response: nothing at JSON pointer '/accessToken' (HTTP 200)"
    );
    assert_eq!(rec.statuses("login", 0), vec![200], "not retried");
    assert_no_secret(&err, &secrets);

    let err = engine
        .refresh(&inputs, &session)
        .await
        .expect_err("wrong-shaped 200");
    assert_eq!(err.category(), "UnexpectedResponse", "{err}");
    assert!(
        err.to_string()
            .starts_with("refresh steps[0] 'renew': could not read 'access_token'"),
        "{err}"
    );
    assert_no_secret(&err, &secrets);

    f.set_faults(Faults {
        error_status: Some(500),
        ..Faults::default()
    })
    .await;
    rec.reset();
    let err = engine.login(&inputs).await.expect_err("500");
    assert!(
        matches!(err.kind, FlowErrorKind::Status { status: 500, .. }),
        "{err}"
    );
    assert_eq!(err.category(), "VendorError");
    assert!(
        err.to_string()
            .starts_with("login steps[0] 'password-login': the vendor answered HTTP 500: "),
        "{err}"
    );
    assert!(err.to_string().contains("injected_fault"), "{err}");
    assert_eq!(rec.statuses("login", 0), vec![500], "a 500 is not retried");
    assert_no_secret(&err, &secrets);

    // Real garbage: an HTML body with a 200, where JSON was expected.
    f.set_faults(Faults {
        error_status: Some(200),
        error_body: Some("<html><body>Welcome to nginx!</body></html>".into()),
        ..Faults::default()
    })
    .await;
    let err = engine.login(&inputs).await.expect_err("HTML 200");
    assert_eq!(err.category(), "UnexpectedResponse", "{err}");
    assert!(err.to_string().contains("not JSON"), "{err}");
    assert_no_secret(&err, &secrets);

    // A proxy's error page on a 502, every time: unavailable, bounded, with
    // an excerpt of the page so a person can see who answered.
    f.set_faults(Faults {
        error_status: Some(502),
        error_body: Some("<html><h1>502 Bad Gateway</h1></html>".into()),
        ..Faults::default()
    })
    .await;
    rec.reset();
    let err = engine.login(&inputs).await.expect_err("502 page");
    assert_eq!(err.category(), "VendorUnreachable", "{err}");
    assert!(
        err.to_string()
            .contains("unavailable after 3 attempt(s) (last answer HTTP 502)")
            && err.to_string().contains("502 Bad Gateway"),
        "{err}"
    );
    assert_eq!(rec.statuses("login", 0), vec![502; 3]);
    assert_no_secret(&err, &secrets);
    f.sim.shutdown().await;
}

/// The system clock, recording every wait the engine asks for, so bounds on
/// waiting are asserted on what the engine decided.
#[derive(Clone, Default)]
struct RecordingClock {
    waits: Arc<Mutex<Vec<Duration>>>,
}

impl RecordingClock {
    fn waits(&self) -> Vec<Duration> {
        self.waits.lock().expect("waits").clone()
    }

    fn total(&self) -> Duration {
        self.waits().iter().sum()
    }

    fn reset(&self) {
        self.waits.lock().expect("waits").clear();
    }
}

impl Clock for RecordingClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.waits.lock().expect("waits").push(duration);
        Box::pin(tokio::time::sleep(duration))
    }
}
