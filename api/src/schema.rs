//! Small schema helpers for the CRD types.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Schema for a free-form JSON value (e.g. a templated request body):
/// any JSON, kept as-is by the API server.
pub fn any_json(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
