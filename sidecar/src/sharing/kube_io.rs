//! The shared session's I/O against the API server: the start-up probe,
//! holding the Lease (optimistic concurrency on `resourceVersion`), writing
//! the session Secret, and watching it. Decisions live in `decide` and
//! `otpilot_api::lease`.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use otpilot_api::lease::{LeaseDecision, decide, spec_for};
use otpilot_api::session::SessionRecord;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::decide::Probe;

/// One credential's Lease and session Secret, as this replica sees them.
#[derive(Clone)]
pub struct SessionObjects {
    /// Leases of the namespace.
    pub leases: Api<Lease>,
    /// Secrets of the namespace.
    pub secrets: Api<Secret>,
    /// The Lease's name.
    pub lease_name: String,
    /// The session Secret's name.
    pub secret_name: String,
    /// This replica's holder identity.
    pub identity: String,
    /// How long a holder's claim lasts without renewal.
    pub lease_duration: Duration,
}

fn probe_of<T>(result: Result<T, kube::Error>) -> Probe {
    match result {
        Ok(_) => Probe::Found,
        Err(kube::Error::Api(status)) if matches!(status.code, 401 | 403) => Probe::Forbidden,
        Err(kube::Error::Api(status)) if status.code == 404 => Probe::Missing,
        Err(error) => Probe::Failed(error.to_string()),
    }
}

impl SessionObjects {
    /// Reads both objects once: can this identity share?
    pub async fn probe(&self) -> (Probe, Probe) {
        let lease = probe_of(self.leases.get(&self.lease_name).await);
        // The Secret's content is not looked at here, only whether it can be read.
        let secret = probe_of(self.secrets.get(&self.secret_name).await);
        (lease, secret)
    }

    /// One attempt to take or renew the Lease: `Ok(true)` when held
    /// afterwards. The operator creates the Lease, so this never creates.
    pub async fn try_hold(&self) -> Result<bool, kube::Error> {
        let mut lease = self.leases.get(&self.lease_name).await?;
        let now = Timestamp::now();
        match decide(lease.spec.as_ref(), &self.identity, now) {
            LeaseDecision::Wait { .. } => Ok(false),
            LeaseDecision::Renew | LeaseDecision::Take => {
                lease.spec = Some(spec_for(
                    &self.identity,
                    self.lease_duration,
                    lease.spec.as_ref(),
                    now,
                ));
                // Carries the resourceVersion read: a replica that wrote in
                // between makes this fail with 409, and we did not get it.
                match self
                    .leases
                    .replace(&self.lease_name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                    Err(error) => Err(error),
                }
            }
        }
    }

    /// Gives the Lease up (on shutdown), so another replica takes it at once.
    pub async fn release(&self) {
        let Ok(mut lease) = self.leases.get(&self.lease_name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        if let Err(error) = self
            .leases
            .replace(&self.lease_name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %error, "failed to release the session Lease");
        }
    }

    /// Writes `record` to the session Secret (keeping its metadata: owner,
    /// labels), retrying a write that raced.
    pub async fn publish(&self, record: &SessionRecord) -> Result<(), kube::Error> {
        let mut attempts = 0;
        loop {
            let mut secret = self.secrets.get(&self.secret_name).await?;
            secret.data = Some(
                record
                    .to_data()
                    .into_iter()
                    .map(|(k, v)| (k, ByteString(v)))
                    .collect(),
            );
            secret.string_data = None;
            match self
                .secrets
                .replace(&self.secret_name, &PostParams::default(), &secret)
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 && attempts < 3 => {
                    attempts += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Watches the session Secret (a watch, not a volume: volume updates
    /// lag by minutes) and sends each parsed session until cancelled.
    pub async fn watch_records(
        self,
        records: watch::Sender<Option<SessionRecord>>,
        cancel: CancellationToken,
    ) {
        let config =
            watcher::Config::default().fields(&format!("metadata.name={}", self.secret_name));
        let stream = watcher(self.secrets.clone(), config)
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        loop {
            let next = tokio::select! {
                () = cancel.cancelled() => return,
                next = stream.next() => next,
            };
            match next {
                None => return,
                Some(Err(error)) => {
                    tracing::warn!(error = %error, "watching the session Secret failed; retrying");
                }
                Some(Ok(secret)) => {
                    let data = secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect();
                    match SessionRecord::from_data(&data) {
                        Ok(record) => {
                            records.send_replace(record);
                        }
                        Err(error) => {
                            tracing::warn!(error = %error, "the session Secret does not parse; ignoring it");
                        }
                    }
                }
            }
        }
    }
}
