//! The chart renders the injection settings the operator hands to
//! `mutate`: every values file of charts/otpilot/ci must produce an
//! `inject.json` that `InjectConfig` reads (unknown fields are errors), with
//! the values it was given.

mod support;

use std::path::Path;

use otpilot_inject::{Decision, InjectConfig, SidecarResources, WhenNotReady, mutate};
use pretty_assertions::assert_eq;
use support::chart::{ci_values, object, render, repo_root};
use support::*;

/// The InjectConfig the chart's ConfigMap holds, rendered with `values`.
fn rendered_config(values: &Path) -> InjectConfig {
    let configmap = object(&render(values), "ConfigMap", "otpilot-inject");
    let json = configmap["data"]["inject.json"]
        .as_str()
        .expect("data.inject.json is a string");
    InjectConfig::from_json(json).unwrap_or_else(|error| {
        panic!(
            "inject.json rendered with {} is not an InjectConfig: {error:?}\n{json}",
            values.display()
        )
    })
}

#[test]
fn every_values_file_renders_settings_the_webhook_reads() {
    let ci = repo_root().join("charts/otpilot/ci");
    let mut files: Vec<_> = std::fs::read_dir(&ci)
        .expect("charts/otpilot/ci exists")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.to_string_lossy().ends_with("-values.yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "values files in {}: {files:?}",
        ci.display()
    );
    for values in &files {
        let config = rendered_config(values);
        // It drives a real mutation.
        let decision = mutate(
            &pod().injecting().build(),
            Some(&credential().build()),
            &config,
        );
        assert!(
            matches!(decision, Decision::Allow { ref patch, .. } if !patch.is_empty()),
            "{}: {decision:?}",
            values.display()
        );
    }
}

#[test]
fn the_defaults_render_the_documented_settings() {
    assert_eq!(
        rendered_config(&ci_values("default-values.yaml")),
        InjectConfig {
            sidecar_image: "registry.example/otpilot/otpilot-sidecar:0.1.0".to_owned(),
            image_pull_policy: Some("IfNotPresent".to_owned()),
            ..InjectConfig::new("")
        }
    );
}

#[test]
fn every_injection_value_reaches_the_settings() {
    assert_eq!(
        rendered_config(&ci_values("all-values.yaml")),
        InjectConfig {
            sidecar_image: "localhost/otpilot/sidecar:dev".to_owned(),
            image_pull_policy: Some("Never".to_owned()),
            sidecar_binary: "/usr/local/bin/otpilot-sidecar".to_owned(),
            allow_image_override: true,
            when_not_ready: WhenNotReady::Inject,
            resources: SidecarResources {
                cpu_request: "20m".to_owned(),
                memory_request: "24Mi".to_owned(),
                cpu_limit: Some("500m".to_owned()),
                memory_limit: "96Mi".to_owned(),
            },
            image_pull_secrets: vec!["sidecar-registry".to_owned()],
            egress_proxy: Some("http://proxy.chart-check.invalid:3128".to_owned()),
            egress_no_proxy: Some("10.0.0.0/8,.svc".to_owned()),
        }
    );
}
