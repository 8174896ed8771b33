//! A small OpenID Connect identity provider for the tests: a token endpoint that grants
//! client credentials (RFC 6749 section 4.4) and a JWKS, over HTTP on a free loopback port.
//!
//! Its tokens are JWTs signed ES256 with the key `cargo xtask kafka up` made
//! (`target/kafka/run/oauth/signing.key`), whose public half the OIDC listener checks them
//! against (`jwks.json`), for the audience and issuer the listener expects. It can also sign
//! tokens the listener must refuse, or hand out unsigned ones for brokers without JWKS
//! validation (before Kafka 3.1), whose OAUTH listener takes unsecured tokens.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use tokio::net::TcpListener;

use crate::common::oauth_file;

/// The audience the OIDC listener expects (xtask's `OIDC_AUDIENCE`).
pub const AUDIENCE: &str = "purekafka-tests";
/// The issuer the OIDC listener expects (xtask's `OIDC_ISSUER`).
pub const ISSUER: &str = "purekafka-test-issuer";
/// The key id of the harness's JWKS.
pub const KID: &str = "purekafka-test";
/// The client the provider knows.
pub const CLIENT_ID: &str = "purekafka-client";
pub const CLIENT_SECRET: &str = "purekafka-client-secret-7c1e";

/// What the provider's tokens are like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    /// Signed with the harness's key, for the expected audience and issuer.
    Signed,
    /// Signed, but for another audience: the OIDC listener refuses them.
    WrongAudience,
    /// Unsigned (`"alg":"none"`): for the OAUTH listener.
    Unsigned,
}

pub struct Idp {
    /// `http://127.0.0.1:port/token`.
    pub token_url: String,
    /// How many token requests were granted.
    pub granted: Arc<AtomicUsize>,
    /// The scopes asked for, one per request.
    pub scopes: Arc<Mutex<Vec<Option<String>>>>,
    serving: tokio::task::AbortHandle,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

struct Issuer {
    key: SigningKey,
    tokens: Tokens,
    lifetime: Duration,
    granted: Arc<AtomicUsize>,
    scopes: Arc<Mutex<Vec<Option<String>>>>,
    jwks: String,
}

impl Idp {
    /// A provider whose tokens are `tokens` and live `lifetime`.
    pub async fn start(tokens: Tokens, lifetime: Duration) -> Idp {
        let pem = std::fs::read_to_string(oauth_file("signing.key"))
            .expect("the harness's signing key (cargo xtask kafka up writes it)");
        let key = SigningKey::from_pkcs8_pem(&pem).expect("signing.key is a P-256 PKCS#8 key");
        let jwks = std::fs::read_to_string(oauth_file("jwks.json")).expect("jwks.json");
        let granted = Arc::new(AtomicUsize::new(0));
        let scopes: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let issuer = Arc::new(Issuer {
            key,
            tokens,
            lifetime,
            granted: granted.clone(),
            scopes: scopes.clone(),
            jwks,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let issuer = issuer.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let issuer = issuer.clone();
                        async move { Ok::<_, Infallible>(issuer.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        })
        .abort_handle();
        Idp {
            token_url: format!("http://{addr}/token"),
            granted,
            scopes,
            serving,
        }
    }
}

impl Issuer {
    async fn answer(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let reply = |status: StatusCode, body: String| {
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        };
        match (request.method().as_str(), request.uri().path()) {
            ("GET", "/jwks") => reply(StatusCode::OK, self.jwks.clone()),
            ("POST", "/token") => {
                let authorized = request
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Basic "))
                    .and_then(|b| STANDARD.decode(b).ok())
                    .is_some_and(|b| b == format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes());
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
                let field =
                    |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                if !authorized {
                    return reply(
                        StatusCode::UNAUTHORIZED,
                        r#"{"error":"invalid_client","error_description":"unknown client or wrong secret"}"#.into(),
                    );
                }
                if field("grant_type").as_deref() != Some("client_credentials") {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        r#"{"error":"unsupported_grant_type"}"#.into(),
                    );
                }
                self.scopes.lock().unwrap().push(field("scope"));
                self.granted.fetch_add(1, Ordering::SeqCst);
                let token = self.token(field("scope"));
                let body = serde_json::json!({
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": self.lifetime.as_secs(),
                });
                reply(StatusCode::OK, body.to_string())
            }
            _ => reply(StatusCode::NOT_FOUND, "{}".into()),
        }
    }

    /// A token for the client, with `scope`.
    fn token(&self, scope: Option<String>) -> String {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let audience = match self.tokens {
            Tokens::WrongAudience => "someone-else",
            _ => AUDIENCE,
        };
        let claims = serde_json::json!({
            "sub": CLIENT_ID,
            "iss": ISSUER,
            "aud": audience,
            "iat": now,
            "exp": now + self.lifetime.as_secs(),
            "scope": scope.unwrap_or_default(),
        });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        match self.tokens {
            Tokens::Unsigned => {
                format!(
                    "{}.{payload}.",
                    URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#)
                )
            }
            Tokens::Signed | Tokens::WrongAudience => {
                let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": KID});
                let signed = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header.to_string()));
                let signature: Signature = self.key.sign(signed.as_bytes());
                format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
            }
        }
    }
}
