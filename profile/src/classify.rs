//! What a response means to the executor. Pure functions.

use otpilot_api::profile::{Outcome, ResponseRule};
use serde_json::Value;

use crate::error::FlowKind;

/// The header that carries the code when a rule does not name one.
pub const DEFAULT_TOTP_HEADER: &str = "X-OTP";

/// What a response means to the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Extract and go on.
    Success,
    /// Send again with the code in this header.
    RetryWithTotpHeader(String),
    /// Wait for the next time step and send a fresh code.
    CodeAlreadyUsed,
    /// The code was wrong.
    CodeRejected,
    /// Locked out: honour Retry-After, or give up.
    LockedOut,
    /// Rate-limited (429): honour Retry-After, with backoff.
    RateLimited,
    /// Unavailable (502, 503, 504): retry with backoff, honouring
    /// Retry-After. An outage, not a verdict on the account.
    Transient,
    /// Failed, with the profile's explanation if any.
    Fail(Option<String>),
    /// The step's effect already happened at the vendor: success, with
    /// the extractions the answer carries.
    AlreadyDone,
    /// Refresh refused: the refresh token is spent or expired.
    LoginRequired,
}

/// Classifies a response of a step of `flow` by the step's rules (first
/// match wins), then by the defaults: 2xx success, 429 rate-limited, 423
/// locked out, 502/503/504 transient, in a refresh 401 "log in again" (the
/// refresh token is spent or expired), anything else a failure.
pub fn classify_in(
    flow: FlowKind,
    status: u16,
    body: Option<&Value>,
    rules: &[ResponseRule],
) -> Verdict {
    match_rules(status, body, rules).unwrap_or_else(|| match (flow, status) {
        (FlowKind::Refresh, 401) => Verdict::LoginRequired,
        _ => default_verdict(status),
    })
}

fn match_rules(status: u16, body: Option<&Value>, rules: &[ResponseRule]) -> Option<Verdict> {
    for rule in rules {
        let status_ok = rule.status.is_empty() || rule.status.contains(&status);
        let body_ok = match &rule.when {
            None => true,
            Some(m) => body.and_then(|b| b.pointer(&m.pointer)) == Some(&m.equals),
        };
        if status_ok && body_ok {
            return Some(match rule.outcome {
                Outcome::Success => Verdict::Success,
                Outcome::RetryWithTotpHeader => Verdict::RetryWithTotpHeader(
                    rule.header
                        .clone()
                        .unwrap_or_else(|| DEFAULT_TOTP_HEADER.to_owned()),
                ),
                Outcome::CodeAlreadyUsed => Verdict::CodeAlreadyUsed,
                Outcome::CodeRejected => Verdict::CodeRejected,
                Outcome::LockedOut => Verdict::LockedOut,
                Outcome::Fail => Verdict::Fail(rule.message.clone()),
                Outcome::AlreadyDone => Verdict::AlreadyDone,
                Outcome::LoginRequired => Verdict::LoginRequired,
            });
        }
    }
    None
}

fn default_verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        429 => Verdict::RateLimited,
        423 => Verdict::LockedOut,
        502..=504 => Verdict::Transient,
        _ => Verdict::Fail(None),
    }
}

/// How an attempt failed, as far as its effect at the vendor goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptFailure {
    /// No connection was made: the request was never sent.
    NotSent,
    /// The request may have been sent, but no answer was read (a timeout,
    /// a connection lost, a body cut short).
    AnswerLost,
    /// The vendor answered with this status.
    Answered(u16),
}

