//! What the docs-truth test reads: the documents a user copies from, and
//! the code and chart those documents describe.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::Regex;

pub fn repo() -> PathBuf {
    // The parent, not `tests/..`: paths are matched on their components.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Directories never read: build output, run state, VCS.
const SKIPPED_DIRS: &[&str] = &["target", ".git", ".otpilot", "node_modules"];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                walk(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

pub fn files(extensions: &[&str]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    walk(&repo(), &mut all);
    all.retain(|p| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e))
    });
    all.sort();
    all
}

/// A document a user reads: every Markdown file but the changelog, which
/// records what earlier versions did.
pub struct Doc {
    pub path: String,
    pub text: String,
}

pub fn docs() -> Vec<Doc> {
    let root = repo();
    files(&["md"])
        .into_iter()
        .filter(|p| p.file_name().is_none_or(|n| n != "CHANGELOG.md"))
        .map(|p| Doc {
            path: p
                .strip_prefix(&root)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned(),
            text: std::fs::read_to_string(&p).unwrap_or_default(),
        })
        .collect()
}

/// Where an identifier may exist: Rust sources, scripts, the chart, the
/// CRDs, configuration.
pub fn corpus() -> String {
    let mut text = String::new();
    for path in files(&[
        "rs", "sh", "py", "yaml", "yml", "tpl", "toml", "txt", "json",
    ]) {
        let shown = path.to_string_lossy();
        if shown.contains("/tests/fixtures/") {
            continue;
        }
        text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// The Rust sources of the binaries and libraries (not their tests).
pub fn sources() -> Vec<(PathBuf, String)> {
    files(&["rs"])
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/src/"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (p, text)
        })
        .collect()
}

/// Every `--flag` clap accepts in any of the workspace's binaries: `long`
/// args named after their field, or given as `long = "name"`.
pub fn clap_flags() -> BTreeSet<String> {
    // `#[arg(...)]` up to the `)]` that ends its line, then doc comments or
    // other attributes, then the field.
    let attr = Regex::new(
        r#"(?s)#\[arg\((.*?)\)\]\s*\n\s*(?:(?:///[^\n]*|#\[[^\n]*\])\s*)*(?:pub(?:\([a-z]+\))?\s+)?([a-z_][a-z0-9_]*)\s*:"#,
    )
    .expect("regex");
    let explicit = Regex::new(r#"long\s*=\s*"([a-z0-9-]+)""#).expect("regex");
    let long = Regex::new(r"\blong\b").expect("regex");
    // clap adds these to every command.
    let mut flags: BTreeSet<String> = ["--help", "--version"].map(str::to_owned).into();
    for (_, text) in sources() {
        for capture in attr.captures_iter(&text) {
            let args = &capture[1];
            if let Some(name) = explicit.captures(args) {
                flags.insert(format!("--{}", &name[1]));
            } else if long.is_match(args) {
                flags.insert(format!("--{}", capture[2].replace('_', "-")));
            }
        }
    }
    flags
}

/// Every metric family the operator and the sidecar register, with the
/// prefix and unit prometheus-client gives it.
pub fn metric_families() -> BTreeSet<String> {
    let prefix = Regex::new(r#"Registry::with_prefix\("([a-z_]+)"\)"#).expect("regex");
    // register("name", "help", ...) or register_with_unit("name", "help",
    // Unit::X, ...): the help is skipped as a string literal.
    let register = Regex::new(
        r#"register(_with_unit)?\(\s*"([a-z0-9_]+)",\s*"(?:[^"\\]|\\.)*",\s*(?:Unit::([A-Za-z]+))?"#,
    )
    .expect("regex");
    let mut families = BTreeSet::new();
    for (_, text) in sources() {
        let Some(prefix) = prefix.captures(&text) else {
            continue;
        };
        for capture in register.captures_iter(&text) {
            let mut name = format!("{}_{}", &prefix[1], &capture[2]);
            if capture.get(1).is_some()
                && let Some(unit) = capture.get(3)
            {
                name.push('_');
                name.push_str(&unit.as_str().to_lowercase());
            }
            families.insert(name);
        }
    }
    families
}

/// The family a sample name belongs to: counters and histograms add
/// suffixes to it.
pub fn family_of(sample: &str) -> &str {
    for suffix in ["_total", "_bucket", "_sum", "_count", "_created", "_info"] {
        if let Some(family) = sample.strip_suffix(suffix) {
            return family;
        }
    }
    sample
}

/// The leaves of the chart's values: paths whose value is not a map with
/// keys (a scalar, a list, or an empty map a user fills).
pub fn chart_value_leaves() -> BTreeSet<String> {
    let paths = chart_value_paths();
    paths
        .iter()
        .filter(|p| {
            !paths
                .iter()
                .any(|q| q.len() > p.len() && q.starts_with(&format!("{p}.")))
        })
        .cloned()
        .collect()
}

/// Every key path of the chart's values (`a.b.c`), maps only.
pub fn chart_value_paths() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("charts/otpilot/values.yaml")).expect("values");
    let values: serde_json::Value = serde_saphyr::from_str(&text).expect("values.yaml parses");
    let mut paths = BTreeSet::new();
    fn visit(prefix: &str, value: &serde_json::Value, paths: &mut BTreeSet<String>) {
        if let serde_json::Value::Object(map) = value {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                paths.insert(path.clone());
                visit(&path, child, paths);
            }
        }
    }
    visit("", &values, &mut paths);
    paths
}

