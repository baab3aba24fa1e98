//! What a tenant controls cannot take the shared operator down: a vendor
//! (any `baseUrl`) answering 50 MB of `[0,0,0,…]`, and a ClusterMfaProfile
//! whose template would run for ever. Each ends in a clear condition, the
//! operator stays within its chart's memory limit, and other work carries
//! on: another credential becomes Ready, the webhook keeps answering.

mod support;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use otpilot_api::common::{CertificateSubject, KeyAlgorithm};
use otpilot_api::{ClusterMfaProfile, ClusterMfaProfileSpec};
use otpilot_sim::Vendor;
use otpilot_tests::TestCluster;
use secrecy::ExposeSecret;
use serde_json::json;
use support::*;

const HUGE: usize = 50 * 1024 * 1024;

/// The operator's memory limit in the chart's values, in bytes.
fn chart_memory_limit() -> u64 {
    let values = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/otpilot/values.yaml"
    ))
    .expect("chart values");
    let after = &values[values.find("limits:").expect("a limits block")..];
    let line = after
        .lines()
        .find(|l| l.trim_start().starts_with("memory:"))
        .expect("a memory limit");
    let value = line.split(':').nth(1).expect("value").trim();
    let mebibytes: u64 = value
        .strip_suffix("Mi")
        .expect("in Mi")
        .parse()
        .expect("a number");
    mebibytes * 1024 * 1024
}

/// The peak resident set of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .expect("value")
        .parse()
        .expect("number");
    kib * 1024
}

/// An HTTPS server on 127.0.0.1 that answers every request with 50 MB of
/// `[0,0,0,…` (chunked, so only reading tells the size); its base URL and
/// CA.
async fn hostile_vendor() -> (String, String) {
    install_crypto_provider();
    let now = jiff::Timestamp::now();
    let day = Duration::from_secs(24 * 3600);
    let subject = CertificateSubject {
        common_name: "hostile vendor CA".to_owned(),
        ..CertificateSubject::default()
    };
    let ca = otpilot_pki::generate_ca(&subject, KeyAlgorithm::EcdsaP256, day, now).expect("CA");
    let leaf = otpilot_pki::issue_server_certificate(&ca, &["127.0.0.1".to_owned()], day, now)
        .expect("serving certificate");
    let chain = CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("chain");
    let key =
        PrivateKeyDer::from_pem_slice(leaf.key_pem.expose_secret().as_bytes()).expect("a key");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let mut buf = [0u8; 16 * 1024];
                if tls.read(&mut buf).await.is_err() {
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                            Transfer-Encoding: chunked\r\n\r\n";
                if tls.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let piece = "0,".repeat(32 * 1024);
                let chunk = format!("{:x}\r\n{piece}\r\n", piece.len());
                let mut written = 0;
                while written < HUGE {
                    if tls.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    written += piece.len();
                }
                let _ = tls.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    (format!("https://{addr}"), ca.cert_pem)
}

#[tokio::test]
async fn a_vendor_answering_fifty_megabytes_gets_a_condition_and_costs_no_memory() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("huge-answer").await.expect("namespace");
    let healthy = vendor(Vendor::Goaxr).await;
    let (hostile_url, hostile_ca_pem) = hostile_vendor().await;
    create_login_secret(&ns).await;
    create_server_ca(&ns, &healthy).await;
    let hostile_ca = ConfigMap {
        metadata: ObjectMeta {
            name: Some("hostile-ca".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("ca.crt".to_owned(), hostile_ca_pem)])),
        ..ConfigMap::default()
    };
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &hostile_ca)
        .await
        .expect("hostile CA");
    let mut bad = credential("hostile", "goaxr", &hostile_url, "Retain");
    if let Some(ca) = bad.spec.server_ca.as_mut() {
        ca.name = "hostile-ca".into();
    }
    create_credential(&ns, &bad).await;
    create_credential(
        &ns,
        &credential("bot", "goaxr", &healthy.base_url(), "Retain"),
    )
    .await;
    let operator = Operator::start(ns.name()).await;

    let refused = wait_for(
        &ns,
        "hostile",
        Duration::from_secs(60),
        &operator,
        "Enrolled=False, VendorResponseTooLarge",
        |c| condition(c, "Enrolled") == Some(("False".into(), "VendorResponseTooLarge".into())),
    )
    .await;
    let message = refused
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Enrolled"))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("maxResponseBytes") && message.contains("baseUrl"),
        "says what to do: {message}"
    );
    assert!(!message.contains("0,0,0"), "no body content: {message}");
    wait_for_ready(&ns, "bot", &operator).await;
    // A few more passes at the hostile vendor.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let peak = peak_rss(operator.pid());
    let limit = chart_memory_limit();
    println!(
        "operator peak RSS {} MiB, limit {} MiB",
        peak >> 20,
        limit >> 20
    );
    assert!(
        peak < limit,
        "peak RSS {peak} over the chart's limit {limit}"
    );
}

