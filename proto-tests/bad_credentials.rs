//! Bad credentials and mismatched security protocols against the real broker. Each ends in a
//! typed error that says what is wrong, within 2 s of building a client, after a bounded number
//! of connections: a proxy (or, for the mechanism, a relay that rewrites it) stands in front of
//! the listener and counts them. And the SASL password shows nowhere: not in `Debug` or
//! `Display` of configs and errors, nor in the log captured at TRACE. Settings that contradict
//! each other fail the build before any connection is made.
//!
//! Run with `-- --nocapture` to see the measured time and connection count of each scenario.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use purekafka::{
    Admin, AutoOffsetReset, ClientConfig, ConfigError, Consumer, Error, Producer, ProducerRecord,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{admin, ckafka, plaintext_addr, sasl_addr, unique_topic, Proxy};

/// How long any of these failures may take, from `build()` to the error.
const LIMIT: Duration = Duration::from_secs(2);
/// How long to keep counting connections after the error: a client that went on reconnecting
/// in the background would show here.
const AFTERWARDS: Duration = Duration::from_millis(500);
/// The password of fixtures/ckafka.json, which the broker accepts.
const PASSWORD: &str = "purekafka-secret";

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Producer,
    Consumer,
    Admin,
}

pub(crate) const KINDS: [Kind; 3] = [Kind::Producer, Kind::Consumer, Kind::Admin];

/// Builds a client of `kind` with `config`, which must fail.
async fn build_error(kind: Kind, config: ClientConfig) -> Error {
    let result = match kind {
        Kind::Producer => Producer::builder(config).build().await.map(drop),
        Kind::Consumer => Consumer::builder(config).build().await.map(drop),
        Kind::Admin => Admin::builder(config).build().await.map(drop),
    };
    match result {
        Ok(()) => panic!("building a {kind:?} must fail"),
        Err(e) => e,
    }
}

/// Counts connections in front of one or more listeners.
pub(crate) trait Counter {
    fn count(&self) -> usize;
}

impl Counter for Proxy {
    fn count(&self) -> usize {
        Proxy::count(self)
    }
}

/// Builds a client of `kind` whose bootstrap servers are the `counters`' addresses, and checks
/// that it fails within [`LIMIT`] having opened at most `max_connections`, then none more.
/// Returns the error.
pub(crate) async fn fails_fast(
    scenario: &str,
    kind: Kind,
    counters: &[&dyn Counter],
    config: ClientConfig,
    max_connections: usize,
) -> Error {
    let started = Instant::now();
    let error = build_error(kind, config).await;
    let elapsed = started.elapsed();
    let at_error: usize = counters.iter().map(|c| c.count()).sum();
    tokio::time::sleep(AFTERWARDS).await;
    let connections: usize = counters.iter().map(|c| c.count()).sum();
    eprintln!(
        "{scenario} / {kind:?}: {} bootstrap server(s), error after {elapsed:?}, \
         {connections} connection(s): {error}",
        counters.len()
    );
    assert!(elapsed < LIMIT, "{scenario} / {kind:?}: took {elapsed:?}");
    assert_eq!(
        at_error, connections,
        "{scenario} / {kind:?}: reconnected after the error"
    );
    assert!(
        (1..=max_connections).contains(&connections),
        "{scenario} / {kind:?}: {connections} connections, at most {max_connections} expected"
    );
    error
}

/// Proxies in front of `target`, one per bootstrap server.
async fn proxies(target: &str, n: usize) -> Vec<Proxy> {
    let mut proxies = Vec::new();
    for _ in 0..n {
        proxies.push(Proxy::start(target.to_owned()).await);
    }
    proxies
}

fn addrs(proxies: &[Proxy]) -> Vec<String> {
    proxies.iter().map(|p| p.addr.clone()).collect()
}

fn counters(proxies: &[Proxy]) -> Vec<&dyn Counter> {
    proxies.iter().map(|p| p as &dyn Counter).collect()
}

/// The CKafka config of fixtures/ckafka.json, SASL/PLAIN, bootstrapping from `servers`.
fn sasl_config(servers: Vec<String>) -> ClientConfig {
    let mut cfg = ckafka();
    cfg.bootstrap_servers = servers;
    cfg.client_config().unwrap()
}

