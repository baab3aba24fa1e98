//! `otpilot-sidecar run`: wires the input watcher, the session, the local
//! API, the admin listener and the proxy to one cancellation token, under
//! one supervisor: shut down together on SIGTERM, or the process exits
//! non-zero when one of them ends first.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use otpilot_profile::{CodeTimer, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use futures::TryFutureExt;

use crate::api::Surface;
use crate::cli::RunArgs;
use crate::inputs::{ClientSettings, Sources};
use crate::policy::{Backoff, RenewPolicy};
use crate::proxy::ProxyConfig;
use crate::reload::{self, ReloadConfig};
use crate::session::{self, SessionConfig};
use crate::sharing::decide::Mode;
use crate::sharing::{self, SharingConfig};
use crate::state::Shared;
use crate::supervise::{self, Supervisor};
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

/// Runs until SIGTERM or SIGINT; an error when a supervised task ended
/// first (see [`crate::supervise`]), so the process exits non-zero.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let egress = otpilot_profile::Egress::from_config(&args.egress.config())
        .context("the egress proxy settings")?;
    if let Some(proxy) = &egress.proxy {
        tracing::info!(
            proxy = proxy.url,
            no_proxy = proxy.no_proxy,
            "vendor calls go through the egress proxy"
        );
    }
    let cancel = CancellationToken::new();
    let shared = Arc::new(Shared::new());
    let timer = Arc::new(CodeTimer::new(Arc::new(SystemClock)));
    let (inputs_tx, inputs_rx) = watch::channel(None);
    let mut tasks = Supervisor::new();

    let api_listener = TcpListener::bind(args.api_addr)
        .await
        .with_context(|| format!("failed to bind the local API to {}", args.api_addr))?;
    let proxy_listener = TcpListener::bind(args.proxy_addr)
        .await
        .with_context(|| format!("failed to bind the proxy to {}", args.proxy_addr))?;
    let admin_listener = match args.admin_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("failed to bind the admin listener to {addr}"))?,
        ),
        None => None,
    };
    let admin = admin_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()
        .context("failed to read the admin address")?;
    tracing::info!(
        api = %api_listener.local_addr().context("failed to read the API address")?,
        proxy = %proxy_listener.local_addr().context("failed to read the proxy address")?,
        admin = admin.map(|a| a.to_string()),
        "listening"
    );

    let reload_config = ReloadConfig {
        sources: Sources {
            runtime_dir: args.runtime_dir.clone(),
            password_file: args.password_file,
            api_key_file: args.api_key_file,
            secret_value_files: args.secret_values,
        },
        interval: args.poll_interval,
        client: ClientSettings {
            engine_request: Duration::from_secs(15),
            proxy_request: args.proxy_timeout,
            egress,
        },
    };
    {
        let (shared, cancel) = (shared.clone(), cancel.clone());
        tasks.spawn("reload", &cancel.clone(), async move {
            reload::watch_inputs(reload_config, timer, shared, inputs_tx, cancel).await;
            Ok(())
        });
    }
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
    {
        let (shared, cancel) = (shared.clone(), cancel.clone());
        match sharing::choose(&sharing_config).await {
            Ok(objects) => {
                let spawner = tasks.spawner();
                tasks.spawn("session", &cancel.clone(), async move {
                    sharing::run_shared(
                        objects,
                        shared,
                        inputs_rx,
                        session_config,
                        cancel,
                        spawner,
                    )
                    .await;
                    Ok(())
                });
            }
            Err(reason) => {
                sharing::report_mode(&shared, Mode::Standalone, &reason);
                tasks.spawn("session", &cancel.clone(), async move {
                    session::run(shared, inputs_rx, session_config, cancel).await;
                    Ok(())
                });
            }
        }
    }
    let io = |e: std::io::Error| e.to_string();
    tasks.spawn(
        "api",
        &cancel,
        api::serve(api_listener, shared.clone(), Surface::Local, cancel.clone()).map_err(io),
    );
    if let Some(listener) = admin_listener {
        tasks.spawn(
            "admin",
            &cancel,
            api::serve(listener, shared.clone(), Surface::Admin, cancel.clone()).map_err(io),
        );
    }
    tasks.spawn(
        "proxy",
        &cancel,
        serve(
            proxy_listener,
            proxy::router(
                shared.clone(),
                ProxyConfig {
                    renewal_wait: Duration::from_secs(10),
                    require_header: args.proxy_require_header,
                },
            ),
            cancel.clone(),
        )
        .map_err(io),
    );

    let ended = tokio::select! {
        signal = shutdown_signal() => Ok(signal.context("failed to listen for signals")?),
        exit = tasks.next_exit() => Err(exit),
    };
    match ended {
        Ok(signal) => {
            tracing::info!(
                signal,
                grace_s = args.shutdown_grace.as_secs_f64(),
                "shutting down"
            );
            cancel.cancel();
            if !tasks.drain(args.shutdown_grace).await {
                tracing::warn!("requests still in flight after the grace period; exiting anyway");
            }
            tracing::info!("stopped");
            Ok(())
        }
        Err(exit) => {
            let description = supervise::record_exit(&shared, &exit);
            cancel.cancel();
            let _ = tasks.drain(Duration::from_secs(1)).await;
            Err(anyhow::anyhow!(description))
        }
    }
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
