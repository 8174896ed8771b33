//! `sasl.oauthbearer.method=oidc` against the real broker, its tokens from the tests' own
//! identity provider (`idp.rs`) by the client-credentials grant.
//!
//! From Kafka 3.1 the OIDC listener checks the tokens' signature against the harness's JWKS,
//! and their audience and issuer. Before 3.1 Kafka cannot (KIP-768), and the harness has no
//! such listener: the provider's tokens are then unsigned, for the OAUTH listener, which still
//! tests every step of the client's side.

use std::time::Duration;

use purekafka::{Admin, ClientConfig, Error};

use crate::bad_credentials::{fails_fast, Counter, KINDS};
use crate::common::{kafka_version, oauth_addr, oidc_addr, round_trip, Proxy};
use crate::idp::{Idp, Tokens, CLIENT_ID, CLIENT_SECRET};

/// The listener to use and the kind of tokens it takes.
fn listener() -> (String, Tokens) {
    match oidc_addr() {
        Some(addr) => (addr, Tokens::Signed),
        None => {
            assert!(
                kafka_version() < (3, 1),
                "Kafka {:?} validates JWTs, yet the harness has no OIDC listener \
                 (PUREKAFKA_OIDC)",
                kafka_version()
            );
            (oauth_addr(), Tokens::Unsigned)
        }
    }
}

/// A client of `servers` that asks `token_url` for its tokens.
fn oidc(servers: &str, token_url: &str) -> ClientConfig {
    ClientConfig::new()
        .bootstrap_servers(servers.split(','))
        .set("security.protocol", "SASL_PLAINTEXT")
        .unwrap()
        .set("sasl.mechanism", "OAUTHBEARER")
        .unwrap()
        .set("sasl.oauthbearer.method", "oidc")
        .unwrap()
        .set("sasl.oauthbearer.token.endpoint.url", token_url)
        .unwrap()
        .set("sasl.oauthbearer.client.id", CLIENT_ID)
        .unwrap()
        .set("sasl.oauthbearer.client.secret", CLIENT_SECRET)
        .unwrap()
        .set("sasl.oauthbearer.scope", "kafka.write")
        .unwrap()
        .set("sasl.oauthbearer.extensions", "traceId=abc")
        .unwrap()
}

/// Producer, consumer and admin log in with tokens from the token endpoint, one token per
/// client, asked for with the configured scope.
#[tokio::test]
async fn oidc_tokens_round_trip() {
    let (servers, tokens) = listener();
    let idp = Idp::start(tokens, Duration::from_secs(600)).await;
    round_trip(oidc(&servers, &idp.token_url), "OAUTHBEARER oidc").await;
    let admin = Admin::builder(oidc(&servers, &idp.token_url))
        .build()
        .await
        .expect("admin over OIDC");
    assert!(!admin.describe_cluster().await.unwrap().brokers.is_empty());
    // The producer, the consumer and the admin client: a token each, however many
    // connections each made.
    assert_eq!(idp.granted.load(std::sync::atomic::Ordering::SeqCst), 3);
    let scopes = idp.scopes.lock().unwrap().clone();
    assert!(
        scopes.iter().all(|s| s.as_deref() == Some("kafka.write")),
        "{scopes:?}"
    );
}

/// The token endpoint refusing the client's secret fails each client with an authentication
/// error naming the endpoint and its answer, within 2 s, after one connection to the broker.
#[tokio::test]
async fn a_secret_the_token_endpoint_refuses_is_an_authentication_error() {
    let (servers, tokens) = listener();
    let idp = Idp::start(tokens, Duration::from_secs(600)).await;
    for kind in KINDS {
        let proxy = Proxy::start(servers.split(',').next().unwrap().to_owned()).await;
        let config = oidc(&proxy.addr, &idp.token_url)
            .set("sasl.oauthbearer.client.secret", "not-the-secret")
            .unwrap();
        let counters: [&dyn Counter; 1] = [&proxy];
        let error = fails_fast("refused secret", kind, &counters, config, 1).await;
        let text = format!("{error} {error:?}");
        assert!(
            matches!(error, Error::Authentication { .. })
                && text.contains(&idp.token_url)
                && text.contains("401")
                && text.contains("invalid_client"),
            "{kind:?}: {text}"
        );
        assert!(
            !text.contains("not-the-secret"),
            "{kind:?}: the secret leaked: {text}"
        );
    }
}

/// A token endpoint nobody serves: the error names it, within 2 s.
#[tokio::test]
async fn an_unreachable_token_endpoint_is_an_authentication_error() {
    let (servers, _) = listener();
    // A port just freed: nothing listens there.
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let token_url = format!("http://{unused}/token");
    let proxy = Proxy::start(servers.split(',').next().unwrap().to_owned()).await;
    let counters: [&dyn Counter; 1] = [&proxy];
    let config = oidc(&proxy.addr, &token_url);
    let error = fails_fast("no token endpoint", KINDS[2], &counters, config, 1).await;
    let text = error.to_string();
    assert!(
        matches!(error, Error::Authentication { .. }) && text.contains(&token_url),
        "{text}"
    );
}

/// A signed token for another audience: the OIDC listener refuses it, and the error carries
/// the broker's answer. Kafka before 3.1 checks no audience: there, the harness must have no
/// OIDC listener, which `listener()` asserts.
#[tokio::test]
async fn a_token_for_another_audience_is_refused_by_the_broker() {
    let Some(servers) = oidc_addr() else {
        let _ = listener();
        return;
    };
    let idp = Idp::start(Tokens::WrongAudience, Duration::from_secs(600)).await;
    for kind in KINDS {
        let proxy = Proxy::start(servers.split(',').next().unwrap().to_owned()).await;
        let counters: [&dyn Counter; 1] = [&proxy];
        let config = oidc(&proxy.addr, &idp.token_url);
        let error = fails_fast("wrong audience", kind, &counters, config, 1).await;
        let message = crate::oauth::token_refusal(kind, &error);
        assert!(message.contains("invalid_token"), "{kind:?}: {message}");
    }
}
