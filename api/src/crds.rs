//! The CustomResourceDefinitions, generated from the types.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt;
use serde_json::Value;

use crate::{ApiCredential, ClientCA, ClusterMfaProfile};

/// Every otpilot CRD, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    [
        ApiCredential::crd(),
        ClientCA::crd(),
        ClusterMfaProfile::crd(),
    ]
    .into_iter()
    .map(with_kubernetes_formats)
    .collect()
}

/// The file name a CRD is written to in `crds/`: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// The YAML a CRD file holds, with a header saying it is generated.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::SerializeError> {
    Ok(format!(
        "# Generated from the Rust types in api/ by `cargo test -p otpilot-api`; do not edit.\n{}",
        // Long descriptions stay on one line (no folding), as before.
        serde_saphyr::to_string_with_options(
            crd,
            serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX }
        )?
    ))
}

/// schemars names Rust's unsigned integers (`format: uint8` ... `uint64`),
/// which the API server does not know and warns about on every apply.
/// Kubernetes knows `int32` and `int64`; the `minimum: 0` schemars also
/// emits keeps the sign rule.
fn with_kubernetes_formats(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let Ok(mut value) = serde_json::to_value(&crd) else {
        return crd;
    };
    rewrite_formats(&mut value);
    serde_json::from_value(value).unwrap_or(crd)
}

fn rewrite_formats(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(format)) = map.get_mut("format") {
                match format.as_str() {
                    "uint8" | "uint16" | "uint32" | "int8" | "int16" => *format = "int32".into(),
                    "uint64" | "uint" => *format = "int64".into(),
                    _ => {}
                }
            }
            map.values_mut().for_each(rewrite_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_formats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_yaml_reads_back_as_the_crd_it_was_written_from() {
        for crd in all() {
            let yaml = to_yaml(&crd).expect("serializes");
            let read: Value = serde_saphyr::from_str(&yaml).expect("parses");
            assert_eq!(
                read,
                serde_json::to_value(&crd).expect("json"),
                "{}",
                file_name(&crd)
            );
            assert!(
                !yaml.contains(": >"),
                "no folded descriptions: one line each, as before"
            );
        }
    }

    #[test]
    fn generated_crds_use_only_formats_kubernetes_knows() {
        for crd in all() {
            let json = serde_json::to_string(&crd).expect("serialize");
            for unknown in [
                "\"uint8\"",
                "\"uint16\"",
                "\"uint32\"",
                "\"uint64\"",
                "\"int8\"",
            ] {
                assert!(
                    !json.contains(unknown),
                    "{unknown} in {:?}",
                    crd.metadata.name
                );
            }
        }
    }

    #[test]
    fn unsigned_formats_become_kubernetes_integer_formats() {
        let mut schema = serde_json::json!({
            "properties": {
                "digits": {"type": "integer", "format": "uint8", "minimum": 0},
                "count": {"type": "integer", "format": "uint64"},
                "name": {"type": "string", "format": "hostname"}
            }
        });
        rewrite_formats(&mut schema);
        assert_eq!(schema["properties"]["digits"]["format"], "int32");
        assert_eq!(schema["properties"]["digits"]["minimum"], 0);
        assert_eq!(schema["properties"]["count"]["format"], "int64");
        assert_eq!(schema["properties"]["name"]["format"], "hostname");
    }
}
