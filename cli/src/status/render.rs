//! Rendering a credential's status for people (text) and for tools
//! (JSON/YAML). Pure: everything shown comes in through [`StatusReport`].

use std::fmt::Write as _;

use otpilot_api::ApiCredential;
use otpilot_api::api_credential::ApiCredentialStatus;
use serde::Serialize;

use super::next_step::{blocking_condition, next_step};

/// One Event about the credential.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventLine {
    /// RFC 3339 in whole seconds, when known.
    pub time: Option<String>,
    /// The same instant at full precision, to compare with a request's.
    #[serde(skip)]
    pub at: Option<jiff::Timestamp>,
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
}

/// A pod that holds a session shared by the credential's pods (from a
/// Lease labelled with the credential).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionHolder {
    pub lease: String,
    pub holder: String,
}

/// Everything `status` shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub name: String,
    pub namespace: String,
    pub profile: String,
    pub base_url: String,
    pub ready: bool,
    /// What to do, when not Ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
    pub status: ApiCredentialStatus,
    pub events: Vec<EventLine>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub session_holders: Vec<SessionHolder>,
    /// Renew and re-enroll requests (annotations) the operator has not
    /// acted on yet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_requests: Vec<String>,
}

/// Requests set on the credential whose value differs from the one the
/// operator last handled.
pub fn pending_requests(credential: &ApiCredential) -> Vec<String> {
    let annotations = credential.metadata.annotations.clone().unwrap_or_default();
    let status = credential.status.clone().unwrap_or_default();
    [
        (
            otpilot_api::labels::RENEW_CERTIFICATE_ANNOTATION,
            status.handled_renew_request,
        ),
        (
            otpilot_api::labels::REENROLL_ANNOTATION,
            status.handled_reenroll_request,
        ),
    ]
    .into_iter()
    .filter_map(|(key, handled)| {
        let value = annotations.get(key)?.trim();
        (!value.is_empty() && handled.as_deref() != Some(value)).then(|| format!("{key}={value}"))
    })
    .collect()
}

impl StatusReport {
    pub fn new(
        credential: &ApiCredential,
        namespace: &str,
        events: Vec<EventLine>,
        session_holders: Vec<SessionHolder>,
    ) -> Self {
        let status = credential.status.clone().unwrap_or_default();
        let blocking = blocking_condition(&status.conditions);
        let ready = status
            .conditions
            .iter()
            .any(|c| c.type_ == otpilot_api::conditions::READY && c.status == "True");
        let next_step = (!ready).then(|| match blocking {
            Some(c) => format!("{} ({}): {}", c.type_, c.reason, next_step(&c.reason)),
            None => {
                "no conditions yet: is the operator running and watching this namespace?".to_owned()
            }
        });
        Self {
            name: credential.metadata.name.clone().unwrap_or_default(),
            namespace: namespace.to_owned(),
            profile: credential.spec.profile.clone(),
            base_url: credential.spec.base_url.clone(),
            ready,
            next_step,
            status,
            events,
            session_holders,
            pending_requests: pending_requests(credential),
        }
    }
}

fn time(t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    t.as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_else(|| "-".to_owned())
}

