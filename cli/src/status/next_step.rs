//! The one line a person reads first when a credential is not Ready: what
//! to do about it, from the failing condition's reason.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use otpilot_api::conditions::{self, reasons};

/// The condition that explains why the credential is not Ready: the first
/// failing one of CertificateReady and Enrolled (the causes), else Ready.
/// `None` when Ready is True.
pub fn blocking_condition(conds: &[Condition]) -> Option<&Condition> {
    let find = |t: &str| conds.iter().find(|c| c.type_ == t);
    if find(conditions::READY).is_some_and(|c| c.status == "True") {
        return None;
    }
    [conditions::CERTIFICATE_READY, conditions::ENROLLED]
        .into_iter()
        .filter_map(find)
        .find(|c| c.status != "True")
        .or_else(|| find(conditions::READY))
}

/// What a person should do about a condition's reason, in one line. The
/// condition's message (written by the operator with the details) follows it
/// in the status output.
pub fn next_step(reason: &str) -> &'static str {
    match reason {
        reasons::SECRET_NOT_FOUND => {
            "create the Secret the ApiCredential refers to (passwordSecretRef, apiKeySecretRef or secretValues)"
        }
        reasons::SECRET_KEY_MISSING => "add the missing key to the referenced Secret",
        reasons::INVALID_SECRET => "fix the value in the referenced Secret",
        reasons::MISSING_INPUT => {
            "give the ApiCredential the value the profile needs (spec.username, a Secret reference or spec.variables)"
        }
        reasons::PROFILE_NOT_FOUND => {
            "set spec.profile to a built-in profile or create the ClusterMfaProfile it names"
        }
        reasons::PROFILE_INVALID => {
            "fix the ClusterMfaProfile (`kubectl otpilot profile check` shows each problem)"
        }
        reasons::PROFILE_CHANGED => {
            "the profile changed during enrollment: the operator restarts it; check the new profile with `kubectl otpilot profile try`"
        }
        reasons::WRONG_PASSWORD => "put the account's current password in the password Secret",
        reasons::API_KEY_REJECTED => "put a valid API key in the API key Secret",
        reasons::TOTP_REJECTED => {
            "the vendor refuses the stored TOTP secret: check node clocks, then `kubectl otpilot reenroll`"
        }
        reasons::REENROLL_REQUIRED => {
            "the vendor wants a new enrollment: the operator re-enrolls; if it cannot, `kubectl otpilot reenroll`"
        }
        reasons::LOCKED_OUT => {
            "the vendor locked the account: wait until nextRetryTime, or unlock it at the vendor"
        }
        reasons::IP_NOT_ALLOWED => "add the cluster's egress IP to the vendor's allow-list",
        reasons::VENDOR_UNREACHABLE => {
            "check spec.baseUrl, DNS and network policy from the operator to the vendor"
        }
        reasons::VENDOR_REJECTED | reasons::VENDOR_INVALID_RESPONSE => {
            "the vendor refused or answered unexpectedly: try the flow with `kubectl otpilot profile try` to see which step"
        }
        reasons::CLOCK_SKEW => "fix the node clock (NTP) or tell the vendor its clock is off",
        reasons::CA_NOT_FOUND => "create the ClientCA named in spec.clientCertificate.caRef",
        reasons::CA_NOT_READY => "wait for the ClientCA, or fix it (kubectl describe clientca)",
        reasons::CA_INVALID => "fix the imported CA Secret of the ClientCA",
        reasons::NAMESPACE_NOT_ALLOWED => {
            "add this namespace to the ClientCA's spec.allowedNamespaces"
        }
        reasons::ISSUE_FAILED => "see the message; the operator retries issuing the certificate",
        reasons::CLIENT_CERTIFICATE_REJECTED => {
            "register the ClientCA with the vendor (`kubectl otpilot ca export`)"
        }
        reasons::CERTIFICATE_EXPIRED => {
            "issue a new client certificate now with `kubectl otpilot renew`"
        }
        reasons::RECOVERY_CODES_EXHAUSTED => {
            "no recovery codes left: re-enroll (`kubectl otpilot reenroll`) to get new ones"
        }
        reasons::DISABLE_FAILED => {
            "turning MFA off at the vendor failed: fix the cause, or set deletionPolicy Retain"
        }
        _ => "read the message below and the recent Events",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::UNIX_EPOCH,
            ),
            observed_generation: None,
        }
    }

    #[test]
    fn the_cause_is_preferred_over_ready() {
        let cases = [
            (vec![cond("Ready", "True", "Reconciled")], None),
            (
                vec![
                    cond("CertificateReady", "True", "Issued"),
                    cond("Enrolled", "False", "WrongPassword"),
                    cond("Ready", "False", "WrongPassword"),
                ],
                Some("Enrolled"),
            ),
            (
                vec![
                    cond("Ready", "False", "ClientCANotFound"),
                    cond("CertificateReady", "False", "ClientCANotFound"),
                ],
                Some("CertificateReady"),
            ),
            (vec![cond("Ready", "Unknown", "Reconciled")], Some("Ready")),
            (vec![], None),
        ];
        for (conds, want) in cases {
            assert_eq!(
                blocking_condition(&conds).map(|c| c.type_.as_str()),
                want,
                "{conds:?}"
            );
        }
    }

    #[test]
    fn each_failure_reason_names_a_fix() {
        let cases = [
            (reasons::SECRET_NOT_FOUND, "create the Secret"),
            (reasons::WRONG_PASSWORD, "password Secret"),
            (reasons::CA_NOT_FOUND, "create the ClientCA"),
            (reasons::TOTP_REJECTED, "reenroll"),
            (reasons::CLIENT_CERTIFICATE_REJECTED, "ca export"),
            (reasons::PROFILE_INVALID, "profile check"),
            ("SomethingNew", "message below"),
        ];
        for (reason, words) in cases {
            assert!(
                next_step(reason).contains(words),
                "{reason}: {}",
                next_step(reason)
            );
        }
        for reason in reasons::ALL {
            assert!(!next_step(reason).contains('\n'), "{reason}: one line");
        }
    }
}
