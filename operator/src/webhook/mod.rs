//! The sidecar injection webhook: `POST /inject` over HTTPS on every replica
//! (not only the leader: the API server calls whichever Pod the Service
//! picks), around the pure mutation in `otpilot-inject`.
//!
//! Serving certificate: the files `tls.crt` / `tls.key` in
//! `--webhook-cert-dir` (the Secret mounted by the chart), re-read on every
//! TLS handshake so a rotated certificate is served without a restart. When
//! `--webhook-secret-name` is set the leader also manages that Secret (a
//! fresh CA and serving certificate, renewed before expiry) and patches the
//! CA bundle into `--webhook-config-name`; with cert-manager those flags are
//! absent and the operator only serves what is mounted.
//!
//! Why the mounted files and not the Secret through the API: every replica
//! then needs no Secret read permission and serves exactly what the kubelet
//! projected; the cost is the kubelet's sync lag (about a minute) after the
//! leader first creates or rotates the Secret. The lag is harmless because a
//! rotation keeps the previous CA in the bundle until it expires, and before
//! the first Secret exists the handshake fails (the chart's failurePolicy
//! decides), which the log says.

mod borrowed;
mod certificate;
mod server;
mod settings;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

pub use certificate::manage as manage_certificate;
pub use server::{WebhookState, serve};
pub use settings::load_inject_config;
pub use tls::current as serving_certificate_current;

/// Flags of the webhook (all optional: without `--webhook-addr` no webhook
/// is served).
#[derive(Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Injection settings (JSON, the chart's ConfigMap key `inject.json`);
    /// a missing file means the defaults.
    #[arg(long, env = "OTPILOT_INJECT_CONFIG")]
    pub inject_config: Option<PathBuf>,

    /// Serve the injection webhook (HTTPS, `POST /inject`) on this address.
    #[arg(long, env = "OTPILOT_WEBHOOK_ADDR")]
    pub webhook_addr: Option<SocketAddr>,

    /// Directory holding the serving certificate (`tls.crt`, `tls.key`),
    /// re-read on every TLS handshake.
    #[arg(
        long,
        env = "OTPILOT_WEBHOOK_CERT_DIR",
        default_value = "/var/run/otpilot/webhook-tls"
    )]
    pub webhook_cert_dir: PathBuf,

    /// Secret (in the operator's namespace) in which the leader keeps the
    /// serving certificate it generates and rotates. Unset: the certificate
    /// is managed elsewhere (cert-manager).
    #[arg(long, env = "OTPILOT_WEBHOOK_SECRET_NAME", requires_all = ["webhook_config_name", "webhook_service_name"])]
    pub webhook_secret_name: Option<String>,

    /// MutatingWebhookConfiguration whose webhooks get the CA bundle.
    #[arg(
        long,
        env = "OTPILOT_WEBHOOK_CONFIG_NAME",
        requires = "webhook_secret_name"
    )]
    pub webhook_config_name: Option<String>,

    /// Service in front of the webhook: the certificate's DNS names are
    /// `<service>.<namespace>.svc` and `<service>.<namespace>.svc.cluster.local`.
    #[arg(
        long,
        env = "OTPILOT_WEBHOOK_SERVICE_NAME",
        requires = "webhook_secret_name"
    )]
    pub webhook_service_name: Option<String>,
}

/// What the leader needs to manage the serving certificate.
#[derive(Debug, Clone)]
pub struct ManagedCertificate {
    pub namespace: String,
    pub secret_name: String,
    pub config_name: String,
    pub service_name: String,
}

impl WebhookArgs {
    /// `Some` when the operator manages the serving certificate.
    pub fn managed_certificate(&self, namespace: &str) -> Option<ManagedCertificate> {
        Some(ManagedCertificate {
            namespace: namespace.to_owned(),
            secret_name: self.webhook_secret_name.clone()?,
            config_name: self.webhook_config_name.clone()?,
            service_name: self.webhook_service_name.clone()?,
        })
    }
}

/// Binds `--webhook-addr` (when set) and serves the webhook on it until
/// `shutdown`. Every replica calls this, before leader election.
pub async fn start(
    args: &WebhookArgs,
    inject: otpilot_inject::InjectConfig,
    client: kube::Client,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let Some(addr) = args.webhook_addr else {
        tracing::info!("no --webhook-addr: the injection webhook is not served");
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("failed to bind the webhook server to {addr}"))?;
    if let Err(error) = tls::load(&args.webhook_cert_dir) {
        // Not fatal: with an operator-managed certificate the Secret is
        // mounted once the leader created it.
        tracing::warn!(%error, "no webhook serving certificate yet");
    }
    tracing::info!(addr = %listener.local_addr()?, "webhook server listening");
    let state = WebhookState {
        client,
        config: std::sync::Arc::new(inject),
        metrics,
    };
    let tls = tls::server_config(args.webhook_cert_dir.clone());
    tokio::spawn(serve(listener, tls, state, shutdown));
    Ok(())
}
