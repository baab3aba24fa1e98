//! `kubectl-otpilot`: the kubectl plugin for otpilot. `kubectl otpilot
//! --help` lists the commands; docs/cli.md shows each with an example.

mod args;
mod ca;
mod kube_client;
mod profile;
mod request;
mod status;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

use args::{CaCommand, Cli, Command, ProfileCommand};

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Status(args) => print(&status::run(&args).await?)?,
        Command::Ca(CaCommand::Export { name, kube }) => {
            let export = ca::export(&name, &kube).await?;
            print(&export.pem)?;
            eprintln!("{}", export.fingerprint_line);
        }
        Command::Renew(args) => print(&request::renew(&args).await?)?,
        Command::Reenroll(args) => print(&request::reenroll(&args).await?)?,
        Command::Profile(ProfileCommand::Check { files }) => {
            if !profile::check(&files) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Profile(ProfileCommand::Try(args)) => profile::try_flow(&args).await?,
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "kubectl-otpilot",
                &mut std::io::stdout(),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
