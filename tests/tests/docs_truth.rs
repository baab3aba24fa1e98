//! Docs are product: every identifier a user copies from a document —
//! `otpilot.dev/*` annotations and labels, `OTPILOT_*` variables, metric
//! names, `--flags`, chart value paths, condition reasons — exists in the
//! code or the chart with that spelling. A few name other projects' flags:
//! they are listed below, each for a reason.

mod docs_truth_support;

use std::collections::BTreeSet;

use docs_truth_support::*;
use regex::Regex;

/// Flags of other programs that the documents show (kubectl, helm, cargo,
/// curl, skopeo, ...): not ours to check.
const OTHER_PROGRAMS_FLAGS: &[&str] = &[
    // cargo and cargo-nextest / cargo-deny
    "--workspace",
    "--no-deps",
    "--test",
    "--lib",
    "--release",
    "--locked",
    "--offline",
    "--no-capture",
    // helm
    "--create-namespace",
    "--set",
    "--strict",
    "--install",
    "--reuse-values",
    // kubectl
    "--dry-run",
    "--server-side",
    "--force-conflicts",
    "--overwrite",
    "--field-selector",
    "--for",
    "--from-literal",
    "--from-file",
    "--previous",
    // kube-apiserver (docs/testing.md describes how the test control plane runs it)
    "--enable-aggregator-routing",
    // curl
    "--data-binary",
    // skopeo
    "--dest-tls-verify",
];

/// One identifier a document names that does not exist.
fn report(kind: &str, unknown: &[(String, usize, String)]) {
    let lines: Vec<String> = unknown
        .iter()
        .map(|(path, line, what)| format!("  {path}:{line}: {what}"))
        .collect();
    assert!(
        unknown.is_empty(),
        "{} {kind} named in the docs do not exist:\n{}",
        unknown.len(),
        lines.join("\n")
    );
}

fn unknown_matches(pattern: &str, known: impl Fn(&str) -> bool) -> Vec<(String, usize, String)> {
    let pattern = Regex::new(pattern).expect("regex");
    let mut unknown = Vec::new();
    for doc in docs() {
        for (number, line) in doc.text.lines().enumerate() {
            for found in pattern.find_iter(line) {
                let what = found.as_str();
                if !known(what) {
                    unknown.push((doc.path.clone(), number + 1, what.to_owned()));
                }
            }
        }
    }
    unknown
}

#[test]
fn annotations_and_labels_exist() {
    let corpus = corpus();
    let unknown = unknown_matches(r"otpilot\.dev/[a-z0-9][a-z0-9.-]*[a-z0-9]", |name| {
        corpus.contains(&format!("\"{name}")) || corpus.contains(&format!("{name}:"))
    });
    report("otpilot.dev/ names", &unknown);
}

#[test]
fn environment_variables_exist() {
    let corpus = corpus();
    let unknown = unknown_matches(r"\bOTPILOT_[A-Z0-9_]*[A-Z0-9]\b", |name| {
        corpus.contains(name)
    });
    report("OTPILOT_ variables", &unknown);
}

#[test]
fn metric_names_exist() {
    let families = metric_families();
    assert!(
        families.iter().any(|f| f.starts_with("otpilot_operator_"))
            && families.iter().any(|f| f.starts_with("otpilot_sidecar_")),
        "found no metric registrations: the parser is out of date ({families:?})"
    );
    let unknown = unknown_matches(
        r"\botpilot_(?:operator|sidecar)_[a-z0-9_]*[a-z0-9]\b",
        |name| families.contains(name) || families.contains(family_of(name)),
    );
    report("metrics", &unknown);
}

#[test]
fn metric_labels_exist() {
    let labels = metric_labels();
    assert!(
        labels.contains("namespace") && labels.contains("flow"),
        "the label parser found too few labels: {labels:?}"
    );
    // `otpilot_x{a,b}` or `otpilot_x{a="v"}`: the names inside the braces.
    let series =
        Regex::new(r"\botpilot_(?:operator|sidecar)_[a-z0-9_]+\{([^}]*)\}").expect("regex");
    let name = Regex::new(r"([a-z_]+)\s*(?:=~?|!=)?").expect("regex");
    let mut unknown = Vec::new();
    for doc in docs() {
        for (number, line) in doc.text.lines().enumerate() {
            for capture in series.captures_iter(line) {
                for part in capture[1].split(',') {
                    let Some(label) = name.captures(part.trim()) else {
                        continue;
                    };
                    if !labels.contains(&label[1]) {
                        unknown.push((
                            doc.path.clone(),
                            number + 1,
                            format!("{} in {}", &label[1], &capture[0]),
                        ));
                    }
                }
            }
        }
    }
    report("metric labels", &unknown);
}

