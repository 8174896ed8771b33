//! krafka under the harness's common flags.
//!
//! Records are queued with `enqueue`, as krafka's documentation shows for pipelined sends; their
//! delivery handles are awaited through a `FuturesUnordered` of at most `IN_FLIGHT`.

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use krafka::producer::Acks;
use krafka::{Compression, Kafka, Record};
use purekafka_peers::{unsupported, Options, Timer};

const CLIENT: &str = "krafka";

/// Delivery handles awaited at once.
const IN_FLIGHT: usize = 100_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = Options::from_env();
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
    let kafka = Kafka::builder(o.bootstrap.as_str()).connect().await?;
    let producer = kafka
        .producer()
        .acks(acks)
        .idempotent(o.idempotence)
        .linger(o.linger())
        .batch_size(o.batch_size)
        .compression(compression)
        .build()
        .await?;
    let value = Bytes::from(o.value());

    let timer = Timer::start();
    let mut pending = FuturesUnordered::new();
    let mut failed = 0u64;
    let mut note = |r: krafka::Result<_>| {
        if let Err(e) = r {
            if failed == 0 {
                eprintln!("{CLIENT}: delivery failed: {e}");
            }
            failed += 1;
        }
    };
    for _ in 0..o.messages {
        pending.push(
            producer
                .enqueue(Record::new(o.topic.as_str(), value.clone()))
                .await?,
        );
        if pending.len() >= IN_FLIGHT {
            if let Some(r) = pending.next().await {
                note(r);
            }
        }
    }
    while let Some(r) = pending.next().await {
        note(r);
    }
    timer.report(CLIENT, &o, failed);
    producer.close().await?;
    Ok(())
}
