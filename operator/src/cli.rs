//! Command line: subcommands and the settings of `run`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "otpilot operator: MFA for machine identities on Kubernetes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Print the otpilot CustomResourceDefinitions as YAML
    /// (e.g. `otpilot-operator crds | kubectl apply -f -`).
    Crds,
    /// Run the operator (kubeconfig from KUBECONFIG, else in-cluster).
    Run(Box<RunArgs>),
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The operator's own namespace: its leader-election Lease, and the
    /// ClientCAs' key Secrets and certificate ConfigMaps.
    #[arg(long, env = "OTPILOT_NAMESPACE")]
    pub namespace: String,

    /// Reconcile ApiCredentials of this namespace only (default: all
    /// namespaces). For namespace-scoped installs and tests.
    #[arg(long, env = "OTPILOT_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// The namespaces where the operator's RBAC grants Secrets (the chart's
    /// `rbac.secretNamespaces` and its own namespace), comma-separated;
    /// default: every namespace. Its own Secrets are then watched in these
    /// namespaces only, where a cluster-wide watch would be refused.
    #[arg(long, env = "OTPILOT_SECRET_NAMESPACES", value_delimiter = ',')]
    pub secret_namespaces: Vec<String>,

    /// Reconcile only the ClientCAs matching this label selector (default:
    /// all). Lets several operators share a cluster, each with its own CAs.
    #[arg(long, env = "OTPILOT_CLIENT_CA_SELECTOR")]
    pub client_ca_selector: Option<String>,

    /// Address of the admin server (/healthz, /readyz, /metrics).
    #[arg(long, env = "OTPILOT_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,

    /// Name of the leader-election Lease in the operator's namespace.
    #[arg(long, env = "OTPILOT_LEASE_NAME", default_value = "otpilot-operator")]
    pub lease_name: String,

    /// This replica's identity in the Lease (the Pod name in a cluster).
    #[arg(long, env = "OTPILOT_POD_NAME")]
    pub identity: Option<String>,

    /// How long a Lease stays valid without renewal, in seconds.
    #[arg(long, env = "OTPILOT_LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u32,

    /// How often the leader renews its Lease, in seconds.
    #[arg(long, env = "OTPILOT_LEASE_RENEW_SECONDS", default_value_t = 5)]
    pub lease_renew_seconds: u32,

    /// How long one vendor call may take before it counts as failed, in
    /// seconds. Raise it for a vendor that answers slowly.
    #[arg(long, env = "OTPILOT_VENDOR_TIMEOUT_SECONDS", default_value_t = 15)]
    pub vendor_timeout_seconds: u32,

    #[command(flatten)]
    pub egress: otpilot_profile::EgressArgs,

    #[command(flatten)]
    pub webhook: crate::webhook::WebhookArgs,
}

impl RunArgs {
    pub fn lease_duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.lease_duration_seconds))
    }

    pub fn lease_renew(&self) -> Duration {
        Duration::from_secs(u64::from(self.lease_renew_seconds))
    }

    pub fn vendor_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.vendor_timeout_seconds))
    }
}

pub fn print_crds() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for crd in otpilot_api::crds::all() {
        let yaml = otpilot_api::crds::to_yaml(&crd)?;
        match writeln!(out, "---\n{yaml}") {
            // The reader went away (`| head`): not an error of ours.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    Ok(())
}