/// Whether a failed attempt leaves the step's effect at the vendor unknown:
/// the request may have been processed. A step that is not safe to repeat
/// is then not sent again blindly. A refusal (4xx: wrong input, 429 rate
/// limit, 423 lock-out) is known not to have taken effect; a 5xx is not
/// (a gateway may time out while the vendor carries on).
pub fn effect_unknown(failure: AttemptFailure) -> bool {
    match failure {
        AttemptFailure::NotSent => false,
        AttemptFailure::AnswerLost => true,
        AttemptFailure::Answered(status) => (500..=599).contains(&status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otpilot_api::profile::BodyMatch;
    use serde_json::json;

    /// Outside a refresh, the rules then the defaults.
    fn classify(status: u16, body: Option<&Value>, rules: &[ResponseRule]) -> Verdict {
        classify_in(FlowKind::Login, status, body, rules)
    }

    fn rule(status: &[u16], when: Option<(&str, Value)>, outcome: Outcome) -> ResponseRule {
        ResponseRule {
            status: status.to_vec(),
            when: when.map(|(pointer, equals)| BodyMatch {
                pointer: pointer.into(),
                equals,
            }),
            outcome,
            ..ResponseRule::default()
        }
    }

    #[test]
    fn responses_are_classified_by_rules_then_defaults() {
        let acreto = vec![
            ResponseRule {
                header: Some("X-OTP".into()),
                ..rule(
                    &[424],
                    Some(("/code", json!(16432))),
                    Outcome::RetryWithTotpHeader,
                )
            },
            rule(
                &[401, 424],
                Some(("/code", json!(16434))),
                Outcome::CodeAlreadyUsed,
            ),
        ];
        let cryptr = vec![rule(
            &[200],
            Some(("/success", json!(false))),
            Outcome::CodeRejected,
        )];
        let audd = vec![rule(&[421], None, Outcome::CodeRejected)];
        let cases: Vec<(&str, u16, Value, &[ResponseRule], Verdict)> = vec![
            (
                "acreto asks for the code",
                424,
                json!({"code": 16432}),
                &acreto,
                Verdict::RetryWithTotpHeader("X-OTP".into()),
            ),
            (
                "acreto code used",
                401,
                json!({"code": 16434}),
                &acreto,
                Verdict::CodeAlreadyUsed,
            ),
            (
                "acreto other 424 falls to default",
                424,
                json!({"code": 1}),
                &acreto,
                Verdict::Fail(None),
            ),
            (
                "cryptr success false",
                200,
                json!({"success": false}),
                &cryptr,
                Verdict::CodeRejected,
            ),
            (
                "cryptr success true",
                200,
                json!({"success": true}),
                &cryptr,
                Verdict::Success,
            ),
            (
                "audd wrong code",
                421,
                json!(null),
                &audd,
                Verdict::CodeRejected,
            ),
            ("default 2xx", 204, json!(null), &[], Verdict::Success),
            ("default 429", 429, json!(null), &[], Verdict::RateLimited),
            ("default 503", 503, json!(null), &[], Verdict::Transient),
            ("default 423", 423, json!(null), &[], Verdict::LockedOut),
            ("default 502", 502, json!(null), &[], Verdict::Transient),
            ("default 401", 401, json!(null), &[], Verdict::Fail(None)),
        ];
        for (what, status, body, rules, want) in cases {
            assert_eq!(classify(status, Some(&body), rules), want, "{what}");
        }
    }

    #[test]
    fn only_an_answer_that_may_hide_a_processed_request_leaves_the_effect_unknown() {
        let cases = [
            ("never connected", AttemptFailure::NotSent, false),
            ("timed out after sending", AttemptFailure::AnswerLost, true),
            ("wrong input", AttemptFailure::Answered(400), false),
            ("rate limited", AttemptFailure::Answered(429), false),
            ("locked out", AttemptFailure::Answered(423), false),
            ("conflict", AttemptFailure::Answered(409), false),
            ("server error", AttemptFailure::Answered(500), true),
            ("gateway timeout", AttemptFailure::Answered(504), true),
            ("unavailable", AttemptFailure::Answered(503), true),
            ("success", AttemptFailure::Answered(200), false),
        ];
        for (what, failure, want) in cases {
            assert_eq!(effect_unknown(failure), want, "{what}");
        }
    }

    #[test]
    fn already_done_and_login_required_rules_are_verdicts_of_their_own() {
        let rules = vec![
            rule(
                &[409],
                Some(("/error", json!("already_enabled"))),
                Outcome::AlreadyDone,
            ),
            rule(&[401], None, Outcome::LoginRequired),
        ];
        let cases = [
            (
                409,
                json!({"error": "already_enabled"}),
                Verdict::AlreadyDone,
            ),
            (409, json!({"error": "other"}), Verdict::Fail(None)),
            (401, json!(null), Verdict::LoginRequired),
        ];
        for (status, body, want) in cases {
            assert_eq!(
                classify(status, Some(&body), &rules),
                want,
                "{status} {body}"
            );
        }
    }

    #[test]
    fn a_refused_refresh_means_log_in_again_unless_a_rule_says_otherwise() {
        let rules = vec![rule(&[401], Some(("/error", json!("x"))), Outcome::Fail)];
        let cases = [
            (FlowKind::Refresh, 401, json!(null), Verdict::LoginRequired),
            (
                FlowKind::Refresh,
                401,
                json!({"error": "x"}),
                Verdict::Fail(None),
            ),
            (FlowKind::Refresh, 403, json!(null), Verdict::Fail(None)),
            (FlowKind::Login, 401, json!(null), Verdict::Fail(None)),
            (FlowKind::Refresh, 200, json!(null), Verdict::Success),
        ];
        for (flow, status, body, want) in cases {
            assert_eq!(
                classify_in(flow, status, Some(&body), &rules),
                want,
                "{flow} {status} {body}"
            );
        }
    }
}
