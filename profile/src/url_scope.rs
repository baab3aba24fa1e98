//! A rendered step URL must stay where the base URL points: same scheme,
//! host and port, no credentials, and a path under the base's path. A path
//! template that renders to `@evil.example/x` or `/../admin` would
//! otherwise send the password, API key, code and client certificate
//! elsewhere. Pure functions.

use url::Url;

/// Why `url` leaves the scope of `base`, if it does. Never shows either URL
/// (a path may hold a user name or a token).
pub fn escape_from(base: &Url, url: &Url) -> Option<&'static str> {
    if url.scheme() != base.scheme() {
        return Some("it changes the scheme of the base URL");
    }
    if url.host() != base.host() || url.port_or_known_default() != base.port_or_known_default() {
        return Some("it leaves the base URL's host (check the path for '@', '//' or '\\')");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("it puts credentials in the URL (check the path for '@')");
    }
    let base_path = base.path().trim_end_matches('/');
    let path = url.path();
    let under = path == base_path
        || (path.starts_with(base_path) && path[base_path.len()..].starts_with('/'));
    if !under {
        return Some("its path leaves the base URL's path (check the path for '..')");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_rendered_url_must_stay_on_the_base_origin_and_under_its_path() {
        // (what, base, base + rendered path, escapes?)
        let cases = [
            (
                "plain path",
                "https://api.example",
                "https://api.example/login",
                false,
            ),
            (
                "base path kept",
                "https://api.example/v2",
                "https://api.example/v2/login",
                false,
            ),
            (
                "the base itself",
                "https://api.example/v2",
                "https://api.example/v2",
                false,
            ),
            (
                "user info turns the base into a user name",
                "https://api.example",
                "https://api.example@evil.example/x",
                true,
            ),
            (
                "credentials on the same host",
                "https://api.example",
                "https://u:p@api.example/x",
                true,
            ),
            (
                "dot segments climb out of the base path",
                "https://api.example/v2",
                "https://api.example/v2/../admin",
                true,
            ),
            (
                "sibling path with the same prefix",
                "https://api.example/v2",
                "https://api.example/v2x/login",
                true,
            ),
            (
                "another port",
                "https://api.example",
                "https://api.example:8443/x",
                true,
            ),
            (
                "explicit default port is the same origin",
                "https://api.example",
                "https://api.example:443/x",
                false,
            ),
            (
                "host suffix",
                "https://api.example",
                "https://api.example.evil.example/x",
                true,
            ),
            // `\` is read as `/` in https URLs: the `@` lands in the path.
            (
                "backslash",
                "https://api.example",
                "https://api.example\\@evil.example/x",
                false,
            ),
        ];
        for (what, base, url, escapes) in cases {
            let got = escape_from(&parse(base), &parse(url));
            assert_eq!(got.is_some(), escapes, "{what}: {got:?}");
        }
    }
}
