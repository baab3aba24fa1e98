//! Everything an ApiCredential names, fetched: its profile (built-in first,
//! then ClusterMfaProfile), the password, API key and further secret values
//! (GET at reconcile time: user Secrets are not cached), and the vendor's
//! server CA.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use otpilot_api::common::{ConfigMapKeyRef, SecretKeyRef};
use otpilot_api::conditions::reasons;
use otpilot_api::{ApiCredentialSpec, ClusterMfaProfile};
use otpilot_profile::{Profile, builtin};
use secrecy::SecretString;

use otpilot_api::conditions::reasons as local;

/// What the credential refers to, resolved. `Debug` shows no secret.
#[derive(Debug)]
pub struct Resolved {
    pub profile: Arc<Profile>,
    pub profile_name: String,
    pub profile_yaml: String,
    pub password: Option<SecretString>,
    pub api_key: Option<SecretString>,
    /// `spec.secretValues`, by template name.
    pub secret_values: BTreeMap<String, SecretString>,
    pub server_ca: Option<String>,
    /// The client certificate, once issued (set by the caller).
    pub client_certificate: Option<super::certificate::ClientCertificate>,
}

/// Why the credential's references could not be resolved. Each names the
/// object and what to do; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum DereferenceError {
    #[error(
        "failed to find profile '{0}': it is neither a built-in profile (audd, goaxr, conduit, \
         acreto, cryptr) nor a ClusterMfaProfile; create the ClusterMfaProfile or fix spec.profile"
    )]
    ProfileNotFound(String),
    #[error("failed to use ClusterMfaProfile '{name}': {message}; fix the ClusterMfaProfile")]
    ProfileInvalid { name: String, message: String },
    #[error(
        "failed to read Secret {name} ({field}): it does not exist in this namespace; create it \
         with key '{key}'"
    )]
    SecretNotFound {
        field: &'static str,
        name: String,
        key: String,
    },
    #[error("failed to read key '{key}' of Secret {name} ({field}): {problem}")]
    SecretKey {
        field: &'static str,
        name: String,
        key: String,
        problem: &'static str,
    },
    #[error(
        "refused Secret {name} ({field}): {why}; otpilot's own Secrets (a credential's runtime, \
         recovery or session Secret, a ClientCA's key) are never an input. Keep the password, \
         API key and secret values in a Secret of their own"
    )]
    ForbiddenSecret {
        field: &'static str,
        name: String,
        why: String,
    },
    #[error("failed to use spec.secretValues: {0}; fix the name or remove the entry")]
    UnknownSecretValue(String),
    #[error(
        "failed to read ConfigMap {name} (spec.serverCA): it does not exist in this namespace; \
         create it with the vendor's CA certificate under key '{key}'"
    )]
    ConfigMapNotFound { name: String, key: String },
    #[error(
        "failed to read key '{key}' of ConfigMap {name} (spec.serverCA): it is missing or empty"
    )]
    ConfigMapKey { name: String, key: String },
    #[error("failed to read {what} from the Kubernetes API: {source}")]
    Kubernetes {
        what: String,
        #[source]
        source: kube::Error,
    },
}

impl DereferenceError {
    /// The condition reason (bounded).
    pub fn reason(&self) -> &'static str {
        match self {
            DereferenceError::ProfileNotFound(_) => reasons::PROFILE_NOT_FOUND,
            DereferenceError::ProfileInvalid { .. } => reasons::PROFILE_INVALID,
            DereferenceError::SecretNotFound { .. } => reasons::SECRET_NOT_FOUND,
            DereferenceError::SecretKey { .. } => reasons::SECRET_KEY_MISSING,
            DereferenceError::ForbiddenSecret { .. } => reasons::FORBIDDEN_SECRET,
            DereferenceError::UnknownSecretValue(_) => reasons::MISSING_INPUT,
            DereferenceError::ConfigMapNotFound { .. } => local::CONFIG_MAP_NOT_FOUND,
            DereferenceError::ConfigMapKey { .. } => reasons::SECRET_KEY_MISSING,
            DereferenceError::Kubernetes { .. } => local::KUBERNETES_ERROR,
        }
    }
}

/// Where a profile name resolves to (pure): built-in names always win, so a
/// ClusterMfaProfile cannot take over a built-in vendor.
#[derive(Debug, PartialEq, Eq)]
pub enum ProfileSource {
    Builtin,
    Cluster,
}

pub fn profile_source(name: &str) -> ProfileSource {
    if builtin::names().any(|b| b == name) {
        ProfileSource::Builtin
    } else {
        ProfileSource::Cluster
    }
}

