//! SASL/OAUTHBEARER against the OAUTH listener, which validates unsecured tokens with Kafka's
//! own default handler: round trips for producer, consumer and admin, and tokens refused
//! (by the broker, or by the client before it sends one) as typed errors within 2 s, after one
//! connection each. The OIDC method is in `oidc.rs`, re-authentication in `reauth.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use purekafka::oauth::{OAuthBearerToken, TokenFuture, TokenProvider};
use purekafka::{Admin, ClientConfig, Error};

use crate::bad_credentials::{fails_fast, Counter, Kind, KINDS};
use crate::common::{oauth_addr, round_trip, Proxy};

/// A client of the OAUTH listener at `servers` that presents unsecured tokens for `principal`.
pub fn unsecured(servers: &str, principal: &str) -> ClientConfig {
    ClientConfig::new()
        .bootstrap_servers(servers.split(','))
        .set("security.protocol", "SASL_PLAINTEXT")
        .unwrap()
        .set("sasl.mechanism", "OAUTHBEARER")
        .unwrap()
        .set("enable.sasl.oauthbearer.unsecure.jwt", "true")
        .unwrap()
        .set(
            "sasl.oauthbearer.config",
            format!("principal={principal} scope=kafka,test lifeSeconds=600 extension_traceId=42"),
        )
        .unwrap()
}

#[tokio::test]
async fn unsecured_tokens_round_trip() {
    round_trip(unsecured(&oauth_addr(), "alice"), "OAUTHBEARER unsecured").await;
    let admin = Admin::builder(unsecured(&oauth_addr(), "alice"))
        .build()
        .await
        .expect("admin over OAUTHBEARER");
    let cluster = admin.describe_cluster().await.unwrap();
    assert!(!cluster.brokers.is_empty());
    assert!(admin.list_topics().await.is_ok());
}

/// Hands out the same token every time, counting the calls.
struct Fixed {
    token: OAuthBearerToken,
    calls: AtomicUsize,
}

struct Shared(Arc<Fixed>);

impl TokenProvider for Shared {
    fn token(&self) -> TokenFuture<'_> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let token = self.0.token.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// An unsigned JWT with these claims.
fn unsigned(claims: &str) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

fn epoch_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// The application's own token provider: its token (an unsigned JWT it made) logs producer,
/// consumer and admin in, each client asking it once.
#[tokio::test]
async fn an_applications_token_provider_round_trips() {
    let expires = SystemTime::now() + Duration::from_secs(600);
    let claims = format!(
        r#"{{"sub":"app-principal","iat":{},"exp":{}}}"#,
        epoch_seconds(SystemTime::now()),
        epoch_seconds(expires)
    );
    let provider = Arc::new(Fixed {
        token: OAuthBearerToken::new(unsigned(&claims), "app-principal", expires),
        calls: AtomicUsize::new(0),
    });
    let config = || {
        ClientConfig::new()
            .bootstrap_servers(oauth_addr().split(','))
            .set("security.protocol", "SASL_PLAINTEXT")
            .unwrap()
            .oauthbearer_token_provider(Shared(provider.clone()))
    };
    round_trip(config(), "OAUTHBEARER from a token provider").await;
    let admin = Admin::builder(config()).build().await.expect("admin");
    assert!(!admin.describe_cluster().await.unwrap().brokers.is_empty());
    // Producer, consumer, admin: one call each.
    assert_eq!(provider.calls.load(Ordering::SeqCst), 3);
}

/// Builds a client of `kind` whose provider hands out `token`, through a counting proxy to the
/// OAUTH listener; it must fail within 2 s after one connection. Returns the error's message
/// and how often the provider was asked.
async fn refused_with(scenario: &str, kind: Kind, token: OAuthBearerToken) -> (String, usize) {
    let proxy = Proxy::start(oauth_addr().split(',').next().unwrap().to_owned()).await;
    let provider = Arc::new(Fixed {
        token,
        calls: AtomicUsize::new(0),
    });
    let config = ClientConfig::new()
        .bootstrap_servers([proxy.addr.clone()])
        .set("security.protocol", "SASL_PLAINTEXT")
        .unwrap()
        .oauthbearer_token_provider(Shared(provider.clone()));
    let counters: [&dyn Counter; 1] = [&proxy];
    let error = fails_fast(scenario, kind, &counters, config, 1).await;
    (
        token_refusal(kind, &error),
        provider.calls.load(Ordering::SeqCst),
    )
}

/// The message of an OAUTHBEARER authentication error, which `error` must be.
pub(crate) fn token_refusal(kind: Kind, error: &Error) -> String {
    let Error::Authentication {
        mechanism, message, ..
    } = error
    else {
        panic!("{kind:?}: expected Error::Authentication, got {error:?}");
    };
    assert_eq!(mechanism, "OAUTHBEARER", "{kind:?}");
    message.clone()
}

/// A token Kafka's validator refuses (it names no principal in `sub`) fails every kind of
/// client with an authentication error that carries the broker's answer, within 2 s, after one
/// connection, and the provider was asked once per client.
#[tokio::test]
async fn a_token_the_broker_refuses_is_an_authentication_error() {
    let expires = SystemTime::now() + Duration::from_secs(600);
    let claims = format!(
        r#"{{"iat":{},"exp":{}}}"#,
        epoch_seconds(SystemTime::now()),
        epoch_seconds(expires)
    );
    for kind in KINDS {
        let token = OAuthBearerToken::new(unsigned(&claims), "nobody", expires);
        let (message, calls) = refused_with("refused token", kind, token).await;
        // Kafka answers RFC 7628's JSON error, then fails the exchange.
        assert!(
            message.contains("the broker refused the token") && message.contains("invalid_token"),
            "{kind:?}: {message}"
        );
        assert_eq!(calls, 1, "{kind:?}");
    }
}

/// A provider's token that has already expired is refused by the client itself, before any
/// SASL request, with the reason.
#[tokio::test]
async fn an_expired_token_is_refused_before_it_is_sent() {
    let expired = SystemTime::now() - Duration::from_secs(1);
    for kind in KINDS {
        let token = OAuthBearerToken::new(unsigned(r#"{"sub":"alice","exp":1}"#), "alice", expired);
        let (message, _) = refused_with("expired token", kind, token).await;
        assert!(
            message.contains("no OAUTHBEARER token") && message.contains("already expired"),
            "{kind:?}: {message}"
        );
    }
}

/// Without a source of tokens the client is not built, and the error names the three.
#[tokio::test]
async fn oauthbearer_without_a_token_source_is_refused_when_built() {
    let config = ClientConfig::new()
        .bootstrap_servers(oauth_addr().split(','))
        .set("security.protocol", "SASL_PLAINTEXT")
        .unwrap()
        .set("sasl.mechanism", "OAUTHBEARER")
        .unwrap();
    let Err(error) = Admin::builder(config).build().await else {
        panic!("OAUTHBEARER without a token source must not build");
    };
    let text = error.to_string();
    assert!(
        matches!(error, Error::Config(_))
            && text.contains("sasl.oauthbearer.method=oidc")
            && text.contains("oauthbearer_token_provider")
            && text.contains("enable.sasl.oauthbearer.unsecure.jwt"),
        "{text}"
    );
}
