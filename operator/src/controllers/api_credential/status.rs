//! The ApiCredential's status: conditions CertificateReady, Enrolled and
//! Ready built from what the reconcile found (pure), written by server-side
//! apply, with an Event per transition.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use otpilot_api::api_credential::{ApiCredentialStatus, EnrollmentState, OwnedSecrets};
use otpilot_api::conditions::{CERTIFICATE_READY, ENROLLED, READY, reasons};
use otpilot_api::labels;

use crate::conditions::{self, Desired};
use otpilot_api::conditions::reasons as local;

/// `Ready` from the other two (pure): ready when both hold, else the first
/// failing one's reason and message.
pub fn ready(certificate: &Desired, enrolled: &Desired) -> Desired {
    match [certificate, enrolled].into_iter().find(|d| !d.ok) {
        Some(blocker) => Desired::failed(
            READY,
            blocker.reason,
            format!("{} is False: {}", blocker.type_, blocker.message),
        ),
        None => Desired::ok(
            READY,
            reasons::RECONCILED,
            "enrolled; the runtime Secret holds everything a sidecar needs",
        ),
    }
}

/// `CertificateReady` for a credential without a client certificate (pure).
pub fn certificate_not_required() -> Desired {
    Desired::ok(
        CERTIFICATE_READY,
        local::CERTIFICATE_NOT_REQUIRED,
        "spec.clientCertificate is not set: the vendor is called without a client certificate",
    )
}

/// `CertificateReady` for an issued certificate (pure).
pub fn certificate_issued(
    ca: &str,
    not_after: jiff::Timestamp,
    renew_at: Option<jiff::Timestamp>,
) -> Desired {
    let renewal = renew_at
        .map(|t| format!("; renewed at {t}"))
        .unwrap_or_default();
    Desired::ok(
        CERTIFICATE_READY,
        reasons::ISSUED,
        format!("issued by ClientCA {ca}, valid until {not_after}{renewal}"),
    )
}

pub fn enrolled_ok() -> Desired {
    Desired::ok(
        ENROLLED,
        reasons::ENROLLMENT_COMPLETE,
        "TOTP is enrolled at the vendor and the seed is in the runtime Secret",
    )
}

/// Fewer recovery codes than this: `Enrolled` says so (reason
/// `RecoveryCodesLow`, a Warning Event) while they still work; the
/// `otpilot_operator_recovery_codes_remaining` gauge and the chart's
/// `OtpilotRecoveryCodesLow` alert show the same.
pub const RECOVERY_CODES_LOW: u32 = 3;

/// `Enrolled` for an enrolled credential holding `codes` recovery codes
/// (pure): still True, with a warning reason when codes run low or out.
pub fn enrolled_with_codes(codes: usize, has_recovery_flow: bool) -> Desired {
    let low = usize::try_from(RECOVERY_CODES_LOW).unwrap_or(usize::MAX);
    match codes {
        _ if !has_recovery_flow => enrolled_ok(),
        0 => Desired::ok(
            ENROLLED,
            reasons::RECOVERY_CODES_EXHAUSTED,
            "enrolled, but no recovery code is left: if the vendor ever refuses the TOTP secret \
             there is no way back in without a person. Get new codes: annotate the \
             ApiCredential otpilot.dev/reenroll where its profile can re-enroll, or generate \
             them at the vendor and store them in the recovery Secret",
        ),
        n if n < low => Desired::ok(
            ENROLLED,
            reasons::RECOVERY_CODES_LOW,
            format!(
                "enrolled, but only {n} recovery code(s) left (warning below \
                 {RECOVERY_CODES_LOW}); get new ones before they run out: annotate \
                 otpilot.dev/reenroll where the profile can re-enroll, or generate them at the \
                 vendor"
            ),
        ),
        _ => enrolled_ok(),
    }
}

/// A vendor clock further off than this gets a Warning Event (`ClockSkew`).
/// Codes are computed on the vendor's time, so logins still work; beyond
/// a third of a 30 s step a clock is wrong enough that a person should fix it.
pub const CLOCK_SKEW_WARN_SECONDS: i64 = 10;

