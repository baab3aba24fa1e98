//! otpilot-operator: reconciles ClientCA and ApiCredential resources.
//!
//! This step ships the resource definitions; the controllers follow.

use std::io::Write;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "otpilot operator: MFA for machine identities on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the otpilot CustomResourceDefinitions as YAML
    /// (e.g. `otpilot-operator crds | kubectl apply -f -`).
    Crds,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crds => print_crds(),
    }
}

fn print_crds() -> anyhow::Result<()> {
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
