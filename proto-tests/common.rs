//! Shared by the proto-tests: broker addresses, configs, unique topics, and a TCP proxy that
//! counts and cuts connections.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use purekafka::{Admin, CKafkaConfig, ClientConfig, Consumer, Offset, Producer, ProducerRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// The PLAINTEXT bootstrap address. The first call checks that the broker is there, so that a
/// run without it fails saying what is missing rather than with each test's own error.
pub fn plaintext_addr() -> String {
    let addr = std::env::var("PUREKAFKA_PLAINTEXT").unwrap_or_else(|_| "127.0.0.1:9092".into());
    static THERE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let there = THERE.get_or_init(|| {
        let first = addr.split(',').next().unwrap_or_default();
        let reachable = std::net::ToSocketAddrs::to_socket_addrs(first)
            .ok()
            .and_then(|mut addrs| addrs.next())
            .is_some_and(|a| {
                std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok()
            });
        match reachable {
            true => Ok(()),
            false => Err(format!(
                "the proto-tests need the local Kafka, and nothing answers at {first} \
                 (PUREKAFKA_PLAINTEXT): start it with `cargo xtask kafka up`, or run every \
                 test with `cargo xtask test`"
            )),
        }
    });
    if let Err(missing) = there {
        panic!("{missing}");
    }
    addr
}

/// The SSL listener's bootstrap address (`localhost`, the name its certificate holds).
#[cfg(feature = "tls")]
pub fn ssl_addr() -> String {
    std::env::var("PUREKAFKA_SSL").unwrap_or_else(|_| "localhost:9096".into())
}

/// A file of the local Kafka's TLS material (`ca.pem`, `client.pem`, ...).
#[cfg(feature = "tls")]
pub fn tls_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::var("PUREKAFKA_TLS_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/kafka/run/tls").into());
    std::path::PathBuf::from(dir).join(name)
}

/// The SASL_PLAINTEXT bootstrap address.
pub fn sasl_addr() -> String {
    std::env::var("PUREKAFKA_SASL").unwrap_or_else(|_| "127.0.0.1:9094".into())
}

/// The OAUTH listener's bootstrap address: SASL_PLAINTEXT with OAUTHBEARER, which takes
/// unsecured tokens.
pub fn oauth_addr() -> String {
    std::env::var("PUREKAFKA_OAUTH").unwrap_or_else(|_| "127.0.0.1:9100".into())
}

/// The REAUTH listener's bootstrap address: SASL_PLAINTEXT with PLAIN, SCRAM and unsecured
/// OAUTHBEARER, whose sessions last 10 s (`connections.max.reauth.ms`).
pub fn reauth_addr() -> String {
    std::env::var("PUREKAFKA_REAUTH").unwrap_or_else(|_| "127.0.0.1:9102".into())
}

/// The OIDC listener's bootstrap address, where the running Kafka has one (3.1 and later):
/// OAUTHBEARER tokens checked against the harness's JWKS.
#[cfg(feature = "oidc")]
pub fn oidc_addr() -> Option<String> {
    std::env::var("PUREKAFKA_OIDC").ok()
}

/// A file of the local Kafka's OAUTHBEARER material (`signing.key`, `jwks.json`).
#[cfg(feature = "oidc")]
pub fn oauth_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::var("PUREKAFKA_OAUTH_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/kafka/run/oauth").into());
    std::path::PathBuf::from(dir).join(name)
}

/// fixtures/ckafka.json, pointed at the SASL listener under test.
pub fn ckafka() -> CKafkaConfig {
    let mut c = CKafkaConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ckafka.json"))
        .expect("fixtures/ckafka.json loads");
    c.bootstrap_servers = sasl_addr().split(',').map(str::to_owned).collect();
    c
}

/// A client config for the PLAINTEXT listener.
pub fn plaintext() -> ClientConfig {
    ClientConfig::new().bootstrap_servers(plaintext_addr().split(','))
}

