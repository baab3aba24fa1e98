//! `otpauth://` URIs (Google Authenticator Key Uri Format), including QR
//! chart links whose `chl` parameter holds the URI (Conduit).

use otpilot_api::profile::TotpAlgorithm;
use percent_encoding::percent_decode_str;
use url::Url;

use crate::totp::{TotpError, TotpKey, TotpParams};

/// A parsed `otpauth://totp/...` URI.
#[derive(Debug, Clone)]
// Issuer and account are parsed (and tested) so a URI is read whole; the
// engine itself needs only the key.
#[allow(dead_code)]
pub struct OtpauthUri {
    /// The secret with the URI's parameters.
    pub key: TotpKey,
    /// Issuer, from the `issuer` parameter or the label prefix.
    pub issuer: Option<String>,
    /// Account name from the label.
    pub account: Option<String>,
}

/// Why a URI could not be used. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtpauthError {
    /// Not a URL at all.
    #[error("not an otpauth URI (it does not parse as a URL)")]
    NotAUrl,
    /// A URL of another scheme without a `chl` parameter holding one.
    #[error("expected an otpauth:// URI or a QR-chart link with a chl parameter, got a {0}: URL")]
    WrongScheme(String),
    /// `otpauth://hotp/...` or another type.
    #[error("the otpauth URI is of type '{0}'; only 'totp' is supported")]
    NotTotp(String),
    /// No `secret` parameter.
    #[error("the otpauth URI has no secret parameter")]
    NoSecret,
    /// Unsupported `algorithm`.
    #[error("the otpauth URI names algorithm '{0}'; supported: SHA1, SHA256, SHA512")]
    Algorithm(String),
    /// Unparseable `digits` or `period`.
    #[error("the otpauth URI parameter {0} is not a number")]
    NotANumber(&'static str),
    /// The secret or parameters are unusable.
    #[error(transparent)]
    Totp(#[from] TotpError),
}

/// Parses an otpauth URI, or a chart link whose `chl` parameter (URL-decoded
/// once) is one. Parameters the URI does not give come from `defaults`.
pub fn parse(input: &str, defaults: TotpParams) -> Result<OtpauthUri, OtpauthError> {
    let url = Url::parse(input.trim()).map_err(|_| OtpauthError::NotAUrl)?;
    if url.scheme() != "otpauth" {
        let inner = url
            .query_pairs()
            .find(|(k, _)| k == "chl")
            .map(|(_, v)| v.into_owned());
        return match inner {
            Some(inner) if inner.trim_start().starts_with("otpauth:") => {
                let inner = Url::parse(inner.trim()).map_err(|_| OtpauthError::NotAUrl)?;
                parse_otpauth(&inner, defaults)
            }
            _ => Err(OtpauthError::WrongScheme(shown(url.scheme()))),
        };
    }
    parse_otpauth(&url, defaults)
}

fn parse_otpauth(url: &Url, defaults: TotpParams) -> Result<OtpauthUri, OtpauthError> {
    let kind = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if kind != "totp" {
        return Err(OtpauthError::NotTotp(shown(&kind)));
    }
    let label = percent_decode_str(url.path().trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    let (label_issuer, account) = match label.split_once(':') {
        Some((issuer, account)) => (Some(issuer.trim().to_owned()), account.trim().to_owned()),
        None => (None, label.trim().to_owned()),
    };

    let mut params = defaults;
    let mut secret = None;
    let mut issuer = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "secret" => secret = Some(v.into_owned()),
            "issuer" => issuer = Some(v.into_owned()),
            "algorithm" => params.algorithm = parse_algorithm(&v)?,
            "digits" => {
                params.digits = v.parse().map_err(|_| OtpauthError::NotANumber("digits"))?
            }
            "period" => {
                params.period = v.parse().map_err(|_| OtpauthError::NotANumber("period"))?
            }
            _ => {}
        }
    }
    let secret = secret.ok_or(OtpauthError::NoSecret)?;
    let key = TotpKey::from_base32(&secret, params)?;
    Ok(OtpauthUri {
        key,
        issuer: issuer.or(label_issuer).filter(|s| !s.is_empty()),
        account: Some(account).filter(|s| !s.is_empty()),
    })
}

fn parse_algorithm(name: &str) -> Result<TotpAlgorithm, OtpauthError> {
    match name.to_ascii_uppercase().replace('-', "").as_str() {
        "SHA1" => Ok(TotpAlgorithm::Sha1),
        "SHA256" => Ok(TotpAlgorithm::Sha256),
        "SHA512" => Ok(TotpAlgorithm::Sha512),
        _ => Err(OtpauthError::Algorithm(shown(name))),
    }
}

