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
        Command::Completion { shell } => print(&completion(shell))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The completion script for `shell`.
fn completion(shell: clap_complete::Shell) -> String {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kubectl-otpilot", &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    // clap_complete 4.6 names bash's subcommand states inconsistently for a
    // hyphenated binary (`kubectl__otpilot` where it sets them,
    // `kubectl__subcmd__otpilot` where it matches them): nothing past the
    // first word would complete.
    match shell {
        clap_complete::Shell::Bash => {
            script.replace("kubectl__subcmd__otpilot", "kubectl__otpilot")
        }
        _ => script,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_completion_matches_the_states_it_sets() {
        let script = completion(clap_complete::Shell::Bash);
        assert!(script.contains("complete -F _kubectl__otpilot"));
        assert!(script.contains("kubectl__otpilot__subcmd__profile__subcmd__try)"));
        assert!(!script.contains("kubectl__subcmd__otpilot"));
        for shell in [clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            assert!(completion(shell).contains("kubectl-otpilot"), "{shell}");
        }
    }
}
