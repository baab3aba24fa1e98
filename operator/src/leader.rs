//! Leader election on a `coordination.k8s.io` Lease, with optimistic
//! concurrency on `resourceVersion`: a replace that raced with another
//! replica fails with 409 and is re-decided from the fresh object.
//!
//! Only the holder runs the controllers. A holder that cannot renew before
//! its Lease expires has lost it, and [`hold`] returns: the caller stops the
//! process (another replica may already be enrolling the same credential).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
pub use otpilot_api::lease::{LeaseDecision, decide, spec_for};

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
            spec: Some(spec_for(&settings.identity, settings.duration, None, now)),
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
            lease.spec = Some(spec_for(
                &settings.identity,
                settings.duration,
                lease.spec.as_ref(),
                now,
            ));
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
        // A renewal the API server never answers (etcd stalled, a network
        // partition) must not outlive the Lease: another replica may take
        // over once it expires, and two leaders would enroll twice.
        let remaining = settings.duration.saturating_sub(last_renewal.elapsed());
        let Ok(attempt) =
            tokio::time::timeout(remaining, try_acquire_or_renew(api, settings)).await
        else {
            return LeaderError::Lost {
                name: settings.name.clone(),
                reason: format!(
                    "not renewed within {} s (the API server did not answer)",
                    settings.duration.as_secs()
                ),
            };
        };
        match attempt {
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
