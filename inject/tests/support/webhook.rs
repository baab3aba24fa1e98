//! A test-only HTTPS server around `otpilot_inject::review`, registered with
//! the real kube-apiserver by a loopback URL and its CA bundle (as envtest
//! does), with the chart's own webhook rules and matchConditions.
//!
//! The operator serves the production webhook; this server does the same
//! three things (parse the review, look the credential up in the Pod's
//! namespace, answer with `review`) so the tests can show that what this
//! crate decides is what the API server applies.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::core::admission::{AdmissionResponse, AdmissionReview};
use otpilot_api::ApiCredential;
use otpilot_api::common::{CertificateSubject, KeyAlgorithm};
use otpilot_inject::InjectConfig;
use otpilot_inject::review::{CredentialLookup, credential_to_look_up};
use otpilot_tests::webhook::{SCOPE_LABEL, scoped_namespace, wait_until_webhook_answers};
use otpilot_tests::{TestCluster, TestNamespace};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::chart::{ci_values, object, render};

/// A running webhook, registered with the API server.
pub struct TestWebhook {
    pub cluster: TestCluster,
    /// Webhook calls the API server made (matchConditions filter before this).
    pub calls: Arc<AtomicUsize>,
    config_name: String,
    scope: String,
    server: JoinHandle<()>,
}

impl TestWebhook {
    /// Serves `config`'s decisions on 127.0.0.1 and registers the chart's
    /// webhook definition (default values) pointing at it.
    pub async fn start(config: InjectConfig) -> TestWebhook {
        let cluster = TestCluster::with_crds().await.expect("test control plane");
        refuse_foreign_injection_webhooks(&cluster).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let scope = format!("{:08x}", rand::random::<u32>());
        let (ca_pem, acceptor) = tls();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(serve(
            listener,
            acceptor,
            cluster.client(),
            config,
            calls.clone(),
        ));
        let config_name = format!("otpilot-inject-test-{scope}");
        register(&cluster, &config_name, &scope, addr, &ca_pem).await;
        TestWebhook {
            cluster,
            calls,
            config_name,
            scope,
            server,
        }
    }

    /// A fresh namespace this webhook serves, once the API server calls it.
    pub async fn namespace(&self, test_name: &str) -> TestNamespace {
        let namespace = scoped_namespace(&self.cluster, test_name, &self.scope).await;
        if let Err(last) = wait_until_webhook_answers(&namespace).await {
            panic!(
                "the API server never called the test webhook {} within 30 s (last: {last}): check the kube-apiserver log",
                self.config_name
            );
        }
        namespace
    }

    /// Unregisters the webhook and stops the server.
    pub async fn stop(self) {
        Api::<MutatingWebhookConfiguration>::all(self.cluster.client())
            .delete(&self.config_name, &DeleteParams::default())
            .await
            .expect("delete the test webhook configuration");
        self.server.abort();
    }
}

/// A chart-installed injection webhook matches every annotated Pod, the
/// tests' too, and its Service has no running operator behind it here: say
/// so instead of failing on its "failed calling webhook" errors.
async fn refuse_foreign_injection_webhooks(cluster: &TestCluster) {
    let configurations = Api::<MutatingWebhookConfiguration>::all(cluster.client())
        .list(&Default::default())
        .await
        .expect("list MutatingWebhookConfigurations");
    let foreign: Vec<String> = configurations
        .items
        .iter()
        .filter(|c| {
            c.webhooks.iter().flatten().any(|w| {
                let scoped = w
                    .namespace_selector
                    .as_ref()
                    .and_then(|s| s.match_labels.as_ref())
                    .is_some_and(|labels| labels.contains_key(SCOPE_LABEL));
                w.name == "inject.otpilot.dev" && !scoped
            })
        })
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert!(
        foreign.is_empty(),
        "MutatingWebhookConfiguration {foreign:?} (an installed otpilot chart) also receives the \
         annotated Pods these tests create: uninstall it before the tests (scripts/chart-check.sh \
         installs and uninstalls the chart), or install the chart with webhook.enabled=false"
    );
}

/// A CA and a serving certificate for 127.0.0.1 signed by it (otpilot-pki,
/// as the operator makes its own).
fn tls() -> (String, TlsAcceptor) {
    otpilot_tests::cluster::install_crypto_provider();
    let now = jiff::Timestamp::now();
    let day = Duration::from_secs(24 * 3600);
    let subject = CertificateSubject {
        common_name: "otpilot inject test CA".to_owned(),
        ..CertificateSubject::default()
    };
    let ca = otpilot_pki::generate_ca(&subject, KeyAlgorithm::EcdsaP256, day, now).expect("CA");
    let names = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let leaf =
        otpilot_pki::issue_server_certificate(&ca, &names, day, now).expect("serving certificate");
    let chain = CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("serving certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.expose_secret().as_bytes())
        .expect("serving key PEM");
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server TLS config");
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (ca.cert_pem, TlsAcceptor::from(Arc::new(server)))
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    client: kube::Client,
    config: InjectConfig,
    calls: Arc<AtomicUsize>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, client, config, calls) = (
            acceptor.clone(),
            client.clone(),
            config.clone(),
            calls.clone(),
        );
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |request| {
                handle(request, client.clone(), config.clone(), calls.clone())
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    client: kube::Client,
    config: InjectConfig,
    calls: Arc<AtomicUsize>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    calls.fetch_add(1, Ordering::SeqCst);
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let response = match serde_json::from_slice::<AdmissionReview<Pod>>(&body) {
        Err(error) => AdmissionResponse::invalid(error),
        Ok(review) => {
            let lookup = match credential_to_look_up(&review) {
                None => CredentialLookup::NotNeeded,
                Some(key) => {
                    let api = Api::<ApiCredential>::namespaced(client, &key.namespace);
                    match api.get_opt(&key.name).await {
                        Ok(Some(credential)) => CredentialLookup::Found(Box::new(credential)),
                        Ok(None) => CredentialLookup::NotFound,
                        Err(error) => CredentialLookup::Failed(error.to_string()),
                    }
                }
            };
            otpilot_inject::review(review, &lookup, &config)
        }
    };
    let body = serde_json::to_vec(&response.into_review()).unwrap_or_default();
    let response = Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    Ok(response)
}

/// The chart's MutatingWebhookConfiguration (default values), pointed at the
/// test server by URL and scoped to this test's namespaces.
async fn register(cluster: &TestCluster, name: &str, scope: &str, addr: SocketAddr, ca_pem: &str) {
    let rendered = object(
        &render(&ci_values("default-values.yaml")),
        "MutatingWebhookConfiguration",
        "otpilot",
    );
    let mut configuration: MutatingWebhookConfiguration =
        serde_json::from_value(serde_json::to_value(rendered).expect("YAML to JSON"))
            .expect("the chart renders a valid MutatingWebhookConfiguration");
    configuration.metadata.name = Some(name.to_owned());
    for webhook in configuration.webhooks.iter_mut().flatten() {
        webhook.client_config.service = None;
        webhook.client_config.url = Some(format!("https://{addr}/inject"));
        webhook.client_config.ca_bundle = Some(ByteString(ca_pem.as_bytes().to_vec()));
        webhook.namespace_selector = Some(
            serde_json::from_value(json!({"matchLabels": {SCOPE_LABEL: scope}}))
                .expect("label selector"),
        );
    }
    Api::<MutatingWebhookConfiguration>::all(cluster.client())
        .create(&PostParams::default(), &configuration)
        .await
        .expect("register the test webhook");
}