/// A CA and a serving certificate for 127.0.0.1 in `dir`; returns the CA.
fn write_serving_certificate(dir: &std::path::Path) -> String {
    let now = jiff::Timestamp::now();
    let day = Duration::from_secs(24 * 3600);
    let subject = CertificateSubject {
        common_name: "hostile-inputs test CA".to_owned(),
        ..CertificateSubject::default()
    };
    let ca = otpilot_pki::generate_ca(&subject, KeyAlgorithm::EcdsaP256, day, now).expect("CA");
    let leaf = otpilot_pki::issue_server_certificate(&ca, &["127.0.0.1".to_owned()], day, now)
        .expect("serving certificate");
    std::fs::write(dir.join("tls.crt"), &leaf.chain_pem).expect("write tls.crt");
    std::fs::write(dir.join("tls.key"), leaf.key_pem.expose_secret()).expect("write tls.key");
    ca.cert_pem
}

/// An AdmissionReview for a Pod the webhook has nothing to do with.
fn review() -> serde_json::Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "d6f1c0de-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "app", "namespace": "default"},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]}
            },
            "dryRun": false
        }
    })
}

/// Posts an AdmissionReview to the webhook: its HTTP status, and how long
/// the answer took.
async fn ask(client: &reqwest::Client, url: &str) -> (Result<u16, reqwest::Error>, Duration) {
    let started = Instant::now();
    let answer = client.post(url).json(&review()).send().await;
    (answer.map(|r| r.status().as_u16()), started.elapsed())
}

#[tokio::test]
async fn an_exponential_template_makes_its_profile_invalid_and_the_webhook_keeps_answering() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("costly-template")
        .await
        .expect("namespace");
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_pem = write_serving_certificate(dir.path());
    let settings = dir.path().join("inject.json");
    std::fs::write(
        &settings,
        json!({"sidecarImage": "localhost/otpilot/sidecar:test"}).to_string(),
    )
    .expect("write inject.json");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let cert_dir = dir.path().display().to_string();
    let settings = settings.display().to_string();
    let operator = Operator::start_with(
        ns.name(),
        "otpilot-operator",
        &[
            ("OTPILOT_WEBHOOK_ADDR", addr.as_str()),
            ("OTPILOT_WEBHOOK_CERT_DIR", cert_dir.as_str()),
            ("OTPILOT_INJECT_CONFIG", settings.as_str()),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA")])
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let url = format!("https://{addr}/inject");
    // The webhook answers before any profile exists.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(ask(&client, &url).await.0, Ok(200)) {
        assert!(Instant::now() < deadline, "the webhook never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Several such profiles, more than the runtime has worker threads.
    let suffix = ns.name().rsplit('-').next().unwrap_or("x").to_owned();
    let names: Vec<String> = (0..4).map(|i| format!("costly-{suffix}-{i}")).collect();
    let profiles = kube::Api::<ClusterMfaProfile>::all(cluster.client());
    for name in &names {
        let mut spec = otpilot_profile::builtin::get("goaxr")
            .expect("goaxr")
            .spec()
            .clone();
        spec.login.steps[0].path = "/{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}\
                                    {% endif %}{% endmacro %}{{ f(60) }}"
            .into();
        profiles
            .create(
                &PostParams::default(),
                &ClusterMfaProfile::new(name, ClusterMfaProfileSpec { profile: spec }),
            )
            .await
            .expect("create ClusterMfaProfile");
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut slowest = Duration::ZERO;
    loop {
        let (answer, took) = ask(&client, &url).await;
        assert_eq!(answer.ok(), Some(200), "the webhook answers");
        slowest = slowest.max(took);
        let mut invalid = 0;
        for name in &names {
            let p = profiles.get(name).await.expect("get profile");
            let valid = p
                .status
                .iter()
                .flat_map(|s| s.conditions.iter())
                .find(|c| c.type_ == "Valid")
                .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
            if let Some((status, reason, message)) = valid
                && status == "False"
            {
                assert_eq!(reason, "TemplateTooExpensive", "{message}");
                assert!(message.contains("login.steps[0].path"), "{message}");
                invalid += 1;
            }
        }
        if invalid == names.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every profile became Valid=False:\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        slowest < Duration::from_secs(1),
        "the webhook took {slowest:?} to answer while the profiles were validated"
    );
    for name in &names {
        profiles
            .delete(name, &Default::default())
            .await
            .expect("delete profile");
    }
}
