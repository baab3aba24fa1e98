//! Building status conditions: `lastTransitionTime` moves only when a
//! condition's status changes, as Kubernetes API conventions ask.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use otpilot_api::common::condition_status;

/// A condition as the reconciler decided it, before timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Desired {
    pub fn ok(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            ok: true,
            reason,
            message: message.into(),
        }
    }

    pub fn failed(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            ok: false,
            reason,
            message: message.into(),
        }
    }

    fn status(&self) -> &'static str {
        if self.ok {
            condition_status::TRUE
        } else {
            condition_status::FALSE
        }
    }
}

/// The conditions to write: each desired one, keeping the previous
/// `lastTransitionTime` where its status did not change; conditions of
/// other types are kept as they were.
pub fn merge(
    previous: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = previous
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .cloned()
        .collect();
    for d in desired {
        let old = previous.iter().find(|c| c.type_ == d.type_);
        let last_transition_time = match old {
            Some(old) if old.status == d.status() => old.last_transition_time.clone(),
            _ => now.clone(),
        };
        out.push(Condition {
            type_: d.type_.to_owned(),
            status: d.status().to_owned(),
            reason: d.reason.to_owned(),
            // The API server requires a message field; keep it within its limit.
            message: truncate(&d.message, 32 * 1024),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// The conditions whose status or reason changed (for Events).
pub fn transitions<'d>(previous: &[Condition], desired: &'d [Desired]) -> Vec<&'d Desired> {
    desired
        .iter()
        .filter(|d| {
            previous
                .iter()
                .find(|c| c.type_ == d.type_)
                .is_none_or(|c| c.status != d.status() || c.reason != d.reason)
        })
        .collect()
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).expect("valid"))
    }

    fn existing(type_: &str, status: &str, reason: &str, at: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: "old".into(),
            observed_generation: Some(1),
            last_transition_time: time(at),
        }
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let previous = vec![
            existing("Ready", "True", "Reconciled", 10),
            existing("Enrolled", "False", "EnrollmentPending", 20),
            existing("Other", "True", "Kept", 5),
        ];
        let desired = [
            Desired::ok("Ready", "Reconciled", "fine"),
            Desired::ok("Enrolled", "EnrollmentComplete", "done"),
            Desired::failed("CertificateReady", "SecretNotFound", "missing"),
        ];
        let merged = merge(&previous, &desired, Some(2), &time(100));
        let get = |t: &str| merged.iter().find(|c| c.type_ == t).expect(t);
        // Same status: time kept, reason/message/generation updated.
        assert_eq!(get("Ready").last_transition_time, time(10));
        assert_eq!(get("Ready").message, "fine");
        assert_eq!(get("Ready").observed_generation, Some(2));
        // Status changed: now.
        assert_eq!(get("Enrolled").last_transition_time, time(100));
        assert_eq!(get("Enrolled").status, "True");
        // New condition: now.
        assert_eq!(get("CertificateReady").last_transition_time, time(100));
        assert_eq!(get("CertificateReady").status, "False");
        // Untouched types survive.
        assert_eq!(get("Other").reason, "Kept");
    }

    #[test]
    fn transitions_are_changes_of_status_or_reason() {
        let previous = vec![
            existing("Ready", "True", "Reconciled", 10),
            existing("Enrolled", "False", "EnrollmentPending", 20),
        ];
        let desired = [
            Desired::ok("Ready", "Reconciled", "new message only"),
            Desired::failed("Enrolled", "VendorUnreachable", "down"),
            Desired::ok("CertificateReady", "Issued", "new"),
        ];
        let changed: Vec<_> = transitions(&previous, &desired)
            .into_iter()
            .map(|d| d.type_)
            .collect();
        assert_eq!(changed, ["Enrolled", "CertificateReady"]);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let text = "é".repeat(10);
        let cut = truncate(&text, 5);
        assert_eq!(cut, "éé…");
    }
}
