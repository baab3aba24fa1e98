//! A client for the test control plane, CRD installation and per-test namespaces.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};

/// The environment variable naming the test control plane's kubeconfig.
pub const KUBECONFIG_ENV: &str = "OTPILOT_TEST_KUBECONFIG";

/// Field manager for everything the tests apply.
const FIELD_MANAGER: &str = "otpilot-tests";

/// Why the test control plane could not be reached.
#[derive(thiserror::Error)]
pub enum ClusterError {
    #[error(
        "{KUBECONFIG_ENV} is not set: control-plane tests need the test control plane; \
         run them with scripts/test.sh, or start it with `eval \"$(scripts/control-plane.sh up)\"`"
    )]
    /// `OTPILOT_TEST_KUBECONFIG` is not set.
    NotConfigured,
    #[error(
        "{} is not set: the end-to-end tests need the one-node cluster with real Pods; run them \
         with scripts/test.sh, or start it with `eval \"$(scripts/node.sh up)\"` and load the \
         images with scripts/node/images.sh",
        crate::node::NODE_KUBECONFIG_ENV
    )]
    /// `OTPILOT_NODE_KUBECONFIG` is not set.
    NodeNotConfigured,
    #[error("failed to read the test kubeconfig {path}")]
    /// The kubeconfig could not be read.
    ReadKubeconfig {
        /// Its path.
        path: String,
        #[source]
        /// What kube reported.
        source: kube::config::KubeconfigError,
    },
    #[error("failed to build a client from the test kubeconfig")]
    /// No client could be built from it.
    Client(#[source] kube::Error),
    #[error("failed to apply CRD {name}")]
    /// A CRD could not be applied.
    ApplyCrd {
        /// The CRD.
        name: String,
        #[source]
        /// The API error.
        source: kube::Error,
    },
    #[error("CRD {name} was not Established within {timeout:?}")]
    /// A CRD did not become Established in time.
    CrdNotEstablished {
        /// The CRD.
        name: String,
        /// How long it waited.
        timeout: Duration,
    },
    #[error("failed to create test namespace {name}")]
    /// The test namespace could not be created.
    CreateNamespace {
        /// The namespace.
        name: String,
        #[source]
        /// The API error.
        source: kube::Error,
    },
}

// Tests `expect()` these, which prints Debug: make that the readable message
// with its causes, so a failed run says what to do.
impl std::fmt::Debug for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// A connection to the test control plane.
#[derive(Clone)]
pub struct TestCluster {
    client: Client,
}

impl TestCluster {
    /// Connects to the control plane named by `OTPILOT_TEST_KUBECONFIG`.
    /// Fails (never skips) when it is not set.
    pub async fn connect() -> Result<Self, ClusterError> {
        let path = std::env::var(KUBECONFIG_ENV).map_err(|_| ClusterError::NotConfigured)?;
        Self::from_kubeconfig(path).await
    }

    /// Connects to the one-node cluster named by `OTPILOT_NODE_KUBECONFIG`
    /// (`scripts/node.sh up`). Fails (never skips) when it is not set.
    pub async fn connect_node() -> Result<Self, ClusterError> {
        let path = std::env::var(crate::node::NODE_KUBECONFIG_ENV)
            .map_err(|_| ClusterError::NodeNotConfigured)?;
        Self::from_kubeconfig(path).await
    }

    /// Connects to the control plane of the kubeconfig at `path` (a private
    /// control plane a test started for itself).
    pub async fn from_kubeconfig(path: String) -> Result<Self, ClusterError> {
        install_crypto_provider();
        let kubeconfig =
            Kubeconfig::read_from(&path).map_err(|source| ClusterError::ReadKubeconfig {
                path: path.clone(),
                source,
            })?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|source| ClusterError::ReadKubeconfig { path, source })?;
        let client = Client::try_from(config).map_err(ClusterError::Client)?;
        Ok(Self { client })
    }

    /// Connects and installs the otpilot CRDs: the usual start of a test.
    pub async fn with_crds() -> Result<Self, ClusterError> {
        let cluster = Self::connect().await?;
        cluster.install_crds().await?;
        Ok(cluster)
    }

    /// A client for the cluster.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Applies the generated CRDs (server-side apply, so re-running is a
    /// no-op) and waits until each is Established.
    pub async fn install_crds(&self) -> Result<(), ClusterError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for crd in otpilot_api::crds::all() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(&name, &params, &Patch::Apply(&crd))
                .await
                .map_err(|source| ClusterError::ApplyCrd {
                    name: name.clone(),
                    source,
                })?;
        }
        let timeout = Duration::from_secs(30);
        for crd in otpilot_api::crds::all() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let established = await_condition(api.clone(), &name, conditions::is_crd_established());
            match tokio::time::timeout(timeout, established).await {
                Ok(Ok(_)) => {}
                _ => return Err(ClusterError::CrdNotEstablished { name, timeout }),
            }
        }
        Ok(())
    }

    /// Creates a namespace of its own for one test, named after the test.
    pub async fn namespace(&self, test_name: &str) -> Result<TestNamespace, ClusterError> {
        let name = namespace_name(test_name, rand::random::<u32>());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("otpilot.dev/test".to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .map_err(|source| ClusterError::CreateNamespace {
                name: name.clone(),
                source,
            })?;
        Ok(TestNamespace {
            name,
            client: self.client.clone(),
        })
    }
}

/// A namespace that belongs to one test. It is left in place when the test
/// fails, for inspection; the whole control plane is thrown away after the
/// run anyway.
pub struct TestNamespace {
    name: String,
    client: Client,
}

impl TestNamespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A typed API for namespaced resources in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

/// `otpilot-<test name, DNS-safe, truncated>-<8 hex digits>`.
fn namespace_name(test_name: &str, salt: u32) -> String {
    let mut slug: String = test_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.truncate(40);
    let slug = slug.trim_matches('-');
    format!("otpilot-{slug}-{salt:08x}")
}

/// Installs the workspace's one rustls crypto provider (ring), once.
pub fn install_crypto_provider() {
    // Err means a provider is already installed (by us, earlier): fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_dns_labels_derived_from_the_test_name() {
        let cases = [
            (
                "valid_api_credential_round_trips",
                0xdead_beef,
                "otpilot-valid-api-credential-round-trips-deadbeef",
            ),
            ("crds::Weird Name!", 1, "otpilot-crds--weird-name-00000001"),
            (
                "a_very_long_test_name_that_goes_on_and_on_and_on_forever",
                2,
                "otpilot-a-very-long-test-name-that-goes-on-and-o-00000002",
            ),
        ];
        for (test_name, salt, expected) in cases {
            let name = namespace_name(test_name, salt);
            assert_eq!(name, expected);
            assert!(name.len() <= 63, "{name} is too long for a namespace");
        }
    }
}
