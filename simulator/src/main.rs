//! `otpilot-sim`: one vendor's API per process, on loopback by default.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use otpilot_sim::{AccountSpec, ServerCaMaterial, SimConfig, TotpAlgorithm, Vendor};

/// A stand-in for the vendor APIs of otpilot's vendor documents (AUDD,
/// goaxr, Conduit, Acreto, Cryptr): their TOTP MFA flows over HTTPS (mTLS
/// for AUDD), with RFC 6238 replay protection, rotating refresh tokens,
/// lock-out, and an admin API for accounts, client CAs and faults.
#[derive(Debug, Parser)]
#[command(name = "otpilot-sim", version)]
struct Args {
    /// Vendor to simulate: audd, goaxr, conduit, acreto or cryptr.
    #[arg(long, env = "OTPILOT_SIM_VENDOR")]
    vendor: Vendor,

    /// Address the vendor API (HTTPS) binds to. Loopback unless you mean it.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,

    /// Vendor API port (0: any free port).
    #[arg(long, default_value_t = 8443)]
    port: u16,

    /// Address the admin API (plain HTTP, unauthenticated) binds to.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    admin_bind: IpAddr,

    /// Admin API port (0: any free port).
    #[arg(long, default_value_t = 8444)]
    admin_port: u16,

    /// Directory for the server CA (server-ca.pem, server-ca.key), reused
    /// across restarts so clients keep trusting the simulator.
    #[arg(long, default_value = "otpilot-sim-state")]
    state_dir: PathBuf,

    /// TOTP algorithm: SHA1, SHA256 or SHA512.
    #[arg(long, default_value = "SHA1")]
    totp_algorithm: TotpAlgorithm,

    /// TOTP digits (6–9).
    #[arg(long, default_value_t = 6)]
    totp_digits: u8,

    /// TOTP period. AUDD's secret response carries no period: tell clients
    /// through their profile when you change it.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    totp_period: Duration,

    /// Steps accepted either side of the current one (default: 1, Conduit 0).
    #[arg(long)]
    skew_steps: Option<u32>,

    /// Accept a code again within its step (RFC 6238 §5.2 off), as Conduit does.
    #[arg(long)]
    no_replay_protection: bool,

    /// Access token lifetime (Go duration, e.g. 300s, 5m). Default: the
    /// vendor's (AUDD 5m, goaxr 1h, Conduit 1h, Acreto 600s, Cryptr 5m).
    #[arg(long, value_parser = parse_duration)]
    access_token_ttl: Option<Duration>,

    /// Refresh token lifetime.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    refresh_token_ttl: Duration,

    /// Consecutive wrong codes before an account answers 429 (0: never).
    #[arg(long, default_value_t = 5)]
    lockout_threshold: u32,

    /// How long a locked account stays locked. Default: 10s for Conduit
    /// (its rate limiter's block), 60s for the others.
    #[arg(long, value_parser = parse_duration)]
    lockout_window: Option<Duration>,

    /// The status a locked account answers. AUDD (FusionAuth): 429, 409 or
    /// 423; the others: 429.
    #[arg(long)]
    lockout_status: Option<u16>,

    /// Conduit: write the access JWT's `exp` correctly. By default the
    /// simulator reproduces v0.15's bug (`exp − iat` is the lifetime in
    /// milliseconds, read as seconds; the server still expires the session
    /// on time).
    #[arg(long)]
    no_jwt_exp_ms_bug: bool,

    /// Conduit: turn client validation on; every request must then carry
    /// `clientid: ID` and `clientsecret: SECRET` headers.
    #[arg(long, value_parser = parse_client, value_name = "ID:SECRET")]
    require_client: Option<otpilot_sim::ClientCredentials>,

    /// Largest request body accepted, in bytes (413 beyond).
    #[arg(long, default_value_t = 64 * 1024)]
    max_body_bytes: usize,

    /// An account to create at start-up, as USERNAME:PASSWORD:API_KEY
    /// (repeatable). More can be created through the admin API.
    #[arg(long = "account", value_parser = parse_account)]
    accounts: Vec<AccountSpec>,

    /// A client CA certificate (PEM file) to register at start-up
    /// (repeatable); AUDD accepts only client certificates chaining to one.
    #[arg(long = "client-ca")]
    client_cas: Vec<PathBuf>,
}

// The project's one Go-duration parser (units h, m, s, ms); it never
// panics, whatever the size.
fn parse_duration(text: &str) -> Result<Duration, String> {
    otpilot_api::duration::parse_go_duration(text.trim()).map_err(|e| e.to_string())
}

