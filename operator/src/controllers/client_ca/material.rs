//! A ClientCA's key material: read from its Secret in the operator's
//! namespace, or generated once and stored there (never overwritten).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::{Api, ResourceExt};
use otpilot_api::client_ca::ClientCA;
use otpilot_api::labels;
use otpilot_pki::CaMaterial;
use secrecy::{ExposeSecret, SecretString};

use super::key_secret_name;
use crate::context::Context;

/// Why the CA material is not available (a condition, not a reconcile error).
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error(
        "failed to import the CA: Secret {namespace}/{name} does not exist; create it (type \
         kubernetes.io/tls, keys tls.crt and tls.key) in the operator's namespace"
    )]
    ImportSecretMissing { namespace: String, name: String },
    #[error("failed to read the CA from Secret {namespace}/{name}: {problem}")]
    Unusable {
        namespace: String,
        name: String,
        problem: String,
    },
    #[error("failed to generate the CA: {0}")]
    Generate(String),
    #[error("the ClientCA sets neither generate nor importFrom")]
    NoSource,
    #[error("failed to {action}: {source}")]
    Kubernetes {
        action: String,
        #[source]
        source: kube::Error,
    },
}

/// The CA of a ClientCA from its key Secret; what ApiCredentials issue with.
pub async fn load_material(
    ctx: &Context,
    ca: &ClientCA,
    now: Timestamp,
) -> Result<CaMaterial, MaterialError> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let name = source_secret_name(ca).ok_or(MaterialError::NoSource)?;
    let secret = secrets
        .get_opt(&name)
        .await
        .map_err(|source| MaterialError::Kubernetes {
            action: format!("read Secret {}/{name}", ctx.namespace),
            source,
        })?;
    match secret {
        Some(secret) => material_from_secret(&secret, &ctx.namespace, &name, now),
        None => Err(MaterialError::ImportSecretMissing {
            namespace: ctx.namespace.clone(),
            name,
        }),
    }
}

fn source_secret_name(ca: &ClientCA) -> Option<String> {
    match (&ca.spec.generate, &ca.spec.import_from) {
        (_, Some(import)) => Some(import.secret_name.clone()),
        (Some(_), None) => Some(key_secret_name(&ca.name_any())),
        (None, None) => None,
    }
}

fn material_from_secret(
    secret: &Secret,
    namespace: &str,
    name: &str,
    now: Timestamp,
) -> Result<CaMaterial, MaterialError> {
    let unusable = |problem: String| MaterialError::Unusable {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        problem,
    };
    let get = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .ok_or_else(|| unusable(format!("key {key} is missing or not text")))
    };
    let cert = get("tls.crt")?;
    let key = SecretString::from(get("tls.key")?);
    CaMaterial::from_pem(&cert, &key, now).map_err(|e| unusable(e.to_string()))
}

pub async fn ensure_material(
    ctx: &Context,
    ca: &ClientCA,
    now: Timestamp,
) -> Result<CaMaterial, MaterialError> {
    match load_material(ctx, ca, now).await {
        Err(MaterialError::ImportSecretMissing { .. }) if ca.spec.import_from.is_none() => {}
        other => return other,
    }
    let Some(generate) = &ca.spec.generate else {
        return Err(MaterialError::NoSource);
    };
    let validity = generate
        .duration
        .parse()
        .map_err(|e| MaterialError::Generate(e.to_string()))?;
    let material =
        otpilot_pki::generate_ca(&generate.subject, generate.key_algorithm, validity, now)
            .map_err(|e| MaterialError::Generate(e.to_string()))?;
    let name = key_secret_name(&ca.name_any());
    let secret = Secret {
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
                    (
                        labels::SECRET_KIND.to_owned(),
                        labels::kinds::CA_KEY.to_owned(),
                    ),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        string_data: Some(
            [
                ("tls.crt".to_owned(), material.cert_pem.clone()),
                (
                    "tls.key".to_owned(),
                    material.key_pem.expose_secret().to_owned(),
                ),
            ]
            .into(),
        ),
        ..Secret::default()
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    // Create, never overwrite: a key that exists is never replaced.
    match secrets.create(&Default::default(), &secret).await {
        Ok(_) => Ok(material),
        Err(kube::Error::Api(status)) if status.code == 409 => load_material(ctx, ca, now).await,
        Err(source) => Err(MaterialError::Kubernetes {
            action: format!("create Secret {}/{name}", ctx.namespace),
            source,
        }),
    }
}
