//! Unsecured OAUTHBEARER tokens (`enable.sasl.oauthbearer.unsecure.jwt`), for development
//! against brokers that accept them, such as Kafka's default OAUTHBEARER listener: a JWT
//! whose header says `"alg":"none"` and whose signature is empty (RFC 7515 appendix A.5).
//!
//! `sasl.oauthbearer.config` describes the token, as in librdkafka: space-separated
//! `name=value` pairs, `principal` required.
//!
//! | name | default | what |
//! |---|---|---|
//! | `principal` | (required) | the principal, in the principal claim |
//! | `principalClaimName` | `sub` | the claim that holds it |
//! | `scope` | none | comma-separated scopes, a JSON array in the scope claim |
//! | `scopeClaimName` | `scope` | the claim that holds them |
//! | `lifeSeconds` | 3600 | the token's lifetime |
//! | `extension_NAME` | | a SASL extension `NAME` sent with the token |

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use super::{check_extension, OAuthBearerToken, TokenFuture, TokenProvider};

/// Makes unsecured tokens as `sasl.oauthbearer.config` describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnsecuredProvider {
    principal: String,
    principal_claim: String,
    scope: Vec<String>,
    scope_claim: String,
    life: Duration,
    extensions: Vec<(String, String)>,
}

impl UnsecuredProvider {
    /// Reads `sasl.oauthbearer.config`; the error says what is wrong with it.
    pub fn parse(config: &str) -> Result<Self, String> {
        let mut provider = UnsecuredProvider {
            principal: String::new(),
            principal_claim: "sub".to_owned(),
            scope: Vec::new(),
            scope_claim: "scope".to_owned(),
            life: Duration::from_secs(3600),
            extensions: Vec::new(),
        };
        for pair in config.split_whitespace() {
            let Some((name, value)) = pair.split_once('=') else {
                return Err(format!("`{pair}` is not name=value"));
            };
            let claim_name = |value: &str| match value.is_empty() {
                true => Err(format!("{name} is empty")),
                false => Ok(value.to_owned()),
            };
            match name {
                "principal" => provider.principal = claim_name(value)?,
                "principalClaimName" => provider.principal_claim = claim_name(value)?,
                "scopeClaimName" => provider.scope_claim = claim_name(value)?,
                "scope" => {
                    provider.scope = value
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "lifeSeconds" => {
                    let seconds = value
                        .parse::<u32>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| format!("lifeSeconds `{value}` is not a positive number"))?;
                    provider.life = Duration::from_secs(seconds.into());
                }
                _ => match name.strip_prefix("extension_") {
                    Some(key) => {
                        check_extension(key, value).map_err(|e| e.to_string())?;
                        provider.extensions.push((key.to_owned(), value.to_owned()));
                    }
                    None => {
                        return Err(format!(
                            "unknown name `{name}`; expected principal, principalClaimName, \
                             scope, scopeClaimName, lifeSeconds or extension_NAME"
                        ))
                    }
                },
            }
        }
        if provider.principal.is_empty() {
            return Err("principal is missing (say, principal=alice)".to_owned());
        }
        if provider.principal_claim == provider.scope_claim {
            return Err("principalClaimName and scopeClaimName are the same claim".to_owned());
        }
        Ok(provider)
    }

    /// The token, issued at `now`.
    pub fn issue(&self, now: SystemTime) -> OAuthBearerToken {
        let expires = now + self.life;
        let seconds = |t: SystemTime| {
            let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            // Milliseconds, as seconds with a fraction: JWT's NumericDate.
            Value::from((since.as_millis() as f64) / 1000.0)
        };
        let mut claims = Map::new();
        claims.insert(
            self.principal_claim.clone(),
            Value::from(self.principal.as_str()),
        );
        claims.insert("iat".to_owned(), seconds(now));
        claims.insert("exp".to_owned(), seconds(expires));
        if !self.scope.is_empty() {
            claims.insert(self.scope_claim.clone(), Value::from(self.scope.clone()));
        }
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
        let token = OAuthBearerToken::new(format!("{header}.{payload}."), &self.principal, expires);
        self.extensions.iter().fold(token, |token, (key, value)| {
            token.with_extension(key, value)
        })
    }
}

impl TokenProvider for UnsecuredProvider {
    fn token(&self) -> TokenFuture<'_> {
        let token = self.issue(SystemTime::now());
        Box::pin(async move { Ok(token) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_an_unsigned_jwt_with_the_claims_asked_for() {
        let provider = UnsecuredProvider::parse(
            "principal=admin principalClaimName=azp scope=role1,role2 scopeClaimName=roles \
             lifeSeconds=600 extension_traceId=123",
        )
        .unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let token = provider.issue(now);
        let parts: Vec<&str> = token.value().split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "", "no signature");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "none"}));
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({
                "azp": "admin",
                "iat": 1_700_000_000.25,
                "exp": 1_700_000_600.25,
                "roles": ["role1", "role2"],
            })
        );
        assert_eq!(token.principal(), "admin");
        assert_eq!(token.expires_at(), now + Duration::from_secs(600));
        assert_eq!(
            token.extensions(),
            &[("traceId".to_owned(), "123".to_owned())]
        );
        token.check().unwrap();
    }

    #[test]
    fn defaults_are_librdkafkas() {
        let provider = UnsecuredProvider::parse("principal=alice").unwrap();
        assert_eq!(provider.principal_claim, "sub");
        assert_eq!(provider.scope_claim, "scope");
        assert_eq!(provider.life, Duration::from_secs(3600));
        assert!(provider.scope.is_empty());
    }

    #[test]
    fn mistakes_are_named() {
        for (config, says) in [
            ("", "principal is missing"),
            ("principal=alice lifeSeconds=0", "lifeSeconds"),
            ("principal=alice lifeSeconds=ten", "lifeSeconds"),
            ("principal=alice colour=blue", "unknown name `colour`"),
            ("principal=alice scopeClaimName=sub", "the same claim"),
            ("principal", "not name=value"),
            ("principal=alice extension_auth=x", "reserved"),
            ("principal=alice extension_trace-id=x", "letters only"),
        ] {
            let e = UnsecuredProvider::parse(config).unwrap_err();
            assert!(e.contains(says), "{config}: {e}");
        }
    }
}
