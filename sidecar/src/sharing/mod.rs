//! One vendor session shared by the replicas of a credential: the replica
//! holding the credential's `coordination.k8s.io` Lease logs in, refreshes
//! and publishes to the `<name>-session` Secret; the others watch that
//! Secret and serve what it holds. Without a Kubernetes identity or the
//! permission, the sidecar logs in on its own (standalone) and says why.

pub mod decide;
pub mod kube_io;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use otpilot_api::session::{SessionRecord, session_lease_name, session_secret_name};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::inputs::Prepared;
use crate::policy::RenewPolicy;
use crate::session::{self, Handoff, SessionConfig};
use crate::state::{ServedToken, Shared};
use crate::supervise::Spawner;
use decide::{Mode, Probe};
use kube_io::SessionObjects;

/// How long the start-up checks and each Lease call may take.
const API_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a sidecar that may not use the session yet (or finds it not
/// created yet) asks again before logging in alone, and how often.
const GRANT_WAIT: Duration = Duration::from_secs(15);
const GRANT_RETRY: Duration = Duration::from_millis(500);

/// What `run` was told about sharing.
#[derive(Debug, Clone)]
pub struct SharingConfig {
    /// The ApiCredential whose session to share; `None`: standalone.
    pub credential: Option<String>,
    /// Its namespace (default: the in-cluster or kubeconfig namespace).
    pub namespace: Option<String>,
    /// This replica's Lease identity (default: `HOSTNAME`, the pod name).
    pub identity: Option<String>,
    /// How long a holder's claim lasts without renewal.
    pub lease_duration: Duration,
    /// The mounted runtime Secret, whose `session-key` seals the session.
    pub runtime_dir: PathBuf,
}

/// Decides the mode at start: shared (with the objects to use) or
/// standalone, and why.
pub async fn choose(config: &SharingConfig) -> Result<SessionObjects, String> {
    let Some(credential) = config.credential.as_deref() else {
        return Err(decide::choose_mode(
            None,
            Ok(()),
            Ok(()),
            &Probe::Found,
            &Probe::Found,
            "",
            "",
        )
        .expect_err("unconfigured is standalone"));
    };
    let key_file = config
        .runtime_dir
        .join(otpilot_api::runtime_secret::keys::SESSION_KEY);
    if let Err(why) = kube_io::read_key(&key_file) {
        return Err(decide::choose_mode(
            Some(credential),
            Err(&why),
            Ok(()),
            &Probe::Found,
            &Probe::Found,
            "",
            "",
        )
        .expect_err("no key is standalone"));
    }
    let lease_name = session_lease_name(credential);
    let secret_name = session_secret_name(credential);
    let kube_config = match kube::Config::infer().await {
        Ok(mut c) => {
            // An API server that does not answer must not hold up the first
            // token for kube's default 30 s.
            c.connect_timeout = Some(API_TIMEOUT);
            // kube takes HTTPS_PROXY from the environment for the API
            // server too and then fails without its proxy feature: the API
            // server is reached directly; vendors as --egress-proxy says.
            c.proxy_url = None;
            c
        }
        Err(error) => {
            let why = error.to_string();
            return Err(decide::choose_mode(
                Some(credential),
                Ok(()),
                Err(&why),
                &Probe::Found,
                &Probe::Found,
                &lease_name,
                &secret_name,
            )
            .expect_err("no identity is standalone"));
        }
    };
    let namespace = config
        .namespace
        .clone()
        .unwrap_or_else(|| kube_config.default_namespace.clone());
    let client = kube::Client::try_from(kube_config)
        .map_err(|e| format!("failed to build a Kubernetes client: {e}"))?;
    let identity = config
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| format!("pid-{}", std::process::id()));
    let objects = SessionObjects {
        leases: kube::Api::namespaced(client.clone(), &namespace),
        secrets: kube::Api::namespaced(client, &namespace),
        lease_name,
        secret_name,
        identity,
        lease_duration: config.lease_duration,
        key_file,
        scope: format!("{namespace}/{credential}"),
    };
    // The operator grants the session to the Pods the API server stored,
    // moments after this Pod was: a sidecar starting first waits for it.
    let waiting_since = Instant::now();
    let (lease, secret) = loop {
        let (lease, secret) = tokio::time::timeout(API_TIMEOUT, objects.probe())
            .await
            .unwrap_or_else(|_| {
                let silent = Probe::Failed(format!(
                    "the API server did not answer within {} s",
                    API_TIMEOUT.as_secs()
                ));
                (silent.clone(), silent)
            });
        if !decide::grant_may_be_on_its_way(&lease, &secret)
            || waiting_since.elapsed() >= GRANT_WAIT
        {
            break (lease, secret);
        }
        tokio::time::sleep(GRANT_RETRY).await;
    };
    decide::choose_mode(
        Some(credential),
        Ok(()),
        Ok(()),
        &lease,
        &secret,
        &objects.lease_name,
        &objects.secret_name,
    )?;
    Ok(objects)
}

