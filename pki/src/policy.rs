//! A ClientCA's issuance policy: whether a subject and a validity are
//! within what the CA may issue for a given credential (pure).
//!
//! Patterns are literal text with two placeholders, `${namespace}` and
//! `${name}` (the credential's), and `*` for any run of characters. The
//! placeholders are replaced before `*` is read; namespace and object names
//! cannot hold `*`, so a credential's name can never widen its own pattern.

use std::fmt;
use std::time::Duration;

use otpilot_api::client_ca::IssuancePolicy;
use otpilot_api::common::CertificateSubject;

/// Who asks for a certificate: the ApiCredential's namespace and name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requester<'a> {
    /// The credential's namespace.
    pub namespace: &'a str,
    /// The credential's name.
    pub name: &'a str,
}

/// Why a certificate is outside the policy. The message names the field
/// and the rule it broke; subjects and durations are not secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyViolation {
    /// An attribute matches none of the policy's patterns for it.
    Subject {
        /// The attribute, as the API spells it (`commonName`, ...).
        attribute: &'static str,
        /// The value asked for; `None` when the attribute is absent.
        value: Option<String>,
        /// The policy's list, as the API spells it (`commonNames`, ...).
        rule: &'static str,
        /// The patterns with the placeholders filled in for this credential.
        expanded: Vec<String>,
    },
    /// The validity is longer than `maxDuration`.
    Duration {
        /// The validity asked for, in whole seconds.
        requested_seconds: u64,
        /// `maxDuration` as written.
        max: String,
    },
    /// `maxDuration` does not parse (the API server's pattern should have
    /// refused it).
    InvalidMaxDuration(String),
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyViolation::Subject {
                attribute,
                value: Some(value),
                rule,
                expanded,
            } => write!(
                f,
                "subject {attribute} {value:?} matches none of spec.issuancePolicy.{rule} \
                 (for this credential: {})",
                expanded.join(", ")
            ),
            PolicyViolation::Subject {
                attribute,
                value: None,
                rule,
                expanded,
            } => write!(
                f,
                "subject {attribute} is not set, and spec.issuancePolicy.{rule} requires one \
                 of: {}",
                expanded.join(", ")
            ),
            PolicyViolation::Duration {
                requested_seconds,
                max,
            } => write!(
                f,
                "duration {requested_seconds}s is longer than spec.issuancePolicy.maxDuration \
                 {max}; ask for a shorter duration (it is refused, not shortened)"
            ),
            PolicyViolation::InvalidMaxDuration(max) => {
                write!(f, "spec.issuancePolicy.maxDuration {max:?} does not parse")
            }
        }
    }
}

/// Whether a certificate with `subject` valid for `validity` may be issued
/// to `requester` under `policy`. No policy allows everything.
pub fn check_policy(
    policy: Option<&IssuancePolicy>,
    subject: &CertificateSubject,
    validity: Duration,
    requester: Requester<'_>,
) -> Result<(), PolicyViolation> {
    let Some(policy) = policy else {
        return Ok(());
    };
    check_attribute(
        "commonName",
        "commonNames",
        Some(subject.common_name.as_str()),
        &policy.common_names,
        requester,
    )?;
    for (attribute, rule, values, patterns) in [
        (
            "organization",
            "organizations",
            &subject.organizations,
            &policy.organizations,
        ),
        (
            "organizationalUnit",
            "organizationalUnits",
            &subject.organizational_units,
            &policy.organizational_units,
        ),
    ] {
        if values.is_empty() {
            check_attribute(attribute, rule, None, patterns, requester)?;
        }
        for value in values {
            check_attribute(attribute, rule, Some(value), patterns, requester)?;
        }
    }
    let max = policy
        .max_duration
        .parse()
        .map_err(|_| PolicyViolation::InvalidMaxDuration(policy.max_duration.as_str().into()))?;
    if validity > max {
        return Err(PolicyViolation::Duration {
            requested_seconds: validity.as_secs(),
            max: policy.max_duration.as_str().to_owned(),
        });
    }
    Ok(())
}

fn check_attribute(
    attribute: &'static str,
    rule: &'static str,
    value: Option<&str>,
    patterns: &[String],
    requester: Requester<'_>,
) -> Result<(), PolicyViolation> {
    if patterns.is_empty() {
        return Ok(());
    }
    let expanded: Vec<String> = patterns.iter().map(|p| expand(p, requester)).collect();
    if value.is_some_and(|v| expanded.iter().any(|p| glob_matches(p, v))) {
        return Ok(());
    }
    Err(PolicyViolation::Subject {
        attribute,
        value: value.map(str::to_owned),
        rule,
        expanded,
    })
}

/// The pattern with `${namespace}` and `${name}` filled in.
pub fn expand(pattern: &str, requester: Requester<'_>) -> String {
    pattern
        .replace("${namespace}", requester.namespace)
        .replace("${name}", requester.name)
}

