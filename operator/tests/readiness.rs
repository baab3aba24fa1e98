//! `/readyz` of the operator PROCESS against the real kube-apiserver means
//! what the chart's readiness probe comment says: connected and, when it
//! serves the webhook, a serving certificate that loads and is within its
//! validity. The same state is in `otpilot_operator_webhook_certificate_*`,
//! which the chart's OtpilotWebhookCertificate* alerts read.
//! Needs the test control plane (`eval "$(scripts/control-plane.sh up)"`).

mod support;

use std::time::{Duration, Instant};

use otpilot_api::common::{CertificateSubject, KeyAlgorithm};
use otpilot_tests::TestCluster;
use secrecy::ExposeSecret;
use support::Operator;
use support::webhook_server::{free_port, write_serving_certificate};

/// `/readyz`'s status and body.
async fn readyz(operator: &Operator) -> (u16, String) {
    let url = format!("{}/readyz", operator.admin.as_deref().unwrap_or_default());
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(error) => (0, error.to_string()),
    }
}

/// Polls until `/readyz` answers `status` with a body containing `says`
/// (the operator connects first; the kubelet probes the same way).
async fn wait_for_readyz(operator: &Operator, status: u16, says: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = readyz(operator).await;
        if got == status && body.contains(says) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {status} '{says}' within 30 s (last: {got} {body}); log:\n{}",
            operator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A serving certificate for 127.0.0.1 whose validity ended a day ago.
fn write_expired_certificate(dir: &std::path::Path) {
    let day = Duration::from_secs(24 * 3600);
    let two_days_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48);
    let subject = CertificateSubject {
        common_name: "expired test CA".to_owned(),
        ..CertificateSubject::default()
    };
    let ca =
        otpilot_pki::generate_ca(&subject, KeyAlgorithm::EcdsaP256, day, two_days_ago).expect("CA");
    let leaf =
        otpilot_pki::issue_server_certificate(&ca, &["127.0.0.1".to_owned()], day, two_days_ago)
            .expect("serving certificate");
    std::fs::write(dir.join("tls.crt"), &leaf.chain_pem).expect("write tls.crt");
    std::fs::write(dir.join("tls.key"), leaf.key_pem.expose_secret()).expect("write tls.key");
}

#[tokio::test]
async fn readyz_needs_a_current_webhook_certificate_and_the_metrics_say_so() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster.namespace("readiness").await.expect("namespace");
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = format!("127.0.0.1:{}", free_port());
    let cert_dir = dir.path().display().to_string();
    let operator = Operator::start_with(
        ns.name(),
        "otpilot-operator",
        &[
            ("OTPILOT_WEBHOOK_ADDR", addr.as_str()),
            ("OTPILOT_WEBHOOK_CERT_DIR", cert_dir.as_str()),
        ],
    )
    .await;

    // Connected, but nothing mounted yet (the operator-managed Secret is
    // not there): the webhook's handshakes would fail, so not Ready.
    wait_for_readyz(&operator, 503, "no usable webhook serving certificate").await;
    let metrics = operator.metrics().await;
    assert!(
        metrics.contains("otpilot_operator_webhook_certificate_valid 0"),
        "{metrics}"
    );
    // No certificate loads: no expiry sample (an absent series, not a 0).
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("otpilot_operator_webhook_certificate_expiry_timestamp_seconds")),
        "{metrics}"
    );

    // Mounted: Ready, without a restart (the kubelet updates the mount).
    write_serving_certificate(dir.path());
    wait_for_readyz(&operator, 200, "ready").await;
    let metrics = operator.metrics().await;
    assert!(
        metrics.contains("otpilot_operator_webhook_certificate_valid 1"),
        "{metrics}"
    );
    let expiry = metrics
        .lines()
        .find(|l| l.starts_with("otpilot_operator_webhook_certificate_expiry_timestamp_seconds"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("no webhook certificate expiry in\n{metrics}"));
    let in_a_day = jiff::Timestamp::now().as_second() + 24 * 3600;
    assert!(
        (in_a_day - 120..=in_a_day + 120).contains(&expiry),
        "{expiry}"
    );

    // Expired: not Ready again, and /readyz says when it expired.
    write_expired_certificate(dir.path());
    wait_for_readyz(&operator, 503, "the webhook serving certificate expired at").await;
    let metrics = operator.metrics().await;
    assert!(
        metrics.contains("otpilot_operator_webhook_certificate_valid 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn without_the_webhook_readyz_needs_only_the_api_server() {
    let cluster = TestCluster::with_crds().await.expect("test control plane");
    let ns = cluster
        .namespace("readiness-no-webhook")
        .await
        .expect("namespace");
    let operator = Operator::start(ns.name()).await;
    wait_for_readyz(&operator, 200, "ready").await;
    let metrics = operator.metrics().await;
    assert!(!metrics.contains("webhook_certificate"), "{metrics}");
}
