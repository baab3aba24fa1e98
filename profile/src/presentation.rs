//! How a session's access token is sent to the vendor's API, and what the
//! vendor's answer to such a call says about the token. Pure functions: the
//! sidecar's proxy and its `/token` endpoint build on them.

use reqwest::header::HeaderName;
use secrecy::{ExposeSecret, SecretString};

/// The header and scheme an access token is sent with (a profile's
/// `tokenPresentation`, validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPresentation {
    header: HeaderName,
    scheme: Option<String>,
}

impl Default for TokenPresentation {
    fn default() -> Self {
        Self {
            header: reqwest::header::AUTHORIZATION,
            scheme: Some("Bearer".to_owned()),
        }
    }
}

impl TokenPresentation {
    /// From a profile's `tokenPresentation`, or why it is unusable.
    pub fn from_spec(spec: &otpilot_api::profile::TokenPresentation) -> Result<Self, &'static str> {
        let header = HeaderName::from_bytes(spec.header.as_bytes())
            .map_err(|_| "header: not a valid HTTP header name")?;
        let scheme = spec.scheme.trim();
        if scheme.len() != spec.scheme.len()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c))
        {
            return Err("scheme: a single word of letters, digits or -._~+! (or empty)");
        }
        Ok(Self {
            header,
            scheme: (!scheme.is_empty()).then(|| scheme.to_owned()),
        })
    }

    /// The header the token goes in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The scheme before the token (`Bearer`, `jwt`), or `None` for the
    /// bare token. This is the `token_type` to report.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }

    /// The header value for `token`.
    pub fn value(&self, token: &SecretString) -> SecretString {
        match &self.scheme {
            Some(scheme) => SecretString::from(format!("{scheme} {}", token.expose_secret())),
            None => token.clone(),
        }
    }
}

/// What a vendor's answer to a call made with a session's token says about
/// that token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVerdict {
    /// Nothing about the token: pass the answer on.
    Accepted,
    /// The vendor no longer accepts the token, though we thought it valid
    /// (a vendor whose `exp` is wrong, a session revoked, a clock off):
    /// refresh or log in again, then send the call once more if it can be
    /// repeated.
    Rejected,
}

/// Reads the status of a call made with a session's token: 401 means the
/// token was not accepted (RFC 9110 §15.5.2); 403 is about permissions,
/// which a new token does not change.
pub fn token_verdict(status: u16) -> TokenVerdict {
    match status {
        401 => TokenVerdict::Rejected,
        _ => TokenVerdict::Accepted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otpilot_api::profile::TokenPresentation as Spec;

    fn spec(header: &str, scheme: &str) -> Spec {
        Spec {
            header: header.into(),
            scheme: scheme.into(),
        }
    }

    #[test]
    fn tokens_are_presented_as_each_vendor_wants() {
        let token = SecretString::from("tok-123");
        let cases = [
            (
                "default bearer",
                Spec::default(),
                "authorization",
                Some("Bearer"),
                "Bearer tok-123",
            ),
            (
                "goaxr jwt scheme",
                spec("Authorization", "jwt"),
                "authorization",
                Some("jwt"),
                "jwt tok-123",
            ),
            (
                "raw authorization",
                spec("Authorization", ""),
                "authorization",
                None,
                "tok-123",
            ),
            (
                "custom header",
                spec("X-Auth-Token", ""),
                "x-auth-token",
                None,
                "tok-123",
            ),
        ];
        for (what, spec, header, scheme, value) in cases {
            let p = TokenPresentation::from_spec(&spec).expect(what);
            assert_eq!(p.header().as_str(), header, "{what}");
            assert_eq!(p.scheme(), scheme, "{what}");
            assert_eq!(p.value(&token).expose_secret(), value, "{what}");
        }
        assert_eq!(
            TokenPresentation::from_spec(&Spec::default()).expect("default"),
            TokenPresentation::default()
        );
    }

    #[test]
    fn unusable_presentations_are_refused() {
        for (header, scheme) in [
            ("X Token", "Bearer"),
            ("Authorization", "Bear er"),
            ("Authorization", " Bearer"),
            ("Authorization", "a:b"),
        ] {
            assert!(
                TokenPresentation::from_spec(&spec(header, scheme)).is_err(),
                "{header:?} {scheme:?}"
            );
        }
    }

    #[test]
    fn only_a_401_says_the_token_was_refused() {
        let cases = [
            (200, TokenVerdict::Accepted),
            (401, TokenVerdict::Rejected),
            (403, TokenVerdict::Accepted),
            (404, TokenVerdict::Accepted),
            (500, TokenVerdict::Accepted),
        ];
        for (status, want) in cases {
            assert_eq!(token_verdict(status), want, "{status}");
        }
    }
}
