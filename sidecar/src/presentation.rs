//! How a token is presented to the vendor (the profile's
//! `tokenPresentation`, carried by the engine's `Session`: `Bearer`,
//! goaxr's `jwt`, a custom header) and reported to the application.

use http::{HeaderName, HeaderValue};
use otpilot_profile::Session;
use secrecy::{ExposeSecret, SecretString};

/// The header the proxy sets on every forwarded request, its value marked
/// sensitive (hyper then keeps it out of HPACK tables and `Debug`). `None`
/// if the token holds bytes a header cannot.
pub fn proxy_header(session: &Session) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = session.authorization();
    Some((name, sensitive(&value)?))
}

/// A header value that is never shown.
pub fn sensitive(value: &SecretString) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(value.expose_secret()).ok()?;
    value.set_sensitive(true);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_value_is_marked_sensitive_and_refused_when_it_cannot_be_one() {
        let v = sensitive(&SecretString::from("jwt abc.def")).expect("valid");
        assert_eq!(v, "jwt abc.def");
        assert!(v.is_sensitive());
        assert!(sensitive(&SecretString::from("bad\ntoken")).is_none());
    }
}
