//! The consistency checks of a parsed profile: every template reference
//! defined where it is used, reserved names read with the kind the engine
//! stores them by, rules and extractions well formed. Every problem is
//! reported at once, with its field path.

use std::collections::{BTreeMap, BTreeSet};

use otpilot_api::profile::{Flow, HttpMethod, Outcome, ProfileSpec, Step, TokenExpiry, ValueKind};

use crate::error::{FlowKind, Problem};
use crate::kinds::kind_problem;
use crate::template;

/// Values the caller provides to every flow (besides profile variables).
pub const COMMON_INPUTS: &[&str] = &["username", "password", "api_key"];

/// Extraction names with a meaning to the engine.
pub const WELL_KNOWN: &[&str] = &[
    "totp_secret",
    "recovery_codes",
    "access_token",
    "refresh_token",
    "expires_at",
    "refresh_expires_at",
    "reenroll_required",
];

/// Values a flow starts with, besides the common inputs and variables.
pub fn flow_inputs(flow: FlowKind) -> &'static [&'static str] {
    match flow {
        FlowKind::Enroll => &[],
        FlowKind::Login | FlowKind::Disable => &["totp_secret", "totp"],
        FlowKind::RecoveryLogin => &["recovery_code", "totp_secret", "totp"],
        FlowKind::Refresh => &["access_token", "refresh_token", "totp_secret", "totp"],
    }
}

/// What the engine knows about a step after validation.
#[derive(Debug, Clone, Default)]
pub struct StepInfo {
    /// Every value the step's templates (and the profile's headers) use.
    pub refs: BTreeSet<String>,
    /// A response rule may ask for the code in a header
    /// (`retryWithTotpHeader`).
    pub totp_header_retry: bool,
}

impl StepInfo {
    /// Whether the step sends the current TOTP code.
    pub fn uses_totp(&self) -> bool {
        self.refs.contains("totp")
    }

    /// Whether the step may send a code: in its templates, or in a header
    /// the vendor asks for.
    pub fn may_send_code(&self) -> bool {
        self.uses_totp() || self.totp_header_retry
    }
}

