//! The HTTPS client: rustls with the ring provider, an optional client
//! certificate (mTLS) and an optional private server CA, timeouts on every
//! call.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret, SecretString};

use crate::error::ClientError;
use crate::retry::RetryPolicy;

/// A client certificate chain and its private key, PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    /// Certificate chain, leaf first.
    pub cert_chain_pem: String,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: SecretString,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("key_pem", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// An HTTP proxy every vendor call goes through (some clusters reach the
/// internet only that way). HTTPS calls are tunnelled with `CONNECT`, so the
/// proxy sees the vendor's host name, never the request. `Debug` hides the
/// password.
#[derive(Clone)]
pub struct EgressProxy {
    /// `http://host:port` (or `https://` for TLS to the proxy itself),
    /// without credentials.
    pub url: String,
    /// User name for the proxy's Basic authentication.
    pub username: Option<String>,
    /// Password for the proxy's Basic authentication.
    pub password: Option<SecretString>,
    /// Hosts reached directly, not through the proxy: comma-separated
    /// host names (`vendor.example` also matches its subdomains), IP
    /// addresses and CIDR ranges, as in `NO_PROXY`.
    pub no_proxy: Option<String>,
}

impl std::fmt::Debug for EgressProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressProxy")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// How to talk to a vendor.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Client certificate for mTLS.
    pub client_identity: Option<ClientIdentity>,
    /// A private CA (PEM) that signs the vendor's server certificate; when
    /// set it is the only trust anchor. Otherwise the platform's roots.
    pub server_ca_pem: Option<String>,
    /// Timeout of one whole request.
    pub request_timeout: Duration,
    /// Timeout of connecting (TCP + TLS).
    pub connect_timeout: Duration,
    /// Retry bounds.
    pub retry: RetryPolicy,
    /// `User-Agent`.
    pub user_agent: String,
    /// A proxy for every call. Without one, none is used: proxy variables
    /// in the environment are ignored, so credentials never take a path
    /// nobody configured.
    pub proxy: Option<EgressProxy>,
    /// Without `proxy`: use the proxy the environment names
    /// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`). Off unless
    /// the user opts in: a variable set for some other program must not
    /// route credentials through a proxy nobody chose for them.
    pub proxy_from_env: bool,
    /// Accept a plain `http://` base URL. Only for tests against a local
    /// server: over plain HTTP, passwords, API keys, codes and tokens
    /// travel in clear text.
    pub allow_plain_http: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            client_identity: None,
            server_ca_pem: None,
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            user_agent: concat!("otpilot/", env!("CARGO_PKG_VERSION")).to_owned(),
            proxy: None,
            proxy_from_env: false,
            allow_plain_http: false,
        }
    }
}

/// The rustls configuration for these settings, on the ring provider.
pub fn tls_config(settings: &HttpSettings) -> Result<ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Build(e.to_string()))?;
    let builder = match &settings.server_ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = parse_certs(pem, "server CA")?;
            for cert in certs {
                roots.add(cert).map_err(|e| ClientError::Pem {
                    what: "server CA",
                    reason: e.to_string(),
                })?;
            }
            builder.with_root_certificates(roots)
        }
        None => {
            let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| ClientError::Build(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    };
    match &settings.client_identity {
        Some(id) => {
            let chain = parse_certs(&id.cert_chain_pem, "client certificate")?;
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.expose_secret().as_bytes())
                .map_err(|_| ClientError::Pem {
                    what: "client private key",
                    reason: "no PEM private key found (PKCS#8, PKCS#1 or SEC1)".to_owned(),
                })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ClientError::Pem {
                    what: "client certificate",
                    reason: e.to_string(),
                })
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

fn parse_certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Pem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ClientError::Pem {
            what,
            reason: "no PEM certificate found".to_owned(),
        });
    }
    Ok(certs)
}

/// A reqwest client for these settings. Redirects are not followed (a
/// login answered with a redirect is a profile problem, and following one
/// could send credentials elsewhere); no proxy from the environment, only
/// the configured one.
pub fn build_client(settings: &HttpSettings) -> Result<reqwest::Client, ClientError> {
    let tls = tls_config(settings)?;
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(settings.request_timeout)
        .connect_timeout(settings.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(settings.user_agent.clone());
    match &settings.proxy {
        Some(proxy) => builder = builder.no_proxy().proxy(reqwest_proxy(proxy)?),
        // reqwest reads the environment's proxy variables unless told not to.
        None if settings.proxy_from_env => {}
        None => builder = builder.no_proxy(),
    }
    builder
        .build()
        .map_err(|e| ClientError::Build(e.without_url().to_string()))
}

fn reqwest_proxy(proxy: &EgressProxy) -> Result<reqwest::Proxy, ClientError> {
    let invalid = |reason: &str| ClientError::Proxy(reason.to_owned());
    let url = url::Url::parse(&proxy.url).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host().is_none() {
        return Err(invalid("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "it carries credentials; give them as the proxy's username and password",
        ));
    }
    let mut out = reqwest::Proxy::all(url.as_str()).map_err(|e| invalid(&e.to_string()))?;
    if let Some(user) = &proxy.username {
        let password = proxy
            .password
            .as_ref()
            .map(|p| p.expose_secret())
            .unwrap_or_default();
        out = out.basic_auth(user, password);
    }
    if let Some(list) = proxy.no_proxy.as_deref().filter(|l| !l.trim().is_empty()) {
        out = out.no_proxy(reqwest::NoProxy::from_string(list));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_is_a_clear_error() {
        let settings = HttpSettings {
            server_ca_pem: Some("not a pem".into()),
            ..HttpSettings::default()
        };
        let err = tls_config(&settings).expect_err("garbage");
        assert_eq!(
            err,
            ClientError::Pem {
                what: "server CA",
                reason: "no PEM certificate found".into()
            }
        );
    }

    #[test]
    fn unusable_proxies_are_refused_without_showing_credentials() {
        let cases = [
            ("socks", "socks5://127.0.0.1:1080"),
            (
                "credentials in the URL",
                "http://user:SECRETPW@127.0.0.1:3128",
            ),
            ("not a URL", "proxy.local:3128"),
        ];
        for (what, url) in cases {
            let settings = HttpSettings {
                proxy: Some(EgressProxy {
                    url: url.into(),
                    username: None,
                    password: None,
                    no_proxy: None,
                }),
                ..HttpSettings::default()
            };
            let err = build_client(&settings).expect_err(what);
            assert!(matches!(err, ClientError::Proxy(_)), "{what}: {err}");
            assert!(!err.to_string().contains("SECRETPW"), "{what}: {err}");
        }
        let proxy = EgressProxy {
            url: "http://127.0.0.1:3128".into(),
            username: Some("u".into()),
            password: Some(SecretString::from("SECRETPW")),
            no_proxy: Some("10.0.0.0/8,.svc".into()),
        };
        assert!(!format!("{proxy:?}").contains("SECRETPW"));
    }

    #[test]
    fn client_identity_debug_hides_the_key() {
        let id = ClientIdentity {
            cert_chain_pem: "cert".into(),
            key_pem: SecretString::from("-----BEGIN PRIVATE KEY-----secret".to_owned()),
        };
        assert!(!format!("{id:?}").contains("secret"));
    }
}
