//! The declarative MFA profile format (spec of `ClusterMfaProfile`).
// Placeholder: owned by the profile-engine work, which replaces this file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A vendor's MFA flows as declarative HTTP steps.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSpec {}
