//! Holding a `coordination.k8s.io` Lease, decided as pure functions over
//! the Lease's spec: the operator's leader election and the sidecars'
//! shared session both follow these answers, with optimistic concurrency on
//! `resourceVersion` doing the rest.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{self, Timestamp};

/// What to do about a Lease as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// We hold it: renew.
    Renew,
    /// Nobody holds it, or the holder let it expire: take it.
    Take,
    /// Someone else holds it until about this instant.
    Wait {
        /// Who holds it.
        holder: String,
        /// When its claim runs out, unless renewed.
        until: Timestamp,
    },
}

/// Decides from the Lease's spec (pure).
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> LeaseDecision {
    let Some(spec) = spec else {
        return LeaseDecision::Take;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder.is_empty() {
        return LeaseDecision::Take;
    }
    if holder == me {
        return LeaseDecision::Renew;
    }
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0));
    match renewed {
        Some(renewed) => {
            let until = renewed + jiff::SignedDuration::from_secs(duration);
            if until <= now {
                LeaseDecision::Take
            } else {
                LeaseDecision::Wait { holder, until }
            }
        }
        None => LeaseDecision::Take,
    }
}

/// The spec to write to hold the Lease as `identity` for `duration` from
/// `now`, continuing `previous` (acquire time and transitions are kept
/// while the holder stays the same).
pub fn spec_for(
    identity: &str,
    duration: Duration,
    previous: Option<&LeaseSpec>,
    now: Timestamp,
) -> LeaseSpec {
    let ours = previous
        .and_then(|p| p.holder_identity.as_deref())
        .is_some_and(|h| h == identity);
    let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(i32::try_from(duration.as_secs().max(1)).unwrap_or(15)),
        acquire_time: if ours {
            previous.and_then(|p| p.acquire_time.clone())
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if ours { transitions } else { transitions + 1 }),
        ..LeaseSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).expect("valid")
    }

    fn held_by(holder: Option<&str>, renewed: Option<i64>, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: renewed.map(|s| MicroTime(at(s))),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn lease_is_taken_only_when_free_or_expired() {
        let now = at(1_000);
        let cases = [
            ("no spec", None, LeaseDecision::Take),
            (
                "no holder",
                Some(held_by(None, Some(990), 15)),
                LeaseDecision::Take,
            ),
            (
                "empty holder (released)",
                Some(held_by(Some(""), Some(999), 15)),
                LeaseDecision::Take,
            ),
            (
                "ours",
                Some(held_by(Some("me"), Some(990), 15)),
                LeaseDecision::Renew,
            ),
            (
                "ours even when expired",
                Some(held_by(Some("me"), Some(100), 15)),
                LeaseDecision::Renew,
            ),
            (
                "other, fresh",
                Some(held_by(Some("other"), Some(990), 15)),
                LeaseDecision::Wait {
                    holder: "other".into(),
                    until: at(1_005),
                },
            ),
            (
                "other, expired exactly now",
                Some(held_by(Some("other"), Some(985), 15)),
                LeaseDecision::Take,
            ),
            (
                "other, never renewed",
                Some(held_by(Some("other"), None, 15)),
                LeaseDecision::Take,
            ),
        ];
        for (name, spec, want) in cases {
            assert_eq!(decide(spec.as_ref(), "me", now), want, "{name}");
        }
    }

    #[test]
    fn taking_a_lease_counts_a_transition_and_renewing_does_not() {
        let mut other = held_by(Some("other"), Some(1), 15);
        other.lease_transitions = Some(3);
        let taken = spec_for("me", Duration::from_secs(15), Some(&other), at(50));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(50))));
        let renewed = spec_for("me", Duration::from_secs(15), Some(&taken), at(55));
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(50))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(55))));
    }
}
