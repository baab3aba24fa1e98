//! The CRD YAML in `crds/` and the chart's copy are generated from the types.
//! This test rewrites them and fails when they were stale, so a type change
//! without regenerating cannot land (rust-analyzer's `ensure_file_contents`).

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("api/ has a parent")
        .to_path_buf()
}

/// Writes `contents` to `path` when it differs; returns whether it was stale.
fn ensure_file_contents(path: &Path, contents: &str) -> bool {
    if std::fs::read_to_string(path).ok().as_deref() == Some(contents) {
        return false;
    }
    std::fs::create_dir_all(path.parent().expect("file has a parent dir")).expect("create dir");
    std::fs::write(path, contents).expect("write generated CRD");
    true
}

#[test]
fn generated_crd_yaml_is_up_to_date() {
    let root = repo_root();
    let mut stale = Vec::new();
    for dir in [root.join("crds"), root.join("charts/otpilot/crds")] {
        let expected: Vec<String> = otpilot_api::crds::all()
            .iter()
            .map(otpilot_api::crds::file_name)
            .collect();
        for crd in otpilot_api::crds::all() {
            let path = dir.join(otpilot_api::crds::file_name(&crd));
            let yaml = otpilot_api::crds::to_yaml(&crd).expect("CRD serializes");
            if ensure_file_contents(&path, &yaml) {
                stale.push(path.display().to_string());
            }
        }
        // A CRD file for a type that no longer exists is stale too.
        for entry in std::fs::read_dir(&dir).expect("read crds dir") {
            let name = entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if name.ends_with(".yaml") && !expected.contains(&name) {
                std::fs::remove_file(dir.join(&name)).expect("remove stale CRD");
                stale.push(dir.join(name).display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated CRDs were stale and have been rewritten; review and commit:\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn reference_docs_are_up_to_date() {
    let dir = repo_root().join("docs/reference");
    let mut stale = Vec::new();
    for crd in otpilot_api::crds::all() {
        let path = dir.join(otpilot_api::reference::file_name(&crd));
        if ensure_file_contents(&path, &otpilot_api::reference::render(&crd)) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "the reference docs were stale and have been rewritten; review and commit:\n  {}",
        stale.join("\n  ")
    );
}

/// Every field path in the schemas appears in the reference docs, so a doc
/// page cannot silently miss a field even if the renderer changes.
#[test]
fn every_schema_field_is_in_the_reference_docs() {
    fn paths(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        if let Some(props) = value.get("properties").and_then(|p| p.as_object()) {
            for (name, field) in props {
                let path = format!("{prefix}.{name}");
                out.push(path.clone());
                paths(&path, field, out);
                if let Some(items) = field.get("items") {
                    paths(&format!("{path}[]"), items, out);
                }
            }
        }
    }
    for crd in otpilot_api::crds::all() {
        let doc = otpilot_api::reference::render(&crd);
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema as JSON");
        let root = &schema["openAPIV3Schema"]["properties"];
        let mut fields = Vec::new();
        for section in ["spec", "status"] {
            paths(section, &root[section], &mut fields);
        }
        assert!(
            !fields.is_empty(),
            "{}: no fields found",
            crd.spec.names.kind
        );
        for field in fields {
            assert!(
                doc.contains(&format!("### `{field}`")),
                "{}: {field} is missing from the reference",
                crd.spec.names.kind
            );
        }
    }
}
