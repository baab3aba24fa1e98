//! The shared session's I/O against the API server: the start-up probe,
//! holding the Lease (optimistic concurrency on `resourceVersion`), writing
//! the session Secret, and watching it. Decisions live in `decide` and
//! `otpilot_api::lease`.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use otpilot_api::lease::{LeaseDecision, spec_for};
use otpilot_api::session::{MAX_HOLDER_LEN, SessionRecord};
use otpilot_api::session_key::SessionKey;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::decide::{Probe, trusted_decision};

/// The Lease annotation where a holder proves, with the session key, the
/// renewal it wrote (`docs/shared-session.md`).
pub const HOLDER_PROOF_ANNOTATION: &str = "otpilot.dev/holder-proof";
/// The longest proof read (an HMAC-SHA256 in hex is 64 characters).
const MAX_PROOF_LEN: usize = 128;
/// The longest key file read (64 hex digits and a newline).
const MAX_KEY_FILE: u64 = 1024;

/// Reads the session key from the mounted runtime Secret's file; `Err`
/// says why in words (never the content).
pub fn read_key(path: &std::path::Path) -> Result<SessionKey, String> {
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE).read_to_end(&mut text))
        .map_err(|e| format!("failed to read {}: {}", path.display(), e.kind()))?;
    SessionKey::from_text(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether the Lease's last renewal carries a valid proof made with `key`.
fn proven(lease: &Lease, key: &SessionKey, scope: &str) -> bool {
    let Some(spec) = lease.spec.as_ref() else {
        return false;
    };
    let (Some(holder), Some(renewed), Some(duration)) = (
        spec.holder_identity.as_deref(),
        spec.renew_time.as_ref(),
        spec.lease_duration_seconds,
    ) else {
        return false;
    };
    let Some(proof) = lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HOLDER_PROOF_ANNOTATION))
    else {
        return false;
    };
    holder.len() <= MAX_HOLDER_LEN
        && proof.len() <= MAX_PROOF_LEN
        && key.lease_proof_holds(scope, holder, renewed.0.as_microsecond(), duration, proof)
}

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
    /// The session key's file in the mounted runtime Secret, read at each
    /// use (a key the operator replaced reaches every sidecar in time).
    pub key_file: PathBuf,
    /// The credential as `namespace/name`: what sealed values and Lease
    /// proofs are bound to.
    pub scope: String,
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

    /// The session key, as the runtime Secret's file holds it now.
    pub fn key(&self) -> Result<SessionKey, String> {
        read_key(&self.key_file)
    }

    /// One attempt to take or renew the Lease: `Ok(true)` when held
    /// afterwards. The operator creates the Lease, so this never creates.
    /// A holder that cannot prove its renewal with the session key (an
    /// app container writing the Lease) is taken over from at once.
    pub async fn try_hold(&self) -> Result<bool, kube::Error> {
        let key = self
            .key()
            .map_err(|why| kube::Error::Service(format!("no session key: {why}").into()))?;
        // A write that raced is decided once more on what won: an unproven
        // writer (an app container) does not cost the holder its turn.
        match self.hold_once(&key).await? {
            Some(held) => Ok(held),
            None => Ok(self.hold_once(&key).await?.unwrap_or(false)),
        }
    }

    /// One read-decide-write of the Lease: `None` when the write raced (409).
    async fn hold_once(&self, key: &SessionKey) -> Result<Option<bool>, kube::Error> {
        let mut lease = self.leases.get(&self.lease_name).await?;
        // The API server keeps microseconds: the proof is over what it keeps.
        let now = Timestamp::from_microsecond(Timestamp::now().as_microsecond())
            .unwrap_or_else(|_| Timestamp::now());
        let is_proven = proven(&lease, key, &self.scope);
        match trusted_decision(lease.spec.as_ref(), is_proven, &self.identity, now) {
            LeaseDecision::Wait { .. } => Ok(Some(false)),
            LeaseDecision::Renew | LeaseDecision::Take => {
                let spec = spec_for(
                    &self.identity,
                    self.lease_duration,
                    lease.spec.as_ref(),
                    now,
                );
                let proof = key.lease_proof(
                    &self.scope,
                    &self.identity,
                    now.as_microsecond(),
                    spec.lease_duration_seconds.unwrap_or_default(),
                );
                lease.spec = Some(spec);
                lease
                    .metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(HOLDER_PROOF_ANNOTATION.to_owned(), proof);
                // Carries the resourceVersion read: a replica that wrote in
                // between makes this fail with 409, and we did not get it.
                match self
                    .leases
                    .replace(&self.lease_name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => Ok(Some(true)),
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
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
        let sealed = self
            .key()
            .and_then(|key| {
                record
                    .seal(&key, &self.scope)
                    .map_err(|e| format!("failed to seal: {e}"))
            })
            .map_err(|why| kube::Error::Service(format!("no session key: {why}").into()))?;
        let mut attempts = 0;
        loop {
            let mut secret = self.secrets.get(&self.secret_name).await?;
            secret.data = Some(
                sealed
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.clone())))
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
    /// lag by minutes) and sends each session that opens with the key
    /// until cancelled; anything else (plaintext from an older sidecar,
    /// forged, oversized) is sent as "no session".
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
                    let opened = self
                        .key()
                        .map_err(|why| format!("no session key: {why}"))
                        .and_then(|key| {
                            SessionRecord::open(&data, &key, &self.scope).map_err(|e| e.to_string())
                        });
                    match opened {
                        Ok(record) => {
                            records.send_replace(record);
                        }
                        Err(error) => {
                            tracing::warn!(error = %error, "the session Secret holds no session this sidecar trusts; ignoring it");
                            records.send_replace(None);
                        }
                    }
                }
            }
        }
    }
}
