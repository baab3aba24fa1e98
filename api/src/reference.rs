//! Field-by-field reference docs (`docs/reference/*.md`), rendered from the
//! CRD schemas, so the docs cannot drift from what the API server enforces.
//! `api/tests/generated_crds.rs` rewrites them and fails when they were stale.

use std::fmt::Write as _;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

/// The file a CRD's reference is written to in `docs/reference/`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.md", crd.spec.names.kind.to_lowercase())
}

/// The Markdown reference of one CRD: its names, printer columns, and every
/// field of `spec` and `status` with type, requiredness, default, limits and
/// validation rules.
pub fn render(crd: &CustomResourceDefinition) -> String {
    let names = &crd.spec.names;
    let mut out = String::new();
    let _ = writeln!(out, "# {} reference\n", names.kind);
    out.push_str(
        "<!-- Generated from the CRD schema by `cargo test -p otpilot-api`; do not edit. -->\n\n",
    );
    for version in &crd.spec.versions {
        let _ = writeln!(
            out,
            "`apiVersion: {}/{}` · `kind: {}` · {} · short names: {}\n",
            crd.spec.group,
            version.name,
            names.kind,
            scope_words(&crd.spec.scope),
            short_names(names.short_names.as_deref().unwrap_or_default()),
        );
        let Some(root) = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
        else {
            continue;
        };
        if let Some(description) = &root.description {
            let _ = writeln!(out, "{}\n", one_paragraph(description));
        }
        render_columns(&mut out, version.additional_printer_columns.as_deref());
        for section in ["spec", "status"] {
            if let Some(schema) = root.properties.as_ref().and_then(|p| p.get(section)) {
                let _ = writeln!(out, "## `{section}`\n");
                render_rules(&mut out, schema);
                render_object(&mut out, section, schema);
            }
        }
    }
    out.trim_end().to_owned() + "\n"
}

fn scope_words(scope: &str) -> &'static str {
    if scope == "Cluster" {
        "cluster-scoped"
    } else {
        "namespaced"
    }
}

fn short_names(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_columns(
    out: &mut String,
    columns: Option<&[k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceColumnDefinition]>,
) {
    let Some(columns) = columns.filter(|c| !c.is_empty()) else {
        return;
    };
    out.push_str("`kubectl get` columns (priority 1 with `-o wide`):\n\n");
    out.push_str("| column | from | priority |\n|---|---|---|\n");
    for column in columns {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} |",
            column.name,
            column.json_path,
            column.priority.unwrap_or(0)
        );
    }
    out.push('\n');
}

/// Every field below `schema`, depth first, in the schema's (sorted) order.
fn render_object(out: &mut String, path: &str, schema: &JSONSchemaProps) {
    let required = schema.required.as_deref().unwrap_or_default();
    for (name, field) in schema.properties.iter().flatten() {
        let field_path = format!("{path}.{name}");
        render_field(out, &field_path, field, required.contains(name));
        descend(out, &field_path, field);
    }
}

