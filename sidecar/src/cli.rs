//! The command line (every `run` flag also from an `OTPILOT_*` variable).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use otpilot_api::sidecar::{DEFAULT_API_PORT, DEFAULT_PROXY_PORT};

/// otpilot sidecar: logs in to a vendor with TOTP, keeps its token fresh and
/// serves it on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sidecar.
    Run(Box<RunArgs>),
    /// Ask a running sidecar whether it is ready or alive (exit 0 or 1):
    /// the exec probe for distroless images, since the API binds 127.0.0.1
    /// only and the kubelet's HTTP probes target the pod IP.
    Probe(ProbeArgs),
}

fn default_api_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_API_PORT))
}

fn default_proxy_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PROXY_PORT))
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The mounted `<name>-runtime` Secret.
    #[arg(long, env = "OTPILOT_RUNTIME_DIR")]
    pub runtime_dir: PathBuf,
    /// The file holding the account's password (a mounted Secret key); omit
    /// for vendors whose profile uses no password.
    #[arg(long, env = "OTPILOT_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// The file holding the account's API key, when the vendor needs one.
    #[arg(long, env = "OTPILOT_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// A further vendor secret the profile uses, as NAME=FILE (the
    /// profile's secret value NAME, read from FILE, a mounted Secret key;
    /// reloaded like the password file). Repeatable; in the variable,
    /// comma-separated.
    #[arg(long = "secret-value", env = "OTPILOT_SECRET_VALUES", value_delimiter = ',', value_parser = secret_value)]
    pub secret_values: Vec<(String, PathBuf)>,
    /// Local API (`/token`, `/healthz`, `/readyz`, `/metrics`); loopback only.
    #[arg(long, env = "OTPILOT_API_ADDR", default_value_t = default_api_addr(), value_parser = loopback)]
    pub api_addr: SocketAddr,
    /// Admin listener (`/healthz`, `/readyz`, `/metrics`; never `/token`),
    /// for the kubelet's HTTP probes and Prometheus: any address, usually
    /// the Pod IP (the webhook passes `$(OTPILOT_POD_IP):8183`). An IPv6
    /// address may come without brackets (`fd00::5:8183`): the part after
    /// the last `:` is the port. Unset: no admin listener.
    #[arg(long, env = "OTPILOT_ADMIN_ADDR", value_parser = admin_addr)]
    pub admin_addr: Option<SocketAddr>,
    /// Authenticating reverse proxy; loopback only.
    #[arg(long, env = "OTPILOT_PROXY_ADDR", default_value_t = default_proxy_addr(), value_parser = loopback)]
    pub proxy_addr: SocketAddr,
    /// Also write the token to this file (atomically).
    #[arg(long, env = "OTPILOT_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The token file's mode, octal: 0600 (default) or, for app containers
    /// running as other users in the same Pod, 0640 / 0644.
    #[arg(long, env = "OTPILOT_TOKEN_FILE_MODE", default_value = "0600", value_parser = crate::token_file::parse_mode)]
    pub token_file_mode: u32,
    /// Renew when this much of the token's life remains (default: a third
    /// of its life or 60 s, whichever is larger).
    #[arg(long, env = "OTPILOT_REFRESH_BEFORE", value_parser = seconds)]
    pub refresh_before: Option<Duration>,
    /// How often to look for changed inputs, in seconds.
    #[arg(long, env = "OTPILOT_POLL_INTERVAL", default_value = "2", value_parser = seconds)]
    pub poll_interval: Duration,
    /// How long in-flight requests may take to finish after SIGTERM, in seconds.
    #[arg(long, env = "OTPILOT_SHUTDOWN_GRACE", default_value = "10", value_parser = seconds)]
    pub shutdown_grace: Duration,
    /// Answer proxied requests only when they carry the `/token` request
    /// header (`Otpilot-Request: true`), as `/token` does; off by default
    /// (transparent proxying).
    #[arg(long, env = "OTPILOT_PROXY_REQUIRE_HEADER")]
    pub proxy_require_header: bool,
    /// Timeout of one proxied request, in seconds.
    #[arg(long, env = "OTPILOT_PROXY_TIMEOUT", default_value = "300", value_parser = seconds)]
    pub proxy_timeout: Duration,
    /// How vendors are reached: directly, or through an HTTP proxy.
    #[command(flatten)]
    pub egress: otpilot_profile::EgressArgs,
    /// Share one vendor session with the other replicas of this
    /// ApiCredential (its Lease and `<name>-session` Secret, through the
    /// Pod's ServiceAccount); unset, or without the permission: log in alone.
    #[arg(long, env = "OTPILOT_SESSION_CREDENTIAL")]
    pub session_credential: Option<String>,
    /// The credential's namespace (default: the Pod's, or the kubeconfig's).
    #[arg(long, env = "OTPILOT_SESSION_NAMESPACE")]
    pub session_namespace: Option<String>,
    /// This replica's identity in the Lease (default: `HOSTNAME`, the pod name).
    #[arg(long, env = "OTPILOT_SESSION_IDENTITY")]
    pub session_identity: Option<String>,
    /// How long the session Lease holds without renewal, in whole seconds:
    /// how soon another replica takes over from a holder that died.
    #[arg(long, env = "OTPILOT_SESSION_LEASE_DURATION", default_value = "10", value_parser = seconds)]
    pub session_lease_duration: Duration,
}

