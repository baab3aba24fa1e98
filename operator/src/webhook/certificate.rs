//! The operator-managed serving certificate (leader only): a CA and a
//! serving certificate for the webhook Service in the Secret
//! `--webhook-secret-name` (`tls.crt`, `tls.key`, `ca.crt`), renewed before
//! expiry, and `ca.crt` patched into every webhook of
//! `--webhook-config-name`.
//!
//! The CA's private key is used once and never stored: each renewal makes a
//! new CA. `ca.crt` then holds the new CA and the previous one (while it is
//! valid), so replicas still serving the previous certificate (the kubelet
//! updates mounted Secrets with a delay) stay trusted.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use otpilot_api::common::{CertificateSubject, KeyAlgorithm};
use otpilot_pki::{Renewal, certificate_info, generate_ca, issue_server_certificate, renewal};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::ManagedCertificate;
use crate::context::FIELD_MANAGER;

/// Lifetime of each CA and serving certificate.
pub const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Renew this long before expiry.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often the leader checks the Secret and the CA bundle (a `helm
/// upgrade` resets the bundle to the chart's empty one).
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("failed to read or write Secret {0} (check the operator's RBAC for it)")]
    Secret(String, #[source] kube::Error),
    #[error(
        "failed to patch the CA bundle into MutatingWebhookConfiguration {0} (does it exist? check the operator's RBAC)"
    )]
    Config(String, #[source] kube::Error),
    #[error("failed to issue the webhook serving certificate")]
    Issue(#[source] otpilot_pki::PkiError),
}

/// What the Secret needs now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Keep,
    Issue { why: &'static str },
}

/// The certificate's DNS names for the webhook Service.
pub fn dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Whether the serving certificate in `tls.crt` (if any) can stay.
pub fn plan(tls_crt: Option<&str>, names: &[String], now: Timestamp) -> Plan {
    let Some(pem) = tls_crt else {
        return Plan::Issue {
            why: "no serving certificate yet",
        };
    };
    let Ok(info) = certificate_info(pem) else {
        return Plan::Issue {
            why: "the stored certificate cannot be read",
        };
    };
    if names
        .iter()
        .any(|name| !info.subject_alt_names.contains(name))
    {
        return Plan::Issue {
            why: "the certificate does not name the webhook Service",
        };
    }
    match renewal(info.not_before, info.not_after, RENEW_BEFORE, now) {
        Renewal::Valid { .. } => Plan::Keep,
        Renewal::RenewNow { .. } => Plan::Issue {
            why: "the certificate is due for renewal",
        },
        Renewal::Expired => Plan::Issue {
            why: "the certificate has expired",
        },
    }
}

/// `ca.crt` after a renewal: the new CA, then the previous one while it is
/// still valid at `now`.
pub fn ca_bundle(new_ca: &str, previous_bundle: Option<&str>, now: Timestamp) -> String {
    let mut bundle = new_ca.trim_end().to_owned();
    bundle.push('\n');
    if let Some(previous) = previous_bundle
        && let Ok(info) = certificate_info(previous)
        && info.not_after > now
        && let Some(first) = first_pem_block(previous)
    {
        bundle.push_str(first);
        bundle.push('\n');
    }
    bundle
}

fn first_pem_block(pem: &str) -> Option<&str> {
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find("-----BEGIN CERTIFICATE-----")?;
    let end = pem[start..].find(END)? + start + END.len();
    Some(&pem[start..end])
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// Keeps the Secret and the CA bundle right until `shutdown` (leader only).
pub async fn manage(client: Client, managed: ManagedCertificate, shutdown: CancellationToken) {
    loop {
        if let Err(error) = reconcile(&client, &managed, Timestamp::now()).await {
            tracing::error!(
                error = format!("{:#}", anyhow::Error::new(error)),
                "webhook certificate"
            );
        }
        tokio::select! {
            () = tokio::time::sleep(CHECK_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// One pass: renew the Secret if needed, then make every webhook's
/// caBundle equal `ca.crt`.
pub async fn reconcile(
    client: &Client,
    managed: &ManagedCertificate,
    now: Timestamp,
) -> Result<(), CertificateError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &managed.namespace);
    let secret_error = |e| CertificateError::Secret(managed.secret_name.clone(), e);
    let current = secrets
        .get_opt(&managed.secret_name)
        .await
        .map_err(secret_error)?;
    let names = dns_names(&managed.service_name, &managed.namespace);
    let tls_crt = current.as_ref().and_then(|s| text(s, "tls.crt"));
    let previous_ca = current.as_ref().and_then(|s| text(s, "ca.crt"));
    let ca_pem = match plan(tls_crt.as_deref(), &names, now) {
        Plan::Keep => previous_ca.unwrap_or_default(),
        Plan::Issue { why } => {
            tracing::info!(
                secret = managed.secret_name,
                why,
                "issuing the webhook serving certificate"
            );
            let subject = CertificateSubject {
                common_name: "otpilot webhook CA".to_owned(),
                ..CertificateSubject::default()
            };
            let ca = generate_ca(&subject, KeyAlgorithm::EcdsaP256, VALIDITY, now)
                .map_err(CertificateError::Issue)?;
            let issued = issue_server_certificate(&ca, &names, VALIDITY, now)
                .map_err(CertificateError::Issue)?;
            let bundle = ca_bundle(&ca.cert_pem, previous_ca.as_deref(), now);
            let data = BTreeMap::from([
                (
                    "tls.crt".to_owned(),
                    ByteString(issued.chain_pem.clone().into_bytes()),
                ),
                (
                    "tls.key".to_owned(),
                    ByteString(issued.key_pem.expose_secret().as_bytes().to_vec()),
                ),
                ("ca.crt".to_owned(), ByteString(bundle.clone().into_bytes())),
            ]);
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(managed.secret_name.clone()),
                    labels: Some(BTreeMap::from([(
                        "app.kubernetes.io/managed-by".to_owned(),
                        "otpilot-operator".to_owned(),
                    )])),
                    ..ObjectMeta::default()
                },
                type_: Some("kubernetes.io/tls".to_owned()),
                data: Some(data),
                ..Secret::default()
            };
            secrets
                .patch(
                    &managed.secret_name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&secret),
                )
                .await
                .map_err(secret_error)?;
            bundle
        }
    };
    patch_ca_bundle(client, &managed.config_name, &ca_pem).await
}

/// Sets every webhook's caBundle to `ca_pem`, unless already so.
async fn patch_ca_bundle(
    client: &Client,
    config_name: &str,
    ca_pem: &str,
) -> Result<(), CertificateError> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let config_error = |e| CertificateError::Config(config_name.to_owned(), e);
    let configuration = api.get(config_name).await.map_err(config_error)?;
    let webhooks = configuration.webhooks.unwrap_or_default();
    let wanted = ByteString(ca_pem.as_bytes().to_vec());
    if webhooks
        .iter()
        .all(|w| w.client_config.ca_bundle.as_ref() == Some(&wanted))
    {
        return Ok(());
    }
    // Strategic merge: webhooks merge by name, so only caBundle changes.
    let patch = json!({
        "webhooks": webhooks
            .iter()
            .map(|w| json!({"name": w.name, "clientConfig": {"caBundle": wanted}}))
            .collect::<Vec<_>>()
    });
    api.patch(
        config_name,
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await
    .map_err(config_error)?;
    tracing::info!(config = config_name, "patched the webhook CA bundle");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(names: &[String], now: Timestamp) -> (String, String) {
        let subject = CertificateSubject {
            common_name: "test CA".to_owned(),
            ..CertificateSubject::default()
        };
        let ca = generate_ca(&subject, KeyAlgorithm::EcdsaP256, VALIDITY, now).expect("CA");
        let leaf = issue_server_certificate(&ca, names, VALIDITY, now).expect("leaf");
        (leaf.chain_pem, ca.cert_pem)
    }

    #[test]
    fn the_serving_certificate_is_renewed_when_missing_wrong_or_due() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let names = dns_names("otpilot-webhook", "otpilot");
        let (pem, _) = issued(&names, start);
        let (other, _) = issued(&dns_names("old-name", "otpilot"), start);
        let day = jiff::SignedDuration::from_hours(24);
        let cases = [
            ("none", None, start, false),
            ("garbage", Some("not a certificate"), start, false),
            ("fresh", Some(pem.as_str()), start, true),
            ("halfway", Some(pem.as_str()), start + day * 180, true),
            ("due", Some(pem.as_str()), start + day * 340, false),
            ("expired", Some(pem.as_str()), start + day * 400, false),
            ("other service", Some(other.as_str()), start, false),
        ];
        for (name, crt, now, keep) in cases {
            assert_eq!(plan(crt, &names, now) == Plan::Keep, keep, "{name}");
        }
    }

    #[test]
    fn the_bundle_keeps_the_previous_ca_while_it_is_valid() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let names = dns_names("s", "n");
        let (_, old_ca) = issued(&names, start);
        let (_, new_ca) = issued(&names, start);
        let day = jiff::SignedDuration::from_hours(24);
        let bundle = ca_bundle(&new_ca, Some(&old_ca), start + day * 340);
        assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "{bundle}");
        assert!(bundle.starts_with(new_ca.trim_end()));
        let bundle = ca_bundle(&new_ca, Some(&old_ca), start + day * 400);
        assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1, "{bundle}");
        let bundle = ca_bundle(&new_ca, None, start);
        assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1, "{bundle}");
    }
}
