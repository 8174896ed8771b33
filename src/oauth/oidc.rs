//! Tokens from an OpenID Connect token endpoint (`sasl.oauthbearer.method=oidc`), by the OAuth
//! 2.0 client-credentials grant (RFC 6749 section 4.4), as librdkafka and the Java client ask
//! for them: a form POST with `grant_type=client_credentials` and the scope, the client id and
//! secret in HTTP Basic authentication. The access token must be a JWT: its `exp` says when to
//! refresh it, and its principal claim whom it names.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{jwt, OAuthBearerToken, TokenError, TokenFuture, TokenProvider};
use crate::config::Secret;

/// How long connecting to the token endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole token request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read from the token endpoint: a token response is a few kilobytes.
const MAX_ANSWER: usize = 1 << 20;

/// The `sasl.oauthbearer.*` settings of the OIDC method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OidcSettings {
    /// `sasl.oauthbearer.token.endpoint.url`.
    pub endpoint: String,
    /// `sasl.oauthbearer.client.id`.
    pub client_id: String,
    /// `sasl.oauthbearer.client.secret`.
    pub client_secret: Secret,
    /// `sasl.oauthbearer.scope`.
    pub scope: Option<String>,
    /// `sasl.oauthbearer.extensions`.
    pub extensions: Vec<(String, String)>,
    /// `sasl.oauthbearer.sub.claim.name`.
    pub principal_claim: String,
    /// `https.ca.location`: the CAs the token endpoint's certificate is checked against.
    pub ca_location: Option<PathBuf>,
    /// `https.ca.pem`.
    pub ca_pem: Option<String>,
}

/// Asks the token endpoint for tokens.
pub(crate) struct OidcProvider {
    http: reqwest::Client,
    settings: OidcSettings,
}

impl OidcProvider {
    /// A provider that speaks HTTPS with `tls` (rustls on ring, trusting the CAs of
    /// `https.ca.*` or the system's).
    pub fn new(settings: OidcSettings, tls: rustls::ClientConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot make the HTTP client for the token endpoint: {e}"))?;
        Ok(OidcProvider { http, settings })
    }

    async fn fetch(&self) -> Result<OAuthBearerToken, TokenError> {
        let s = &self.settings;
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &s.scope {
            form.push(("scope", scope));
        }
        let failed =
            |what: String| TokenError::new(format!("token endpoint {}: {what}", s.endpoint));
        let mut answer = self
            .http
            .post(&s.endpoint)
            .basic_auth(&s.client_id, Some(s.client_secret.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| failed(format!("the request failed: {}", chain(&e))))?;
        let status = answer.status();
        let mut body = Vec::new();
        while let Some(chunk) = answer
            .chunk()
            .await
            .map_err(|e| failed(format!("reading the answer failed: {}", chain(&e))))?
        {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(failed(format!("the answer is over {MAX_ANSWER} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let field = |name: &str| json.as_ref()?.get(name)?.as_str().map(str::to_owned);
        if !status.is_success() {
            // RFC 6749 section 5.2: `error` and `error_description`.
            let said = match (field("error"), field("error_description")) {
                (Some(error), Some(description)) => format!(": {error}: {description}"),
                (Some(error), None) => format!(": {error}"),
                _ => String::new(),
            };
            return Err(failed(format!("it answered {status}{said}")));
        }
        let access_token = field("access_token").ok_or_else(|| {
            failed("the answer has no access_token (a JSON object was expected)".to_owned())
        })?;
        let claims =
            jwt::claims(&access_token, &s.principal_claim).map_err(|e| failed(e.to_string()))?;
        let token = OAuthBearerToken::new(access_token, claims.principal, claims.expires_at);
        Ok(s.extensions.iter().fold(token, |token, (key, value)| {
            token.with_extension(key, value)
        }))
    }
}

impl TokenProvider for OidcProvider {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(self.fetch())
    }
}

/// An error and its causes, which reqwest keeps apart (the cause says "connection refused").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