/// A topic name no other test (or earlier run) uses.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{nanos}-{}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A new topic of `partitions` partitions, named after `prefix` as [`unique_topic`] does.
pub async fn new_topic(prefix: &str, partitions: i32) -> String {
    let topic = unique_topic(prefix);
    admin()
        .await
        .create_topic(&topic, partitions, 1)
        .await
        .unwrap();
    topic
}

/// Produces one record (`what`) with `config` and reads it back with the same settings: that a
/// way of connecting (a SASL mechanism, TLS) works end to end.
pub async fn round_trip(config: ClientConfig, what: &str) {
    let topic = new_topic("round-trip", 1).await;
    let producer = Producer::builder(config.clone())
        .build()
        .await
        .unwrap_or_else(|e| panic!("{what}: producer: {e}"));
    let sent = producer
        .send(ProducerRecord::new(&topic).value(what.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{what}: send: {e}"));
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer
        .assign([(topic.as_str(), 0)], Offset::Earliest)
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .unwrap_or_else(|_| panic!("{what}: the record within 10 s"))
        .unwrap();
    assert_eq!(msg.value.as_deref(), Some(what.as_bytes()), "{what}");
    assert_eq!(Some(msg.offset), sent.offset, "{what}");
    producer.close().await;
    admin().await.delete_topic(&topic).await.unwrap();
}

/// Whether the broker serves KIP-848 groups: Kafka 4 does; 3.7–3.9 list the APIs but refuse
/// them unless `group.coordinator.rebalance.protocols` includes `consumer`, which the local
/// Kafka leaves at its default. So a member is asked to join, once per test run.
pub async fn broker_has_kip848() -> bool {
    static SERVES: tokio::sync::OnceCell<bool> = tokio::sync::OnceCell::const_new();
    *SERVES
        .get_or_init(|| async {
            let topic = new_topic("kip848-probe", 1).await;
            let config = plaintext()
                .group_id(unique_topic("g"))
                .set("group.protocol", "consumer")
                .unwrap();
            let mut consumer = Consumer::builder(config).build().await.unwrap();
            consumer.subscribe(&[&topic]).unwrap();
            let serves = match consumer.poll(Duration::from_secs(3)).await {
                Ok(_) => true,
                Err(purekafka::Error::Config(purekafka::ConfigError::InvalidValue {
                    key, ..
                })) if key == "group.protocol" => false,
                Err(e) => panic!("a KIP-848 member joining: {e}"),
            };
            drop(consumer);
            admin().await.delete_topic(&topic).await.unwrap();
            serves
        })
        .await
}

/// An admin client on the PLAINTEXT listener.
pub async fn admin() -> Admin {
    Admin::builder(plaintext())
        .build()
        .await
        .expect("admin connects over PLAINTEXT")
}

/// A TCP proxy forwarding to a broker listener, for network faults: it counts the connections
/// it accepted (and when), and can cut them (FIN), reset them (RST), stall them (stop
/// forwarding, sockets left open), or refuse new ones (accept and close at once).
pub struct Proxy {
    pub addr: String,
    pub connections: Arc<AtomicUsize>,
    accepted: Arc<Mutex<Vec<Instant>>>,
    open: Arc<Mutex<Vec<watch::Sender<End>>>>,
    stalled: Arc<AtomicBool>,
    refusing: Arc<AtomicBool>,
    accepting: AbortHandle,
}

/// How a proxied connection ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    Open,
    Close,
    Reset,
}

impl Proxy {
    /// A proxy on a free loopback port.
    pub async fn start(target: String) -> Proxy {
        Proxy::listen("127.0.0.1:0", target).await
    }

    /// A proxy on `listen`, e.g. where the PROXIED listener sends clients. A port another
    /// test's proxy is letting go of is waited for, up to 10 s.
    pub async fn listen(listen: &str, target: String) -> Proxy {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(listen).await {
                Ok(listener) => break listener,
                Err(_) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot listen on {listen}: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let open: Arc<Mutex<Vec<watch::Sender<End>>>> = Arc::default();
        let (stalled, refusing): (Arc<AtomicBool>, Arc<AtomicBool>) = Default::default();
        let (count, times, conns) = (connections.clone(), accepted.clone(), open.clone());
        let (stall, refuse) = (stalled.clone(), refusing.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                times.lock().unwrap().push(Instant::now());
                if refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (end, ended) = watch::channel(End::Open);
                conns.lock().unwrap().push(end);
                tokio::spawn(relay(client, target.clone(), stall.clone(), ended));
            }
        })
        .abort_handle();
        Proxy {
            addr,
            connections,
            accepted,
            open,
            stalled,
            refusing,
            accepting,
        }
    }

    pub fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// When each connection was accepted.
    pub fn accepted_at(&self) -> Vec<Instant> {
        self.accepted.lock().unwrap().clone()
    }

    /// Stops listening and drops every connection: the broker is unreachable through it.
    pub fn close(&self) {
        self.accepting.abort();
        self.cut();
    }

    /// Closes every connection open through the proxy, whatever is in flight on it.
    pub fn cut(&self) {
        self.end_all(End::Close);
    }

    /// Resets every connection open through the proxy (RST, not FIN).
    pub fn reset(&self) {
        self.end_all(End::Reset);
    }

    /// While `on`, nothing is forwarded either way; connections stay open. What was read
    /// meanwhile is delivered once the stall ends, late.
    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }

    /// While `on`, new connections are accepted and closed at once.
    pub fn refuse(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
    }

    fn end_all(&self, how: End) {
        for end in self.open.lock().unwrap().drain(..) {
            let _ = end.send(how);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.close();
    }
}