/// Whether `text` matches `pattern`, where `*` is any run of characters.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let middle: Vec<&str> = parts.collect();
    let Some((last, middle)) = middle.split_last() else {
        // No `*`: the whole text must be the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use otpilot_api::duration::Duration as ApiDuration;

    use super::*;

    const BOT: Requester<'static> = Requester {
        namespace: "payments",
        name: "bot",
    };

    fn subject(cn: &str, o: &[&str], ou: &[&str]) -> CertificateSubject {
        CertificateSubject {
            common_name: cn.into(),
            organizations: o.iter().map(|s| s.to_string()).collect(),
            organizational_units: ou.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn policy(cn: &[&str], o: &[&str], max: &str) -> IssuancePolicy {
        IssuancePolicy {
            common_names: cn.iter().map(|s| s.to_string()).collect(),
            organizations: o.iter().map(|s| s.to_string()).collect(),
            organizational_units: Vec::new(),
            max_duration: ApiDuration::new(max),
        }
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn requests_inside_and_outside_the_policy() {
        let bound = policy(&["${namespace}.${name}"], &[], "2160h");
        let globbed = policy(&["${namespace}-*"], &["Acme"], "24h");
        // (case, policy, subject, validity, allowed?)
        let cases: Vec<(
            &str,
            Option<&IssuancePolicy>,
            CertificateSubject,
            Duration,
            bool,
        )> = vec![
            (
                "no policy allows any subject and duration",
                None,
                subject("other-team-bot", &[], &[]),
                DAY * 3650,
                true,
            ),
            (
                "own namespace and name",
                Some(&bound),
                subject("payments.bot", &[], &[]),
                DAY * 90,
                true,
            ),
            (
                "another team's name",
                Some(&bound),
                subject("other-team-bot", &[], &[]),
                DAY,
                false,
            ),
            (
                "another credential of the namespace",
                Some(&bound),
                subject("payments.other", &[], &[]),
                DAY,
                false,
            ),
            (
                "a prefix of the pattern is not a match",
                Some(&bound),
                subject("payments.bot.evil", &[], &[]),
                DAY,
                false,
            ),
            (
                "longer than maxDuration",
                Some(&bound),
                subject("payments.bot", &[], &[]),
                DAY * 91,
                false,
            ),
            (
                "exactly maxDuration",
                Some(&bound),
                subject("payments.bot", &[], &[]),
                DAY * 90,
                true,
            ),
            (
                "glob after the namespace",
                Some(&globbed),
                subject("payments-anything", &["Acme"], &[]),
                DAY,
                true,
            ),
            (
                "glob matches an empty run",
                Some(&globbed),
                subject("payments-", &["Acme"], &[]),
                DAY,
                true,
            ),
            (
                "glob does not cross the fixed prefix",
                Some(&globbed),
                subject("treasury-payments-x", &["Acme"], &[]),
                DAY,
                false,
            ),
            (
                "organization required when listed",
                Some(&globbed),
                subject("payments-x", &[], &[]),
                DAY,
                false,
            ),
            (
                "organization outside the list",
                Some(&globbed),
                subject("payments-x", &["Evil"], &[]),
                DAY,
                false,
            ),
            (
                "unlisted attribute is free",
                Some(&bound),
                subject("payments.bot", &["Anything"], &["Ops"]),
                DAY,
                true,
            ),
        ];
        for (case, policy, subject, validity, allowed) in cases {
            assert_eq!(
                check_policy(policy, &subject, validity, BOT).is_ok(),
                allowed,
                "{case}"
            );
        }
    }

    #[test]
    fn the_refusal_names_the_rule_and_what_this_credential_may_ask_for() {
        let bound = policy(&["${namespace}.${name}"], &[], "2160h");
        let error = check_policy(Some(&bound), &subject("other-team-bot", &[], &[]), DAY, BOT)
            .expect_err("outside");
        let text = error.to_string();
        assert!(text.contains("spec.issuancePolicy.commonNames"), "{text}");
        assert!(text.contains("payments.bot"), "{text}");
        let error = check_policy(
            Some(&bound),
            &subject("payments.bot", &[], &[]),
            DAY * 365,
            BOT,
        )
        .expect_err("too long");
        assert!(
            error
                .to_string()
                .contains("spec.issuancePolicy.maxDuration 2160h"),
            "{error}"
        );
    }

    #[test]
    fn glob_matching() {
        let cases = [
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("*", "", true),
            ("*", "anything", true),
            ("a*c", "abbbc", true),
            ("a*c", "ab", false),
            ("a*b*c", "axbyc", true),
            ("a*b*c", "axcyb", false),
            ("*.bot", "payments.bot", true),
            ("ab*ba", "aba", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob_matches(pattern, text), want, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn placeholders_are_filled_in_before_the_glob() {
        assert_eq!(
            expand("${namespace}/${name}/${namespace}", BOT),
            "payments/bot/payments"
        );
        assert_eq!(expand("no placeholders *", BOT), "no placeholders *");
    }
}