#[tokio::test]
async fn wrong_password_is_an_authentication_error() {
    for servers in [1, 2] {
        for kind in KINDS {
            let proxies = proxies(&sasl_addr(), servers).await;
            let config = sasl_config(addrs(&proxies))
                .set("sasl.password", "wrong-password-4f1c")
                .unwrap();
            // Every broker would refuse the same credentials: the first refusal ends it.
            let error = fails_fast("wrong password", kind, &counters(&proxies), config, 1).await;
            let Error::Authentication {
                broker,
                mechanism,
                message,
            } = &error
            else {
                panic!("expected Error::Authentication, got {error:?}");
            };
            assert_eq!(broker, &proxies[0].addr);
            assert_eq!(mechanism, "PLAIN");
            assert!(
                message.contains("Invalid username or password"),
                "{message}"
            );
            assert!(!error.is_retriable());
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("wrong-password-4f1c"), "{shown}");
        }
    }
}

#[tokio::test]
async fn a_mechanism_purekafka_lacks_is_refused_before_connecting() {
    // GSSAPI is a real Kafka mechanism; "SCRAM" alone is a typo. Neither reaches a broker.
    for (mechanism, reason) in [
        ("GSSAPI", "not supported; purekafka speaks PLAIN"),
        ("SCRAM", "unknown SASL mechanism"),
    ] {
        let proxy = Proxy::start(sasl_addr()).await;
        let started = Instant::now();
        let error = sasl_config(vec![proxy.addr.clone()])
            .set("sasl.mechanism", mechanism)
            .unwrap_err();
        let elapsed = started.elapsed();
        match &error {
            ConfigError::InvalidValue { key, value, .. } => {
                assert_eq!(
                    (key.as_str(), value.as_str()),
                    ("sasl.mechanism", mechanism)
                );
            }
            other => panic!("expected ConfigError::InvalidValue, got {other:?}"),
        }
        let shown = error.to_string();
        assert!(
            shown.contains("`sasl.mechanism`") && shown.contains(reason),
            "{shown}"
        );
        eprintln!(
            "sasl.mechanism={mechanism}: error after {elapsed:?}, {} connection(s): {shown}",
            proxy.count()
        );
        assert_eq!(proxy.count(), 0);
    }
}