fn parse_client(text: &str) -> Result<otpilot_sim::ClientCredentials, String> {
    match text.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok(otpilot_sim::ClientCredentials {
                id: id.to_owned(),
                secret: secret.to_owned(),
            })
        }
        _ => Err("expected CLIENT_ID:CLIENT_SECRET".to_owned()),
    }
}

fn parse_account(text: &str) -> Result<AccountSpec, String> {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(user), Some(password), Some(key)) if !user.is_empty() && !password.is_empty() => {
            Ok(AccountSpec::new(user, password, key))
        }
        _ => Err("expected USERNAME:PASSWORD:API_KEY".to_owned()),
    }
}

// Reuses the CA in `dir`, or creates and writes one (key readable by the
// owner only).
fn server_ca(dir: &Path) -> anyhow::Result<(ServerCaMaterial, PathBuf)> {
    let cert_path = dir.join("server-ca.pem");
    let key_path = dir.join("server-ca.key");
    if cert_path.exists() && key_path.exists() {
        let ca = ServerCaMaterial {
            cert_pem: std::fs::read_to_string(&cert_path)
                .with_context(|| format!("failed to read {}", cert_path.display()))?,
            key_pem: std::fs::read_to_string(&key_path)
                .with_context(|| format!("failed to read {}", key_path.display()))?,
        };
        return Ok((ca, cert_path));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let ca = otpilot_sim::tls::generate_server_ca().context("failed to generate the server CA")?;
    write_private(&key_path, &ca.key_pem)?;
    std::fs::write(&cert_path, &ca.cert_pem)
        .with_context(|| format!("failed to write {}", cert_path.display()))?;
    Ok((ca, cert_path))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("failed to write {}", path.display()))
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // One crypto provider for the process: ring. Already installed is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Logs go to stderr: stdout carries the URLs scripts read.
    // Colour only on a terminal: log files should not hold escape codes.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();

    let (ca, ca_path) = server_ca(&args.state_dir)?;
    let mut config = SimConfig::new(args.vendor)
        .with_totp(args.totp_algorithm, args.totp_digits)
        .with_period(args.totp_period)
        .with_replay_protection(!args.no_replay_protection)
        .with_jwt_exp_ms_bug(args.vendor == Vendor::Conduit && !args.no_jwt_exp_ms_bug);
    let access_ttl = args
        .access_token_ttl
        .unwrap_or(config.access_token_lifetime);
    let lockout_window = args.lockout_window.unwrap_or(config.lockout_window);
    config = config
        .with_token_lifetimes(access_ttl, args.refresh_token_ttl)
        .with_lockout(args.lockout_threshold, lockout_window);
    if let Some(status) = args.lockout_status {
        config = config.with_lockout_status(status);
    }
    config.client_credentials = args.require_client;
    config.skew_steps = args.skew_steps;
    config.max_body_bytes = args.max_body_bytes;
    config.accounts = args.accounts;
    config.vendor_addr = SocketAddr::new(args.bind, args.port);
    config.admin_addr = SocketAddr::new(args.admin_bind, args.admin_port);
    config.server_ca = Some(ca);
    for path in &args.client_cas {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read client CA {}", path.display()))?;
        config.client_cas.push(pem);
    }

    let handle = otpilot_sim::spawn(config)
        .await
        .context("failed to start the simulator")?;
    let ca_path = std::fs::canonicalize(&ca_path).unwrap_or(ca_path);
    println!("otpilot-sim: vendor {}", handle.vendor());
    println!("vendor URL: {}", handle.base_url());
    println!("admin URL:  {}", handle.admin_url());
    println!("server CA:  {}", ca_path.display());

    let stop = handle.stop();
    tokio::spawn(async move {
        stop_signal().await;
        stop.cancel();
    });
    handle.wait().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_go_durations_and_never_overflow() {
        let cases = [
            ("2s", Some(Duration::from_secs(2))),
            ("300ms", Some(Duration::from_millis(300))),
            ("5m", Some(Duration::from_secs(300))),
            ("1h", Some(Duration::from_secs(3600))),
            ("1h30m", Some(Duration::from_secs(5400))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("2", None),
            ("5d", None),
            ("x", None),
            ("-5s", None),
            ("", None),
            ("99999999999999999999h", None),
            ("9999999999999999h", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).ok(), want, "{text}");
        }
    }

    #[test]
    fn accounts_parse_with_colons_in_the_api_key() {
        let spec = parse_account("bot:pw:key:with:colons").expect("account");
        assert_eq!(spec, AccountSpec::new("bot", "pw", "key:with:colons"));
        assert!(parse_account("bot").is_err());
    }
}
