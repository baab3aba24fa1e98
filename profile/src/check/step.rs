//! The checks of one step: its request, response rules and extractions.

use super::*;

pub(super) fn validate_step(
    c: &mut Checker<'_>,
    spec: &ProfileSpec,
    kind: FlowKind,
    step: &Step,
    at: &str,
    available: &BTreeSet<String>,
) -> StepInfo {
    let mut refs = BTreeSet::new();
    if !(step.path.starts_with('/') || step.path.starts_with("{{")) {
        c.problem(
            format!("{at}.path"),
            "must start with '/' (it is appended to the base URL)",
        );
    }
    refs.extend(c.template(&format!("{at}.path"), &step.path, available));
    for (k, v) in &step.query {
        refs.extend(c.template(&format!("{at}.query.{k}"), v, available));
    }
    for (k, v) in &spec.headers {
        // Profile-wide headers are checked in every step that sends them.
        let overridden = step.headers.keys().any(|h| h.eq_ignore_ascii_case(k));
        if !overridden {
            refs.extend(c.template(&format!("headers.{k} (sent by {at})"), v, available));
        }
    }
    for (k, v) in &step.headers {
        if !is_header_name(k) {
            c.problem(format!("{at}.headers.{k}"), "not a valid HTTP header name");
        }
        refs.extend(c.template(&format!("{at}.headers.{k}"), v, available));
    }
    if step.body.is_some() && step.form.is_some() {
        c.problem(at, "has both body and form; a request has one body");
    }
    if step.method == HttpMethod::Get && (step.body.is_some() || step.form.is_some()) {
        c.problem(at, "a GET request cannot have a body");
    }
    if let Some(body) = &step.body {
        c.json(&format!("{at}.body"), body, available, &mut refs);
    }
    if let Some(form) = &step.form {
        for (k, v) in form {
            refs.extend(c.template(&format!("{at}.form.{k}"), v, available));
        }
    }
    for (i, rule) in step.responses.iter().enumerate() {
        let rp = format!("{at}.responses[{i}]");
        for s in &rule.status {
            if !(100..=599).contains(s) {
                c.problem(format!("{rp}.status"), format!("{s} is not an HTTP status"));
            }
        }
        if let Some(when) = &rule.when
            && !is_pointer(&when.pointer)
        {
            c.problem(
                format!("{rp}.when.pointer"),
                "a JSON pointer is empty or starts with '/'",
            );
        }
        if rule.outcome == Outcome::LoginRequired && kind != FlowKind::Refresh {
            c.problem(
                format!("{rp}.outcome"),
                "loginRequired is only for the refresh flow (a refused refresh token)",
            );
        }
        if rule.outcome == Outcome::RetryWithTotpHeader {
            if !available.contains("totp") {
                c.problem(
                    format!("{rp}.outcome"),
                    "retryWithTotpHeader needs a TOTP secret, which is not known yet at this step",
                );
            }
            if let Some(h) = &rule.header
                && !is_header_name(h)
            {
                c.problem(format!("{rp}.header"), "not a valid HTTP header name");
            }
        } else if rule.header.is_some() {
            c.problem(
                format!("{rp}.header"),
                "only used with outcome retryWithTotpHeader",
            );
        }
    }
    for (name, ex) in &step.extract {
        let ep = format!("{at}.extract.{name}");
        if !is_identifier(name) {
            c.problem(
                &ep,
                "a value name must be a letter or _ followed by letters, digits or _",
            );
        }
        if COMMON_INPUTS.contains(&name.as_str()) || name == "totp" || name == "recovery_code" {
            c.problem(
                &ep,
                format!("'{name}' shadows the input '{name}'; an input cannot be extracted"),
            );
        } else if spec.secret_values.contains(name) {
            c.problem(
                &ep,
                format!(
                    "'{name}' shadows the secret value '{name}'; extract it under another name"
                ),
            );
        } else if spec.variables.contains_key(name) {
            c.problem(
                &ep,
                format!(
                    "'{name}' shadows the profile variable '{name}'; extract it under another name"
                ),
            );
        } else if crate::template::GLOBALS.contains(&name.as_str()) {
            c.problem(
                &ep,
                format!(
                    "'{name}' shadows the template function '{name}'; extract it under another name"
                ),
            );
        }
        let sources = [
            ex.pointer.is_some(),
            ex.header.is_some(),
            ex.value.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if sources != 1 {
            c.problem(&ep, "set exactly one of pointer, header and value");
        }
        if let Some(p) = &ex.pointer
            && !is_pointer(p)
        {
            c.problem(
                format!("{ep}.pointer"),
                "a JSON pointer is empty or starts with '/'",
            );
        }
        if let Some(h) = &ex.header
            && !is_header_name(h)
        {
            c.problem(format!("{ep}.header"), "not a valid HTTP header name");
        }
        if let Some(v) = &ex.value {
            refs.extend(c.extraction_template(&format!("{ep}.value"), v, available));
        }
        if let Some(message) = kind_problem(name, ex.kind) {
            c.problem(format!("{ep}.as"), message);
        }
        if let Some(fallback) = &ex.fallback {
            let fp = format!("{ep}.fallback");
            if fallback.pointer.is_some() == fallback.header.is_some() {
                c.problem(&fp, "set exactly one of pointer and header");
            }
            if let Some(p) = &fallback.pointer
                && !is_pointer(p)
            {
                c.problem(
                    format!("{fp}.pointer"),
                    "a JSON pointer is empty or starts with '/'",
                );
            }
            if let Some(h) = &fallback.header
                && !is_header_name(h)
            {
                c.problem(format!("{fp}.header"), "not a valid HTTP header name");
            }
            if let Some(message) = kind_problem(name, fallback.kind) {
                c.problem(format!("{fp}.as"), message);
            }
            if ex.strip_spaces && fallback.kind != ValueKind::RecoveryCodes {
                c.problem(
                    format!("{fp}.as"),
                    "stripSpaces applies to the fallback too: read it as recoveryCodes",
                );
            }
        }
        if ex.strip_spaces && ex.kind != ValueKind::RecoveryCodes {
            c.problem(
                format!("{ep}.stripSpaces"),
                "only used with as: recoveryCodes",
            );
        }
    }
    let totp_header_retry = step
        .responses
        .iter()
        .any(|r| r.outcome == Outcome::RetryWithTotpHeader);
    StepInfo {
        refs,
        totp_header_retry,
    }
}
