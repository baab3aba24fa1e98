//! How a client reaches vendors, as the operator's and the sidecar's
//! settings give it: directly, through a named HTTP(S) proxy, or (opted in)
//! through the proxy the environment names. Environment variables are not
//! followed by default: one set for some other program, or by a platform
//! for every container, must not route passwords and TOTP codes through a
//! proxy nobody chose for them.

use std::path::PathBuf;

use secrecy::SecretString;

use crate::error::ClientError;
use crate::http::{EgressProxy, HttpSettings, build_client};

/// The settings as a user gives them (flags or environment variables).
#[derive(Debug, Clone, Default)]
pub struct EgressConfig {
    /// `http://host:port` or `https://host:port`, without credentials.
    pub proxy_url: Option<String>,
    /// Hosts reached directly (comma-separated hosts, IPs, CIDRs).
    pub no_proxy: Option<String>,
    /// The proxy's Basic authentication user.
    pub username: Option<String>,
    /// A file holding its password (a mounted Secret key).
    pub password_file: Option<PathBuf>,
    /// Without `proxy_url`: follow `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`
    /// and `NO_PROXY`.
    pub from_env: bool,
}

/// How every vendor client of a process is built.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    /// The proxy every vendor call goes through, if any.
    pub proxy: Option<EgressProxy>,
    /// Follow the environment's proxy variables.
    pub from_env: bool,
}

impl Egress {
    /// Reads the password file and checks that a client can be built, so a
    /// wrong setting stops the process at start with an error naming the
    /// setting (never the password).
    pub fn from_config(config: &EgressConfig) -> Result<Self, ClientError> {
        if config.proxy_url.is_some() && config.from_env {
            return Err(ClientError::Proxy(
                "a proxy URL and following the environment's proxy exclude each other".into(),
            ));
        }
        let password = match &config.password_file {
            Some(path) => Some(SecretString::from(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        ClientError::Proxy(format!(
                            "failed to read the proxy password file {}: {e}",
                            path.display()
                        ))
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            )),
            None => None,
        };
        let egress = Self {
            proxy: config.proxy_url.as_ref().map(|url| EgressProxy {
                url: url.clone(),
                username: config.username.clone(),
                password,
                no_proxy: config.no_proxy.clone(),
            }),
            from_env: config.from_env,
        };
        build_client(&egress.apply(HttpSettings::default()))?;
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

/// The egress flags of the operator's and the sidecar's `run` (feature `cli`).
#[cfg(feature = "cli")]
#[derive(clap::Args, Debug, Clone, Default)]
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

#[cfg(feature = "cli")]
impl EgressArgs {
    /// The settings these flags give.
    pub fn config(&self) -> EgressConfig {
        EgressConfig {
            proxy_url: self.egress_proxy.clone(),
            no_proxy: self.egress_no_proxy.clone(),
            username: self.egress_proxy_username.clone(),
            password_file: self.egress_proxy_password_file.clone(),
            from_env: self.egress_proxy_from_env,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(proxy: Option<&str>, from_env: bool) -> EgressConfig {
        EgressConfig {
            proxy_url: proxy.map(str::to_owned),
            from_env,
            ..EgressConfig::default()
        }
    }

    #[test]
    fn settings_are_checked_before_use() {
        let cases = [
            ("none", config(None, false), true),
            (
                "a proxy",
                config(Some("http://127.0.0.1:3128"), false),
                true,
            ),
            ("from the environment", config(None, true), true),
            ("both", config(Some("http://127.0.0.1:3128"), true), false),
            ("not a URL", config(Some("proxy:3128"), false), false),
            (
                "credentials in the URL",
                config(Some("http://u:hunter2@proxy:3128"), false),
                false,
            ),
        ];
        for (case, config, ok) in cases {
            let result = Egress::from_config(&config);
            assert_eq!(result.is_ok(), ok, "{case}");
            if let Err(e) = result {
                assert!(!e.to_string().contains("hunter2"), "{case}: {e}");
            }
        }
    }

    #[test]
    fn a_missing_password_file_is_named() {
        let config = EgressConfig {
            proxy_url: Some("http://127.0.0.1:3128".into()),
            username: Some("u".into()),
            password_file: Some("/nonexistent/otpilot-proxy-password".into()),
            ..EgressConfig::default()
        };
        let error = Egress::from_config(&config).expect_err("no file");
        assert!(
            error
                .to_string()
                .contains("/nonexistent/otpilot-proxy-password"),
            "{error}"
        );
    }
}