/// What `probe` asks.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProbeKind {
    /// `/readyz`.
    Ready,
    /// `/healthz`.
    Live,
}

/// `probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Which probe.
    pub kind: ProbeKind,
    /// The sidecar's local API.
    #[arg(long, env = "OTPILOT_API_ADDR", default_value_t = default_api_addr(), value_parser = loopback)]
    pub api_addr: SocketAddr,
}

/// Refuses any address other than loopback: the token must not leave the pod.
pub fn loopback(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|e| format!("not an address like 127.0.0.1:8181: {e}"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!(
            "{} is not a loopback address: the sidecar binds 127.0.0.1 or ::1 only, so the token never leaves the pod",
            addr.ip()
        ))
    }
}

/// `HOST:PORT`, where HOST may be an IPv6 address without brackets: the
/// kubelet substitutes a bare Pod IP into `$(OTPILOT_POD_IP):PORT`.
pub fn admin_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let usage = || format!("{text:?} is not an address like 10.0.0.5:8183 or [fd00::5]:8183");
    let (host, port) = text.rsplit_once(':').ok_or_else(usage)?;
    let ip: std::net::Ipv6Addr = host.parse().map_err(|_| usage())?;
    let port: u16 = port.parse().map_err(|_| usage())?;
    Ok(SocketAddr::from((ip, port)))
}

/// `NAME=FILE`: see [`otpilot_api::secret_value_flag`].
pub fn secret_value(text: &str) -> Result<(String, PathBuf), String> {
    otpilot_api::secret_value_flag::parse_secret_value_flag(text)
}

/// Whole or fractional seconds.
pub fn seconds(text: &str) -> Result<Duration, String> {
    let s: f64 = text
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(s)
        .map_err(|_| format!("{text:?} is not a usable number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        let cases = [
            ("127.0.0.1:8181", true),
            ("127.0.0.2:1", true),
            ("[::1]:8181", true),
            ("0.0.0.0:8181", false),
            ("10.0.0.5:8181", false),
            ("[::]:8181", false),
            ("localhost:8181", false),
        ];
        for (addr, ok) in cases {
            assert_eq!(loopback(addr).is_ok(), ok, "{addr}");
        }
    }

    #[test]
    fn admin_addresses_take_a_pod_ip_of_either_family() {
        let cases = [
            ("10.88.0.5:8183", Some("10.88.0.5:8183")),
            ("[fd00::5]:8183", Some("[fd00::5]:8183")),
            ("fd00::5:8183", Some("[fd00::5]:8183")),
            ("0.0.0.0:8183", Some("0.0.0.0:8183")),
            (":8183", None),
            ("10.88.0.5", None),
            ("fd00::5", None),
            ("pod:8183", None),
            ("10.88.0.5:http", None),
        ];
        for (text, want) in cases {
            let got = admin_addr(text).ok().map(|a| a.to_string());
            assert_eq!(got.as_deref(), want, "{text}");
        }
    }

    #[test]
    fn seconds_take_fractions_and_an_s() {
        assert_eq!(seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(seconds("0.5s"), Ok(Duration::from_millis(500)));
        assert!(seconds("-1").is_err());
        assert!(seconds("soon").is_err());
    }

    #[test]
    fn secret_values_repeat_as_name_equals_file() {
        // The NAME=FILE rules are tested with the parser in otpilot-api.
        assert!(secret_value("Client=/f").is_err());
        let cli = Cli::try_parse_from([
            "otpilot-sidecar",
            "run",
            "--runtime-dir",
            "/r",
            "--secret-value",
            "a=/f/a",
            "--secret-value",
            "b=/f/b",
        ])
        .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("run")
        };
        assert_eq!(
            args.secret_values,
            vec![
                ("a".to_owned(), PathBuf::from("/f/a")),
                ("b".to_owned(), PathBuf::from("/f/b"))
            ]
        );
    }

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