/// The text people read: the next step first when not Ready.
pub fn render_text(report: &StatusReport) -> String {
    let mut out = String::new();
    let s = &report.status;
    if let Some(step) = &report.next_step {
        let _ = writeln!(out, "NOT READY: {step}");
    }
    let _ = writeln!(out, "ApiCredential {}/{}", report.namespace, report.name);
    let _ = writeln!(out, "  Profile:         {}", report.profile);
    let _ = writeln!(out, "  Base URL:        {}", report.base_url);
    let _ = writeln!(
        out,
        "  Ready:           {}",
        if report.ready { "True" } else { "False" }
    );
    out.push_str("Conditions:\n");
    if s.conditions.is_empty() {
        out.push_str("  (none yet)\n");
    }
    for c in &s.conditions {
        let _ = writeln!(out, "  {:<17} {:<8} {}", c.type_, c.status, c.reason);
        if !c.message.is_empty() {
            let _ = writeln!(out, "    {}", c.message);
        }
    }
    out.push_str("Certificate:\n");
    let _ = writeln!(out, "  Not after:       {}", time(&s.certificate_not_after));
    let _ = writeln!(out, "  Renewal time:    {}", time(&s.renewal_time));
    out.push_str("Enrollment:\n");
    let enrollment = s
        .enrollment
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| "-".to_owned());
    let _ = writeln!(out, "  State:           {enrollment}");
    let codes = s
        .recovery_codes_remaining
        .map(|n| n.to_string())
        .unwrap_or_else(|| "-".to_owned());
    let _ = writeln!(out, "  Recovery codes:  {codes} left");
    if let Some(offset) = s.clock_offset_seconds {
        let _ = writeln!(out, "  Vendor clock:    {offset:+}s from ours");
    }
    if let Some(n) = s.failed_attempts.filter(|n| *n > 0) {
        let _ = writeln!(
            out,
            "  Failures:        {n} in a row, last {}, next try {}",
            time(&s.last_failure_time),
            time(&s.next_retry_time)
        );
    }
    out.push_str("Secrets (names only):\n");
    let secrets = s.secrets.clone().unwrap_or_default();
    let _ = writeln!(
        out,
        "  Runtime:         {}",
        secrets.runtime.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  Recovery:        {}",
        secrets.recovery.as_deref().unwrap_or("-")
    );
    for request in &report.pending_requests {
        let _ = writeln!(out, "Requested, not yet handled by the operator: {request}");
    }
    if !report.session_holders.is_empty() {
        out.push_str("Shared session:\n");
        for h in &report.session_holders {
            let _ = writeln!(out, "  held by pod {} (Lease {})", h.holder, h.lease);
        }
    }
    out.push_str("Recent Events:\n");
    if report.events.is_empty() {
        out.push_str("  (none)\n");
    }
    for e in &report.events {
        let count = if e.count > 1 {
            format!(" (x{})", e.count)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {} {:<7} {}{count}: {}",
            e.time.as_deref().unwrap_or("-"),
            e.type_,
            e.reason,
            e.message
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn credential(status: serde_json::Value) -> ApiCredential {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "otpilot.dev/v1alpha1",
            "kind": "ApiCredential",
            "metadata": { "name": "acme", "namespace": "pay" },
            "spec": { "profile": "audd", "baseUrl": "https://api.example", "username": "bot" },
            "status": status,
        }))
        .expect("ApiCredential")
    }

    #[test]
    fn a_ready_credential_shows_no_next_step() {
        let c = credential(serde_json::json!({
            "conditions": [{ "type": "Ready", "status": "True", "reason": "Reconciled",
                "message": "ready", "lastTransitionTime": "2026-01-01T00:00:00Z" }],
            "enrollment": "Enrolled",
            "recoveryCodesRemaining": 9,
            "certificateNotAfter": "2026-04-01T00:00:00Z",
            "secrets": { "runtime": "acme-runtime", "recovery": "acme-recovery" },
        }));
        let events = vec![EventLine {
            time: Some("2026-01-01T00:00:00Z".into()),
            at: None,
            type_: "Normal".into(),
            reason: "EnrollmentComplete".into(),
            message: "enrolled".into(),
            count: 2,
        }];
        let holders = vec![SessionHolder {
            lease: "acme-session".into(),
            holder: "web-0".into(),
        }];
        let text = render_text(&StatusReport::new(&c, "pay", events, holders));
        let want = "\
ApiCredential pay/acme
  Profile:         audd
  Base URL:        https://api.example
  Ready:           True
Conditions:
  Ready             True     Reconciled
    ready
Certificate:
  Not after:       2026-04-01T00:00:00Z
  Renewal time:    -
Enrollment:
  State:           Enrolled
  Recovery codes:  9 left
Secrets (names only):
  Runtime:         acme-runtime
  Recovery:        acme-recovery
Shared session:
  held by pod web-0 (Lease acme-session)
Recent Events:
  2026-01-01T00:00:00Z Normal  EnrollmentComplete (x2): enrolled
";
        assert_eq!(text, want);
    }

    #[test]
    fn requests_not_handled_yet_are_listed() {
        let annotated = |renew: &str, reenroll: &str| {
            let mut c = credential(serde_json::json!({
                "handledRenewRequest": "R1", "handledReenrollRequest": "E1",
            }));
            let mut a = std::collections::BTreeMap::new();
            if !renew.is_empty() {
                a.insert("otpilot.dev/renew-certificate".to_owned(), renew.to_owned());
            }
            if !reenroll.is_empty() {
                a.insert("otpilot.dev/reenroll".to_owned(), reenroll.to_owned());
            }
            c.metadata.annotations = Some(a);
            c
        };
        let cases = [
            (annotated("R1", "E1"), vec![]),
            (annotated("", ""), vec![]),
            (
                annotated("R2", "E1"),
                vec!["otpilot.dev/renew-certificate=R2"],
            ),
            (annotated("R1", "E2"), vec!["otpilot.dev/reenroll=E2"]),
        ];
        for (c, want) in cases {
            assert_eq!(pending_requests(&c), want);
        }
        let text = render_text(&StatusReport::new(
            &annotated("R2", "E1"),
            "pay",
            vec![],
            vec![],
        ));
        assert!(
            text.contains(
                "Requested, not yet handled by the operator: otpilot.dev/renew-certificate=R2"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_failing_credential_says_the_fix_first() {
        let cases = [
            (
                serde_json::json!({ "conditions": [
                    { "type": "Enrolled", "status": "False", "reason": "SecretNotFound",
                      "message": "Secret pw not found", "lastTransitionTime": "2026-01-01T00:00:00Z" },
                    { "type": "Ready", "status": "False", "reason": "SecretNotFound",
                      "message": "Secret pw not found", "lastTransitionTime": "2026-01-01T00:00:00Z" },
                ]}),
                "NOT READY: Enrolled (SecretNotFound): create the Secret",
            ),
            (
                serde_json::json!({}),
                "NOT READY: no conditions yet: is the operator running",
            ),
        ];
        for (status, first) in cases {
            let text = render_text(&StatusReport::new(
                &credential(status),
                "pay",
                vec![],
                vec![],
            ));
            let line = text.lines().next().unwrap_or_default();
            assert!(line.starts_with(first), "{line}");
        }
    }
}
