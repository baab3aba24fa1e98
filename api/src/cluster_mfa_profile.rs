//! `ClusterMfaProfile`: a vendor's MFA flows as declarative YAML.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::profile::ProfileSpec;

/// A vendor's enrollment, login, refresh, recovery and disable flows as
/// declarative HTTP steps, for vendors otpilot has no built-in profile for.
/// ApiCredentials name it in spec.profile.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "otpilot.dev",
    version = "v1alpha1",
    kind = "ClusterMfaProfile",
    plural = "clustermfaprofiles",
    shortname = "mfaprofile",
    category = "otpilot",
    status = "ClusterMfaProfileStatus",
    derive = "PartialEq",
    doc = "A vendor's MFA flows as declarative HTTP steps.",
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Valid\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct ClusterMfaProfileSpec {
    // The profile's fields are the spec's own (flattened): ProfileSpec documents them, and
    // a doc here would reach the CRD schema.
    #[allow(missing_docs)]
    #[serde(flatten)]
    pub profile: ProfileSpec,
}

/// Observed state of a ClusterMfaProfile.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct ClusterMfaProfileStatus {
    /// Current state, as conditions keyed by type (Valid). A profile that
    /// fails load-time validation says where in its message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