/// Forwards between `client` and `target` until either side closes or the proxy ends the
/// connection.
async fn relay(
    client: TcpStream,
    target: String,
    stalled: Arc<AtomicBool>,
    mut ended: watch::Receiver<End>,
) {
    let Ok(broker) = TcpStream::connect(&target).await else {
        return;
    };
    let (mut client_in, mut client_out) = client.into_split();
    let (mut broker_in, mut broker_out) = broker.into_split();
    let end = tokio::select! {
        _ = pump(&mut client_in, &mut broker_out, &stalled) => End::Close,
        _ = pump(&mut broker_in, &mut client_out, &stalled) => End::Close,
        end = ended.wait_for(|e| *e != End::Open) => end.map(|e| *e).unwrap_or(End::Close),
    };
    if end == End::Reset {
        // Linger 0: closing sends RST instead of FIN.
        let _ = client_out.as_ref().set_zero_linger();
        let _ = broker_out.as_ref().set_zero_linger();
    }
}

/// Copies `from` to `to`, holding still while `stalled`.
async fn pump(from: &mut OwnedReadHalf, to: &mut OwnedWriteHalf, stalled: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Tests that use the PROXIED listener take turns: its advertised port is fixed.
static PROXIED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A proxy where the PROXIED listener sends clients (`PUREKAFKA_PROXIED`, default
/// 127.0.0.1:19095), forwarding to that listener (`PUREKAFKA_PROXIED_TARGET`, default
/// 127.0.0.1:9095). Hold the guard for as long as the proxy is in use.
pub async fn proxied() -> (tokio::sync::MutexGuard<'static, ()>, Proxy) {
    let turn = PROXIED.lock().await;
    let (listen, target) = proxied_addrs();
    (turn, Proxy::listen(&listen, target).await)
}

/// Where the PROXIED listener sends clients, and the listener itself.
pub fn proxied_addrs() -> (String, String) {
    (
        std::env::var("PUREKAFKA_PROXIED").unwrap_or_else(|_| "127.0.0.1:19095".into()),
        std::env::var("PUREKAFKA_PROXIED_TARGET").unwrap_or_else(|_| "127.0.0.1:9095".into()),
    )
}

/// A Java tool from the running broker's jars (`PUREKAFKA_KAFKA_LIBS`, default the 4.4.0 jars):
/// `class` where the jars hold it (the tools module), else `old_class` (the Scala core jar).
pub fn java_tool(class: &str, old_class: &str) -> std::process::Command {
    let libs = kafka_libs();
    // Tools moved from kafka.tools (Scala) to org.apache.kafka.tools one by one (ConsoleConsumer
    // in 3.x, ConsoleProducer in 4.0): take the class the jars hold. A jar's directory lists
    // its entries' names as they are, so the name's bytes are found in the jar.
    let entry = format!("{}.class", class.replace('.', "/"));
    let new = std::fs::read_dir(&libs)
        .unwrap_or_else(|e| panic!("{libs}: {e}"))
        .flatten()
        .filter(|jar| jar.file_name().to_string_lossy().starts_with("kafka"))
        .any(|jar| {
            std::fs::read(jar.path())
                .is_ok_and(|bytes| bytes.windows(entry.len()).any(|w| w == entry.as_bytes()))
        });
    let mut java = std::process::Command::new("java");
    java.args([
        "-cp",
        &format!("{libs}/*"),
        if new { class } else { old_class },
    ]);
    java
}

/// The jars of the broker under test (`PUREKAFKA_KAFKA_LIBS`, default the 4.4.0 jars).
fn kafka_libs() -> String {
    std::env::var("PUREKAFKA_KAFKA_LIBS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/kafka/dist/4.4.0/libs").to_owned()
    })
}

