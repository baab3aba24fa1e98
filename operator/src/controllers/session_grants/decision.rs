//! What the session grants should be, as pure functions of the Pods the API
//! server stored: which Pods count, which ServiceAccount each runs as, and
//! what to do with the RoleBinding.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::Subject;
use kube::ResourceExt;
use otpilot_api::session::service_account_subject;
use otpilot_inject::annotations::INJECTED;
use otpilot_inject::sidecar::CONTAINER_NAME;

/// The ServiceAccount a Pod runs as. A Pod that names none runs as
/// `default` (the API server fills that in before admission; a Pod read
/// back always names one, this is the same rule made explicit).
pub fn service_account(pod: &Pod) -> &str {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| s.service_account_name.as_deref())
        .or_else(|| spec.and_then(|s| s.service_account.as_deref()))
        .filter(|name| !name.is_empty())
        .unwrap_or("default")
}

/// The ApiCredential a stored Pod was injected for: the webhook's marker
/// annotation AND the sidecar container. An annotation alone (set by hand
/// on a Pod that skipped the webhook) grants nothing.
pub fn injected_for(pod: &Pod) -> Option<&str> {
    let credential = pod.annotations().get(INJECTED)?;
    let spec = pod.spec.as_ref()?;
    let has_sidecar = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .any(|c| c.name == CONTAINER_NAME);
    (has_sidecar && !credential.is_empty()).then_some(credential.as_str())
}

/// Whether a Pod's containers run or may still run: not Succeeded or
/// Failed. A Pod being deleted still counts until it is gone: its sidecar
/// runs through the grace period and hands the Lease over on the way out.
pub fn is_live(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed"))
}

/// The RoleBinding's subjects for `credential` in `namespace`: each
/// ServiceAccount of a live injected Pod of it, once, sorted by name.
pub fn subjects(pods: &[Pod], credential: &str, namespace: &str) -> Vec<Subject> {
    let mut names: Vec<&str> = pods
        .iter()
        .filter(|pod| pod.namespace().as_deref() == Some(namespace))
        .filter(|pod| injected_for(pod) == Some(credential) && is_live(pod))
        .map(service_account)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| service_account_subject(namespace, name))
        .collect()
}

/// What to do with the RoleBinding.
#[derive(Debug, Clone, PartialEq)]
pub enum BindingChange {
    /// It says what it should (or there is none and no Pod needs one).
    Keep,
    /// Create the session objects and a RoleBinding with these subjects.
    Create(Vec<Subject>),
    /// Replace the subjects with exactly these (none: every Pod is gone).
    Replace(Vec<Subject>),
}

