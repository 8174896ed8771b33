//! krafka under the harness's common flags.
//!
//! - produce: records are queued with `enqueue`, as krafka's documentation shows for pipelined
//!   sends; their delivery handles are awaited through a `FuturesUnordered` of at most
//!   `IN_FLIGHT`.
//! - produce with `--transaction-size`: a `TransactionalProducer` (`build_transactional`);
//!   each transaction's records are queued with `enqueue` (the commit answers for all of them),
//!   then committed with `commit`.
//! - latency: each record's delivery handle is awaited on a task of its own.
//! - consume: a consumer without a group (`consumer_without_group`), every partition `assign`ed,
//!   starting at the earliest offset (`auto_offset_reset`), read with `poll`. krafka always
//!   verifies CRCs, so it runs only with `check.crcs=true`.

use std::time::Duration;

use bytes::Bytes;
use krafka::consumer::AutoOffsetReset;
use krafka::producer::{Acks, Producer, ProducerBuilder};
use krafka::{Compression, Kafka, Record};
use purekafka_peers::{run_latency, unsupported, InFlight, Options, Tally, Timer, Workload};

const CLIENT: &str = "krafka";

/// Delivery handles awaited at once.
const IN_FLIGHT: usize = 100_000;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let o = Options::from_env();
    let kafka = Kafka::builder(o.bootstrap.as_str()).connect().await?;
    match o.workload {
        Workload::Produce if o.transaction_size > 0 => produce_transactions(&o, &kafka).await,
        Workload::Produce => produce(&o, builder(&kafka, &o).build().await?).await,
        Workload::Latency => latency(&o, builder(&kafka, &o).build().await?).await,
        Workload::Consume => consume(&o, kafka).await,
        Workload::ShareConsume => purekafka_peers::unsupported(
            CLIENT,
            "not measured: the share-consume workload compares purekafka with Java",
        ),
    }
}

fn builder(kafka: &Kafka, o: &Options) -> ProducerBuilder {
    let acks = match o.acks.as_str() {
        "0" => Acks::None,
        "1" => Acks::Leader,
        _ => Acks::All,
    };
    let compression = match o.compression.as_str() {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        other => unsupported(CLIENT, &format!("compression {other} is not built in")),
    };
    kafka
        .producer()
        .acks(acks)
        .idempotent(o.idempotence)
        .linger(o.linger())
        .batch_size(o.batch_size)
        .compression(compression)
}

async fn produce(o: &Options, producer: Producer) -> Result<()> {
    let value = Bytes::from(o.value());
    let timer = Timer::start();
    let mut pending = InFlight::new(CLIENT, IN_FLIGHT);
    for _ in 0..o.messages {
        let delivery = producer
            .enqueue(Record::new(o.topic.as_str(), value.clone()))
            .await?;
        pending.push(delivery).await;
    }
    let failed = pending.finish().await;
    timer.report(CLIENT, o, failed);
    producer.close().await?;
    Ok(())
}

/// The produce workload in transactions of `--transaction-size` records, committed in turn.
/// The records of a transaction that fails to commit count as failed.
async fn produce_transactions(o: &Options, kafka: &Kafka) -> Result<()> {
    let producer = builder(kafka, o)
        .build_transactional(o.transactional_id(CLIENT))
        .await?;
    let value = Bytes::from(o.value());
    let mut failed = 0;

    let timer = Timer::start();
    for records in o.transactions() {
        producer.begin()?;
        for _ in 0..records {
            // The commit answers for every record of the transaction.
            drop(
                producer
                    .enqueue(Record::new(o.topic.as_str(), value.clone()))
                    .await?,
            );
        }
        if let Err(e) = producer.commit().await {
            if failed == 0 {
                eprintln!("{CLIENT}: commit failed: {e}");
            }
            failed += records;
            producer.abort().await?;
        }
    }
    timer.report(CLIENT, o, failed);
    producer.close().await?;
    Ok(())
}

async fn latency(o: &Options, producer: Producer) -> Result<()> {
    let value = Bytes::from(o.value());
    let (producer_ref, topic, value) = (&producer, o.topic.as_str(), &value);
    run_latency(CLIENT, o, move || {
        producer_ref.enqueue(Record::new(topic, value.clone()))
    })
    .await;
    producer.close().await?;
    Ok(())
}

async fn consume(o: &Options, kafka: Kafka) -> Result<()> {
    if !o.check_crcs {
        unsupported(CLIENT, "krafka always verifies CRCs");
    }
    let consumer = kafka
        .consumer_without_group()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .fetch_min_bytes(o.fetch_min_bytes as i32)
        .fetch_max_wait(o.fetch_max_wait())
        .max_partition_fetch_bytes(o.max_partition_fetch_bytes as i32)
        .build()
        .await?;
    let metadata = consumer.fetch_metadata(Some(&o.topic)).await?;
    o.check_partitions(metadata.topics.first().map_or(0, |t| t.partitions.len()))?;
    let mut tally = Tally::new(o);

    let timer = Timer::start();
    consumer
        .assign(&o.topic, (0..o.partitions).collect())
        .await?;
    while tally.count < o.messages {
        for r in consumer.poll(Duration::from_millis(100)).await? {
            tally.note(r.partition, r.offset, r.value.as_ref().map(Bytes::len));
        }
    }
    tally.report(timer, CLIENT, o);
    Ok(())
}