/// A value from the URI for an error message: short words (`hotp`,
/// `https`, `MD5`) as they are, anything longer withheld, since no TOTP
/// secret is that short but a secret in the wrong place would be shown.
fn shown(value: &str) -> String {
    if value.chars().count() <= 8 {
        value.to_owned()
    } else {
        format!("({} characters, not shown)", value.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn p(algorithm: TotpAlgorithm, digits: u8, period: u64) -> TotpParams {
        TotpParams {
            algorithm,
            digits,
            period,
        }
    }

    #[test]
    fn uris_parse_into_secret_issuer_account_and_parameters() {
        // (uri, secret, issuer, account, parameters)
        type Case = (
            &'static str,
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            TotpParams,
        );
        let cases: &[Case] = &[
            (
                // Acreto's document's shape (its example secret holds a '1'
                // and is not base32: see the failure cases).
                "otpauth://totp/Acreto:user@domain.com?algorithm=SHA1&digits=6&issuer=Acreto&period=30&secret=P3YOQUQTZ234O2S5FNDOAMMBM7NGFQKG",
                "P3YOQUQTZ234O2S5FNDOAMMBM7NGFQKG",
                Some("Acreto"),
                Some("user@domain.com"),
                p(TotpAlgorithm::Sha1, 6, 30),
            ),
            (
                // Conduit's chart link: chl holds the URI, URL-encoded once.
                "https://chart.googleapis.com/chart?chs=166x166&chld=L|0&cht=qr&chl=otpauth://totp/Conduit%3Atest%40test.gr%3Fsecret=N5FX7RZGKNRKQORJFV77SM7ZEF6LNU3X%26issuer=Conduit",
                "N5FX7RZGKNRKQORJFV77SM7ZEF6LNU3X",
                Some("Conduit"),
                Some("test@test.gr"),
                p(TotpAlgorithm::Sha1, 6, 30),
            ),
            (
                // Label percent-encoded, issuer only in the label, non-default parameters.
                "otpauth://totp/ACME%20Co:john.doe%40email.com?secret=hxdm vjec jjws rb3h wizr 4ifu gftm xboz&algorithm=sha512&digits=8&period=60",
                "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ",
                Some("ACME Co"),
                Some("john.doe@email.com"),
                p(TotpAlgorithm::Sha512, 8, 60),
            ),
            (
                "otpauth://totp/alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&algorithm=SHA256",
                "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                None,
                Some("alice"),
                p(TotpAlgorithm::Sha256, 6, 30),
            ),
        ];
        for (uri, secret, issuer, account, params) in cases {
            let got = parse(uri, TotpParams::default()).expect(uri);
            assert_eq!(got.key.secret_base32().expose_secret(), *secret, "{uri}");
            assert_eq!(got.issuer.as_deref(), *issuer, "{uri}");
            assert_eq!(got.account.as_deref(), *account, "{uri}");
            assert_eq!(got.key.params(), *params, "{uri}");
        }
    }

    #[test]
    fn unusable_uris_fail_with_a_reason() {
        let cases: &[(&str, OtpauthError)] = &[
            ("not a url", OtpauthError::NotAUrl),
            // goaxr's document shows an https URL in otpauth_url.
            (
                "https://api.demo.goaxr.cloud/v1/auth/totp",
                OtpauthError::WrongScheme("https".into()),
            ),
            (
                "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&counter=1",
                OtpauthError::NotTotp("hotp".into()),
            ),
            ("otpauth://totp/x?issuer=y", OtpauthError::NoSecret),
            (
                "otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&algorithm=MD5",
                OtpauthError::Algorithm("MD5".into()),
            ),
            (
                "otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&digits=ten",
                OtpauthError::NotANumber("digits"),
            ),
            (
                "otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&digits=10",
                OtpauthError::Totp(TotpError::Digits(10)),
            ),
            (
                "otpauth://totp/Acreto:user@domain.com?secret=P3YOQUQT1234O2S5FNDOAMMBM7NGFQKG",
                OtpauthError::Totp(TotpError::NotBase32 { position: 9 }),
            ),
            (
                "otpauth://totp/x?secret=flkj32q979bv7f98327vf93q",
                OtpauthError::Totp(TotpError::NotBase32 { position: 8 }),
            ),
        ];
        for (uri, want) in cases {
            let err = parse(uri, TotpParams::default()).expect_err(uri);
            assert_eq!(&err, want, "{uri}");
        }
    }
}
