//! The injection mutation's refusals: each names what to fix.

mod support;

use k8s_openapi::api::core::v1::Pod;
use otpilot_inject::annotations::{API_PORT, INJECT, PROXY_PORT, SIDECAR_IMAGE, TOKEN_FILE};
use otpilot_inject::sidecar::RUNTIME_VOLUME;
use otpilot_inject::{DenyReason, InjectConfig, WhenNotReady, mutate};
use pretty_assertions::assert_eq;
use support::*;

fn sidecar_startup_probe(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .and_then(|c| c.first())
        .is_some_and(|c| c.startup_probe.is_some())
}

#[test]
fn a_missing_credential_is_refused_naming_it_and_the_namespace() {
    let (reason, message) = denied(mutate(&pod().injecting().build(), None, &config()));
    assert_eq!(reason, DenyReason::CredentialNotFound);
    assert!(
        message.contains("ApiCredential vendor in namespace payments is missing or not Ready"),
        "{message}"
    );
}

#[test]
fn a_credential_that_is_not_ready_is_refused_or_injected_as_configured() {
    let cases = [
        (
            credential().without_status().build(),
            "no Ready condition yet",
        ),
        (
            credential()
                .ready_condition("False", "EnrollmentPending", "waiting for the vendor")
                .build(),
            "False: EnrollmentPending: waiting for the vendor",
        ),
        (
            credential()
                .ready_condition("Unknown", "Reconciling", "")
                .build(),
            "Unknown: Reconciling",
        ),
    ];
    let inject = InjectConfig {
        when_not_ready: WhenNotReady::Inject,
        ..config()
    };
    for (cred, why) in cases {
        let (reason, message) = denied(mutate(&pod().injecting().build(), Some(&cred), &config()));
        assert_eq!(reason, DenyReason::CredentialNotReady);
        assert!(
            message.contains("ApiCredential vendor in namespace payments is missing or not Ready"),
            "{message}"
        );
        // Deliberately without the status: a review can be forged for any
        // namespace, and the answer must not say why another team's
        // credential is not Ready.
        assert!(!message.contains(why), "{message} must not say {why}");

        let (patched, warnings) = injected(&pod().injecting().build(), &cred, &inject);
        assert!(sidecar_startup_probe(&patched));
        assert_eq!(warnings.len(), 1);
        assert!(
            !warnings[0].contains(why) && warnings[0].contains("startup probe"),
            "{warnings:?}"
        );
    }
}

#[test]
fn a_missing_and_a_not_ready_credential_get_the_same_answer_byte_for_byte() {
    let (_, missing) = denied(mutate(&pod().injecting().build(), None, &config()));
    for cred in [
        credential().without_status().build(),
        credential()
            .ready_condition("False", "SecretNotFound", "Secret vendor-login not found")
            .build(),
        credential()
            .ready_condition(
                "False",
                "VendorUnreachable",
                "connect to 10.0.0.7:443 refused",
            )
            .build(),
    ] {
        let (_, not_ready) = denied(mutate(&pod().injecting().build(), Some(&cred), &config()));
        assert_eq!(not_ready, missing);
    }
    assert_eq!(
        missing,
        "ApiCredential vendor in namespace payments is missing or not Ready (named by \
         annotation otpilot.dev/inject); see `kubectl get apicredential vendor -n payments`"
    );
}

#[test]
fn a_pod_never_uses_a_credential_from_another_namespace() {
    let (reason, message) = denied(mutate(
        &pod().annotated(INJECT, "other-team/vendor").build(),
        Some(&credential().build()),
        &config(),
    ));
    assert_eq!(reason, DenyReason::CrossNamespace);
    assert!(
        message.contains(INJECT) && message.contains("own namespace"),
        "{message}"
    );

    let foreign = credential().in_namespace("other-team").build();
    let (reason, message) = denied(mutate(
        &pod().injecting().build(),
        Some(&foreign),
        &config(),
    ));
    assert_eq!(reason, DenyReason::CrossNamespace);
    assert!(message.contains("not in namespace payments"), "{message}");
}

#[test]
fn the_recovery_secret_is_never_mounted_even_when_the_spec_names_it() {
    for cred in [
        credential().password("vendor-recovery", "password").build(),
        credential().api_key("vendor-recovery", "key").build(),
        credential()
            .secret_value("client_secret", "vendor-recovery", "codes")
            .build(),
    ] {
        let (reason, message) = denied(mutate(&pod().injecting().build(), Some(&cred), &config()));
        assert_eq!(reason, DenyReason::ForbiddenSecret);
        assert!(message.contains("vendor-recovery"), "{message}");
    }
}

