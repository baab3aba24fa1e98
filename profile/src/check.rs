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
        template::referenced_values(&self.env, source).unwrap_or_else(|e| {
            self.problem(path, format!("template does not compile: {}", e.0));
            BTreeSet::new()
        })
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

fn validate_step(
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::LoadError;
    use crate::load::Profile;

    pub(crate) const MINIMAL: &str = r#"
enroll:
  steps:
    - method: GET
      path: /secret
      extract:
        totp_secret: {pointer: /secret, as: base32Secret}
    - method: POST
      path: /enable
      body: {code: "{{ totp }}"}
login:
  steps:
    - method: POST
      path: /login
      body: {user: "{{ username }}", code: "{{ totp }}"}
      extract:
        access_token: {pointer: /token}
"#;

    fn problems(yaml: &str) -> Vec<String> {
        match Profile::from_yaml("test.yaml", yaml) {
            Ok(_) => vec![],
            Err(LoadError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn minimal_profile_loads_and_knows_which_steps_send_a_code() {
        let p = Profile::from_yaml("test.yaml", MINIMAL).expect("valid");
        let enroll = p.step_info(FlowKind::Enroll);
        assert!(!enroll[0].uses_totp());
        assert!(enroll[1].uses_totp());
        assert!(p.step_info(FlowKind::Login)[0].uses_totp());
        assert!(!p.has_flow(FlowKind::Refresh));
    }

    #[test]
    fn undefined_value_is_reported_with_its_field_path() {
        let yaml = MINIMAL.replace(
            r#"code: "{{ totp }}"}
      extract"#,
            r#"code: "{{ otp }}"}
      extract"#,
        );
        let got = problems(&yaml);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("login.steps[0].body.code: undefined value 'otp'"),
            "{got:?}"
        );
    }

    #[test]
    fn inconsistent_profiles_are_rejected_with_the_field_path() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "totp before the secret is extracted",
                "    - method: GET\n      path: /secret\n",
                "    - method: GET\n      path: /secret\n      headers: {X-OTP: \"{{ totp }}\"}\n",
            ),
            (
                "value from a later step",
                "path: /enable",
                "path: /enable/{{ later }}",
            ),
            ("syntax error", "path: /login", "path: /login/{{ username "),
            ("path without slash", "path: /login", "path: login"),
            (
                "status out of range",
                "body: {code: \"{{ totp }}\"}\nlogin",
                "body: {code: \"{{ totp }}\"}\n      responses: [{status: [42], outcome: fail}]\nlogin",
            ),
            (
                "secret extracted as a string",
                "{pointer: /secret, as: base32Secret}",
                "{pointer: /secret}",
            ),
            (
                "two sources",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token, header: X-Token}",
            ),
            (
                "login without token",
                "access_token: {pointer: /token}",
                "other: {pointer: /token}",
            ),
            (
                "recovery code outside recoveryLogin",
                "user: \"{{ username }}\"",
                "user: \"{{ recovery_code }}\"",
            ),
            (
                "replacesActiveSecret outside enroll",
                "login:\n  steps:",
                "login:\n  replacesActiveSecret: true\n  steps:",
            ),
        ];
        let want_paths = [
            "enroll.steps[0].headers.X-OTP",
            "enroll.steps[1].path",
            "login.steps[0].path",
            "login.steps[0].path",
            "enroll.steps[1].responses[0].status",
            "enroll.steps[0].extract.totp_secret.as",
            "login.steps[0].extract.access_token",
            "login.steps",
            "login.steps[0].body.user",
            "login.replacesActiveSecret",
        ];
        for ((what, from, to), want) in cases.iter().zip(want_paths) {
            assert!(MINIMAL.contains(from), "{what}: fixture lacks {from:?}");
            let got = problems(&MINIMAL.replacen(from, to, 1));
            assert!(
                got.iter().any(|p| p.starts_with(want)),
                "{what}: want a problem at {want}, got {got:?}"
            );
        }
    }

    /// (behaviour, fixture text, replacement, the whole problem expected).
    type Case = (&'static str, &'static str, &'static str, &'static str);

    fn assert_cases(cases: &[Case]) {
        for (what, from, to, want) in cases {
            let fixture = format!("variables: {{org: acme}}\n{MINIMAL}");
            assert!(fixture.contains(from), "{what}: fixture lacks {from:?}");
            let got = problems(&fixture.replacen(from, to, 1));
            assert!(
                got.iter().any(|p| p == want),
                "{what}: want {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn extraction_template_cannot_use_a_code() {
        assert_cases(&[
            (
                "totp in an extraction value, where a code is known",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token}\n        nonce: {value: \"{{ totp }}\"}",
                "login.steps[0].extract.nonce.value: extraction templates may use only values \
                 known after the response; 'totp' is a code generated for a request",
            ),
            (
                "totp in an extraction value, before any secret",
                "{pointer: /secret, as: base32Secret}",
                "{value: \"{{ totp }}\", as: base32Secret}",
                "enroll.steps[0].extract.totp_secret.value: extraction templates may use only \
                 values known after the response; 'totp' is a code generated for a request",
            ),
        ]);
        // Where `totp` is not defined either, it is reported once, not also
        // as an undefined value.
        let yaml = format!("variables: {{org: acme}}\n{MINIMAL}").replacen(
            "{pointer: /secret, as: base32Secret}",
            "{value: \"{{ totp }}\", as: base32Secret}",
            1,
        );
        let got = problems(&yaml);
        assert_eq!(got.len(), 1, "{got:?}");
    }

    #[test]
    fn reserved_names_must_be_read_with_the_kind_the_engine_stores_them_by() {
        assert_cases(&[
            (
                "access token read as an expiry",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token, as: jwtExp}",
                "login.steps[0].extract.access_token.as: 'access_token' is a token and must be \
                 read as string (the default), not jwtExp; to read its expiry, extract \
                 'expires_at' with as: jwtExp",
            ),
            (
                "refresh token read as an expiry",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token}\n        refresh_token: {pointer: /rt, as: epochSeconds}",
                "login.steps[0].extract.refresh_token.as: 'refresh_token' is a token and must be \
                 read as string (the default), not epochSeconds; to read its expiry, extract \
                 'refresh_expires_at' with as: epochSeconds",
            ),
            (
                "access token read as a secret",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token, as: otpauthUri}",
                "login.steps[0].extract.access_token.as: 'access_token' is a token and must be \
                 read as string (the default), not otpauthUri",
            ),
            (
                "expiry read as text",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token}\n        expires_at: {pointer: /exp}",
                "login.steps[0].extract.expires_at.as: 'expires_at' is an expiry and must be read \
                 as expiresIn, epochSeconds, epochMillis, rfc3339 or jwtExp, not string",
            ),
            (
                "refresh expiry read as recovery codes",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token}\n        refresh_expires_at: {pointer: /exp, as: recoveryCodes}",
                "login.steps[0].extract.refresh_expires_at.as: 'refresh_expires_at' is an expiry \
                 and must be read as expiresIn, epochSeconds, epochMillis, rfc3339 or jwtExp, not \
                 recoveryCodes",
            ),
            (
                "reenroll flag read as a time",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token}\n        reenroll_required: {pointer: /r, as: epochMillis}",
                "login.steps[0].extract.reenroll_required.as: 'reenroll_required' must be read as \
                 string (the default), not epochMillis: the session looks for the text 'true'",
            ),
            (
                "secret read as a time",
                "{pointer: /secret, as: base32Secret}",
                "{pointer: /secret, as: expiresIn}",
                "enroll.steps[0].extract.totp_secret.as: 'totp_secret' must be read as \
                 base32Secret or otpauthUri, not expiresIn (otherwise it shadows the TOTP secret \
                 instead of setting it)",
            ),
            (
                "recovery codes read as a time",
                "{pointer: /secret, as: base32Secret}",
                "{pointer: /secret, as: base32Secret}\n        recovery_codes: {pointer: /codes, as: rfc3339}",
                "enroll.steps[0].extract.recovery_codes.as: 'recovery_codes' must be read as \
                 recoveryCodes, not rfc3339",
            ),
        ]);
    }

    #[test]
    fn extraction_header_must_be_a_valid_header_name() {
        assert_cases(&[
            (
                "space in a header name",
                "access_token: {pointer: /token}",
                "access_token: {header: X Token}",
                "login.steps[0].extract.access_token.header: not a valid HTTP header name",
            ),
            (
                "colon in a header name",
                "access_token: {pointer: /token}",
                "access_token: {header: \"X-Token:\"}",
                "login.steps[0].extract.access_token.header: not a valid HTTP header name",
            ),
            (
                "empty header name",
                "access_token: {pointer: /token}",
                "access_token: {header: \"\"}",
                "login.steps[0].extract.access_token.header: not a valid HTTP header name",
            ),
        ]);
    }

    #[test]
    fn names_cannot_shadow_template_functions() {
        let variable = format!("variables: {{range: x}}\n{MINIMAL}");
        let got = problems(&variable);
        assert!(
            got.iter()
                .any(|p| p
                    == "variables.range: 'range' is a template function and cannot be a variable"),
            "{got:?}"
        );
        let extracted = MINIMAL.replacen(
            "    extract:\n",
            "    extract:\n        dict: {pointer: /x}\n",
            1,
        );
        assert_ne!(extracted, MINIMAL, "fixture has an extract block");
        let got = problems(&extracted);
        assert!(
            got.iter().any(|p| p.ends_with(
                ".extract.dict: 'dict' shadows the template function 'dict'; extract it under another name"
            )),
            "{got:?}"
        );
    }

    #[test]
    fn secret_values_are_usable_and_their_names_checked() {
        let usable = format!(
            "secretValues: [client_secret]\nheaders: {{clientsecret: \"{{{{ client_secret }}}}\"}}\n{MINIMAL}"
        );
        assert_eq!(problems(&usable), Vec::<String>::new());
        let cases = [
            (
                "Client-Secret",
                "secretValues[Client-Secret]: a secret value name must be a letter or _ followed by letters, digits or _",
            ),
            (
                "password",
                "secretValues[password]: 'password' is a built-in value and cannot be a secret value",
            ),
            (
                "totp",
                "secretValues[totp]: 'totp' is a built-in value and cannot be a secret value",
            ),
            (
                "org",
                "secretValues[org]: 'org' is also a variable; a value is either secret or not",
            ),
            (
                "range",
                "secretValues[range]: 'range' is a template function and cannot be a secret value",
            ),
        ];
        for (name, want) in cases {
            let yaml = format!("variables: {{org: acme}}\nsecretValues: [{name}]\n{MINIMAL}");
            let got = problems(&yaml);
            assert!(
                got.iter().any(|p| p == want),
                "{name}: want {want:?}, got {got:?}"
            );
        }
        let shadowed = format!("secretValues: [client_secret]\n{MINIMAL}").replacen(
            "access_token: {pointer: /token}",
            "access_token: {pointer: /token}\n        client_secret: {pointer: /s}",
            1,
        );
        let got = problems(&shadowed);
        assert!(
            got.iter().any(|p| p
                == "login.steps[0].extract.client_secret: 'client_secret' shadows the secret \
                    value 'client_secret'; extract it under another name"),
            "{got:?}"
        );
    }

    #[test]
    fn an_extraction_fallback_is_checked_like_the_extraction() {
        let with = |fallback: &str| {
            MINIMAL.replacen(
                "{pointer: /secret, as: base32Secret}",
                &format!("{{pointer: /uri, as: otpauthUri, fallback: {fallback}}}"),
                1,
            )
        };
        assert_eq!(
            problems(&with("{pointer: /secret, as: base32Secret}")),
            Vec::<String>::new()
        );
        let cases = [
            (
                "{as: base32Secret}",
                "enroll.steps[0].extract.totp_secret.fallback: set exactly one of pointer and header",
            ),
            (
                "{pointer: secret, as: base32Secret}",
                "enroll.steps[0].extract.totp_secret.fallback.pointer: a JSON pointer is empty or \
                 starts with '/'",
            ),
            (
                "{header: \"a b\", as: base32Secret}",
                "enroll.steps[0].extract.totp_secret.fallback.header: not a valid HTTP header name",
            ),
            (
                "{pointer: /s, as: rfc3339}",
                "enroll.steps[0].extract.totp_secret.fallback.as: 'totp_secret' must be read as \
                 base32Secret or otpauthUri, not rfc3339 (otherwise it shadows the TOTP secret \
                 instead of setting it)",
            ),
        ];
        for (fallback, want) in cases {
            let got = problems(&with(fallback));
            assert!(
                got.iter().any(|p| p == want),
                "{fallback}: want {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn extraction_cannot_shadow_a_variable_or_an_input() {
        assert_cases(&[
            (
                "shadows a profile variable",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token}\n        org: {pointer: /org}",
                "login.steps[0].extract.org: 'org' shadows the profile variable 'org'; extract it \
                 under another name",
            ),
            (
                "shadows the password",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token}\n        password: {pointer: /pw}",
                "login.steps[0].extract.password: 'password' shadows the input 'password'; an \
                 input cannot be extracted",
            ),
            (
                "shadows the code",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token}\n        totp: {pointer: /code}",
                "login.steps[0].extract.totp: 'totp' shadows the input 'totp'; an input cannot be \
                 extracted",
            ),
            (
                "shadows the recovery code",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token}\n        recovery_code: {pointer: /code}",
                "login.steps[0].extract.recovery_code: 'recovery_code' shadows the input \
                 'recovery_code'; an input cannot be extracted",
            ),
            (
                "shadows the TOTP secret input with text",
                "access_token: {pointer: /token}",
                "access_token: {pointer: /token}\n        totp_secret: {pointer: /s}",
                "login.steps[0].extract.totp_secret.as: 'totp_secret' must be read as \
                 base32Secret or otpauthUri, not string (otherwise it shadows the TOTP secret \
                 instead of setting it)",
            ),
        ]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let yaml = format!("variables: {{org: acme}}\n{MINIMAL}").replacen(
            "access_token: {pointer: /token}",
            "access_token: {header: X Token, as: jwtExp}\n        \
             org: {value: \"{{ totp }}\"}",
            1,
        );
        let got = problems(&yaml);
        let want_starts = [
            "login.steps[0].extract.access_token.header: not a valid HTTP header name",
            "login.steps[0].extract.access_token.as: 'access_token' is a token",
            "login.steps[0].extract.org: 'org' shadows the profile variable 'org'",
            "login.steps[0].extract.org.value: extraction templates may use only values",
        ];
        for want in want_starts {
            assert!(
                got.iter().any(|p| p.starts_with(want)),
                "want {want:?} in {got:?}"
            );
        }
        assert_eq!(got.len(), want_starts.len(), "{got:?}");
        // Names and kinds only: no value from the profile is echoed.
        assert!(got.iter().all(|p| !p.contains("acme")), "{got:?}");
    }

    #[test]
    fn legitimate_extractions_still_load() {
        let yaml = format!("variables: {{org: acme}}\n{MINIMAL}").replacen(
            "access_token: {pointer: /token}",
            "access_token: {header: X-Auth-Token}\n        \
                 refresh_token: {pointer: /rt, optional: true}\n        \
                 expires_at: {value: \"600\", as: expiresIn}\n        \
                 refresh_expires_at: {pointer: /rt, as: jwtExp, optional: true}\n        \
                 reenroll_required: {pointer: /reenroll, optional: true}\n        \
                 issued: {pointer: /iat, as: epochSeconds}\n        \
                 tenant: {value: \"{{ org }}-{{ username }}-{{ totp_secret }}\"}",
            1,
        ) + "recoveryLogin:\n  steps:\n    - method: POST\n      path: /recover\n      \
               body: {code: \"{{ recovery_code }}\"}\n      extract:\n        \
               access_token: {pointer: /token}\n        \
               spent: {value: \"{{ recovery_code }}\"}\n";
        let p = Profile::from_yaml("test.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.step_info(FlowKind::Login)[0].uses_totp());
        assert!(!p.step_info(FlowKind::RecoveryLogin)[0].uses_totp());
    }
}