fn descend(out: &mut String, path: &str, field: &JSONSchemaProps) {
    if field.properties.is_some() {
        render_object(out, path, field);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &field.items
        && items.properties.is_some()
    {
        render_object(out, &format!("{path}[]"), items);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = &field.additional_properties
        && values.properties.is_some()
    {
        render_object(out, &format!("{path}.*"), values);
    }
}

fn render_field(out: &mut String, path: &str, field: &JSONSchemaProps, required: bool) {
    let requiredness = if required { "required" } else { "optional" };
    let _ = writeln!(out, "### `{path}`\n");
    let _ = writeln!(out, "*{}, {requiredness}*\n", type_words(field));
    if let Some(description) = &field.description {
        let _ = writeln!(out, "{}\n", one_paragraph(description));
    }
    let limits = limits(field);
    if !limits.is_empty() {
        for limit in limits {
            let _ = writeln!(out, "- {limit}");
        }
        out.push('\n');
    }
    render_rules(out, field);
}

fn render_rules(out: &mut String, field: &JSONSchemaProps) {
    let rules = field
        .x_kubernetes_validations
        .as_deref()
        .unwrap_or_default();
    if rules.is_empty() {
        return;
    }
    out.push_str("Validation rules (checked by the API server):\n\n");
    for rule in rules {
        let message = rule.message.as_deref().unwrap_or("rule not met");
        let _ = writeln!(out, "- {message} (`{}`)", rule.rule);
    }
    out.push('\n');
}

/// "string", "array of object", "map of string to string", ...
pub fn type_words(field: &JSONSchemaProps) -> String {
    let base = field.type_.as_deref().unwrap_or("any");
    match base {
        "array" => match &field.items {
            Some(JSONSchemaPropsOrArray::Schema(items)) => {
                format!("array of {}", type_words(items))
            }
            _ => "array".to_owned(),
        },
        "object" => match &field.additional_properties {
            Some(JSONSchemaPropsOrBool::Schema(values)) => {
                format!("map of string to {}", type_words(values))
            }
            _ => "object".to_owned(),
        },
        other => match &field.format {
            Some(format) => format!("{other} ({format})"),
            None => other.to_owned(),
        },
    }
}

/// The schema's constraints in words, one per line.
pub fn limits(field: &JSONSchemaProps) -> Vec<String> {
    let mut limits = Vec::new();
    if let Some(default) = &field.default {
        limits.push(format!("default: `{}`", json_words(&default.0)));
    }
    if let Some(values) = &field.enum_ {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("`{}`", json_words(&v.0)))
            .collect();
        limits.push(format!("one of: {}", values.join(", ")));
    }
    if let Some(pattern) = &field.pattern {
        limits.push(format!("pattern: `{pattern}`"));
    }
    let range = |what: &str, min: Option<String>, max: Option<String>| match (min, max) {
        (Some(min), Some(max)) => Some(format!("{what}: {min} to {max}")),
        (Some(min), None) => Some(format!("{what}: at least {min}")),
        (None, Some(max)) => Some(format!("{what}: at most {max}")),
        (None, None) => None,
    };
    limits.extend(range(
        "length",
        field.min_length.map(|v| v.to_string()),
        field.max_length.map(|v| v.to_string()),
    ));
    limits.extend(range(
        "value",
        field.minimum.map(|v| v.to_string()),
        field.maximum.map(|v| v.to_string()),
    ));
    limits.extend(range(
        "items",
        field.min_items.map(|v| v.to_string()),
        field.max_items.map(|v| v.to_string()),
    ));
    if let Some(list_type) = &field.x_kubernetes_list_type {
        let keys = field
            .x_kubernetes_list_map_keys
            .as_deref()
            .unwrap_or_default();
        if keys.is_empty() {
            limits.push(format!("list type: {list_type}"));
        } else {
            limits.push(format!(
                "list type: {list_type}, keyed by {}",
                keys.join(", ")
            ));
        }
    }
    limits
}

/// A JSON value as a person writes it in YAML: strings without quotes.
fn json_words(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Doc comments wrap at ~80 columns; Markdown paragraphs should not carry
/// those breaks (a blank line still separates paragraphs).
fn one_paragraph(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON;

    fn props(type_: &str) -> JSONSchemaProps {
        JSONSchemaProps {
            type_: Some(type_.to_owned()),
            ..JSONSchemaProps::default()
        }
    }

    #[test]
    fn type_words_name_collections() {
        let string_map = JSONSchemaProps {
            additional_properties: Some(JSONSchemaPropsOrBool::Schema(Box::new(props("string")))),
            ..props("object")
        };
        let objects = JSONSchemaProps {
            items: Some(JSONSchemaPropsOrArray::Schema(Box::new(props("object")))),
            ..props("array")
        };
        let count = JSONSchemaProps {
            format: Some("int32".to_owned()),
            ..props("integer")
        };
        let cases = [
            (props("string"), "string"),
            (string_map, "map of string to string"),
            (objects, "array of object"),
            (count, "integer (int32)"),
            (JSONSchemaProps::default(), "any"),
        ];
        for (schema, want) in cases {
            assert_eq!(type_words(&schema), want);
        }
    }

    #[test]
    fn limits_in_words() {
        let field = JSONSchemaProps {
            default: Some(JSON(serde_json::json!("720h"))),
            min_length: Some(1),
            max_length: Some(32),
            minimum: Some(0.0),
            enum_: Some(vec![
                JSON(serde_json::json!("A")),
                JSON(serde_json::json!("B")),
            ]),
            ..props("string")
        };
        assert_eq!(
            limits(&field),
            [
                "default: `720h`",
                "one of: `A`, `B`",
                "length: 1 to 32",
                "value: at least 0",
            ]
        );
    }

    #[test]
    fn paragraphs_lose_their_wrapping_only() {
        assert_eq!(one_paragraph("a\nb\n\nc  d"), "a b\n\nc d");
    }
}
