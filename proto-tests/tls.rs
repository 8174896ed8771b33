//! TLS against the real broker's TLS listeners (`cargo xtask kafka up` opens them; its
//! certificates are in `PUREKAFKA_TLS_DIR`, see xtask/src/kafka/tls.rs): SSL, SASL_SSL with
//! PLAIN and SCRAM, mutual TLS, and every way the broker's certificate can be refused, each
//! ending in `Error::Tls` without a retry.
//!
//! The listeners advertise `localhost`, the one name their certificate holds; 127.0.0.1 is the
//! same broker under a name the certificate lacks.

use purekafka::{ClientConfig, ConfigError, Error, SaslMechanism};

use crate::bad_credentials::{fails_fast, Kind, KINDS};
use crate::common::{ckafka, round_trip, ssl_addr, tls_file, Proxy};

fn listener(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.into())
}

/// SSL to `servers`, trusting the test CA.
fn ssl(servers: &str) -> ClientConfig {
    ClientConfig::new()
        .set("bootstrap.servers", servers)
        .unwrap()
        .set("security.protocol", "SSL")
        .unwrap()
        .set("ssl.ca.location", tls_file("ca.pem").display())
        .unwrap()
}

/// The SSL listener under a name its certificate lacks: the same port at 127.0.0.1.
fn ssl_by_ip() -> String {
    ssl_addr().replace("localhost", "127.0.0.1")
}

#[tokio::test]
async fn ssl_round_trip() {
    round_trip(ssl(&ssl_addr()), "over SSL").await;
}

#[tokio::test]
async fn sasl_ssl_round_trip_with_plain_and_scram() {
    let servers = listener("PUREKAFKA_SASL_SSL", "localhost:9097");
    // The CKafka guide's credentials (instanceId#username over PLAIN), as SASL_SSL.
    let mut guide = ckafka();
    guide.bootstrap_servers = servers.split(',').map(str::to_owned).collect();
    let plain = guide
        .client_config()
        .unwrap()
        .set("security.protocol", "SASL_SSL")
        .unwrap()
        .set("ssl.ca.location", tls_file("ca.pem").display())
        .unwrap();
    round_trip(plain, "SASL_SSL with PLAIN").await;
    let scram = ssl(&servers).sasl(SaslMechanism::ScramSha512, "alice", "alice-secret");
    assert_eq!(scram.common.security_protocol.name(), "SASL_SSL");
    round_trip(scram, "SASL_SSL with SCRAM-SHA-512").await;
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let servers = listener("PUREKAFKA_MTLS", "localhost:9098");
    let config = ssl(&servers)
        .set("ssl.certificate.location", tls_file("client.pem").display())
        .unwrap()
        .set("ssl.key.location", tls_file("client.key").display())
        .unwrap();
    round_trip(config, "mutual TLS").await;
}

/// The harness's encrypted client key (`client.enc.key`: encrypted PKCS#8, password
/// `purekafka`) with `client.pem`, against the listener that requires a client certificate;
/// a wrong password is a `ConfigError` naming `ssl.key.password`, before any connection.
#[tokio::test]
async fn mutual_tls_with_an_encrypted_key() {
    let servers = listener("PUREKAFKA_MTLS", "localhost:9098");
    let config = |password: &str| {
        ssl(&servers)
            .set("ssl.certificate.location", tls_file("client.pem").display())
            .unwrap()
            .set("ssl.key.location", tls_file("client.enc.key").display())
            .unwrap()
            .set("ssl.key.password", password)
            .unwrap()
    };
    round_trip(config("purekafka"), "mutual TLS with an encrypted key").await;
    wrong_password(config("not-the-password"), "ssl.key.password").await;
}

/// The harness's PKCS#12 keystore (`client.p12`, password `purekafka`, the client's key and
/// certificate) as librdkafka's `ssl.keystore.location`; a wrong password names
/// `ssl.keystore.password`.
#[tokio::test]
async fn mutual_tls_with_a_pkcs12_keystore() {
    let servers = listener("PUREKAFKA_MTLS", "localhost:9098");
    let config = |password: &str| {
        ssl(&servers)
            .set("ssl.keystore.location", tls_file("client.p12").display())
            .unwrap()
            .set("ssl.keystore.password", password)
            .unwrap()
    };
    round_trip(config("purekafka"), "mutual TLS with a PKCS#12 keystore").await;
    wrong_password(config("not-the-password"), "ssl.keystore.password").await;
}

