//! ClientCA: generates a root CA (or adopts one from a Secret), keeps its
//! key in a Secret in the operator's namespace, and publishes the CA
//! certificate (PEM, SHA-256 fingerprint, notAfter) in status and in a
//! ConfigMap `<name>-ca` (key `ca.crt`) for people to hand to vendors.
//!
//! The generated key lives in Secret `<name>-ca-key` (operator namespace).
//! It is deliberately not owned by the ClientCA: deleting and re-creating a
//! ClientCA adopts the same key, so vendors keep trusting it. Delete the
//! Secret by hand to retire a CA.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};
use otpilot_api::client_ca::{ClientCA, ClientCAStatus};
use otpilot_api::conditions::{EXPIRING, READY, reasons};
use otpilot_api::labels;
use otpilot_pki::{CaMaterial, Renewal, renewal};
use tokio_util::sync::CancellationToken;

use crate::conditions::{self, Desired};
use crate::context::{Context, FIELD_MANAGER};

mod material;

use material::ensure_material;
pub use material::{MaterialError, load_material};

const CONTROLLER: &str = "clientca";
/// How far ahead of a CA's expiry it warns, when spec.generate.renewBefore is unset.
const DEFAULT_WARN_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Key of the certificate in the published ConfigMap.
pub const CA_CERT_KEY: &str = "ca.crt";

pub fn key_secret_name(ca: &str) -> String {
    format!("{ca}-ca-key")
}

pub fn config_map_name(ca: &str) -> String {
    format!("{ca}-ca")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action}: {source}")]
    Kubernetes {
        action: String,
        #[source]
        source: kube::Error,
    },
}

pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let api: Api<ClientCA> = Api::all(ctx.client.clone());
    let mut config = watcher::Config::default();
    if let Some(selector) = &ctx.client_ca_selector {
        config = config.labels(selector);
    }
    Controller::new(api, config)
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                crate::controllers::stream_errors::log(CONTROLLER, &error);
            }
        })
        .await;
}

/// The Ready and Expiring conditions for a CA with this validity (pure):
/// Expiring turns True `warn_before` ahead of expiry, so people have time
/// to hand vendors a new CA; Ready turns False once it expired.
pub fn readiness(
    source_reason: &'static str,
    not_before: Timestamp,
    not_after: Timestamp,
    warn_before: Duration,
    now: Timestamp,
) -> ([Desired; 2], Option<Timestamp>) {
    let ready_ok = Desired::ok(
        READY,
        source_reason,
        format!(
            "the CA is valid until {not_after}; hand vendors the certificate in status.certificate"
        ),
    );
    match renewal(not_before, not_after, warn_before, now) {
        Renewal::Valid { renew_at } => (
            [
                ready_ok,
                Desired::failed(
                    EXPIRING,
                    source_reason,
                    format!(
                        "the CA expires at {not_after}; this condition turns True at {renew_at}"
                    ),
                ),
            ],
            Some(renew_at),
        ),
        Renewal::RenewNow { .. } => (
            [
                ready_ok,
                Desired::ok(
                    EXPIRING,
                    reasons::CERTIFICATE_EXPIRING,
                    format!(
                        "the CA expires at {not_after}: create a new ClientCA, register it with the \
                         vendors and move the ApiCredentials to it before then"
                    ),
                ),
            ],
            None,
        ),
        Renewal::Expired => {
            let message = format!(
                "the CA expired at {not_after}: vendors refuse what it issued; create a new ClientCA"
            );
            (
                [
                    Desired::failed(READY, reasons::CERTIFICATE_EXPIRED, message.clone()),
                    Desired::ok(EXPIRING, reasons::CERTIFICATE_EXPIRED, message),
                ],
                None,
            )
        }
    }
}

