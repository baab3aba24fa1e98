//! Templates: minijinja with strict undefined values, and the static check
//! of which values a template refers to.
//!
//! Every render is bounded, because a ClusterMfaProfile is written by
//! whoever may create one and templates render on the operator's async
//! workers (which also serve the webhook): fuel bounds the instructions run
//! (loops, an exponential macro), a writer bounds the output, and the
//! constructs that build a huge value in one instruction (string
//! repetition, `namespace` accumulators, width arguments) are refused or
//! removed. With those, the worst case is [`FUEL`] cheap instructions, well
//! under a millisecond's work each, so rendering stays inline rather than on
//! a blocking thread.

use std::collections::BTreeSet;

use base64::Engine as _;
use minijinja::{Environment, UndefinedBehavior, Value};

/// Names minijinja itself provides as globals (`namespace` is removed:
/// an accumulator across loop iterations could double a value per step).
pub const GLOBALS: &[&str] = &["range", "dict", "debug"];

/// Instructions one render may run. Every built-in profile's template
/// needs well under 100; a loop over 2,500 items runs out.
pub const FUEL: u64 = 10_000;

/// The most one render may produce, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// How deep frames may nest (minijinja counts a macro call as 4 plus the
/// caller's depth): loops and conditions fit, a macro calling itself a
/// dozen levels deep does not.
const RECURSION_LIMIT: usize = 50;

/// Filters that take a width or repeat a value, and so can build a huge
/// string in one instruction.
const REMOVED_FILTERS: &[&str] = &["indent", "format", "pprint", "center", "wordwrap"];

/// How a message about a too expensive template starts, so that callers
/// can tell it from other problems.
pub const TOO_EXPENSIVE: &str = "template too expensive";

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The template environment every profile uses: strict about undefined
/// values, no auto-escaping, a `b64encode` filter (for Basic auth), and a
/// `urlencode` that encodes a whole path segment or query value.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.remove_global("namespace");
    for name in REMOVED_FILTERS {
        env.remove_filter(name);
    }
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_filter("b64encode", |v: String| {
        base64::engine::general_purpose::STANDARD.encode(v.as_bytes())
    });
    // minijinja's own urlencode keeps `/`, which would let a user name like
    // `a/b` change the path it is put in.
    env.add_filter("urlencode", |v: String| {
        percent_encoding::utf8_percent_encode(&v, COMPONENT).to_string()
    });
    env
}

/// A template that does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

/// The values a template refers to (globals excluded), or why it does not
/// compile.
pub fn referenced_values(
    env: &Environment<'static>,
    source: &str,
) -> Result<BTreeSet<String>, SyntaxError> {
    let template = env
        .template_from_str(source)
        .map_err(|e| SyntaxError(describe(&e)))?;
    Ok(template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !GLOBALS.contains(&name.as_str()))
        .collect())
}

/// Why a template did not render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// It ran out of fuel or produced too much (message starts with
    /// [`TOO_EXPENSIVE`]).
    TooExpensive(String),
    /// Anything else (an undefined value, a type error).
    Failed(String),
}

impl RenderError {
    /// The message, without template source or values.
    pub fn message(self) -> String {
        match self {
            RenderError::TooExpensive(m) | RenderError::Failed(m) => m,
        }
    }
}

/// Renders a template. The error message is minijinja's, without the
/// template source or values (the caller scrubs it anyway).
pub fn render(
    env: &Environment<'static>,
    source: &str,
    ctx: &Value,
) -> Result<String, RenderError> {
    // Fast path: no template syntax at all.
    if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
        return Ok(source.to_owned());
    }
    if let Some(problem) = refused_construct(source) {
        return Err(RenderError::TooExpensive(problem));
    }
    let template = env
        .template_from_str(source)
        .map_err(|e| RenderError::Failed(describe(&e)))?;
    let mut out = Capped::default();
    match template.render_captured_to(ctx.clone(), &mut out) {
        Ok(_) => Ok(String::from_utf8_lossy(&out.bytes).into_owned()),
        Err(_) if out.overflowed => Err(RenderError::TooExpensive(format!(
            "{TOO_EXPENSIVE}: it renders more than {MAX_OUTPUT_BYTES} bytes"
        ))),
        Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => {
            Err(RenderError::TooExpensive(format!(
                "{TOO_EXPENSIVE}: it runs more than {FUEL} template instructions (a loop over a \
                 large range, or a macro that calls itself more than once)"
            )))
        }
        Err(e) if e.detail() == Some("recursion limit exceeded") => Err(RenderError::TooExpensive(
            format!("{TOO_EXPENSIVE}: macros call each other too deep"),
        )),
        Err(e) => Err(RenderError::Failed(describe(&e))),
    }
}