pub(crate) fn flow_of(spec: &ProfileSpec, kind: FlowKind) -> Option<&Flow> {
    match kind {
        FlowKind::Enroll => Some(&spec.enroll),
        FlowKind::Login => Some(&spec.login),
        FlowKind::Refresh => spec.refresh.as_ref(),
        FlowKind::RecoveryLogin => spec.recovery_login.as_ref(),
        FlowKind::Disable => spec.disable.as_ref(),
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` is a header name the HTTP client accepts (the same
/// check the executor makes when it builds a request).
fn is_header_name(name: &str) -> bool {
    reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
}

fn is_pointer(p: &str) -> bool {
    p.is_empty() || p.starts_with('/')
}

struct Checker<'a> {
    env: minijinja::Environment<'static>,
    problems: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// The values a template refers to; a template that does not compile
    /// is a problem and refers to nothing.
    fn refs(&mut self, path: &str, source: &str) -> BTreeSet<String> {
        let refs = template::referenced_values(&self.env, source).unwrap_or_else(|e| {
            self.problem(path, format!("template does not compile: {}", e.0));
            BTreeSet::new()
        });
        // Rendered once with sample values: a template that exhausts its
        // budget is refused here, not on every request.
        if let Some(message) = template::cost_problem(&self.env, source, &refs) {
            self.problem(path, message);
        }
        refs
    }

    /// Checks one template against the values available; returns its refs.
    fn template(
        &mut self,
        path: &str,
        source: &str,
        available: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let refs = self.refs(path, source);
        self.require_defined(path, &refs, available);
        refs
    }

    /// Reports every reference that is not among the available values.
    fn require_defined(
        &mut self,
        path: &str,
        refs: &BTreeSet<String>,
        available: &BTreeSet<String>,
    ) {
        for name in refs {
            if !available.contains(name) {
                self.problem(path, undefined_message(name, available));
            }
        }
    }

    /// Checks an extraction's `value` template. It is rendered after the
    /// response, when no code is generated, so `totp` is refused (it would
    /// fail to render and make the step send a code it does not need).
    /// Returns its refs, `totp` left out.
    fn extraction_template(
        &mut self,
        path: &str,
        source: &str,
        available: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut refs = self.refs(path, source);
        if refs.remove("totp") {
            self.problem(
                path,
                "extraction templates may use only values known after the response; \
                 'totp' is a code generated for a request",
            );
        }
        self.require_defined(path, &refs, available);
        refs
    }

    fn json(
        &mut self,
        path: &str,
        value: &serde_json::Value,
        available: &BTreeSet<String>,
        refs: &mut BTreeSet<String>,
    ) {
        match value {
            serde_json::Value::String(s) => refs.extend(self.template(path, s, available)),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.json(&format!("{path}[{i}]"), item, available, refs);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    self.json(&format!("{path}.{k}"), v, available, refs);
                }
            }
            _ => {}
        }
    }
}

fn undefined_message(name: &str, available: &BTreeSet<String>) -> String {
    let known: Vec<&str> = available.iter().map(String::as_str).collect();
    format!(
        "undefined value '{name}' (values defined here: {})",
        known.join(", ")
    )
}

pub(crate) fn validate(
    spec: &ProfileSpec,
    problems: &mut Vec<Problem>,
) -> BTreeMap<FlowKind, Vec<StepInfo>> {
    let mut c = Checker {
        env: template::environment(),
        problems,
    };
    if !(6..=8).contains(&spec.totp.digits) {
        c.problem(
            "totp.digits",
            format!("must be 6 to 8, not {}", spec.totp.digits),
        );
    }
    if spec.totp.period == 0 {
        c.problem("totp.period", "must be at least 1 second");
    }
    if let Some(s) = spec.token_lifetime_seconds
        && !(1..=366 * 24 * 3600).contains(&s)
    {
        c.problem(
            "tokenLifetimeSeconds",
            format!("must be 1 second to 366 days, not {s}"),
        );
    }
    if spec.token_expiry == TokenExpiry::Configured && spec.token_lifetime_seconds.is_none() {
        c.problem("tokenExpiry", "configured needs tokenLifetimeSeconds");
    }
    let reserved: BTreeSet<&str> = COMMON_INPUTS
        .iter()
        .chain(WELL_KNOWN)
        .chain(["totp", "recovery_code"].iter())
        .copied()
        .collect();
    for name in spec.variables.keys() {
        if !is_identifier(name) {
            c.problem(
                format!("variables.{name}"),
                "a variable name must be a letter or _ followed by letters, digits or _",
            );
        } else if reserved.contains(name.as_str()) {
            c.problem(
                format!("variables.{name}"),
                format!("'{name}' is a built-in value and cannot be a variable"),
            );
        } else if crate::template::GLOBALS.contains(&name.as_str()) {
            c.problem(
                format!("variables.{name}"),
                format!("'{name}' is a template function and cannot be a variable"),
            );
        }
    }
    for name in &spec.secret_values {
        let path = format!("secretValues[{name}]");
        if !is_identifier(name) {
            c.problem(
                path,
                "a secret value name must be a letter or _ followed by letters, digits or _",
            );
        } else if reserved.contains(name.as_str()) {
            c.problem(
                path,
                format!("'{name}' is a built-in value and cannot be a secret value"),
            );
        } else if spec.variables.contains_key(name) {
            c.problem(
                path,
                format!("'{name}' is also a variable; a value is either secret or not"),
            );
        } else if crate::template::GLOBALS.contains(&name.as_str()) {
            c.problem(
                path,
                format!("'{name}' is a template function and cannot be a secret value"),
            );
        }
    }
    for name in spec.headers.keys() {
        if !is_header_name(name) {
            c.problem(format!("headers.{name}"), "not a valid HTTP header name");
        }
    }

    let mut out = BTreeMap::new();
    for kind in FlowKind::ALL {
        let Some(flow) = flow_of(spec, kind) else {
            continue;
        };
        let mut available: BTreeSet<String> = COMMON_INPUTS
            .iter()
            .chain(flow_inputs(kind))
            .map(|s| s.to_string())
            .chain(spec.variables.keys().cloned())
            .chain(spec.secret_values.iter().cloned())
            .collect();
        if flow.steps.is_empty() {
            c.problem(format!("{kind}.steps"), "a flow needs at least one step");
        }
        let mut infos = Vec::new();
        let mut extracted_all = BTreeSet::new();
        if flow.replaces_active_secret && kind != FlowKind::Enroll {
            c.problem(
                format!("{kind}.replacesActiveSecret"),
                "only the enroll flow can replace the active secret",
            );
        }
        if let Some(generate) = &flow.generate_secret {
            if kind != FlowKind::Enroll {
                c.problem(
                    format!("{kind}.generateSecret"),
                    "only the enroll flow can generate a secret",
                );
            } else {
                available.insert("totp_secret".into());
                available.insert("totp".into());
                extracted_all.insert("totp_secret".to_owned());
            }
            if !(16..=64).contains(&generate.bytes) {
                c.problem(
                    format!("{kind}.generateSecret.bytes"),
                    format!("must be 16 to 64, not {}", generate.bytes),
                );
            }
        }
        for (i, step) in flow.steps.iter().enumerate() {
            let at = format!("{kind}.steps[{i}]");
            let info = validate_step(&mut c, spec, kind, step, &at, &available);
            for name in step.extract.keys() {
                available.insert(name.clone());
                extracted_all.insert(name.clone());
                if name == "totp_secret" {
                    available.insert("totp".into());
                }
            }
            infos.push(info);
        }
        let required: &[&str] = match kind {
            FlowKind::Enroll => &["totp_secret"],
            FlowKind::Login | FlowKind::Refresh | FlowKind::RecoveryLogin => &["access_token"],
            FlowKind::Disable => &[],
        };
        for name in required {
            if !extracted_all.contains(*name) && !flow.steps.is_empty() {
                c.problem(
                    format!("{kind}.steps"),
                    format!("no step extracts '{name}', which this flow must produce"),
                );
            }
        }
        out.insert(kind, infos);
    }
    out
}

mod step;
use step::validate_step;

#[cfg(test)]
pub(crate) mod tests;
