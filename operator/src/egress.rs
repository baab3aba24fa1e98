//! How the operator reaches vendors: directly, or through an HTTP(S) proxy
//! the user names (enterprise clusters reach the internet only that way).
//! Proxy variables in the environment are ignored unless
//! `--egress-proxy-from-env` says otherwise: a variable set for some other
//! program must not route TOTP codes and passwords through a proxy nobody
//! chose for them.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use otpilot_profile::{EgressProxy, HttpSettings};
use secrecy::SecretString;

/// The egress flags of `run`.
#[derive(Args, Debug, Clone, Default)]
pub struct EgressArgs {
    /// Send every vendor call through this HTTP proxy (`http://host:port`,
    /// or `https://` for TLS to the proxy); HTTPS is tunnelled with CONNECT.
    #[arg(long, env = "OTPILOT_EGRESS_PROXY")]
    pub egress_proxy: Option<String>,
    /// Vendors reached directly, not through the proxy: comma-separated
    /// hosts (`vendor.example` also matches subdomains), IPs and CIDRs.
    #[arg(long, env = "OTPILOT_EGRESS_NO_PROXY")]
    pub egress_no_proxy: Option<String>,
    /// User name for the proxy's Basic authentication.
    #[arg(long, env = "OTPILOT_EGRESS_PROXY_USERNAME")]
    pub egress_proxy_username: Option<String>,
    /// File holding the proxy's password (a mounted Secret key).
    #[arg(long, env = "OTPILOT_EGRESS_PROXY_PASSWORD_FILE")]
    pub egress_proxy_password_file: Option<PathBuf>,
    /// Without --egress-proxy: use the proxy the environment names
    /// (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY).
    #[arg(long, env = "OTPILOT_EGRESS_PROXY_FROM_ENV")]
    pub egress_proxy_from_env: bool,
}

/// The egress part of every vendor client's settings.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    pub proxy: Option<EgressProxy>,
    pub from_env: bool,
}

impl Egress {
    /// Reads the password file and checks the proxy is usable, so a wrong
    /// setting stops the operator at start with a clear error instead of
    /// failing every credential.
    pub fn from_args(args: &EgressArgs) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !(args.egress_proxy.is_some() && args.egress_proxy_from_env),
            "--egress-proxy and --egress-proxy-from-env exclude each other"
        );
        let password = match &args.egress_proxy_password_file {
            Some(path) => Some(SecretString::from(
                std::fs::read_to_string(path)
                    .with_context(|| {
                        format!("reading the egress proxy password file {}", path.display())
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            )),
            None => None,
        };
        let proxy = args.egress_proxy.as_ref().map(|url| EgressProxy {
            url: url.clone(),
            username: args.egress_proxy_username.clone(),
            password,
            no_proxy: args.egress_no_proxy.clone(),
        });
        let egress = Self {
            proxy,
            from_env: args.egress_proxy_from_env,
        };
        otpilot_profile::build_client(&egress.apply(HttpSettings::default()))
            .context("the egress proxy settings")?;
        Ok(egress)
    }

    /// `settings` with this egress.
    pub fn apply(&self, settings: HttpSettings) -> HttpSettings {
        HttpSettings {
            proxy: self.proxy.clone(),
            proxy_from_env: self.from_env,
            ..settings
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(proxy: Option<&str>, from_env: bool) -> EgressArgs {
        EgressArgs {
            egress_proxy: proxy.map(str::to_owned),
            egress_proxy_from_env: from_env,
            ..EgressArgs::default()
        }
    }

    #[test]
    fn settings_are_checked_at_start() {
        let cases = [
            ("none", args(None, false), true),
            ("a proxy", args(Some("http://127.0.0.1:3128"), false), true),
            ("from the environment", args(None, true), true),
            ("both", args(Some("http://127.0.0.1:3128"), true), false),
            ("not a URL", args(Some("proxy:3128"), false), false),
            (
                "credentials in the URL",
                args(Some("http://u:p@proxy:3128"), false),
                false,
            ),
        ];
        for (case, args, ok) in cases {
            assert_eq!(Egress::from_args(&args).is_ok(), ok, "{case}");
        }
    }
}
