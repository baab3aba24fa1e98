//! otpilot-sidecar: logs in with TOTP, refreshes the bearer token before it
//! expires and serves it on 127.0.0.1.
//!
//! The token server, refresher and proxy are the next step (see
//! docs/architecture.md); this binary only carries the crate's place in the
//! workspace and its command-line identity.

use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "otpilot sidecar: serves a fresh vendor bearer token on localhost"
)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    eprintln!("otpilot-sidecar: the token server is not part of this release yet");
    std::process::exit(2);
}