/// The change from the RoleBinding's current subjects (`None`: there is no
/// RoleBinding) to `desired`. Order does not matter; anything else a
/// person added is taken out.
pub fn binding_change(current: Option<Option<&[Subject]>>, desired: Vec<Subject>) -> BindingChange {
    match current {
        None if desired.is_empty() => BindingChange::Keep,
        None => BindingChange::Create(desired),
        Some(subjects) => {
            let key = |s: &Subject| (s.kind.clone(), s.namespace.clone(), s.name.clone());
            let mut have: Vec<_> = subjects.unwrap_or_default().iter().map(key).collect();
            let mut want: Vec<_> = desired.iter().map(key).collect();
            have.sort();
            want.sort();
            if have == want {
                BindingChange::Keep
            } else {
                BindingChange::Replace(desired)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, sa: Option<&str>, injected: Option<&str>, sidecar: bool) -> Pod {
        let mut annotations = serde_json::Map::new();
        if let Some(credential) = injected {
            annotations.insert(INJECTED.into(), json!(credential));
        }
        let mut spec = json!({"containers": [{"name": "app", "image": "app:1"}]});
        if sidecar {
            spec["initContainers"] = json!([{"name": CONTAINER_NAME, "image": "sidecar:1"}]);
        }
        if let Some(sa) = sa {
            spec["serviceAccountName"] = json!(sa);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "team-a", "annotations": annotations},
            "spec": spec,
        }))
        .expect("Pod")
    }

    fn phase(mut pod: Pod, phase: &str) -> Pod {
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some(phase.into()),
            ..Default::default()
        });
        pod
    }

    fn elsewhere(mut pod: Pod) -> Pod {
        pod.metadata.namespace = Some("team-b".into());
        pod
    }

    fn names(subjects: &[Subject]) -> Vec<&str> {
        subjects.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn the_subjects_are_the_service_accounts_of_live_injected_pods_of_the_credential() {
        let injected = |name, sa| pod(name, Some(sa), Some("vendor"), true);
        let cases: Vec<(&str, Vec<Pod>, Vec<&str>)> = vec![
            ("no Pods", vec![], vec![]),
            ("one", vec![injected("a", "app")], vec!["app"]),
            (
                "each account once, sorted",
                vec![
                    injected("a", "web"),
                    injected("b", "app"),
                    injected("c", "web"),
                ],
                vec!["app", "web"],
            ),
            (
                "no ServiceAccount named: default",
                vec![pod("a", None, Some("vendor"), true)],
                vec!["default"],
            ),
            (
                "an empty name: default",
                vec![pod("a", Some(""), Some("vendor"), true)],
                vec!["default"],
            ),
            (
                "the marker without the sidecar (set by hand): nothing",
                vec![pod("a", Some("forger"), Some("vendor"), false)],
                vec![],
            ),
            (
                "a sidecar without the marker: nothing",
                vec![pod("a", Some("app"), None, true)],
                vec![],
            ),
            (
                "another credential's Pod",
                vec![pod("a", Some("app"), Some("other"), true)],
                vec![],
            ),
            (
                "another namespace's Pod",
                vec![elsewhere(injected("a", "app"))],
                vec![],
            ),
            (
                "finished Pods no longer count",
                vec![
                    phase(injected("a", "done"), "Succeeded"),
                    phase(injected("b", "broken"), "Failed"),
                    phase(injected("c", "app"), "Running"),
                    phase(injected("d", "waiting"), "Pending"),
                ],
                vec!["app", "waiting"],
            ),
        ];
        for (case, pods, want) in cases {
            let got = subjects(&pods, "vendor", "team-a");
            assert_eq!(names(&got), want, "{case}");
            assert!(
                got.iter().all(|s| s.kind == "ServiceAccount"
                    && s.namespace.as_deref() == Some("team-a")),
                "{case}"
            );
        }
    }

    #[test]
    fn the_deprecated_service_account_field_is_read_when_the_name_is_unset() {
        let mut p = pod("a", None, Some("vendor"), true);
        p.spec.as_mut().expect("spec").service_account = Some("legacy".into());
        assert_eq!(service_account(&p), "legacy");
    }

    #[test]
    fn the_binding_is_created_replaced_or_kept() {
        let app = service_account_subject("team-a", "app");
        let web = service_account_subject("team-a", "web");
        let stranger = service_account_subject("team-b", "app");
        // (case, the current subjects (None: no binding), desired, change)
        type Case = (
            &'static str,
            Option<Option<Vec<Subject>>>,
            Vec<Subject>,
            BindingChange,
        );
        let cases: Vec<Case> = vec![
            ("no binding, no Pod", None, vec![], BindingChange::Keep),
            (
                "no binding, a Pod",
                None,
                vec![app.clone()],
                BindingChange::Create(vec![app.clone()]),
            ),
            (
                "the same",
                Some(Some(vec![app.clone(), web.clone()])),
                vec![app.clone(), web.clone()],
                BindingChange::Keep,
            ),
            (
                "the same in another order",
                Some(Some(vec![web.clone(), app.clone()])),
                vec![app.clone(), web.clone()],
                BindingChange::Keep,
            ),
            (
                "one more",
                Some(Some(vec![app.clone()])),
                vec![app.clone(), web.clone()],
                BindingChange::Replace(vec![app.clone(), web.clone()]),
            ),
            (
                "the last Pod of an account is gone",
                Some(Some(vec![app.clone(), web.clone()])),
                vec![web.clone()],
                BindingChange::Replace(vec![web.clone()]),
            ),
            (
                "every Pod is gone",
                Some(Some(vec![app.clone()])),
                vec![],
                BindingChange::Replace(vec![]),
            ),
            ("already empty", Some(None), vec![], BindingChange::Keep),
            (
                "a subject added by hand is taken out",
                Some(Some(vec![app.clone(), stranger.clone()])),
                vec![app.clone()],
                BindingChange::Replace(vec![app.clone()]),
            ),
        ];
        for (case, current, desired, want) in cases {
            let got = binding_change(current.as_ref().map(|s| s.as_deref()), desired);
            assert_eq!(got, want, "{case}");
        }
    }
}
