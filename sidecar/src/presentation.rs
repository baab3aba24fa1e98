//! How a token is presented to the vendor and to the application.
//!
//! Today every vendor gets `Authorization: Bearer <token>`; the engine is
//! learning to say what a profile wants (goaxr's `jwt`, a custom header),
//! and this is the one place to switch to it.

use http::HeaderValue;
use http::header::{AUTHORIZATION, HeaderName};
use otpilot_profile::Profile;
use secrecy::{ExposeSecret, SecretString};

/// The header and scheme a vendor expects its token in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentation {
    /// The header, `Authorization` unless the profile says otherwise.
    pub header: HeaderName,
    /// The scheme before the token (`Bearer`), empty for a bare token.
    pub scheme: &'static str,
}

/// What `profile` wants.
pub fn for_profile(_profile: &Profile) -> Presentation {
    Presentation {
        header: AUTHORIZATION,
        scheme: "Bearer",
    }
}

/// The header value carrying `token`, marked sensitive (hyper then keeps it
/// out of HPACK tables and `Debug`). `None` if the token holds bytes a
/// header cannot.
pub fn header_value(presentation: &Presentation, token: &SecretString) -> Option<HeaderValue> {
    let token = token.expose_secret();
    let text = if presentation.scheme.is_empty() {
        token.to_owned()
    } else {
        format!("{} {token}", presentation.scheme)
    };
    let mut value = HeaderValue::from_str(&text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_presented_with_its_scheme_and_marked_sensitive() {
        let p = Presentation {
            header: AUTHORIZATION,
            scheme: "Bearer",
        };
        let v = header_value(&p, &SecretString::from("abc.def")).expect("valid");
        assert_eq!(v, "Bearer abc.def");
        assert!(v.is_sensitive());
        let bare = Presentation {
            header: HeaderName::from_static("x-api-token"),
            scheme: "",
        };
        assert_eq!(
            header_value(&bare, &SecretString::from("abc")).expect("valid"),
            "abc"
        );
        assert!(header_value(&p, &SecretString::from("bad\ntoken")).is_none());
    }
}
