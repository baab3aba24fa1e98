//! The chart renders the injection settings the operator hands to
//! `mutate`: every values file of charts/otpilot/ci must produce an
//! `inject.json` that `InjectConfig` reads (unknown fields are errors), with
//! the values it was given. Runs `helm template` (the project's helm, from
//! scripts/build-control-plane.sh).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use otpilot_inject::{Decision, InjectConfig, SidecarResources, WhenNotReady, mutate};
use pretty_assertions::assert_eq;
use serde::Deserialize;
use support::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

fn helm() -> PathBuf {
    let script = repo_root().join("scripts/build-control-plane.sh");
    let output = Command::new(&script)
        .output()
        .unwrap_or_else(|error| panic!("failed to run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "{} failed: it builds helm once into ~/.cache/otpilot; run it by hand and read its output:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    PathBuf::from(dir).join("helm")
}

/// `helm template` with a values file, and the InjectConfig its ConfigMap holds.
fn rendered_config(helm: &Path, values: &Path) -> InjectConfig {
    let chart = repo_root().join("charts/otpilot");
    let output = Command::new(helm)
        .args([
            "template",
            "otpilot",
            "--namespace",
            "otpilot-system",
            "--kube-version",
            "1.36.0",
        ])
        .arg(&chart)
        .arg("-f")
        .arg(values)
        .output()
        .expect("helm runs");
    assert!(
        output.status.success(),
        "helm template -f {} failed:\n{}",
        values.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 manifests");
    let configmap = serde_yaml::Deserializer::from_str(&text)
        .map(|document| serde_yaml::Value::deserialize(document).expect("YAML"))
        .find(|object| {
            object["kind"] == "ConfigMap" && object["metadata"]["name"] == "otpilot-inject"
        })
        .unwrap_or_else(|| {
            panic!(
                "no ConfigMap otpilot-inject rendered with {}",
                values.display()
            )
        });
    let json = configmap["data"]["inject.json"]
        .as_str()
        .expect("data.inject.json is a string");
    serde_json::from_str(json).unwrap_or_else(|error| {
        panic!(
            "inject.json rendered with {} is not an InjectConfig: {error}\n{json}",
            values.display()
        )
    })
}

#[test]
fn every_values_file_renders_settings_the_webhook_reads() {
    let helm = helm();
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
        let config = rendered_config(&helm, values);
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
    let config = rendered_config(
        &helm(),
        &repo_root().join("charts/otpilot/ci/default-values.yaml"),
    );
    assert_eq!(
        config,
        InjectConfig {
            sidecar_image: "ghcr.io/otpilot/otpilot-sidecar:0.1.0".to_owned(),
            image_pull_policy: Some("IfNotPresent".to_owned()),
            ..InjectConfig::new("")
        }
    );
}

#[test]
fn every_injection_value_reaches_the_settings() {
    let config = rendered_config(
        &helm(),
        &repo_root().join("charts/otpilot/ci/all-values.yaml"),
    );
    assert_eq!(
        config,
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
        }
    );
}