async fn reconcile(ca: Arc<ClientCA>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconciled(CONTROLLER);
    let name = ca.name_any();
    let now = Timestamp::now();
    let previous = ca.status.clone().unwrap_or_default();
    let (status, requeue, desired) = match ensure_material(&ctx, &ca, now).await {
        Ok(material) => {
            publish_config_map(&ctx, &ca, &material).await?;
            let source = if ca.spec.import_from.is_some() {
                reasons::IMPORTED
            } else {
                reasons::GENERATED
            };
            let warn_before = ca
                .spec
                .generate
                .as_ref()
                .and_then(|g| g.renew_before.as_ref())
                .and_then(|d| d.parse().ok())
                .unwrap_or(DEFAULT_WARN_BEFORE);
            let (desired, warn_at) = readiness(
                source,
                material.not_before,
                material.not_after,
                warn_before,
                now,
            );
            let requeue = warn_at
                .map(|t| Duration::from_secs(now.duration_until(t).as_secs().max(1) as u64))
                .unwrap_or(Duration::from_secs(3600))
                .min(Duration::from_secs(3600));
            let status = ClientCAStatus {
                conditions: conditions::merge(
                    &previous.conditions,
                    &desired,
                    ca.metadata.generation,
                    &Time(now),
                ),
                source: Some(source.to_owned()),
                certificate: Some(material.cert_pem.clone()),
                fingerprint_sha256: Some(material.fingerprint_sha256.clone()),
                not_before: Some(Time(material.not_before)),
                not_after: Some(Time(material.not_after)),
                renewal_time: warn_at.map(Time),
                serial_number: Some(material.serial.clone()),
                config_map_name: Some(config_map_name(&name)),
                observed_generation: ca.metadata.generation,
            };
            (status, requeue, desired.to_vec())
        }
        Err(error) => {
            let reason = match error {
                MaterialError::ImportSecretMissing { .. } => reasons::SECRET_NOT_FOUND,
                _ => reasons::INVALID_SECRET,
            };
            let desired = vec![Desired::failed(READY, reason, error.to_string())];
            let status = ClientCAStatus {
                conditions: conditions::merge(
                    &previous.conditions,
                    &desired,
                    ca.metadata.generation,
                    &Time(now),
                ),
                observed_generation: ca.metadata.generation,
                ..previous.clone()
            };
            (status, Duration::from_secs(30), desired)
        }
    };
    if ca.status.as_ref() != Some(&status) {
        let changed = conditions::transitions(&previous.conditions, &desired);
        let api: Api<ClientCA> = Api::all(ctx.client.clone());
        super::apply_status(
            &api,
            &name,
            serde_json::to_value(&status).unwrap_or_default(),
        )
        .await
        .map_err(|source| Error::Kubernetes {
            action: format!("write the status of ClientCA {name}"),
            source,
        })?;
        super::publish_transitions(&ctx, ca.as_ref(), &changed).await;
    }
    Ok(Action::requeue(requeue))
}

async fn publish_config_map(
    ctx: &Context,
    ca: &ClientCA,
    material: &CaMaterial,
) -> Result<(), Error> {
    let name = config_map_name(&ca.name_any());
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(
                [
                    (
                        labels::MANAGED_BY.to_owned(),
                        labels::MANAGED_BY_VALUE.to_owned(),
                    ),
                    (labels::CLIENT_CA.to_owned(), ca.name_any()),
                ]
                .into(),
            ),
            owner_references: ca.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(
            [
                (CA_CERT_KEY.to_owned(), material.cert_pem.clone()),
                (
                    "fingerprint-sha256".to_owned(),
                    material.fingerprint_sha256.clone(),
                ),
            ]
            .into(),
        ),
        ..ConfigMap::default()
    };
    let mut body = serde_json::to_value(&cm).unwrap_or_default();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("apiVersion".into(), "v1".into());
        obj.insert("kind".into(), "ConfigMap".into());
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| Error::Kubernetes {
        action: format!("write ConfigMap {}/{name}", ctx.namespace),
        source,
    })?;
    Ok(())
}

fn error_policy(_ca: Arc<ClientCA>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "ClientCA reconcile failed");
    ctx.metrics.reconcile_failed(CONTROLLER, "KubernetesError");
    Action::requeue(Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days: i64) -> Timestamp {
        Timestamp::from_second(days * 86_400).expect("valid")
    }

    #[test]
    fn a_ca_warns_ahead_of_expiry_and_fails_once_expired() {
        let month = Duration::from_secs(30 * 86_400);
        let cases = [
            (at(10), (true, "Generated"), (false, "Generated")),
            (at(340), (true, "Generated"), (true, "CertificateExpiring")),
            (
                at(365),
                (false, "CertificateExpired"),
                (true, "CertificateExpired"),
            ),
        ];
        for (now, ready, expiring) in cases {
            let ([r, e], _) = readiness(reasons::GENERATED, at(0), at(365), month, now);
            assert_eq!(
                (r.type_, r.ok, r.reason),
                ("Ready", ready.0, ready.1),
                "{now}"
            );
            assert_eq!(
                (e.type_, e.ok, e.reason),
                ("Expiring", expiring.0, expiring.1),
                "{now}"
            );
        }
        let (_, warn_at) = readiness(reasons::GENERATED, at(0), at(365), month, at(10));
        assert_eq!(warn_at, Some(at(335)));
    }
}