#[test]
fn flags_exist() {
    let mut ours = clap_flags();
    ours.extend(script_flags());
    assert!(
        ours.contains("--namespace") && ours.contains("--refresh-before"),
        "the clap parser found too few flags: {ours:?}"
    );
    let others: BTreeSet<&str> = OTHER_PROGRAMS_FLAGS.iter().copied().collect();
    let flag = Regex::new(r"(?:^|[\s(\[])(--[a-z][a-z0-9-]*[a-z0-9])").expect("regex");
    let mut unknown = Vec::new();
    for doc in docs() {
        for (line, span) in code_spans(&doc.text) {
            for capture in flag.captures_iter(&span) {
                let name = &capture[1];
                if !ours.contains(name) && !others.contains(name) {
                    unknown.push((doc.path.clone(), line, name.to_owned()));
                }
            }
        }
    }
    report("flags", &unknown);
}

#[test]
fn chart_value_paths_exist() {
    let paths = chart_value_paths();
    let roots: BTreeSet<&str> = paths
        .iter()
        .filter(|p| !p.contains('.'))
        .map(String::as_str)
        .collect();
    let candidate = Regex::new(r"^([a-z][A-Za-z0-9]*)((?:\.[A-Za-z0-9{},*]+)+)$").expect("regex");
    let mut unknown = Vec::new();
    for doc in docs() {
        for (line, span) in code_spans(&doc.text) {
            let span = span.trim();
            let Some(capture) = candidate.captures(span) else {
                continue;
            };
            // A file name (`webhook.rs`, `sidecar.tar`) is not a value path.
            let file = [
                ".rs", ".tar", ".md", ".yaml", ".yml", ".json", ".sh", ".py", ".toml", ".tpl",
            ]
            .iter()
            .any(|ext| span.ends_with(ext));
            if !roots.contains(&capture[1]) || file {
                continue;
            }
            if !expand(span).iter().all(|p| {
                p.ends_with(".*") && paths.iter().any(|k| k.starts_with(p.trim_end_matches('*')))
                    || paths.contains(p)
            }) {
                unknown.push((doc.path.clone(), line, span.to_owned()));
            }
        }
    }
    report("chart values", &unknown);
}

/// `a.{b,c}.d` → `a.b.d`, `a.c.d`.
fn expand(path: &str) -> Vec<String> {
    match (path.find('{'), path.find('}')) {
        (Some(open), Some(close)) if open < close => path[open + 1..close]
            .split(',')
            .flat_map(|choice| {
                expand(&format!(
                    "{}{}{}",
                    &path[..open],
                    choice.trim(),
                    &path[close + 1..]
                ))
            })
            .collect(),
        _ => vec![path.to_owned()],
    }
}

#[test]
fn troubleshooting_sections_name_real_reasons_and_alerts() {
    let doc = std::fs::read_to_string(repo().join("docs/troubleshooting.md")).expect("read");
    let refusals = webhook_refusal_reasons();
    assert!(
        refusals.contains("UnsafePod"),
        "the refusal reasons parser is out of date"
    );
    // The shipped alerts have their runbooks there too.
    let alerts: Vec<String> = chart_value_paths()
        .iter()
        .filter_map(|p| p.strip_prefix("metrics.prometheusRule.alerts."))
        .filter(|rest| !rest.contains('.'))
        .map(str::to_owned)
        .collect();
    assert!(alerts.len() > 3, "found no alert switches in values.yaml");
    let reasons: BTreeSet<&str> = otpilot_api::conditions::reasons::ALL
        .iter()
        .copied()
        .chain(refusals.iter().map(String::as_str))
        .chain(alerts.iter().map(String::as_str))
        .collect();
    let heading = Regex::new(r"^### `([A-Za-z]+)`").expect("regex");
    let unknown: Vec<(String, usize, String)> = doc
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let name = heading.captures(line)?[1].to_owned();
            (!reasons.contains(name.as_str()))
                .then(|| ("docs/troubleshooting.md".to_owned(), i + 1, name))
        })
        .collect();
    report("reasons (### `Reason` sections)", &unknown);
}

