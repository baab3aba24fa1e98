//! Whether a Secret is one of otpilot's own (a credential's runtime,
//! recovery or session Secret, a ClientCA's key): such a Secret is never an
//! input of an ApiCredential, whatever its name, or one credential could
//! mount another's factors into a Pod and send them to its own `baseUrl`.
//! Decided from the Secret's metadata (labels and owner references), the
//! same in the operator and in the webhook.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::labels;

/// Why `meta` is otpilot's own Secret, or `None` for a user's Secret.
/// The answer names labels and owners only, never a value.
pub fn otpilot_owned(meta: &ObjectMeta) -> Option<String> {
    let labels = meta.labels.as_ref();
    if let Some(kind) = labels.and_then(|l| l.get(labels::SECRET_KIND)) {
        return Some(format!(
            "it is otpilot's {kind} Secret (label {})",
            labels::SECRET_KIND
        ));
    }
    if labels
        .and_then(|l| l.get(labels::MANAGED_BY))
        .map(String::as_str)
        == Some(labels::MANAGED_BY_VALUE)
    {
        return Some(format!(
            "it is managed by otpilot (label {}={})",
            labels::MANAGED_BY,
            labels::MANAGED_BY_VALUE
        ));
    }
    for (label, what) in [
        (labels::CREDENTIAL, "ApiCredential"),
        (labels::CLIENT_CA, "ClientCA"),
    ] {
        if let Some(owner) = labels.and_then(|l| l.get(label)) {
            return Some(format!("it belongs to {what} {owner} (label {label})"));
        }
    }
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.api_version.split('/').next() == Some(crate::GROUP))
        .map(|o| format!("it is owned by {} {}", o.kind, o.name))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    fn meta(labels: &[(&str, &str)], owner: Option<(&str, &str)>) -> ObjectMeta {
        ObjectMeta {
            name: Some("innocent-name".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            owner_references: owner.map(|(api_version, kind)| {
                vec![OwnerReference {
                    api_version: api_version.into(),
                    kind: kind.into(),
                    name: "other".into(),
                    uid: "u".into(),
                    ..OwnerReference::default()
                }]
            }),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn labels_and_owners_decide_not_names() {
        let cases: &[(&str, ObjectMeta, Option<&str>)] = &[
            ("a user's Secret", meta(&[("app", "payments")], None), None),
            (
                "Helm's Secret",
                meta(&[(labels::MANAGED_BY, "Helm")], None),
                None,
            ),
            (
                "owned by a Deployment",
                meta(&[], Some(("apps/v1", "Deployment"))),
                None,
            ),
            (
                "a runtime Secret",
                meta(&[(labels::SECRET_KIND, "runtime")], None),
                Some("otpilot's runtime Secret"),
            ),
            (
                "managed-by otpilot, innocent name",
                meta(&[(labels::MANAGED_BY, "otpilot")], None),
                Some("managed by otpilot"),
            ),
            (
                "labelled with a credential",
                meta(&[(labels::CREDENTIAL, "other")], None),
                Some("ApiCredential other"),
            ),
            (
                "labelled with a ClientCA",
                meta(&[(labels::CLIENT_CA, "vendor-ca")], None),
                Some("ClientCA vendor-ca"),
            ),
            (
                "labels stripped, still owned by a credential",
                meta(&[], Some(("otpilot.dev/v1alpha1", "ApiCredential"))),
                Some("owned by ApiCredential other"),
            ),
            (
                "owned by a ClientCA",
                meta(&[], Some(("otpilot.dev/v1alpha1", "ClientCA"))),
                Some("owned by ClientCA other"),
            ),
            (
                "a look-alike group",
                meta(&[], Some(("otpilot.dev.example/v1", "ApiCredential"))),
                None,
            ),
        ];
        for (what, meta, want) in cases {
            let got = otpilot_owned(meta);
            match want {
                None => assert_eq!(got, None, "{what}"),
                Some(words) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(words)),
                    "{what}: {got:?}"
                ),
            }
        }
    }
}