/// Building a producer with `config` fails at once with a `ConfigError` naming `key`, and the
/// password is shown nowhere.
async fn wrong_password(config: ClientConfig, key: &str) {
    let err = purekafka::Producer::builder(config)
        .build()
        .await
        .expect_err("a wrong password fails the build");
    let Error::Config(ConfigError::InvalidValue {
        key: named, reason, ..
    }) = &err
    else {
        panic!("expected ConfigError::InvalidValue naming {key}, got {err:?}");
    };
    assert_eq!(named, key, "{err}");
    assert!(reason.contains("password does not"), "{reason}");
    assert!(
        !format!("{err} {err:?}").contains("not-the-password"),
        "{err:?}"
    );
}

#[tokio::test]
async fn mutual_tls_without_a_client_certificate_is_refused() {
    // Kafka 4 sends the alert BadCertificate; 2.8 a record that does not decrypt.
    refused(
        "no client certificate",
        &listener("PUREKAFKA_MTLS", "localhost:9098"),
        ssl,
        false,
        &["client certificate", "ssl.certificate.location"],
    )
    .await;
}

/// Builds each kind of client against `listener` (through a counting proxy, reached as
/// `localhost` unless `by_ip`), expecting `Error::Tls` with `expected` in its message after a
/// single connection.
async fn refused(
    scenario: &str,
    listener: &str,
    config: impl Fn(&str) -> ClientConfig,
    by_ip: bool,
    expected: &[&str],
) {
    for kind in KINDS {
        let proxy = Proxy::start(listener.replace("localhost", "127.0.0.1")).await;
        let addr = match by_ip {
            true => proxy.addr.clone(),
            false => proxy.addr.replace("127.0.0.1", "localhost"),
        };
        let error = fails_fast(scenario, kind, &[&proxy], config(&addr), 1).await;
        let Error::Tls { broker, message } = &error else {
            panic!("{scenario} / {kind:?}: expected Error::Tls, got {error:?}");
        };
        assert_eq!(broker, &addr);
        for part in expected {
            assert!(message.contains(part), "{scenario}: {message}");
        }
        assert!(!error.is_retriable());
    }
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let other_ca = |servers: &str| {
        ssl(servers)
            .set("ssl.ca.location", tls_file("other-ca.pem").display())
            .unwrap()
    };
    refused(
        "wrong CA",
        &ssl_addr(),
        other_ca,
        false,
        &["UnknownIssuer", "ssl.ca.location"],
    )
    .await;
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    refused(
        "wrong host name",
        &ssl_addr(),
        ssl,
        true,
        &[
            "not valid for name",
            "ssl.endpoint.identification.algorithm=none",
        ],
    )
    .await;
}

#[tokio::test]
async fn hostname_verification_can_be_turned_off() {
    // Bootstrapping through 127.0.0.1, whose name the certificate lacks; the brokers then
    // advertise localhost.
    let config = ssl(&ssl_by_ip())
        .set("ssl.endpoint.identification.algorithm", "none")
        .unwrap();
    round_trip(config, "SSL without the host name check").await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    refused(
        "expired certificate",
        &listener("PUREKAFKA_SSL_EXPIRED", "localhost:9099"),
        ssl,
        false,
        &["expired"],
    )
    .await;
}

#[tokio::test]
async fn certificate_verification_can_be_turned_off() {
    // The expired certificate, by IP and trusting only a stranger CA: nothing is checked.
    let servers =
        listener("PUREKAFKA_SSL_EXPIRED", "localhost:9099").replace("localhost", "127.0.0.1");
    let config = ssl(&servers)
        .set("ssl.ca.location", tls_file("other-ca.pem").display())
        .unwrap()
        .set("enable.ssl.certificate.verification", "false")
        .unwrap();
    let admin = purekafka::Admin::builder(config).build().await;
    assert!(admin.is_ok(), "{:?}", admin.err());
}

#[tokio::test]
async fn ssl_against_a_plaintext_listener_says_so() {
    let proxy = Proxy::start(crate::common::plaintext_addr()).await;
    let config = ssl(&proxy.addr.replace("127.0.0.1", "localhost"));
    let error = fails_fast("SSL against PLAINTEXT", Kind::Admin, &[&proxy], config, 1).await;
    let shown = error.to_string();
    assert!(
        shown.contains("during the TLS handshake") && shown.contains("a listener without TLS"),
        "{shown}"
    );
}

#[tokio::test]
async fn plaintext_against_an_ssl_listener_says_so() {
    let plaintext = |servers: &str| ClientConfig::new().bootstrap_servers([servers.to_owned()]);
    refused(
        "PLAINTEXT against SSL",
        &ssl_addr(),
        plaintext,
        true,
        &["the listener expects TLS", "use SSL"],
    )
    .await;
}