#[test]
fn names_ports_and_paths_the_pod_already_uses_are_conflicts() {
    let cases: Vec<(Pod, &str)> = vec![
        (
            pod()
                .injecting()
                .secret_volume(RUNTIME_VOLUME, "mine")
                .build(),
            "volume named otpilot-runtime",
        ),
        (
            pod()
                .injecting()
                .containers(vec![with_port(container("app"), 8181)])
                .build(),
            API_PORT,
        ),
        (
            pod()
                .injecting()
                .init_containers(vec![with_port(container("init"), 8182)])
                .build(),
            PROXY_PORT,
        ),
        (
            pod()
                .injecting()
                .annotated(TOKEN_FILE, "/var/run/app/token")
                .containers(vec![with_mount(container("app"), "cfg", "/var/run")])
                .build(),
            TOKEN_FILE,
        ),
    ];
    for (pod, named) in cases {
        let (reason, message) = denied(mutate(&pod, Some(&credential().build()), &config()));
        assert_eq!(reason, DenyReason::Conflict, "{message}");
        assert!(message.contains(named), "{message} should name {named}");
    }
}

#[test]
fn invalid_annotations_are_refused_naming_the_annotation() {
    let cases = [
        (INJECT, "Not_A_Name"),
        (API_PORT, "eighty"),
        (PROXY_PORT, "22"),
        (TOKEN_FILE, "relative/token"),
        (SIDECAR_IMAGE, "mine:1"),
    ];
    for (annotation, value) in cases {
        let pod = pod().injecting().annotated(annotation, value).build();
        let (reason, message) = denied(mutate(&pod, Some(&credential().build()), &config()));
        assert_eq!(reason, DenyReason::InvalidAnnotation, "{message}");
        assert!(
            message.contains(annotation),
            "{message} should name {annotation}"
        );
    }
}

#[test]
fn a_host_network_host_pid_or_non_linux_pod_is_refused_and_a_shared_process_namespace_warned_about()
{
    let mut host = pod().injecting().build();
    host.spec.as_mut().expect("spec").host_network = Some(true);
    let (reason, message) = denied(mutate(&host, Some(&credential().build()), &config()));
    assert_eq!(reason, DenyReason::UnsafePod);
    assert!(message.contains("hostNetwork"), "{message}");

    let mut windows = pod().injecting().build();
    windows.spec.as_mut().expect("spec").os = Some(k8s_openapi::api::core::v1::PodOS {
        name: "windows".into(),
    });
    let (reason, _) = denied(mutate(&windows, Some(&credential().build()), &config()));
    assert_eq!(reason, DenyReason::UnsafePod);

    let mut host_pid = pod().injecting().build();
    host_pid.spec.as_mut().expect("spec").host_pid = Some(true);
    let (reason, message) = denied(mutate(&host_pid, Some(&credential().build()), &config()));
    assert_eq!(reason, DenyReason::UnsafePod);
    assert!(
        message.contains("hostPID") && message.contains(INJECT),
        "{message}"
    );
    let mut no_host_pid = pod().injecting().build();
    no_host_pid.spec.as_mut().expect("spec").host_pid = Some(false);
    injected(&no_host_pid, &credential().build(), &config());

    let mut shared = pod().injecting().build();
    shared.spec.as_mut().expect("spec").share_process_namespace = Some(true);
    let (_, warnings) = injected(&shared, &credential().build(), &config());
    assert!(
        warnings.iter().any(|w| w.contains("shareProcessNamespace")),
        "{warnings:?}"
    );
}

#[test]
fn a_pod_running_as_the_default_service_account_is_admitted_with_a_warning_saying_so() {
    let cases = [
        (None, true),
        (Some(""), true),
        (Some("default"), true),
        (Some("web"), false),
    ];
    for (account, warned) in cases {
        let mut pod = pod().injecting().build();
        pod.spec.as_mut().expect("spec").service_account_name = account.map(str::to_owned);
        let (_, warnings) = injected(&pod, &credential().build(), &config());
        let says_so = warnings.iter().any(|w| {
            w.contains("ServiceAccount default")
                && w.contains("every Pod of namespace payments")
                && w.contains("spec.serviceAccountName")
        });
        assert_eq!(says_so, warned, "{account:?}: {warnings:?}");
    }
}
