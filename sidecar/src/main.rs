//! otpilot-sidecar: see the library's documentation.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use otpilot_sidecar::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("otpilot-sidecar: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Probe(args) => {
            let timeout = Duration::from_secs(2);
            match runtime.block_on(otpilot_sidecar::probe::probe(
                args.api_addr,
                args.kind,
                timeout,
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("otpilot-sidecar probe: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => {
            // One crypto provider for every TLS client in the process.
            let _ = rustls::crypto::ring::default_provider().install_default();
            tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_env_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .init();
            match runtime.block_on(otpilot_sidecar::run::run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "otpilot-sidecar stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
