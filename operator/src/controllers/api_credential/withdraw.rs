//! Taking a client certificate back: when its ClientCA no longer allows the
//! credential, `tls.crt` and `tls.key` leave the runtime Secret, and an
//! Event says so. Nothing else in that Secret is touched.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use otpilot_api::ApiCredential;
use otpilot_api::conditions::reasons;
use otpilot_api::labels;
use otpilot_api::runtime_secret::keys;

use super::certificate::CertificateError;
use super::notices::Notice;
use crate::context::{Context, FIELD_MANAGER};

/// Removes `tls.crt` and `tls.key` (only those) from the credential's
/// runtime Secret. Returns whether there was anything to remove.
pub async fn withdraw(ctx: &Context, credential: &ApiCredential) -> Result<bool, kube::Error> {
    let namespace = credential.namespace().unwrap_or_default();
    let name = labels::runtime_secret_name(&credential.name_any());
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(secret) = api.get_opt(&name).await? else {
        return Ok(false);
    };
    let present = secret.data.as_ref().map(|d| d.keys()).into_iter().flatten();
    let Some(patch) = removal_patch(present, secret.metadata.resource_version.as_deref()) else {
        return Ok(false);
    };
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch(&name, &params, &Patch::Merge(&patch)).await?;
    tracing::info!(
        credential = credential.name_any(),
        "removed the client certificate and key from the runtime Secret"
    );
    Ok(true)
}

/// The merge patch that removes the certificate and key among `present`
/// keys, or `None` when neither is there (pure). Nulls remove exactly those
/// keys; the resourceVersion makes a concurrent rewrite fail this patch
/// (retried next pass) rather than race it.
fn removal_patch<'a>(
    present: impl Iterator<Item = &'a String>,
    resource_version: Option<&str>,
) -> Option<serde_json::Value> {
    let removals: serde_json::Map<String, serde_json::Value> = present
        .filter(|key| [keys::TLS_CRT, keys::TLS_KEY].contains(&key.as_str()))
        .map(|key| (key.clone(), serde_json::Value::Null))
        .collect();
    (!removals.is_empty()).then(|| {
        serde_json::json!({
            "metadata": { "resourceVersion": resource_version },
            "data": removals,
        })
    })
}

/// The Event saying the client certificate was taken away, and why.
pub fn withdrawn_notice(error: &CertificateError) -> Notice {
    Notice {
        type_: EventType::Warning,
        reason: reasons::CLIENT_CERTIFICATE_REMOVED,
        note: format!(
            "removed tls.crt and tls.key from the runtime Secret: {error}. Sidecars stop \
             presenting the certificate at their next reload; a copy taken before stays valid \
             at the vendor until it expires unless the vendor is told to distrust it \
             (docs/security.md)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_certificate_and_its_key_are_removed() {
        let keys = |list: &[&str]| list.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        let cases = [
            (
                "nothing to remove",
                keys(&["base-url", "totp-secret"]),
                None,
            ),
            (
                "both",
                keys(&["base-url", "tls.crt", "tls.key", "totp-secret"]),
                Some(serde_json::json!({
                    "metadata": { "resourceVersion": "7" },
                    "data": { "tls.crt": null, "tls.key": null },
                })),
            ),
            (
                "a key left alone",
                keys(&["tls.key", "session-key"]),
                Some(serde_json::json!({
                    "metadata": { "resourceVersion": "7" },
                    "data": { "tls.key": null },
                })),
            ),
        ];
        for (case, present, want) in cases {
            assert_eq!(removal_patch(present.iter(), Some("7")), want, "{case}");
        }
    }
}
