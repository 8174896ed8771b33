//! librdkafka (through the `rdkafka` crate, bundled build) under the harness's common flags.
//! No async runtime: librdkafka runs its own threads.
//!
//! - produce: the way librdkafka's own `rdkafka_performance` drives it: a `BaseProducer` whose
//!   delivery callback counts outcomes, `send` until the queue is full, then `poll` to serve
//!   callbacks and make room.
//! - produce with `--transaction-size`: the same `BaseProducer` with a `transactional.id`;
//!   each transaction is begun, filled as above, flushed (which serves its delivery
//!   callbacks) and committed.
//! - latency: a `ThreadedProducer`, whose thread serves delivery callbacks as they come (a
//!   `BaseProducer` would serve them only when the sending thread polls); each record's opaque
//!   is its number and the instant of its send.
//! - consume: a `BaseConsumer`, every partition `assign`ed at `Offset::Beginning` (a `group.id`
//!   is set because librdkafka asks for one, but no group is joined and nothing committed), read
//!   with a `poll` loop, with `queued.min.messages=1000000` (both as `rdkafka_performance -C`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use purekafka_peers::{Latencies, MemberOptions, Options, Pacer, Tally, Timer, Workload};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const CLIENT: &str = "rdkafka";

/// Counts delivery reports.
#[derive(Default)]
struct Counter {
    acked: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counter {}

impl ProducerContext for Counter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.acked.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                if self.failed.load(Ordering::Relaxed) == 0 {
                    eprintln!("{CLIENT}: delivery failed: {e}");
                }
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Times each record from its send (its opaque) to its delivery callback.
struct Timed(Mutex<Latencies>);

impl ClientContext for Timed {}

impl ProducerContext for Timed {
    type DeliveryOpaque = Box<(u64, Instant)>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<(u64, Instant)>) {
        let (i, sent) = *sent;
        let outcome = match result {
            Ok(_) => Ok(sent.elapsed()),
            Err((e, _)) => Err(e.to_string()),
        };
        self.0.lock().expect("not poisoned").note(i, outcome);
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("member") {
        return member(MemberOptions::from_args(&args[1..]));
    }
    let o = Options::from_env();
    match o.workload {
        Workload::Produce => produce(o),
        Workload::Latency => latency(o),
        Workload::Consume => consume(o),
        Workload::ShareConsume => purekafka_peers::unsupported(
            CLIENT,
            "not measured: the share-consume workload compares purekafka with Java",
        ),
    }
}

fn producer_config(o: &Options) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &o.bootstrap)
        .set("acks", &o.acks)
        .set("enable.idempotence", o.idempotence.to_string())
        .set("linger.ms", o.linger_ms.to_string())
        .set("batch.size", o.batch_size.to_string())
        .set("compression.type", &o.compression);
    config
}

fn produce(o: Options) -> Result<()> {
    if o.transaction_size > 0 {
        return produce_transactions(o);
    }
    let producer: BaseProducer<Counter> =
        producer_config(&o).create_with_context(Counter::default())?;
    let value = o.value();

    let timer = Timer::start();
    send(&producer, &o, &value, o.messages)?;
    producer.flush(Duration::from_secs(120))?;
    let ctx = producer.context();
    let done = ctx.acked.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed);
    let failed = ctx.failed.load(Ordering::Relaxed) + (o.messages - done);
    timer.report(CLIENT, &o, failed);
    Ok(())
}

/// Queues `records` records of `value`, serving delivery callbacks when the queue is full.
fn send(producer: &BaseProducer<Counter>, o: &Options, value: &[u8], records: u64) -> Result<()> {
    for _ in 0..records {
        let mut record = BaseRecord::<[u8], [u8]>::to(&o.topic).payload(value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        producer.poll(Duration::ZERO);
    }
    Ok(())
}

/// The produce workload in transactions of `--transaction-size` records, committed in turn.
/// The records of a transaction that fails to commit count as failed.
fn produce_transactions(o: Options) -> Result<()> {
    const PATIENCE: Duration = Duration::from_secs(60);
    let producer: BaseProducer<Counter> = producer_config(&o)
        .set("transactional.id", o.transactional_id(CLIENT))
        .create_with_context(Counter::default())?;
    producer.init_transactions(PATIENCE)?;
    let value = o.value();
    let mut failed = 0;

    let timer = Timer::start();
    for records in o.transactions() {
        producer.begin_transaction()?;
        send(&producer, &o, &value, records)?;
        let committed = producer
            .flush(PATIENCE)
            .and_then(|()| producer.commit_transaction(PATIENCE));
        if let Err(e) = committed {
            if failed == 0 {
                eprintln!("{CLIENT}: commit failed: {e}");
            }
            failed += records;
            producer.abort_transaction(PATIENCE)?;
        }
    }
    timer.report(CLIENT, &o, failed);
    Ok(())
}

fn latency(o: Options) -> Result<()> {
    let producer: ThreadedProducer<Timed> =
        producer_config(&o).create_with_context(Timed(Mutex::new(Latencies::new(&o))))?;
    let value = o.value();
    let mut pacer = Pacer::new(&o);
    for i in 0..o.messages {
        let sent = Box::new((i, pacer.wait(i)));
        let record = BaseRecord::<[u8], [u8], _>::with_opaque_to(&o.topic, sent);
        producer
            .send(record.payload(&value[..]))
            .map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(30))?;
    let latencies = std::mem::take(&mut *producer.context().0.lock().expect("not poisoned"));
    latencies.report(&pacer, CLIENT, &o);
    Ok(())
}

fn consume(o: Options) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &o.bootstrap)
        // librdkafka's consumer wants a group even for `assign`; nothing joins it or commits.
        .set("group.id", format!("peer-rdkafka-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("fetch.min.bytes", o.fetch_min_bytes.to_string())
        .set("fetch.wait.max.ms", o.fetch_max_wait_ms.to_string())
        .set(
            "max.partition.fetch.bytes",
            o.max_partition_fetch_bytes.to_string(),
        )
        .set("check.crcs", o.check_crcs.to_string())
        // As rdkafka_performance -C sets it: at the default (100,000) librdkafka pauses a
        // partition's fetching for fetch.queue.backoff.ms (1 s) whenever its local queue holds
        // that many, and read 1,000,000 records at a third of the speed here.
        .set("queued.min.messages", "1000000")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(&o.topic), Duration::from_secs(10))?;
    o.check_partitions(
        metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len()),
    )?;
    let mut tally = Tally::new(&o);

    let timer = Timer::start();
    let mut partitions = TopicPartitionList::new();
    for p in 0..o.partitions {
        partitions.add_partition_offset(&o.topic, p, Offset::Beginning)?;
    }
    consumer.assign(&partitions)?;
    while tally.count < o.messages {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => tally.note(
                msg.partition(),
                msg.offset(),
                msg.payload().map(<[u8]>::len),
            ),
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    tally.report(timer, CLIENT, &o);
    Ok(())
}

/// A member of a cooperative-sticky group, polling 100 ms at a time; rdkafka's default
/// context applies incremental assignments and revocations as they come.
fn member(o: MemberOptions) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &o.bootstrap)
        .set("group.id", &o.group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&o.topic])?;
    let until = Instant::now() + Duration::from_secs(o.seconds);
    let mut records = 0;
    while Instant::now() < until {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            records += 1;
        }
    }
    consumer.unsubscribe();
    o.report(CLIENT, records);
    Ok(())
}