/// The (major, minor) version of the broker under test, from its `kafka-clients-X.Y.Z.jar`.
pub fn kafka_version() -> (u32, u32) {
    let libs = kafka_libs();
    std::fs::read_dir(&libs)
        .unwrap_or_else(|e| panic!("{libs}: {e}"))
        .flatten()
        .find_map(|jar| {
            let name = jar.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix("kafka-clients-")?.strip_suffix(".jar")?;
            let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or_else(|| panic!("no kafka-clients jar in {libs}"))
}

/// The console producer's flag for the brokers: `--bootstrap-server` from Kafka 2.5,
/// `--broker-list` before.
pub fn console_producer_servers_flag() -> &'static str {
    if kafka_version() >= (2, 5) {
        "--bootstrap-server"
    } else {
        "--broker-list"
    }
}

/// How the transaction of a record the Java transactional writer wrote ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its transaction committed.
    Committed,
    /// Its transaction aborted: a `read_committed` consumer never sees it.
    Aborted,
    /// Written outside any transaction.
    Plain,
}

/// One record the Java transactional writer wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub outcome: Outcome,
    pub offset: i64,
    pub key: String,
    pub value: String,
}

/// Runs proto-tests/java/TransactionalWriter.java with the Java client of the running broker's
/// jars (see [`java_tool`]) against the PLAINTEXT listener: it writes its fixed, interleaved mix
/// of committed transactions, aborted transactions and records outside transactions into
/// partition 0 of `topic`, which must exist. Returns what it wrote, in offset order.
pub fn write_transactions(topic: &str) -> Vec<Written> {
    // The source launcher (Java 11+) takes a .java file where a main class would go.
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto-tests/java/TransactionalWriter.java"
    );
    let out = java_tool(source, source)
        .args([&plaintext_addr(), topic])
        .output()
        .expect("java runs proto-tests/java/TransactionalWriter.java");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "done"),
        "TransactionalWriter failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Other lines on stdout may be the Java client's own logging.
    let mut written: Vec<Written> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("record\t"))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [outcome, offset, key, value] = fields[..] else {
                panic!("TransactionalWriter printed {line:?}");
            };
            Written {
                outcome: match outcome {
                    "committed" => Outcome::Committed,
                    "aborted" => Outcome::Aborted,
                    "plain" => Outcome::Plain,
                    other => panic!("TransactionalWriter printed outcome {other:?}"),
                },
                offset: offset.parse().expect("an offset"),
                key: key.to_owned(),
                value: value.to_owned(),
            }
        })
        .collect();
    written.sort_by_key(|w| w.offset);
    written
}
