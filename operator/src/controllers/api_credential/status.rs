//! The ApiCredential's status: conditions CertificateReady, Enrolled and
//! Ready built from what the reconcile found (pure), written by server-side
//! apply, with an Event per transition.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use otpilot_api::api_credential::{ApiCredentialStatus, EnrollmentState, OwnedSecrets};
use otpilot_api::conditions::{CERTIFICATE_READY, ENROLLED, READY, reasons};
use otpilot_api::labels;

use crate::conditions::{self, Desired};
use crate::controllers::reasons as local;

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

/// What the Secrets and the certificate say, for status.
#[derive(Debug, Default)]
pub struct Observed {
    pub enrollment: Option<EnrollmentState>,
    pub recovery_codes: Option<u32>,
    pub certificate_not_after: Option<Time>,
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
    } = observed;
    let previous_conditions = previous.map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    ApiCredentialStatus {
        conditions: conditions::merge(previous_conditions, desired, generation, now),
        certificate_not_after,
        enrollment: enrollment.or(Some(EnrollmentState::NotStarted)),
        recovery_codes_remaining: recovery_codes,
        secrets: Some(OwnedSecrets {
            runtime: Some(labels::runtime_secret_name(credential)),
            recovery: Some(labels::recovery_secret_name(credential)),
        }),
        observed_generation: generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            },
        );
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.recovery_codes_remaining, Some(10));
        let secrets = s.secrets.expect("secrets");
        assert_eq!(secrets.runtime.as_deref(), Some("bot-runtime"));
        assert_eq!(secrets.recovery.as_deref(), Some("bot-recovery"));
    }
}