/// Reasons a code path emits but no test produces and asserts yet: the
/// list only shrinks (the test fails when one of them gains a test, so it
/// is taken off).
const REASONS_NOT_YET_ASSERTED: &[&str] = &["IssueFailed"];

/// Every condition or Event reason of the API is emitted by the code (a
/// reason nothing emits is removed from the API, not documented), and a
/// test names it: an integration test or a unit test's table.
#[test]
fn every_reason_is_emitted_and_asserted() {
    let constants = std::fs::read_to_string(repo().join("api/src/conditions.rs")).expect("read");
    let declared = Regex::new(r#"pub const ([A-Z_]+): &str = "([A-Za-z]+)";"#).expect("regex");
    let reasons_module = &constants[constants.find("pub mod reasons").expect("reasons module")..];
    let mut code = String::new();
    let mut tests = String::new();
    let root = repo();
    for path in files(&["rs"]) {
        let shown = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        // The list itself, and this test, name reasons without testing them.
        if shown.ends_with("api/src/conditions.rs") || shown.starts_with("tests/tests/docs_truth") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if shown.starts_with("tests/") || shown.contains("/tests/") {
            tests.push_str(&text);
        } else if shown.starts_with("cli/") {
            // The CLI reads reasons (next steps); it emits none.
            if let Some((_, after)) = text.split_once("#[cfg(test)]") {
                tests.push_str(after);
            }
        } else if let Some((before, after)) = text.split_once("#[cfg(test)]") {
            code.push_str(before);
            tests.push_str(after);
        } else {
            code.push_str(&text);
        }
    }
    let named = |text: &str, constant: &str, value: &str| {
        text.contains(&format!("\"{value}\""))
            || Regex::new(&format!(r"\b{constant}\b"))
                .expect("regex")
                .is_match(text)
    };
    let mut silent = Vec::new();
    let mut untested = Vec::new();
    let mut listed_but_tested = Vec::new();
    for capture in declared.captures_iter(reasons_module) {
        let (constant, value) = (&capture[1], &capture[2]);
        if !named(&code, constant, value) {
            silent.push(value.to_owned());
        }
        let tested = named(&tests, constant, value);
        let listed = REASONS_NOT_YET_ASSERTED.contains(&value);
        match (tested, listed) {
            (false, false) => untested.push(value.to_owned()),
            (true, true) => listed_but_tested.push(value.to_owned()),
            _ => {}
        }
    }
    assert!(
        silent.is_empty(),
        "reasons no code emits (remove them): {silent:?}"
    );
    assert!(untested.is_empty(), "reasons no test asserts: {untested:?}");
    assert!(
        listed_but_tested.is_empty(),
        "tested now, take them off REASONS_NOT_YET_ASSERTED: {listed_but_tested:?}"
    );
}

/// The chart README's Values table (or its text) names every value of
/// `values.yaml`: a row may name several (`a.{b,c}`, `a.*`, `a.<name>.b`,
/// or a parent: `operator.resources`).
#[test]
fn the_chart_readme_documents_every_value() {
    let readme = std::fs::read_to_string(repo().join("charts/otpilot/README.md")).expect("read");
    let mut named: Vec<Vec<String>> = Vec::new();
    for (_, span) in code_spans(&readme) {
        for part in span.split(", ") {
            for path in expand(part.trim()) {
                let path = path.trim_end_matches(".*").to_owned();
                named.push(path.split('.').map(str::to_owned).collect());
            }
        }
    }
    // `<name>` stands for any key.
    let covers = |pattern: &[String], leaf: &[&str]| {
        pattern.len() <= leaf.len()
            && pattern
                .iter()
                .zip(leaf)
                .all(|(p, l)| p == l || (p.starts_with('<') && p.ends_with('>')))
    };
    let missing: Vec<String> = chart_value_leaves()
        .into_iter()
        .filter(|leaf| {
            let parts: Vec<&str> = leaf.split('.').collect();
            !named.iter().any(|pattern| covers(pattern, &parts))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "charts/otpilot/README.md does not document these values: {missing:?}"
    );
}