#[tokio::test]
async fn a_mechanism_the_listener_does_not_enable_is_an_authentication_error() {
    // The broker enables PLAIN and SCRAM, not GSSAPI, so the relay asks for GSSAPI in
    // purekafka's SaslHandshake: the answer is the real broker's.
    for kind in KINDS {
        let relay = MechanismRelay::start(sasl_addr(), "GSSAPI").await;
        let config = sasl_config(vec![relay.addr.clone()]);
        let error = fails_fast("mechanism not enabled", kind, &[&relay], config, 1).await;
        match &error {
            Error::Authentication {
                broker, message, ..
            } => {
                assert_eq!(broker, &relay.addr);
                assert!(
                    message.contains("does not enable this mechanism")
                        && message.contains("UNSUPPORTED_SASL_MECHANISM")
                        && message.contains("it enables [")
                        // In the broker's order, which is not the configured one.
                        && ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
                            .iter()
                            .all(|m| message.contains(m)),
                    "{message}"
                );
            }
            other => panic!("expected Error::Authentication, got {other:?}"),
        }
        assert_eq!(relay.rewritten.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn sasl_against_the_plaintext_listener_is_an_authentication_error() {
    for servers in [1, 2] {
        for kind in KINDS {
            let proxies = proxies(&plaintext_addr(), servers).await;
            let config = sasl_config(addrs(&proxies));
            let error = fails_fast("SASL to PLAINTEXT", kind, &counters(&proxies), config, 1).await;
            let Error::Authentication { message, .. } = &error else {
                panic!("expected Error::Authentication, got {error:?}");
            };
            assert!(
                message.contains("ILLEGAL_SASL_STATE")
                    && message.contains("security.protocol is SASL_PLAINTEXT")
                    && message.contains("use PLAINTEXT"),
                "{message}"
            );
            assert!(!error.is_retriable());
        }
    }
}

#[tokio::test]
async fn plaintext_against_the_sasl_listener_is_an_authentication_error() {
    for servers in [1, 2] {
        for kind in KINDS {
            let proxies = proxies(&sasl_addr(), servers).await;
            let config = ClientConfig::new().bootstrap_servers(addrs(&proxies));
            // The broker answers ApiVersions and closes at the next request; the client tries a
            // second connection to tell that from a passing failure, and then stops.
            let error = fails_fast("PLAINTEXT to SASL", kind, &counters(&proxies), config, 2).await;
            let Error::Authentication {
                broker,
                mechanism,
                message,
            } = &error
            else {
                panic!("expected Error::Authentication, got {error:?}");
            };
            assert_eq!(broker, &proxies[0].addr);
            assert_eq!(mechanism, "none");
            assert!(
                message.contains("SASL listener")
                    && message.contains("security.protocol is PLAINTEXT")
                    && message.contains("SASL_PLAINTEXT"),
                "{message}"
            );
            assert!(!error.is_retriable());
        }
    }
}

#[tokio::test]
async fn a_plaintext_listener_that_drops_one_connection_is_still_used() {
    // The other side of the check above: a PLAINTEXT listener whose first connection is cut
    // right after ApiVersions is not taken for a SASL listener.
    let relay = CutAfterFirstFrame::start(plaintext_addr()).await;
    let started = Instant::now();
    let admin = Admin::builder(ClientConfig::new().bootstrap_servers([relay.addr.clone()]))
        .build()
        .await
        .expect("the second connection works");
    eprintln!(
        "PLAINTEXT, first connection cut: built after {:?}, {} connection(s)",
        started.elapsed(),
        relay.connections.load(Ordering::SeqCst)
    );
    assert!(admin.negotiated_versions().await.is_ok());
    assert!(relay.connections.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn settings_that_contradict_fail_before_connecting() {
    let proxy = Proxy::start(sasl_addr()).await;
    let sasl = || sasl_config(vec![proxy.addr.clone()]);
    let no_password = ClientConfig::new()
        .bootstrap_servers([proxy.addr.clone()])
        .set("security.protocol", "SASL_PLAINTEXT")
        .unwrap()
        .set("sasl.username", "ckafka-local#purekafka")
        .unwrap();
    let cases = [
        (
            Kind::Producer,
            sasl()
                .set("enable.idempotence", "true")
                .unwrap()
                .set("acks", "1")
                .unwrap(),
            "enable.idempotence=true requires acks=all, but acks=1",
        ),
        (
            Kind::Producer,
            sasl()
                .set("reconnect.backoff.ms", "5000")
                .unwrap()
                .set("reconnect.backoff.max.ms", "1000")
                .unwrap(),
            "reconnect.backoff.ms is larger than reconnect.backoff.max.ms",
        ),
        (
            Kind::Consumer,
            no_password.clone(),
            "missing required configuration property `sasl.password`",
        ),
        (
            Kind::Admin,
            no_password,
            "missing required configuration property `sasl.password`",
        ),
    ];
    for (kind, config, expected) in cases {
        let started = Instant::now();
        let error = build_error(kind, config).await;
        eprintln!(
            "{kind:?}: error after {:?}, {} connection(s): {error}",
            started.elapsed(),
            proxy.count()
        );
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        assert!(error.to_string().contains(expected), "{error}");
    }
    assert_eq!(proxy.count(), 0);
}

/// A relay in front of a SASL listener that rewrites the mechanism of each SaslHandshake
/// request, and counts connections.
struct MechanismRelay {
    addr: String,
    connections: Arc<AtomicUsize>,
    rewritten: Arc<AtomicUsize>,
    accepting: tokio::task::AbortHandle,
}

impl Counter for MechanismRelay {
    fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for MechanismRelay {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// SaslHandshake's API key.
const SASL_HANDSHAKE: i16 = 17;

impl MechanismRelay {
    async fn start(target: String, mechanism: &'static str) -> MechanismRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let rewritten = Arc::new(AtomicUsize::new(0));
        let (count, changed) = (connections.clone(), rewritten.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(broker) = TcpStream::connect(&target).await else {
                    continue;
                };
                let changed = changed.clone();
                tokio::spawn(async move {
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut broker_read, mut broker_write) = broker.into_split();
                    let answers = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut broker_read, &mut client_write).await;
                    });
                    // Requests, frame by frame: a SaslHandshake request (header v1: api key,
                    // version, correlation id, client id) ends with its mechanism, replaced here.
                    while let Ok(size) = client_read.read_i32().await {
                        let mut frame = vec![0; size as usize];
                        if client_read.read_exact(&mut frame).await.is_err() {
                            break;
                        }
                        if i16::from_be_bytes([frame[0], frame[1]]) == SASL_HANDSHAKE {
                            let client_id = i16::from_be_bytes([frame[8], frame[9]]).max(0);
                            frame.truncate(10 + client_id as usize);
                            frame.extend_from_slice(&(mechanism.len() as i16).to_be_bytes());
                            frame.extend_from_slice(mechanism.as_bytes());
                            changed.fetch_add(1, Ordering::SeqCst);
                        }
                        let mut out = (frame.len() as i32).to_be_bytes().to_vec();
                        out.extend_from_slice(&frame);
                        if broker_write.write_all(&out).await.is_err() {
                            break;
                        }
                    }
                    answers.abort();
                });
            }
        })
        .abort_handle();
        MechanismRelay {
            addr,
            connections,
            rewritten,
            accepting,
        }
    }
}

/// A relay that closes its first connection after passing one answer back (ApiVersions), as a
/// SASL listener would, and relays later connections untouched.
struct CutAfterFirstFrame {
    addr: String,
    connections: Arc<AtomicUsize>,
    accepting: tokio::task::AbortHandle,
}

impl Drop for CutAfterFirstFrame {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl CutAfterFirstFrame {
    async fn start(target: String) -> CutAfterFirstFrame {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let first = count.fetch_add(1, Ordering::SeqCst) == 0;
                let Ok(mut broker) = TcpStream::connect(&target).await else {
                    continue;
                };
                tokio::spawn(async move {
                    if !first {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                        return;
                    }
                    // One request and its answer, then the next request is read and dropped
                    // with the connection.
                    let _ = async {
                        relay_frame(&mut client, &mut broker).await?;
                        relay_frame(&mut broker, &mut client).await?;
                        client.read_i32().await.ok()
                    }
                    .await;
                });
            }
        })
        .abort_handle();
        CutAfterFirstFrame {
            addr,
            connections,
            accepting,
        }
    }
}

