//! rskafka under the harness's common flags.
//!
//! rskafka produces per partition: one `PartitionClient` and one `BatchProducer` (with
//! `linger.ms` and a `RecordAggregator` of `batch.size` bytes) for each partition of the topic,
//! and records go round-robin over them. Each `produce` call is a future that resolves with the
//! record's offset; up to `IN_FLIGHT` of them are polled at once.
//!
//! rskafka always asks for `acks=all` and has no idempotent producer, so it runs only the
//! workloads with `acks=all` and idempotence off; for the others it reports itself unsupported.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use purekafka_peers::{unsupported, Options, Timer};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::producer::aggregator::RecordAggregator;
use rskafka::client::producer::{BatchProducer, BatchProducerBuilder};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;

const CLIENT: &str = "rskafka";

/// Records whose produce future is polled at once: enough to fill every partition's batch.
const IN_FLIGHT: usize = 100_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = Options::from_env();
    if o.acks != "all" {
        unsupported(CLIENT, "rskafka always produces with acks=all");
    }
    if o.idempotence {
        unsupported(CLIENT, "rskafka has no idempotent producer");
    }
    if o.compression != "none" {
        unsupported(CLIENT, "built without compression features");
    }
    let client = ClientBuilder::new(vec![o.bootstrap.clone()])
        .build()
        .await?;
    let partitions = client
        .list_topics()
        .await?
        .into_iter()
        .find(|t| t.name == o.topic)
        .ok_or_else(|| format!("topic {} not found", o.topic))?
        .partitions;
    let mut producers: Vec<BatchProducer<RecordAggregator>> = Vec::new();
    for p in partitions {
        let partition = client
            .partition_client(o.topic.clone(), p, UnknownTopicHandling::Retry)
            .await?;
        producers.push(
            BatchProducerBuilder::new(Arc::new(partition))
                .with_linger(o.linger())
                .with_compression(Compression::NoCompression)
                .build(RecordAggregator::new(o.batch_size)),
        );
    }
    let value = o.value();

    let timer = Timer::start();
    let mut pending = FuturesUnordered::new();
    let mut failed = 0u64;
    let mut note = |r: Result<i64, rskafka::client::producer::Error>| {
        if let Err(e) = r {
            if failed == 0 {
                eprintln!("{CLIENT}: delivery failed: {e}");
            }
            failed += 1;
        }
    };
    for i in 0..o.messages {
        let producer = &producers[i as usize % producers.len()];
        pending.push(producer.produce(Record {
            key: None,
            value: Some(value.clone()),
            headers: BTreeMap::new(),
            timestamp: chrono::Utc::now(),
        }));
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
    Ok(())
}