/// Backticked spans of a Markdown text, with their line numbers; fenced
/// code blocks count as one span per line.
pub fn code_spans(text: &str) -> Vec<(usize, String)> {
    let mut spans = Vec::new();
    let mut fenced = false;
    let inline = Regex::new(r"`([^`\n]+)`").expect("regex");
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            spans.push((number, line.to_owned()));
        } else {
            for capture in inline.captures_iter(line) {
                spans.push((number, capture[1].to_owned()));
            }
        }
    }
    spans
}

/// Flags the project's scripts take (`--check)` in a `case`).
pub fn script_flags() -> BTreeSet<String> {
    let case = Regex::new(r"(?m)^\s*(--[a-z][a-z0-9-]*)(?:\|--?[a-z-]+)*\)").expect("regex");
    files(&["sh"])
        .into_iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            case.captures_iter(&text)
                .map(|c| c[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The webhook's refusal reasons (`DenyReason::as_str`), which are Event
/// reasons and metric labels, not condition reasons.
pub fn webhook_refusal_reasons() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("inject/src/decision.rs")).expect("decision.rs");
    Regex::new(r#"DenyReason::[A-Za-z]+ => "([A-Za-z]+)""#)
        .expect("regex")
        .captures_iter(&text)
        .map(|c| c[1].to_owned())
        .collect()
}

/// Every metric label the sources set: fields of `EncodeLabelSet` structs
/// and the names of `("label", value)` pairs in the metrics modules.
pub fn metric_labels() -> BTreeSet<String> {
    let derive =
        Regex::new(r"(?s)EncodeLabelSet\)\]\s*pub struct [A-Za-z]+ \{(.*?)\n\}").expect("regex");
    let field = Regex::new(r"(?m)^\s*pub ([a-z_]+):").expect("regex");
    let pair = Regex::new(r#"\(\s*"([a-z_]+)",\s*[a-z_.()]+\s*\)"#).expect("regex");
    let mut labels = BTreeSet::new();
    for (path, text) in sources() {
        if !path.to_string_lossy().contains("metrics") {
            continue;
        }
        for block in derive.captures_iter(&text) {
            labels.extend(field.captures_iter(&block[1]).map(|c| c[1].to_owned()));
        }
        labels.extend(pair.captures_iter(&text).map(|c| c[1].to_owned()));
    }
    labels
}
