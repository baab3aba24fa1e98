//! `otpilot-operator run`: admin server, leader election, controllers, and
//! a graceful stop on SIGTERM / SIGINT.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client};
use otpilot_profile::{CodeTimer, SystemClock};
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::cli::RunArgs;
use crate::context::Context;
use crate::leader::{self, LeaseSettings};
use crate::metrics::Metrics;
use crate::{controllers, telemetry, webhook};

pub fn main(args: RunArgs) -> anyhow::Result<()> {
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("failed to install the rustls ring crypto provider"))?;
    telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let result = runtime.block_on(run(args));
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "operator stopped");
    }
    // A task that ignores cancellation (a blocking call, a stuck
    // connection) must not keep the process alive past its grace period.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    result
}

/// How long in-flight reconciles get after SIGTERM before the operator stops
/// anyway. Enrollment is crash-safe (it resumes from its checkpoint), so an
/// interrupted reconcile loses nothing; the bound keeps a stop well inside
/// Kubernetes' default 30 s grace period.
const RECONCILE_DRAIN: std::time::Duration = std::time::Duration::from_secs(15);
/// How long the admin server and leftover tasks get after that.
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(5);

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let inject = webhook::load_inject_config(args.webhook.inject_config.as_deref())?;
    let egress = otpilot_profile::Egress::from_config(&args.egress.config())
        .context("the egress proxy settings")?;
    if let Some(proxy) = &egress.proxy {
        tracing::info!(
            proxy = proxy.url,
            no_proxy = proxy.no_proxy,
            "vendor calls go through the egress proxy"
        );
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));

    let metrics = Arc::new(Metrics::new(args.webhook.webhook_addr.is_some()));
    let connected = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.admin_addr)
        .await
        .with_context(|| format!("failed to bind the admin server to {}", args.admin_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "admin server listening");
    let admin_state = AdminState {
        metrics: metrics.clone(),
        connected: connected.clone(),
        webhook_cert_dir: args
            .webhook
            .webhook_addr
            .map(|_| args.webhook.webhook_cert_dir.clone()),
    };
    let admin_task = tokio::spawn(admin::serve(listener, admin_state, shutdown.clone()));

    let mut kube_config = kube::Config::infer()
        .await
        .context("failed to configure the Kubernetes client (KUBECONFIG or in-cluster)")?;
    // kube takes HTTPS_PROXY from the environment for the API server too,
    // and then refuses to start without its proxy feature. The API server
    // is reached directly (in a cluster, it is the cluster's own Service);
    // vendors go through --egress-proxy.
    kube_config.proxy_url = None;
    let client = Client::try_from(kube_config)
        .context("failed to configure the Kubernetes client (KUBECONFIG or in-cluster)")?;
    let version = client
        .apiserver_version()
        .await
        .context("failed to reach the Kubernetes API server")?;
    tracing::info!(
        version = version.git_version,
        namespace = args.namespace,
        "connected"
    );

    let identity = args.identity.clone().unwrap_or_else(default_identity);
    webhook::start(
        &args.webhook,
        inject,
        client.clone(),
        metrics.clone(),
        shutdown.clone(),
    )
    .await?;
    // Ready from here: connected, and the webhook (if any) listening.
    connected.store(true, Ordering::Relaxed);
    let settings = LeaseSettings {
        name: args.lease_name.clone(),
        identity: identity.clone(),
        duration: args.lease_duration(),
        renew_every: args.lease_renew(),
    };
    let leases: Api<Lease> = Api::namespaced(client.clone(), &args.namespace);
    tracing::info!(identity, lease = settings.name, "waiting to become leader");
    tokio::select! {
        acquired = leader::acquire(&leases, &settings) => acquired?,
        () = shutdown.cancelled() => return finish(admin_task).await,
    }
    metrics.set_leader(true);
    tracing::info!(identity, "became leader");
    if let Some(managed) = args.webhook.managed_certificate(&args.namespace) {
        tokio::spawn(webhook::manage_certificate(
            client.clone(),
            managed,
            shutdown.clone(),
        ));
    }

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "otpilot-operator".into(),
            instance: Some(identity),
        },
    );
    let timer = Arc::new(CodeTimer::new(Arc::new(SystemClock)));
    let ctx = Arc::new(
        Context::new(
            client,
            args.namespace.clone(),
            args.watch_namespace.clone(),
            args.client_ca_selector.clone(),
            metrics.clone(),
            recorder,
            timer,
        )
        .with_vendor_timeout(args.vendor_timeout())
        .with_egress(egress)
        .with_secret_namespaces(args.secret_namespaces.clone()),
    );

    let drain_expired = async {
        shutdown.cancelled().await;
        tokio::time::sleep(RECONCILE_DRAIN).await;
    };
    tokio::select! {
        () = controllers::run(ctx, shutdown.clone()) => {
            release_lease(&leases, &settings).await;
            metrics.set_leader(false);
            finish(admin_task).await
        }
        () = drain_expired => {
            tracing::warn!(
                seconds = RECONCILE_DRAIN.as_secs(),
                "reconciles still running after SIGTERM; stopping anyway (enrollment resumes from its checkpoint)"
            );
            release_lease(&leases, &settings).await;
            metrics.set_leader(false);
            finish(admin_task).await
        }
        lost = leader::hold(&leases, &settings) => {
            // Another replica may act on the same credentials now: stop,
            // and let the restart wait for the Lease again.
            metrics.set_leader(false);
            shutdown.cancel();
            Err(anyhow::Error::new(lost).context("stopping: leadership lost"))
        }
    }
}

/// Hands the Lease back so another replica takes over at once, not a Lease
/// duration later; bounded, because a stop must not wait on the API server.
async fn release_lease(leases: &Api<Lease>, settings: &LeaseSettings) {
    if tokio::time::timeout(RUNTIME_SHUTDOWN, leader::release(leases, settings))
        .await
        .is_err()
    {
        tracing::warn!("the API server did not answer in time; the Lease expires on its own");
    }
}

async fn finish(admin_task: tokio::task::JoinHandle<std::io::Result<()>>) -> anyhow::Result<()> {
    // A scraper holding a connection open must not hold up the stop.
    match tokio::time::timeout(RUNTIME_SHUTDOWN, admin_task).await {
        Ok(joined) => joined
            .context("admin server task panicked")?
            .context("admin server failed")?,
        Err(_) => tracing::warn!("admin server connections still open; stopping anyway"),
    }
    tracing::info!("stopped");
    Ok(())
}

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "otpilot-operator".into());
    format!("{host}-{:08x}", rand::random::<u32>())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(%error, "failed to listen for SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}