/// A construct that can build a huge value in a single instruction, which
/// fuel cannot see (pure, lexical): `*` (string or list repetition, `**`)
/// inside a tag. Profiles have no use for arithmetic beyond `+` and `-`.
pub fn refused_construct(source: &str) -> Option<String> {
    let mut rest = source;
    while let Some(start) = rest.find(['{']) {
        let after = &rest[start + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        let end = body.find(close).unwrap_or(body.len());
        if body[..end].contains('*') {
            return Some(format!(
                "{TOO_EXPENSIVE}: '*' is not allowed in templates (repeating a string or list \
                 can take gigabytes in one step)"
            ));
        }
        rest = &body[end..];
    }
    None
}

/// Renders `source` with a sample value for each name it refers to, and
/// says whether it is too expensive (pure but for the render). Other render
/// errors are left to the request that renders it for real: a sample value
/// need not be the right type.
pub fn cost_problem(
    env: &Environment<'static>,
    source: &str,
    names: &BTreeSet<String>,
) -> Option<String> {
    let sample: std::collections::BTreeMap<String, Value> = names
        .iter()
        .map(|n| (n.clone(), Value::from("sample-value-0123456789")))
        .collect();
    match render(env, source, &Value::from(sample)) {
        Err(RenderError::TooExpensive(message)) => Some(message),
        _ => None,
    }
}

/// Collects output up to [`MAX_OUTPUT_BYTES`], then refuses more.
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("template output too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_and_globals_ignored() {
        let env = environment();
        let cases: &[(&str, &[&str])] = &[
            ("plain", &[]),
            ("{{ totp }}", &["totp"]),
            ("Bearer {{ access_token }}", &["access_token"]),
            ("/v2/users/{{ username | urlencode }}/otp", &["username"]),
            (
                "{{ (username ~ ':' ~ password) | b64encode }}",
                &["password", "username"],
            ),
            ("{% for i in range(2) %}{{ i }}{% endfor %}", &[]),
            ("{{ otp }}", &["otp"]),
        ];
        for (source, want) in cases {
            let got = referenced_values(&env, source).expect(source);
            let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
            assert_eq!(got, want, "{source}");
        }
    }

    #[test]
    fn syntax_errors_are_reported() {
        let env = environment();
        assert!(referenced_values(&env, "{{ totp ").is_err());
        assert!(referenced_values(&env, "{% if %}").is_err());
    }

    #[test]
    fn rendering_is_strict_and_does_not_escape() {
        let env = environment();
        let ctx = minijinja::context! { username => "a@b.c", code => "012345" };
        let cases = [
            (
                "/users/{{ username | urlencode }}/otp",
                "/users/a%40b.c/otp",
            ),
            ("/users/{{ 'a/b?c d' | urlencode }}", "/users/a%2Fb%3Fc%20d"),
            ("{{ code }}", "012345"),
            ("<{{ username }}>", "<a@b.c>"),
            ("{{ 'u:p' | b64encode }}", "dTpw"),
        ];
        for (source, want) in cases {
            assert_eq!(render(&env, source, &ctx).expect(source), want);
        }
        let err = render(&env, "{{ missing }}", &ctx)
            .expect_err("strict")
            .message();
        assert!(err.contains("undefined"), "{err}");
    }

    #[test]
    fn expensive_templates_are_stopped() {
        let env = environment();
        let ctx = minijinja::context! { s => "abc" };
        let exponential = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}\
                           {% endmacro %}{{ f(40) }}";
        let cases = [
            ("an exponential macro", exponential),
            (
                "nested loops",
                "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
            ),
            (
                "a huge range",
                "{% for i in range(10 - 20) %}{% endfor %}{{ range(99999) | join }}",
            ),
            ("string repetition", "{{ s * 100000000 }}"),
            ("power", "{{ 10 ** 9 }}"),
        ];
        for (what, source) in cases {
            match render(&env, source, &ctx) {
                Err(RenderError::TooExpensive(m)) => assert!(m.starts_with(TOO_EXPENSIVE), "{m}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        let names: BTreeSet<String> = ["s".to_owned()].into();
        assert!(cost_problem(&env, exponential, &names).is_some());
        assert!(cost_problem(&env, "Bearer {{ s }}", &names).is_none());
        assert!(
            cost_problem(&env, "{{ s | int }}", &names).is_none(),
            "type errors are not cost"
        );
    }

    #[test]
    fn amplifying_globals_and_filters_are_gone() {
        let env = environment();
        let ctx = minijinja::context! { s => "abc" };
        for source in [
            "{% set ns = namespace(x='a') %}{{ ns.x }}",
            "{{ s | indent(1000000000) }}",
            "{{ '%1000000000s' | format(s) }}",
        ] {
            assert!(
                matches!(render(&env, source, &ctx), Err(RenderError::Failed(_))),
                "{source}"
            );
        }
    }

    #[test]
    fn stars_outside_tags_are_text() {
        assert_eq!(refused_construct("a * b {{ x }}"), None);
        assert_eq!(refused_construct("{# * #}{{ x }}"), None);
        assert!(refused_construct("{{ x*2 }}").is_some());
        assert!(refused_construct("{% if x ** 2 %}{% endif %}").is_some());
    }
}
