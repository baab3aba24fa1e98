//! Leader election on a `coordination.k8s.io` Lease, with optimistic
//! concurrency on `resourceVersion`: a replace that raced with another
//! replica fails with 409 and is re-decided from the fresh object.
//!
//! Only the holder runs the controllers. A holder that cannot renew before
//! its Lease expires has lost it, and [`hold`] returns: the caller stops the
//! process (another replica may already be enrolling the same credential).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub name: String,
    pub identity: String,
    pub duration: Duration,
    pub renew_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("failed to read or write Lease {name}: {source}")]
    Api {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("lost Lease {name}: {reason}")]
    Lost { name: String, reason: String },
}

/// What to do about a Lease as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// We hold it: renew.
    Renew,
    /// Nobody holds it, or the holder let it expire: take it.
    Take,
    /// Someone else holds it until about this instant.
    Wait { holder: String, until: Timestamp },
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

fn spec_for(settings: &LeaseSettings, previous: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
    let ours = previous
        .and_then(|p| p.holder_identity.as_deref())
        .is_some_and(|h| h == settings.identity);
    let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(settings.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(settings.duration.as_secs()).unwrap_or(15)),
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

/// One attempt: `Ok(true)` when we hold the Lease afterwards.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    settings: &LeaseSettings,
) -> Result<bool, LeaderError> {
    let api_err = |source| LeaderError::Api {
        name: settings.name.clone(),
        source,
    };
    let now = Timestamp::now();
    let Some(mut lease) = api.get_opt(&settings.name).await.map_err(api_err)? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(settings.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(spec_for(settings, None, now)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(source) => Err(api_err(source)),
        };
    };
    match decide(lease.spec.as_ref(), &settings.identity, now) {
        LeaseDecision::Wait { .. } => Ok(false),
        LeaseDecision::Renew | LeaseDecision::Take => {
            lease.spec = Some(spec_for(settings, lease.spec.as_ref(), now));
            // `lease` still carries the resourceVersion we read: a replica
            // that wrote in between makes this fail with 409.
            match api
                .replace(&settings.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(source) => Err(api_err(source)),
            }
        }
    }
}

/// Waits until this replica holds the Lease.
pub async fn acquire(api: &Api<Lease>, settings: &LeaseSettings) -> Result<(), LeaderError> {
    loop {
        match try_acquire_or_renew(api, settings).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "leader election attempt failed; retrying"),
        }
        tokio::time::sleep(settings.renew_every).await;
    }
}

/// Renews the Lease until it is lost (returns the reason). Never returns
/// while the Lease is held.
pub async fn hold(api: &Api<Lease>, settings: &LeaseSettings) -> LeaderError {
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(settings.renew_every).await;
        match try_acquire_or_renew(api, settings).await {
            Ok(true) => last_renewal = tokio::time::Instant::now(),
            Ok(false) => {
                return LeaderError::Lost {
                    name: settings.name.clone(),
                    reason: "another replica holds it now".into(),
                };
            }
            Err(error) => {
                tracing::warn!(%error, "failed to renew the leader Lease");
                if last_renewal.elapsed() >= settings.duration {
                    return LeaderError::Lost {
                        name: settings.name.clone(),
                        reason: format!(
                            "not renewed within {} s ({error})",
                            settings.duration.as_secs()
                        ),
                    };
                }
            }
        }
    }
}

/// Gives the Lease up on shutdown so another replica takes over at once.
pub async fn release(api: &Api<Lease>, settings: &LeaseSettings) {
    let Ok(Some(mut lease)) = api.get_opt(&settings.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    if let Err(error) = api
        .replace(&settings.name, &PostParams::default(), &lease)
        .await
    {
        tracing::warn!(%error, "failed to release the leader Lease");
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
        let settings = LeaseSettings {
            name: "l".into(),
            identity: "me".into(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        };
        let mut other = held_by(Some("other"), Some(1), 15);
        other.lease_transitions = Some(3);
        let taken = spec_for(&settings, Some(&other), at(50));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(50))));
        let renewed = spec_for(&settings, Some(&taken), at(55));
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(50))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(55))));
    }
}
