//! otpilot-operator: reconciles ClientCA, ClusterMfaProfile and ApiCredential
//! resources. `crds` prints the resource definitions; `run` runs the operator.

mod admin;
mod backoff;
mod cli;
mod conditions;
mod context;
mod controllers;
mod failpoint;
mod leader;
mod metrics;
mod readiness;
mod run;
mod telemetry;
mod webhook;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    match cli::Cli::parse().command {
        cli::Command::Crds => cli::print_crds(),
        cli::Command::Run(args) => run::main(*args),
    }
}