/// Records the mode everywhere it is reported.
pub fn report_mode(shared: &Shared, mode: Mode, reason: &str) {
    shared.set_session_mode(mode, reason.to_owned());
    tracing::info!(mode = mode.as_str(), reason, "session mode");
}

/// Runs the shared session until cancelled: holds the Lease when it can
/// (running the session driver as holder), follows otherwise.
pub async fn run_shared(
    objects: SessionObjects,
    shared: Arc<Shared>,
    inputs: watch::Receiver<Option<Arc<Prepared>>>,
    config: SessionConfig,
    cancel: CancellationToken,
    tasks: Spawner,
) {
    let (records_tx, records_rx) = watch::channel(None);
    let (role_tx, role_rx) = watch::channel(Mode::SharedFollower);
    let watched = objects.clone().watch_records(records_tx, cancel.clone());
    tasks.spawn("session-records", &cancel, async move {
        watched.await;
        Ok(())
    });
    let followed = follow(
        shared.clone(),
        records_rx.clone(),
        role_rx,
        inputs.clone(),
        config.renew,
        cancel.clone(),
    );
    tasks.spawn("session-follow", &cancel, async move {
        followed.await;
        Ok(())
    });
    report_mode(
        &shared,
        Mode::SharedFollower,
        &format!("following {}'s holder", objects.lease_name),
    );
    let renew_every = decide::attempt_every(objects.lease_duration);
    let mut holding: Option<CancellationToken> = None;
    let mut last_renewal = Instant::now();
    loop {
        let attempt = tokio::time::timeout(API_TIMEOUT.min(renew_every * 2), objects.try_hold())
            .await
            .unwrap_or_else(|_| Err(kube::Error::Service("no answer in time".into())));
        match attempt {
            Ok(true) => {
                last_renewal = Instant::now();
                if holding.is_none() {
                    let child = cancel.child_token();
                    let (publish_tx, publish_rx) = mpsc::unbounded_channel();
                    let seed = records_rx.borrow().clone();
                    role_tx.send_replace(Mode::SharedHolder);
                    report_mode(
                        &shared,
                        Mode::SharedHolder,
                        &format!(
                            "holding Lease {}; {}",
                            objects.lease_name,
                            if seed.is_some() {
                                "continuing the published session"
                            } else {
                                "no session published yet: logging in"
                            }
                        ),
                    );
                    let published = publish(
                        objects.clone(),
                        publish_rx,
                        records_rx.clone(),
                        renew_every,
                        child.clone(),
                    );
                    tasks.spawn("session-publish", &child, async move {
                        published.await;
                        Ok(())
                    });
                    let held = session::run_with(
                        shared.clone(),
                        inputs.clone(),
                        config.clone(),
                        child.clone(),
                        Handoff {
                            seed,
                            publish: Some(publish_tx),
                        },
                    );
                    tasks.spawn("session-holder", &child, async move {
                        held.await;
                        Ok(())
                    });
                    holding = Some(child);
                }
            }
            Ok(false) => {
                if let Some(child) = holding.take() {
                    child.cancel();
                    role_tx.send_replace(Mode::SharedFollower);
                    report_mode(
                        &shared,
                        Mode::SharedFollower,
                        &format!(
                            "lost Lease {} to another replica; stopped refreshing",
                            objects.lease_name
                        ),
                    );
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "failed to read or renew the session Lease");
                if holding.is_some()
                    && !decide::holder_stands(last_renewal.elapsed(), objects.lease_duration)
                {
                    if let Some(child) = holding.take() {
                        child.cancel();
                    }
                    role_tx.send_replace(Mode::SharedFollower);
                    report_mode(
                        &shared,
                        Mode::SharedFollower,
                        &format!(
                            "could not renew Lease {}; stopped refreshing",
                            objects.lease_name
                        ),
                    );
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(renew_every) => {}
        }
    }
    if holding.is_some() {
        objects.release().await;
    }
}

/// The holder's publisher: writes each new session to the Secret, keeping
/// the highest code step any holder used. When the Secret stops holding a
/// session that opens (something without the key overwrote it), it writes
/// the last session again, at most once per `every`.
async fn publish(
    objects: SessionObjects,
    mut sessions: mpsc::UnboundedReceiver<SessionRecord>,
    mut published: watch::Receiver<Option<SessionRecord>>,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut last: Option<SessionRecord> = None;
    let mut last_write = Instant::now();
    loop {
        let record = tokio::select! {
            () = cancel.cancelled() => return,
            r = sessions.recv() => match r { Some(r) => r, None => return },
            r = published.changed() => {
                if r.is_err() {
                    return;
                }
                let overwritten = published.borrow_and_update().is_none();
                let Some(record) = last.clone().filter(|_| overwritten) else {
                    continue;
                };
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(every.saturating_sub(last_write.elapsed())) => {}
                }
                if published.borrow().is_some() {
                    continue;
                }
                tracing::warn!(secret = %objects.secret_name, "the session Secret no longer holds this holder's session; writing it again");
                record
            }
        };
        let mut record = record;
        let now_s = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        // The loosest bound (1 s steps): the session's own step is bounded
        // by its period when it is taken over.
        let before = decide::usable_code_step(
            published.borrow().as_ref().and_then(|r| r.last_code_step),
            now_s,
            1,
        );
        record.last_code_step = record.last_code_step.max(before);
        record.holder = objects.identity.clone();
        if cancel.is_cancelled() {
            return;
        }
        last_write = Instant::now();
        match objects.publish(&record).await {
            Ok(()) => tracing::info!(secret = %objects.secret_name, "published the session"),
            Err(error) => {
                tracing::error!(secret = %objects.secret_name, error = %error, "failed to publish the session");
            }
        }
        last = Some(record);
    }
}

/// The follower's side: serves each valid published session from memory.
async fn follow(
    shared: Arc<Shared>,
    mut records: watch::Receiver<Option<SessionRecord>>,
    mut role: watch::Receiver<Mode>,
    mut inputs: watch::Receiver<Option<Arc<Prepared>>>,
    renew: RenewPolicy,
    cancel: CancellationToken,
) {
    let mut applied: Option<(SystemTime, SystemTime)> = None;
    loop {
        if *role.borrow_and_update() == Mode::SharedFollower {
            let record = records.borrow_and_update().clone();
            let prepared = inputs.borrow_and_update().clone();
            match (record, prepared) {
                (Some(record), Some(prepared))
                    if decide::servable(&record, SystemTime::now(), &renew) =>
                {
                    let key = (record.obtained_at, record.expires_at);
                    if applied != Some(key) {
                        match served_from(&shared, &record, &prepared, &renew) {
                            Some(token) => {
                                shared.publish(token);
                                applied = Some(key);
                                tracing::info!(holder = %record.holder, "serving the shared session");
                            }
                            None => tracing::error!(
                                "the published token cannot be sent in a header; not serving it"
                            ),
                        }
                    }
                }
                (_, None) => shared.set_not_ready_reason(
                    "following the shared session: inputs not read yet".into(),
                ),
                _ => shared.set_not_ready_reason(
                    "following the shared session: waiting for the holder to publish a valid token"
                        .into(),
                ),
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            r = records.changed() => if r.is_err() { return },
            r = role.changed() => if r.is_err() { return },
            r = inputs.changed() => if r.is_err() { return },
        }
    }
}

fn served_from(
    shared: &Shared,
    record: &SessionRecord,
    prepared: &Prepared,
    renew: &RenewPolicy,
) -> Option<ServedToken> {
    let presentation = prepared.engine.profile().token_presentation();
    let value = crate::presentation::sensitive(&presentation.value(&record.access_token))?;
    ServedToken::render(
        &record.access_token,
        Some((presentation.header().clone(), value)),
        presentation.scheme(),
        record.expires_at,
        crate::policy::serve_until(record.obtained_at, record.expires_at, renew),
        shared.next_generation(),
    )
    .ok()
}
