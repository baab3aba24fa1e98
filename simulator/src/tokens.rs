//! Signed JWTs (HS256, a key per simulator instance): access, refresh and
//! the intermediate "password ok, code still needed" tokens. Expiry is
//! checked against the simulator's clock, not the system's, so tests can
//! move time.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

const ISSUER: &str = "otpilot-sim";

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Bearer for the vendor's API.
    Access,
    /// Exchanged (once) for a new access + refresh pair.
    Refresh,
    /// Password checked, second factor still owed (goaxr CHALLENGE,
    /// Conduit's unauthorized token).
    Challenge,
}

/// The claims of every token the simulator signs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Account id.
    pub sub: String,
    /// Conduit names the user id claim `id`; kept equal to `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Issued at (Unix s).
    pub iat: u64,
    /// Expires at (Unix s).
    pub exp: u64,
    /// Unique token id (refresh rotation is tracked by it).
    pub jti: String,
    /// Issuer.
    pub iss: String,
    /// What the token is for.
    pub typ: TokenKind,
    /// Conduit: the full login passed the second factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized: Option<bool>,
    /// Conduit: fresh full login, allowed to change 2FA settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo: Option<bool>,
}

/// Extra claims some vendors carry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra {
    /// Conduit `authorized`.
    pub authorized: Option<bool>,
    /// Conduit `sudo`.
    pub sudo: Option<bool>,
    /// Emit Conduit's `id` claim.
    pub id_claim: bool,
    /// Conduit v0.15's bug: write `exp` as `iat` + the lifetime in
    /// milliseconds, read as seconds.
    pub exp_in_ms_bug: bool,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token we signed.
    #[error("token is invalid")]
    Invalid,
    /// Past its `exp`.
    #[error("token has expired")]
    Expired,
    /// A token of another kind (e.g. a refresh token used as bearer).
    #[error("token is not valid for this call")]
    WrongKind,
}

/// Signs and checks tokens.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIssuer { key: <redacted> }")
    }
}

impl Default for TokenIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenIssuer {
    /// An issuer with a fresh random key.
    pub fn new() -> Self {
        crate::jwt_crypto::install();
        let mut key = [0_u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
        }
    }

    /// Signs a token for account `sub`.
    pub fn issue(
        &self,
        sub: &str,
        kind: TokenKind,
        lifetime: Duration,
        now_secs: u64,
        extra: Extra,
    ) -> Result<(String, Claims), TokenError> {
        let mut jti = [0_u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let lifetime_secs = lifetime.as_secs().max(1);
        let exp_offset = if extra.exp_in_ms_bug {
            lifetime_secs.saturating_mul(1000)
        } else {
            lifetime_secs
        };
        let claims = Claims {
            sub: sub.to_owned(),
            id: extra.id_claim.then(|| sub.to_owned()),
            iat: now_secs,
            exp: now_secs.saturating_add(exp_offset),
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
            iss: ISSUER.to_owned(),
            typ: kind,
            authorized: extra.authorized,
            sudo: extra.sudo,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Invalid)?;
        crate::ledger::record(crate::ledger::SecretKind::Token, &token);
        Ok((token, claims))
    }

    /// Checks signature, issuer, kind and expiry at `now_secs`.
    pub fn verify(
        &self,
        token: &str,
        kind: TokenKind,
        now_secs: u64,
    ) -> Result<Claims, TokenError> {
        self.verify_with_lifetime(token, kind, now_secs, None)
    }

    /// As [`verify`](Self::verify), but with `server_lifetime` the server
    /// decides expiry from `iat` and ignores the token's `exp` (a vendor
    /// that keeps sessions server-side and writes a wrong `exp`).
    pub fn verify_with_lifetime(
        &self,
        token: &str,
        kind: TokenKind,
        now_secs: u64,
        server_lifetime: Option<Duration>,
    ) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is ours to check, against the injectable clock.
        validation.validate_exp = false;
        validation.set_issuer(&[ISSUER]);
        let data = jsonwebtoken::decode::<Claims>(token.trim(), &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        if claims.typ != kind {
            return Err(TokenError::WrongKind);
        }
        let expires = match server_lifetime {
            Some(lifetime) => claims.iat.saturating_add(lifetime.as_secs().max(1)),
            None => claims.exp,
        };
        if expires <= now_secs {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_token_expires_at_its_lifetime() {
        let issuer = TokenIssuer::new();
        let (token, claims) = issuer
            .issue(
                "u1",
                TokenKind::Access,
                Duration::from_secs(5),
                1000,
                Extra::default(),
            )
            .expect("issue");
        assert_eq!(claims.exp, 1005);
        assert!(issuer.verify(&token, TokenKind::Access, 1004).is_ok());
        assert_eq!(
            issuer.verify(&token, TokenKind::Access, 1005),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn conduit_exp_bug_writes_milliseconds_but_the_server_expires_on_time() {
        let issuer = TokenIssuer::new();
        let bug = Extra {
            exp_in_ms_bug: true,
            ..Extra::default()
        };
        let lifetime = Duration::from_secs(3600);
        let (token, claims) = issuer
            .issue("u1", TokenKind::Access, lifetime, 1000, bug)
            .expect("issue");
        // The vendor document's token: exp − iat = 3,600,000.
        assert_eq!(claims.exp - claims.iat, 3_600_000);
        let at = |now| issuer.verify_with_lifetime(&token, TokenKind::Access, now, Some(lifetime));
        assert!(at(1000 + 3599).is_ok());
        assert_eq!(at(1000 + 3600), Err(TokenError::Expired));
        // Trusting `exp` would keep it alive for 41 days.
        assert!(
            issuer
                .verify(&token, TokenKind::Access, 1000 + 3600)
                .is_ok()
        );
    }

    #[test]
    fn refresh_token_is_not_a_bearer_token() {
        let issuer = TokenIssuer::new();
        let (token, _) = issuer
            .issue(
                "u1",
                TokenKind::Refresh,
                Duration::from_secs(5),
                1000,
                Extra::default(),
            )
            .expect("issue");
        assert_eq!(
            issuer.verify(&token, TokenKind::Access, 1001),
            Err(TokenError::WrongKind)
        );
    }

    #[test]
    fn token_from_another_instance_is_invalid() {
        let (token, _) = TokenIssuer::new()
            .issue(
                "u1",
                TokenKind::Access,
                Duration::from_secs(5),
                1000,
                Extra::default(),
            )
            .expect("issue");
        assert_eq!(
            TokenIssuer::new().verify(&token, TokenKind::Access, 1001),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            TokenIssuer::new().verify("garbage", TokenKind::Access, 1001),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_token_with_its_signature_stripped_or_alg_none_is_invalid() {
        use base64::Engine as _;
        let issuer = TokenIssuer::new();
        let (token, _) = issuer
            .issue(
                "u1",
                TokenKind::Access,
                Duration::from_secs(5),
                1000,
                Extra::default(),
            )
            .expect("issue");
        let (signed, _tag) = token.rsplit_once('.').expect("three parts");
        let (_, claims) = signed.split_once('.').expect("three parts");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        for forged in [format!("{signed}."), format!("{none}.{claims}.")] {
            assert_eq!(
                issuer.verify(&forged, TokenKind::Access, 1001),
                Err(TokenError::Invalid)
            );
        }
    }
}
