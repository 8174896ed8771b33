//! Captures golden statistics JSON from librdkafka itself (`statistics.interval.ms`, the document
//! librdkafka's STATISTICS.md describes), against the broker on 127.0.0.1:9092, and writes
//!
//! - `librdkafka-stats-producer.json`: an idempotent `BaseProducer` (`client.id=golden-producer`)
//!   that sends [`PRODUCE_RECORDS`] small records to both partitions of `stats-golden` over about
//!   [`PRODUCE_SECS`] seconds;
//! - `librdkafka-stats-txn-producer.json`: a transactional `BaseProducer`
//!   (`transactional.id=golden-txn`, `client.id=golden-txn-producer`) that commits one
//!   transaction of [`TXN_RECORDS`] records;
//! - `librdkafka-stats-consumer.json`: a group `BaseConsumer` (`group.id=stats-golden-group`,
//!   `client.id=golden-consumer`, `auto.offset.reset=earliest`) subscribed to `stats-golden`, read
//!   for [`CONSUME_SECS`] seconds after its first record (it has joined, fetched and committed),
//!
//! into `fixtures/golden/` (or the directory given as the only argument). Each file is the **last**
//! statistics document the client emitted (the raw `ClientContext::stats_raw` bytes), re-indented
//! only: keys, their order and every value are librdkafka's. Checks and findings go to stderr.
//!
//! ```text
//! cd benches/peers && cargo run --release --bin capture-stats
//! ```
//!
//! The topic `stats-golden` (2 partitions, RF 1) is created with the admin API if missing and is
//! left in place. Each client stops at the first statistics document emitted after its work is
//! done (all records acknowledged, or read and committed): its counters show the finished state,
//! and its window stats (reset at every emit) still cover the last second of work.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::util::get_rdkafka_version;
use rdkafka::{ClientContext, Message, TopicPartitionList};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const BOOTSTRAP: &str = "127.0.0.1:9092";
const TOPIC: &str = "stats-golden";
const PARTITIONS: i32 = 2;
const STATS_INTERVAL_MS: u64 = 1000;

const PRODUCE_RECORDS: u64 = 2000;
const PRODUCE_SECS: u64 = 3;
const TXN_RECORDS: u64 = 100;
const CONSUME_SECS: u64 = 4;

/// Keeps the last statistics document and counts them; counts deliveries and commits.
#[derive(Default)]
struct Capture {
    last_stats: Mutex<Option<Vec<u8>>>,
    stats: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    commits: AtomicU64,
}

impl Capture {
    fn last(&self) -> Option<Vec<u8>> {
        self.last_stats.lock().expect("not poisoned").clone()
    }
}

impl ClientContext for Capture {
    fn stats_raw(&self, statistics: &[u8]) {
        *self.last_stats.lock().expect("not poisoned") = Some(statistics.to_vec());
        self.stats.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("librdkafka error: {error}: {reason}");
    }
}

impl ProducerContext for Capture {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.acked.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                if self.failed.load(Ordering::Relaxed) == 0 {
                    eprintln!("delivery failed: {e}");
                }
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

impl ConsumerContext for Capture {
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => eprintln!("commit of {} partitions failed: {e}", offsets.count()),
        }
    }
}

fn base_config(client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", BOOTSTRAP)
        .set("client.id", client_id)
        .set("statistics.interval.ms", STATS_INTERVAL_MS.to_string());
    config
}

/// Creates `stats-golden` unless it exists, then checks it has [`PARTITIONS`] partitions.
fn ensure_topic() -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", BOOTSTRAP)
        .set("client.id", "golden-admin")
        .create()?;
    let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in futures::executor::block_on(admin.create_topics([&topic], &options))? {
        match result {
            Ok(name) => eprintln!("created topic {name}"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                eprintln!("topic {name} already exists")
            }
            Err((name, code)) => return Err(format!("create topic {name}: {code}").into()),
        }
    }
    Ok(())
}

