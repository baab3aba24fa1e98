//! The chart, rendered by the project's helm.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

/// The helm binary scripts/build-control-plane.sh built (instant once cached).
pub fn helm() -> PathBuf {
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

/// `helm template otpilot charts/otpilot -f <values>`: the rendered objects.
pub fn render(values: &Path) -> Vec<serde_json::Value> {
    let chart = repo_root().join("charts/otpilot");
    let output = Command::new(helm())
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
    serde_saphyr::from_str_multiple::<serde_json::Value, Vec<_>>(&text)
        .expect("YAML")
        .into_iter()
        .filter(|object| !object.is_null())
        .collect()
}

/// The rendered object of this kind and name.
pub fn object(objects: &[serde_json::Value], kind: &str, name: &str) -> serde_json::Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("the chart rendered no {kind} {name}"))
        .clone()
}

pub fn ci_values(file: &str) -> PathBuf {
    repo_root().join("charts/otpilot/ci").join(file)
}
