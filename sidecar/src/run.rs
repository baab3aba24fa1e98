//! `otpilot-sidecar run`: wires the input watcher, the session, the local
//! API and the proxy to one cancellation token, and shuts them down in
//! order on SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use otpilot_profile::{CodeTimer, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::inputs::{ClientTimeouts, Sources};
use crate::policy::{Backoff, RenewPolicy};
use crate::proxy::ProxyConfig;
use crate::reload::{self, ReloadConfig};
use crate::session::{self, SessionConfig};
use crate::sharing::decide::Mode;
use crate::sharing::{self, SharingConfig};
use crate::state::Shared;
use crate::{api, proxy};

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets
/// open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let shared = Arc::new(Shared::new());
    let timer = Arc::new(CodeTimer::new(Arc::new(SystemClock)));
    let (inputs_tx, inputs_rx) = watch::channel(None);

    let api_listener = TcpListener::bind(args.api_addr)
        .await
        .with_context(|| format!("failed to bind the local API to {}", args.api_addr))?;
    let proxy_listener = TcpListener::bind(args.proxy_addr)
        .await
        .with_context(|| format!("failed to bind the proxy to {}", args.proxy_addr))?;
    tracing::info!(
        api = %api_listener.local_addr().context("failed to read the API address")?,
        proxy = %proxy_listener.local_addr().context("failed to read the proxy address")?,
        "listening"
    );

    let reload = tokio::spawn(reload::watch_inputs(
        ReloadConfig {
            sources: Sources {
                runtime_dir: args.runtime_dir.clone(),
                password_file: args.password_file,
                api_key_file: args.api_key_file,
                secret_value_files: args.secret_values,
            },
            interval: args.poll_interval,
            timeouts: ClientTimeouts {
                engine_request: Duration::from_secs(15),
                proxy_request: args.proxy_timeout,
            },
        },
        timer,
        shared.clone(),
        inputs_tx,
        cancel.clone(),
    ));
    let session_config = SessionConfig {
        renew: RenewPolicy {
            refresh_before: args.refresh_before,
            ..RenewPolicy::default()
        },
        backoff: Backoff::default(),
        token_file: args.token_file,
        token_file_mode: args.token_file_mode,
    };
    let sharing_config = SharingConfig {
        credential: args.session_credential,
        namespace: args.session_namespace,
        identity: args.session_identity,
        lease_duration: args.session_lease_duration,
        runtime_dir: args.runtime_dir,
    };
    let session = match sharing::choose(&sharing_config).await {
        Ok(objects) => tokio::spawn(sharing::run_shared(
            objects,
            shared.clone(),
            inputs_rx,
            session_config,
            cancel.clone(),
        )),
        Err(reason) => {
            sharing::report_mode(&shared, Mode::Standalone, &reason);
            tokio::spawn(session::run(
                shared.clone(),
                inputs_rx,
                session_config,
                cancel.clone(),
            ))
        }
    };
    let api = tokio::spawn(api::serve(api_listener, shared.clone(), cancel.clone()));
    let proxy = tokio::spawn(serve(
        proxy_listener,
        proxy::router(
            shared.clone(),
            ProxyConfig {
                renewal_wait: Duration::from_secs(10),
                require_header: args.proxy_require_header,
            },
        ),
        cancel.clone(),
    ));

    let signal = shutdown_signal()
        .await
        .context("failed to listen for signals")?;
    tracing::info!(
        signal,
        grace_s = args.shutdown_grace.as_secs_f64(),
        "shutting down"
    );
    cancel.cancel();
    let drained = tokio::time::timeout(args.shutdown_grace, async {
        for (name, server) in [("api", api), ("proxy", proxy)] {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(server = name, error = %e, "server failed"),
                Err(e) => tracing::error!(server = name, error = %e, "server task died"),
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("requests still in flight after the grace period; exiting anyway");
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = session.await;
        let _ = reload.await;
    })
    .await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