/// Copies one Kafka frame from `from` to `to`.
async fn relay_frame(from: &mut TcpStream, to: &mut TcpStream) -> Option<()> {
    let size = from.read_i32().await.ok()?;
    let mut frame = vec![0; size as usize];
    from.read_exact(&mut frame).await.ok()?;
    to.write_i32(size).await.ok()?;
    to.write_all(&frame).await.ok()
}

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn the_password_is_never_printed_nor_logged() {
    // The test runtime runs on this thread only, so every task of the clients below logs here,
    // and only they do.
    // While a single Dispatch exists, tracing-core 0.1.36 takes a callsite's interest from the
    // subscriber of whichever thread reaches it first (tokio-rs/tracing#3611): another test's
    // thread, with none, would switch the callsite off for us too. A second, idle Dispatch,
    // made first and kept alive, sends every registration down the path that asks them all.
    let _idle = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    const WRONG: &str = "wrong-secret-b7e2";

    let mut printed = Vec::new();
    // A wrong password, through every client kind.
    for kind in KINDS {
        let config = sasl_config(vec![sasl_addr()])
            .set("sasl.password", WRONG)
            .unwrap();
        printed.push(format!("{config:?}"));
        let error = build_error(kind, config).await;
        assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
        printed.push(format!("{error} {error:?}"));
    }

    // The right password: one record produced and consumed by a group member, over SASL.
    let topic = unique_topic("secret");
    admin().await.create_topic(&topic, 1, 1).await.unwrap();
    let cfg = ckafka();
    assert_eq!(cfg.sasl.password.expose(), PASSWORD);
    printed.push(format!("{cfg:?}"));
    let config = cfg.client_config().unwrap();
    printed.push(format!("{config:?}"));
    let builder = Producer::builder(config.clone());
    printed.push(format!("{builder:?}"));
    let producer = builder.build().await.expect("SASL producer");
    producer
        .send(ProducerRecord::new(&topic).key("k").value("v"))
        .await
        .expect("produced over SASL");
    let config = config
        .set("group.id", unique_topic("secret-group"))
        .unwrap()
        .auto_offset_reset(AutoOffsetReset::Earliest);
    let builder = Consumer::builder(config.clone());
    printed.push(format!("{builder:?}"));
    let mut consumer = builder.build().await.expect("SASL consumer");
    consumer.subscribe(&[&topic]).unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a record within 30 s")
        .expect("consumed over SASL");
    assert_eq!(message.value.as_deref(), Some(&b"v"[..]));
    consumer.commit().await.unwrap();
    consumer.close().await.unwrap();
    producer.close().await;
    let builder = Admin::builder(config);
    printed.push(format!("{builder:?}"));
    let sasl_admin = builder.build().await.expect("SASL admin");
    sasl_admin.delete_topic(&topic).await.unwrap();

    let log = captured.text();
    // The capture works: the handshakes and the failures are there, at TRACE and DEBUG.
    for expected in [
        "SASL handshake",
        "authenticated",
        "connect failed",
        "TRACE",
        "DEBUG",
    ] {
        assert!(log.contains(expected), "no {expected:?} in the log:\n{log}");
    }
    eprintln!(
        "captured {} log lines, {} printed configs and errors",
        log.lines().count(),
        printed.len()
    );
    for secret in [PASSWORD, WRONG] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
        for shown in &printed {
            assert!(!shown.contains(secret), "{secret} printed: {shown}");
        }
    }
}
