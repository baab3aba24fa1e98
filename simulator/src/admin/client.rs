//! A typed client for the admin API, for tests in this and other crates.

use serde::de::DeserializeOwned;

use crate::accounts::AccountState;
use crate::admin::{AdvertisedConfig, ClientCas};
use crate::config::AccountSpec;
use crate::faults::Faults;

/// An admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Could not build the HTTP client.
    #[error("failed to build the admin HTTP client")]
    Client(#[source] reqwest::Error),
    /// The request did not complete.
    #[error("failed to reach the admin API")]
    Transport(#[source] reqwest::Error),
    /// The admin API answered an error.
    #[error("admin API answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
}

/// Talks to one simulator's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client for the admin API at `admin_url` (e.g. `http://127.0.0.1:PORT`).
    pub fn new(admin_url: impl Into<String>) -> Result<Self, AdminError> {
        // The admin API is plain HTTP, but reqwest builds a TLS stack
        // anyway: give it the ring provider explicitly rather than relying
        // on a process default.
        let tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            });
        let mut builder = reqwest::Client::builder().no_proxy();
        if let Ok(tls) = tls {
            builder = builder.tls_backend_preconfigured(tls);
        }
        Ok(Self {
            base: admin_url.into().trim_end_matches('/').to_owned(),
            http: builder.build().map_err(AdminError::Client)?,
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, AdminError> {
        let response = request.send().await.map_err(AdminError::Transport)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(AdminError::Status {
                status: status.as_u16(),
                body,
            });
        }
        response.json().await.map_err(AdminError::Transport)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an account; the returned `id` is what vendor paths need.
    pub async fn create_account(&self, spec: &AccountSpec) -> Result<AccountState, AdminError> {
        self.send(self.http.post(self.url("/accounts")).json(spec))
            .await
    }

    /// One account, by id or username.
    pub async fn account(&self, id_or_username: &str) -> Result<AccountState, AdminError> {
        let key = percent_encoding::utf8_percent_encode(
            id_or_username,
            percent_encoding::NON_ALPHANUMERIC,
        );
        self.send(self.http.get(self.url(&format!("/accounts/{key}"))))
            .await
    }

    /// Every account.
    pub async fn accounts(&self) -> Result<Vec<AccountState>, AdminError> {
        self.send(self.http.get(self.url("/accounts"))).await
    }

    /// Turns MFA off for an account and clears its lock-out.
    pub async fn reset_mfa(&self, id_or_username: &str) -> Result<AccountState, AdminError> {
        let key = percent_encoding::utf8_percent_encode(
            id_or_username,
            percent_encoding::NON_ALPHANUMERIC,
        );
        self.send(self.http.delete(self.url(&format!("/accounts/{key}/mfa"))))
            .await
    }

    /// Registers a client CA (PEM); returns the subjects registered.
    pub async fn register_client_ca(&self, pem: &str) -> Result<Vec<String>, AdminError> {
        let cas: ClientCas = self
            .send(
                self.http
                    .post(self.url("/client-cas"))
                    .json(&serde_json::json!({ "pem": pem })),
            )
            .await?;
        Ok(cas.subjects)
    }

    /// The faults in force.
    pub async fn faults(&self) -> Result<Faults, AdminError> {
        self.send(self.http.get(self.url("/faults"))).await
    }

    /// Replaces the faults in force.
    pub async fn set_faults(&self, faults: &Faults) -> Result<Faults, AdminError> {
        self.send(self.http.put(self.url("/faults")).json(faults))
            .await
    }

    /// Clears every fault.
    pub async fn clear_faults(&self) -> Result<(), AdminError> {
        let _: serde_json::Value = self.send(self.http.delete(self.url("/faults"))).await?;
        Ok(())
    }

    /// The request counters (vendor calls since start-up).
    pub async fn stats(&self) -> Result<crate::Stats, AdminError> {
        self.send(self.http.get(self.url("/stats"))).await
    }

    /// What the simulator advertises (vendor, TOTP parameters, lifetimes).
    pub async fn config(&self) -> Result<AdvertisedConfig, AdminError> {
        self.send(self.http.get(self.url("/config"))).await
    }
}