/// Waits until the client's metadata shows the topic with all its partitions led.
fn wait_for_topic<C: ClientContext>(client: &rdkafka::client::Client<C>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metadata = client.fetch_metadata(Some(TOPIC), Duration::from_secs(5))?;
        let ready = metadata.topics().iter().any(|t| {
            t.name() == TOPIC
                && t.error().is_none()
                && t.partitions().len() == PARTITIONS as usize
                && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("topic {TOPIC} not ready with {PARTITIONS} partitions").into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends one record, polling to make room while the queue is full.
fn send(producer: &BaseProducer<Capture>, i: u64) -> Result<()> {
    let key = format!("key-{i}");
    let value = format!("stats golden record {i}");
    let mut record = BaseRecord::to(TOPIC)
        .partition((i % PARTITIONS as u64) as i32)
        .key(key.as_bytes())
        .payload(value.as_bytes());
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

/// Polls with `poll` (which serves the statistics callback) until a statistics document emitted
/// after this call arrives, and returns it. Window stats (`rtt`, `int_latency`, `batchsize`, ...)
/// are reset at every emit, so the first document after the work covers its last interval; a
/// later one would cover an idle interval and hold only zeros there.
fn next_stats(name: &str, ctx: &Capture, mut poll: impl FnMut(Duration)) -> Result<Vec<u8>> {
    // Serve anything already queued (a document emitted before the work ended) first.
    for _ in 0..3 {
        poll(Duration::ZERO);
    }
    let seen = ctx.stats.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_millis(3 * STATS_INTERVAL_MS);
    while ctx.stats.load(Ordering::Relaxed) == seen {
        if Instant::now() > deadline {
            return Err(format!("{name}: no statistics document").into());
        }
        poll(Duration::from_millis(20));
    }
    Ok(ctx.last().expect("counted"))
}

fn finish_producer(name: &str, producer: &BaseProducer<Capture>, sent: u64) -> Result<Vec<u8>> {
    producer.flush(Duration::from_secs(30))?;
    let ctx = producer.context();
    let stats = next_stats(name, ctx, |d| {
        producer.poll(d);
    })?;
    let (acked, failed) = (
        ctx.acked.load(Ordering::Relaxed),
        ctx.failed.load(Ordering::Relaxed),
    );
    eprintln!(
        "{name}: sent {sent}, acked {acked}, failed {failed}, {} statistics documents",
        ctx.stats.load(Ordering::Relaxed)
    );
    if acked != sent || failed != 0 {
        return Err(format!("{name}: not every record was acknowledged").into());
    }
    Ok(stats)
}

fn capture_producer() -> Result<Vec<u8>> {
    let producer: BaseProducer<Capture> = base_config("golden-producer")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create_with_context(Capture::default())?;
    wait_for_topic(producer.client())?;
    // PRODUCE_RECORDS records in 100 steps, spread over PRODUCE_SECS.
    let steps = 100;
    let per_step = PRODUCE_RECORDS / steps;
    let step = Duration::from_millis(PRODUCE_SECS * 1000 / steps);
    let start = Instant::now();
    let mut i = 0;
    for s in 0..steps {
        for _ in 0..per_step {
            send(&producer, i)?;
            i += 1;
        }
        let next = start + step * (s as u32 + 1);
        while Instant::now() < next {
            producer.poll(next.saturating_duration_since(Instant::now()));
        }
    }
    finish_producer("producer", &producer, i)
}

fn capture_txn_producer() -> Result<Vec<u8>> {
    let producer: BaseProducer<Capture> = base_config("golden-txn-producer")
        .set("transactional.id", "golden-txn")
        .create_with_context(Capture::default())?;
    wait_for_topic(producer.client())?;
    producer.init_transactions(Duration::from_secs(30))?;
    producer.begin_transaction()?;
    for i in 0..TXN_RECORDS {
        send(&producer, PRODUCE_RECORDS + i)?;
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30))?;
    producer.commit_transaction(Duration::from_secs(30))?;
    eprintln!("txn-producer: transaction committed");
    finish_producer("txn-producer", &producer, TXN_RECORDS)
}

fn capture_consumer() -> Result<Vec<u8>> {
    let consumer: BaseConsumer<Capture> = base_config("golden-consumer")
        .set("group.id", "stats-golden-group")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .create_with_context(Capture::default())?;
    wait_for_topic(consumer.client())?;
    consumer.subscribe(&[TOPIC])?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first: Option<Instant> = None;
    let mut received = 0u64;
    loop {
        if let Some(result) = consumer.poll(Duration::from_millis(100)) {
            let message = result?;
            received += 1;
            if first.is_none() {
                eprintln!(
                    "consumer: first record {}/{} offset {}",
                    message.topic(),
                    message.partition(),
                    message.offset()
                );
                first = Some(Instant::now());
            }
        }
        let now = Instant::now();
        if first.is_some_and(|f| now >= f + Duration::from_secs(CONSUME_SECS))
            && consumer.context().commits.load(Ordering::Relaxed) > 0
        {
            break;
        }
        if now > deadline {
            return Err(format!(
                "consumer: no record (or no commit) after 60 s ({received} records)"
            )
            .into());
        }
    }
    // Commit what was read, then take the next statistics document.
    // NoOffset: the auto-commit has already committed everything read.
    match consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => return Err(e.into()),
    }
    let ctx = consumer.context();
    let last = next_stats("consumer", ctx, |d| match consumer.poll(d) {
        Some(Ok(_)) => received += 1,
        Some(Err(e)) => eprintln!("consumer: {e}"),
        None => {}
    })?;
    eprintln!(
        "consumer: {received} records, {} commits, {} statistics documents",
        ctx.commits.load(Ordering::Relaxed),
        ctx.stats.load(Ordering::Relaxed)
    );
    consumer.unsubscribe();
    Ok(last)
}

/// Re-indents a JSON document (two spaces, one member or element per line), leaving every token
/// as it is: no key is dropped, reordered or reformatted.
fn pretty(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut indent = 0usize;
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, indent: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', 2 * indent));
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push(c);
                while let Some(c) = chars.next() {
                    out.push(c);
                    if c == '\\' {
                        out.push(chars.next().expect("escape in a string"));
                    } else if c == '"' {
                        break;
                    }
                }
            }
            '{' | '[' => {
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                out.push(c);
                if chars.peek() == Some(&close) {
                    out.push(chars.next().expect("peeked"));
                } else {
                    indent += 1;
                    newline(&mut out, indent);
                }
            }
            '}' | ']' => {
                indent -= 1;
                newline(&mut out, indent);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, indent);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    assert_eq!(indent, 0, "unbalanced JSON");
    out.push('\n');
    out
}

/// Checks the document is librdkafka's for this client and writes it.
fn write(
    dir: &std::path::Path,
    file: &str,
    stats: &[u8],
    client_id: &str,
    kind: &str,
) -> Result<()> {
    let json = std::str::from_utf8(stats)?;
    // librdkafka's spacing between tokens varies; compare without it.
    let compact: String = pretty(json)
        .lines()
        .map(str::trim)
        .collect::<String>()
        .replace("\": ", "\":");
    for needle in [
        format!("\"client_id\":\"{client_id}\""),
        format!("\"type\":\"{kind}\""),
        "\"brokers\":{".to_string(),
        "\"topics\":{".to_string(),
        format!("\"topic\":\"{TOPIC}\""),
    ] {
        if !compact.contains(&needle) {
            return Err(format!("{file}: {needle} missing").into());
        }
    }
    if kind == "consumer" && !compact.contains("\"cgrp\":{") {
        return Err(format!("{file}: no cgrp object").into());
    }
    let path = dir.join(file);
    std::fs::write(&path, pretty(json))?;
    eprintln!("wrote {} ({} bytes raw)", path.display(), stats.len());
    Ok(())
}

fn main() -> Result<()> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../fixtures/golden"
            ))
        },
        PathBuf::from,
    );
    let (version_number, version) = get_rdkafka_version();
    eprintln!("librdkafka {version} (0x{version_number:08x})");
    ensure_topic()?;

    let producer = capture_producer()?;
    write(
        &dir,
        "librdkafka-stats-producer.json",
        &producer,
        "golden-producer",
        "producer",
    )?;
    let txn = capture_txn_producer()?;
    write(
        &dir,
        "librdkafka-stats-txn-producer.json",
        &txn,
        "golden-txn-producer",
        "producer",
    )?;
    let consumer = capture_consumer()?;
    write(
        &dir,
        "librdkafka-stats-consumer.json",
        &consumer,
        "golden-consumer",
        "consumer",
    )?;
    Ok(())
}
