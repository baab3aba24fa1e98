//! Templates: minijinja with strict undefined values, and the static check
//! of which values a template refers to.

use std::collections::BTreeSet;

use base64::Engine as _;
use minijinja::{Environment, UndefinedBehavior, Value};

/// Names minijinja itself provides as globals.
pub const GLOBALS: &[&str] = &["range", "dict", "namespace", "debug"];

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

/// Renders a template. The error message is minijinja's, without the
/// template source or values (the caller scrubs it anyway).
pub fn render(env: &Environment<'static>, source: &str, ctx: &Value) -> Result<String, String> {
    // Fast path: no template syntax at all.
    if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
        return Ok(source.to_owned());
    }
    env.render_str(source, ctx).map_err(|e| describe(&e))
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
        let err = render(&env, "{{ missing }}", &ctx).expect_err("strict");
        assert!(err.contains("undefined"), "{err}");
    }
}