pub async fn resolve(
    client: &Client,
    namespace: &str,
    spec: &ApiCredentialSpec,
) -> Result<Resolved, DereferenceError> {
    let (profile, profile_yaml) = resolve_profile(client, &spec.profile).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let password = match &spec.password_secret_ref {
        Some(r) => Some(read_secret_key(&secrets, "spec.passwordSecretRef", r).await?),
        None => None,
    };
    let api_key = match &spec.api_key_secret_ref {
        Some(r) => Some(read_secret_key(&secrets, "spec.apiKeySecretRef", r).await?),
        None => None,
    };
    if let Some(problem) =
        profile.undeclared_secret_value(spec.secret_values.iter().map(|v| v.name.as_str()))
    {
        return Err(DereferenceError::UnknownSecretValue(problem));
    }
    let mut secret_values = BTreeMap::new();
    for v in &spec.secret_values {
        let value = read_secret_key(&secrets, "spec.secretValues", &v.secret_key_ref).await?;
        secret_values.insert(v.name.clone(), value);
    }
    let server_ca = match &spec.server_ca {
        Some(r) => Some(read_config_map_key(client, namespace, r).await?),
        None => None,
    };
    Ok(Resolved {
        profile,
        profile_name: spec.profile.clone(),
        profile_yaml,
        password,
        api_key,
        secret_values,
        server_ca,
        client_certificate: None,
    })
}

async fn resolve_profile(
    client: &Client,
    name: &str,
) -> Result<(Arc<Profile>, String), DereferenceError> {
    let profile = match profile_source(name) {
        ProfileSource::Builtin => {
            builtin::get(name).ok_or_else(|| DereferenceError::ProfileNotFound(name.to_owned()))?
        }
        ProfileSource::Cluster => {
            let api: Api<ClusterMfaProfile> = Api::all(client.clone());
            let obj = api
                .get_opt(name)
                .await
                .map_err(|source| DereferenceError::Kubernetes {
                    what: format!("ClusterMfaProfile {name}"),
                    source,
                })?
                .ok_or_else(|| DereferenceError::ProfileNotFound(name.to_owned()))?;
            Arc::new(Profile::from_spec(name, obj.spec.profile).map_err(|e| {
                DereferenceError::ProfileInvalid {
                    name: name.to_owned(),
                    message: e.to_string(),
                }
            })?)
        }
    };
    let yaml =
        serde_saphyr::to_string(profile.spec()).map_err(|e| DereferenceError::ProfileInvalid {
            name: name.to_owned(),
            message: format!("failed to serialise the resolved profile: {e}"),
        })?;
    Ok((profile, yaml))
}

async fn read_secret_key(
    api: &Api<Secret>,
    field: &'static str,
    r: &SecretKeyRef,
) -> Result<SecretString, DereferenceError> {
    let secret = api
        .get_opt(&r.name)
        .await
        .map_err(|source| DereferenceError::Kubernetes {
            what: format!("Secret {}", r.name),
            source,
        })?
        .ok_or_else(|| DereferenceError::SecretNotFound {
            field,
            name: r.name.clone(),
            key: r.key.clone(),
        })?;
    // Before any value is read: another credential's factors never leave
    // their Secret through this one.
    if let Some(why) = otpilot_api::owned_secret::otpilot_owned(&secret.metadata) {
        return Err(DereferenceError::ForbiddenSecret {
            field,
            name: r.name.clone(),
            why,
        });
    }
    let key_err = |problem| DereferenceError::SecretKey {
        field,
        name: r.name.clone(),
        key: r.key.clone(),
        problem,
    };
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(&r.key))
                .map(|s| s.clone().into_bytes())
        })
        .ok_or_else(|| {
            key_err("the key is missing; add it, or point the reference at the right key")
        })?;
    let text = String::from_utf8(bytes).map_err(|_| key_err("the value is not UTF-8 text"))?;
    // A trailing newline from `echo ... > file` is never part of a password.
    let value = text.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        return Err(key_err("the value is empty"));
    }
    Ok(SecretString::from(value.to_owned()))
}

async fn read_config_map_key(
    client: &Client,
    namespace: &str,
    r: &ConfigMapKeyRef,
) -> Result<String, DereferenceError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = api
        .get_opt(&r.name)
        .await
        .map_err(|source| DereferenceError::Kubernetes {
            what: format!("ConfigMap {}", r.name),
            source,
        })?
        .ok_or_else(|| DereferenceError::ConfigMapNotFound {
            name: r.name.clone(),
            key: r.key.clone(),
        })?;
    cm.data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .ok_or_else(|| DereferenceError::ConfigMapKey {
            name: r.name.clone(),
            key: r.key.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_resolve_to_the_builtin_and_others_to_the_cluster() {
        for (name, want) in [
            ("audd", ProfileSource::Builtin),
            ("goaxr", ProfileSource::Builtin),
            ("conduit", ProfileSource::Builtin),
            ("acreto", ProfileSource::Builtin),
            ("cryptr", ProfileSource::Builtin),
            ("acme", ProfileSource::Cluster),
            ("goaxr-staging", ProfileSource::Cluster),
        ] {
            assert_eq!(profile_source(name), want, "{name}");
        }
    }
}
