//! What a client reads of a JWT it was given: when it expires and whom it names. The
//! signature is the broker's to check; the client only needs to know when to refresh.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use super::TokenError;

/// The claims a client uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Claims {
    /// The principal claim's value.
    pub principal: String,
    /// `exp`.
    pub expires_at: SystemTime,
}

/// Reads `exp` and the claim `principal_claim` (a non-empty string) of a compact JWS.
#[cfg_attr(not(feature = "oidc"), allow(dead_code))]
pub(crate) fn claims(token: &str, principal_claim: &str) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::new(
            "the access token is not a JWT (three base64url parts separated by dots)",
        ));
    };
    let payload = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| TokenError::new("the access token's JWT payload is not base64url"))?;
    let claims: Value = serde_json::from_slice(&payload)
        .map_err(|_| TokenError::new("the access token's JWT payload is not a JSON object"))?;
    let expires = claims
        .get("exp")
        .and_then(Value::as_f64)
        .filter(|exp| exp.is_finite() && *exp >= 0.0)
        .ok_or_else(|| TokenError::new("the access token's JWT has no numeric `exp` claim"))?;
    let principal = claims
        .get(principal_claim)
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            TokenError::new(format!(
                "the access token's JWT has no `{principal_claim}` claim with a principal \
                 (sasl.oauthbearer.sub.claim.name)"
            ))
        })?;
    Ok(Claims {
        principal: principal.to_owned(),
        expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(expires.min(1e11)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"k"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn reads_expiry_and_principal() {
        let c = claims(&jwt(r#"{"sub":"svc","exp":1700000000,"aud":"x"}"#), "sub").unwrap();
        assert_eq!(c.principal, "svc");
        assert_eq!(
            c.expires_at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        let c = claims(&jwt(r#"{"azp":"app","exp":1.5}"#), "azp").unwrap();
        assert_eq!(c.principal, "app");
    }

    #[test]
    fn what_is_missing_is_named() {
        for (token, says) in [
            ("opaque-token".to_owned(), "not a JWT"),
            ("a.b.c.d".to_owned(), "not a JWT"),
            ("a.!!!.c".to_owned(), "not base64url"),
            (jwt("[1,2]"), "no numeric `exp`"),
            (jwt(r#"{"sub":"svc"}"#), "no numeric `exp`"),
            (jwt(r#"{"exp":1}"#), "no `sub` claim"),
            (jwt(r#"{"exp":1,"sub":""}"#), "no `sub` claim"),
        ] {
            let e = claims(&token, "sub").unwrap_err().to_string();
            assert!(e.contains(says), "{token}: {e}");
        }
    }
}