/// Milliseconds to whole seconds, rounded to the nearest (pure).
pub fn offset_seconds(ms: i64) -> i64 {
    (ms + ms.signum() * 500) / 1000
}

/// The offset to warn about (pure): beyond the threshold now, and not
/// already beyond it before (one Warning per excursion).
pub fn clock_skew_news(previous: Option<i64>, now: Option<i64>) -> Option<i64> {
    let beyond = |o: Option<i64>| o.is_some_and(|o| o.abs() > CLOCK_SKEW_WARN_SECONDS);
    (beyond(now) && !beyond(previous)).then_some(now?)
}

/// How long to wait before calling out again (pure): a failed pass set
/// `nextRetryTime`, and only a spec change (new generation) cuts the wait
/// short. Status writes and restarts do not, so the vendor is never
/// hammered, not even by a crash-looping operator.
pub fn wait_before_retry(
    status: Option<&ApiCredentialStatus>,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> Option<std::time::Duration> {
    let status = status?;
    if status.failed_attempts.unwrap_or(0) == 0 || status.observed_generation != generation {
        return None;
    }
    let next = status.next_retry_time.as_ref()?.0;
    if next <= now {
        return None;
    }
    let wait = now.duration_until(next);
    std::time::Duration::try_from(wait).ok()
}

/// The enrollment state the Secrets show (pure). The runtime Secret says
/// `Pending` from the first pass on (it carries the client certificate that
/// enrollment itself needs); without an enrollment checkpoint no TOTP secret
/// exists yet, which is `NotStarted` to a person and to the API server's
/// rule that fixes the vendor once enrollment started.
pub fn observed_enrollment(
    runtime_state: Option<EnrollmentState>,
    has_checkpoint: bool,
) -> Option<EnrollmentState> {
    match runtime_state {
        Some(EnrollmentState::Pending) if !has_checkpoint => Some(EnrollmentState::NotStarted),
        other => other,
    }
}

/// `status.enrollment` (pure): what the Secrets say, refined by why the
/// last pass failed (locked out; or stuck until a person acts).
///
/// While no TOTP secret was ever stored it stays `NotStarted`, whatever
/// failed (the Enrolled condition says what): the API server's rule that
/// fixes `spec.baseUrl` once enrollment started reads this field, and a
/// wrong or unreachable base URL must stay fixable until a seed exists.
pub fn enrollment_state(
    stored: Option<EnrollmentState>,
    enrolled: &Desired,
    needs_a_person: bool,
) -> EnrollmentState {
    match stored {
        None | Some(EnrollmentState::NotStarted) => EnrollmentState::NotStarted,
        _ if enrolled.reason == reasons::REENROLL_REQUIRED => EnrollmentState::ReenrollRequired,
        Some(EnrollmentState::Enrolled) => EnrollmentState::Enrolled,
        _ if enrolled.ok => stored.unwrap_or(EnrollmentState::NotStarted),
        _ if enrolled.reason == reasons::LOCKED_OUT => EnrollmentState::LockedOut,
        _ if needs_a_person => EnrollmentState::Failed,
        other => other.unwrap_or(EnrollmentState::NotStarted),
    }
}

/// What the Secrets and the certificate say, for status.
#[derive(Debug, Default)]
pub struct Observed {
    pub enrollment: Option<EnrollmentState>,
    pub recovery_codes: Option<u32>,
    pub certificate_not_after: Option<Time>,
    pub renewal_time: Option<Time>,
    /// Consecutive failures, and when the next attempt is due (None after a success).
    pub failure: Option<Failure>,
    /// The vendor's clock against ours, when this pass measured it (else
    /// the previous value stands).
    pub clock_offset_seconds: Option<i64>,
    /// Annotation requests carried out in this pass (else the previous
    /// values stand).
    pub handled_renew_request: Option<String>,
    pub handled_reenroll_request: Option<String>,
}

/// A failed pass, for status.
#[derive(Debug)]
pub struct Failure {
    pub attempts: u32,
    pub next_retry: Time,
}

/// The full status (pure).
pub fn build(
    previous: Option<&ApiCredentialStatus>,
    desired: &[Desired],
    generation: Option<i64>,
    now: &Time,
    credential: &str,
    observed: Observed,
) -> ApiCredentialStatus {
    let Observed {
        enrollment,
        recovery_codes,
        certificate_not_after,
        renewal_time,
        failure,
        clock_offset_seconds,
        handled_renew_request,
        handled_reenroll_request,
    } = observed;
    let last_failure_time = match &failure {
        Some(_) => Some(now.clone()),
        None => previous.and_then(|p| p.last_failure_time.clone()),
    };
    let previous_conditions = previous.map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    ApiCredentialStatus {
        conditions: conditions::merge(previous_conditions, desired, generation, now),
        certificate_not_after,
        renewal_time,
        last_failure_time,
        failed_attempts: failure.as_ref().map(|f| f.attempts),
        next_retry_time: failure.map(|f| f.next_retry),
        clock_offset_seconds: clock_offset_seconds
            .or_else(|| previous.and_then(|p| p.clock_offset_seconds)),
        enrollment: enrollment.or(Some(EnrollmentState::NotStarted)),
        recovery_codes_remaining: recovery_codes,
        secrets: Some(OwnedSecrets {
            runtime: Some(labels::runtime_secret_name(credential)),
            recovery: Some(labels::recovery_secret_name(credential)),
        }),
        handled_renew_request: handled_renew_request
            .or_else(|| previous.and_then(|p| p.handled_renew_request.clone())),
        handled_reenroll_request: handled_reenroll_request
            .or_else(|| previous.and_then(|p| p.handled_reenroll_request.clone())),
        observed_generation: generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolled_warns_before_recovery_codes_run_out() {
        let cases = [
            (10, true, "EnrollmentComplete"),
            (3, true, "EnrollmentComplete"),
            (2, true, "RecoveryCodesLow"),
            (1, true, "RecoveryCodesLow"),
            (0, true, "RecoveryCodesExhausted"),
            (0, false, "EnrollmentComplete"),
        ];
        for (codes, flow, want) in cases {
            let d = enrolled_with_codes(codes, flow);
            assert!(d.ok, "{codes}: MFA still works");
            assert_eq!(d.reason, want, "{codes} {flow}");
        }
    }

    #[test]
    fn clock_offsets_round_and_warn_once_per_excursion() {
        let rounding = [
            (0, 0),
            (499, 0),
            (500, 1),
            (-1499, -1),
            (-1500, -2),
            (20_300, 20),
        ];
        for (ms, want) in rounding {
            assert_eq!(offset_seconds(ms), want, "{ms}");
        }
        let cases = [
            (None, None, None),
            (None, Some(3), None),
            (None, Some(20), Some(20)),
            (Some(2), Some(-11), Some(-11)),
            (Some(20), Some(21), None),
            (Some(20), Some(2), None),
            (Some(20), None, None),
        ];
        for (previous, now, want) in cases {
            assert_eq!(clock_skew_news(previous, now), want, "{previous:?} {now:?}");
        }
    }

    #[test]
    fn ready_names_the_first_blocker() {
        let cert_ok = certificate_not_required();
        let cert_bad = Desired::failed(CERTIFICATE_READY, "ClientCANotFound", "create it");
        let enrolled_bad = Desired::failed(ENROLLED, "SecretNotFound", "create Secret pw");
        let cases = [
            (&cert_ok, &enrolled_ok(), true, "Reconciled"),
            (&cert_ok, &enrolled_bad, false, "SecretNotFound"),
            (&cert_bad, &enrolled_bad, false, "ClientCANotFound"),
        ];
        for (c, e, ok, reason) in cases {
            let r = ready(c, e);
            assert_eq!((r.ok, r.reason), (ok, reason));
        }
        let r = ready(&cert_ok, &enrolled_bad);
        assert_eq!(r.message, "Enrolled is False: create Secret pw");
    }

    #[test]
    fn a_failed_credential_waits_for_its_retry_time_unless_the_spec_changed() {
        let at = |s: i64| jiff::Timestamp::from_second(s).expect("valid");
        let failed = |attempts: u32, next: i64, generation: i64| ApiCredentialStatus {
            failed_attempts: Some(attempts),
            next_retry_time: Some(Time(at(next))),
            observed_generation: Some(generation),
            ..ApiCredentialStatus::default()
        };
        let secs = std::time::Duration::from_secs;
        let cases = [
            ("no status", None, Some(1), None),
            ("waiting", Some(failed(2, 130, 1)), Some(1), Some(secs(30))),
            ("due", Some(failed(2, 100, 1)), Some(1), None),
            ("spec changed", Some(failed(2, 130, 1)), Some(2), None),
            ("succeeded", Some(failed(0, 130, 1)), Some(1), None),
        ];
        for (name, status, generation, want) in cases {
            assert_eq!(
                wait_before_retry(status.as_ref(), generation, at(100)),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn a_pending_runtime_secret_without_a_checkpoint_has_not_started() {
        use EnrollmentState::*;
        let cases = [
            (None, false, None),
            (Some(Pending), false, Some(NotStarted)),
            (Some(Pending), true, Some(Pending)),
            (Some(Enrolled), false, Some(Enrolled)),
            (Some(Enrolled), true, Some(Enrolled)),
        ];
        for (runtime, checkpoint, want) in cases {
            assert_eq!(
                observed_enrollment(runtime, checkpoint),
                want,
                "{runtime:?} {checkpoint}"
            );
        }
    }

    #[test]
    fn enrollment_state_says_locked_out_or_failed_when_that_is_why_it_waits() {
        use EnrollmentState::*;
        let locked = Desired::failed(ENROLLED, "LockedOut", "wait");
        let changed = Desired::failed(ENROLLED, "ProfileChanged", "restore it");
        let down = Desired::failed(ENROLLED, "VendorUnreachable", "later");
        let cases = [
            (Some(Enrolled), &locked, false, Enrolled),
            (Some(Pending), &enrolled_ok(), false, Pending),
            (None, &enrolled_ok(), false, NotStarted),
            (Some(Pending), &locked, false, LockedOut),
            (Some(Pending), &changed, true, Failed),
            (Some(Pending), &down, false, Pending),
            (None, &down, false, NotStarted),
            // Nothing stored yet: the base URL stays editable, the
            // condition carries the reason.
            (None, &down, true, NotStarted),
            (None, &changed, true, NotStarted),
            (Some(NotStarted), &locked, false, NotStarted),
            (
                Some(Enrolled),
                &Desired::failed(ENROLLED, "ReenrollRequired", "reset MFA"),
                true,
                ReenrollRequired,
            ),
        ];
        for (stored, enrolled, person, want) in cases {
            assert_eq!(
                enrollment_state(stored, enrolled, person),
                want,
                "{stored:?} {}",
                enrolled.reason
            );
        }
    }

    #[test]
    fn status_names_the_owned_secrets_and_generation() {
        let now = Time(jiff::Timestamp::from_second(5).expect("valid"));
        let s = build(
            None,
            &[enrolled_ok()],
            Some(3),
            &now,
            "bot",
            Observed {
                enrollment: Some(EnrollmentState::Enrolled),
                recovery_codes: Some(10),
                certificate_not_after: None,
                renewal_time: None,
                failure: None,
                clock_offset_seconds: Some(-2),
                handled_renew_request: None,
                handled_reenroll_request: Some("r1".into()),
            },
        );
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.recovery_codes_remaining, Some(10));
        assert_eq!(s.handled_reenroll_request.as_deref(), Some("r1"));
        assert_eq!(s.clock_offset_seconds, Some(-2));
        let secrets = s.secrets.expect("secrets");
        assert_eq!(secrets.runtime.as_deref(), Some("bot-runtime"));
        assert_eq!(secrets.recovery.as_deref(), Some("bot-recovery"));
    }
}
