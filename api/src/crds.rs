//! The CustomResourceDefinitions, generated from the types.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{ApiCredential, ClientCA, ClusterMfaProfile};

/// Every otpilot CRD, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        ApiCredential::crd(),
        ClientCA::crd(),
        ClusterMfaProfile::crd(),
    ]
}

/// The file name a CRD is written to in `crds/`: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// The YAML a CRD file holds, with a header saying it is generated.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    Ok(format!(
        "# Generated from the Rust types in api/ by `cargo test -p otpilot-api`; do not edit.\n{}",
        serde_yaml::to_string(crd)?
    ))
}
