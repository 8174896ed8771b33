//! rskafka under the harness's common flags.
//!
//! - produce: rskafka produces per partition: one `PartitionClient` and one `BatchProducer` (with
//!   `linger.ms` and a `RecordAggregator` of `batch.size` bytes) for each partition of the topic,
//!   and records go round-robin over them. Each `produce` call is a future that resolves with
//!   the record's offset; up to `IN_FLIGHT` of them are polled at once.
//! - latency: the same producers; each record's `produce` future runs on a task of its own.
//! - consume: one task per partition, each a `fetch_records` loop from the earliest offset,
//!   sending what it fetched to the task that counts.
//!
//! rskafka always asks for `acks=all`, has no idempotent producer and always verifies CRCs, so
//! it runs only the workloads with `acks=all`, idempotence off and `check.crcs=true`; for the
//! others it reports itself unsupported.

use std::collections::BTreeMap;
use std::sync::Arc;

use purekafka_peers::{run_latency, unsupported, InFlight, Options, Tally, Timer, Workload};
use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::producer::aggregator::RecordAggregator;
use rskafka::client::producer::{BatchProducer, BatchProducerBuilder, Error as ProduceError};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

const CLIENT: &str = "rskafka";

/// Records whose produce future is polled at once: enough to fill every partition's batch.
const IN_FLIGHT: usize = 100_000;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let o = Options::from_env();
    let client = ClientBuilder::new(vec![o.bootstrap.clone()])
        .build()
        .await?;
    match o.workload {
        Workload::Produce => produce(&o, producers(&client, &o).await?).await,
        Workload::Latency => latency(&o, producers(&client, &o).await?).await,
        Workload::Consume => consume(o, client).await,
        Workload::ShareConsume => purekafka_peers::unsupported(
            CLIENT,
            "not measured: the share-consume workload compares purekafka with Java",
        ),
    }
}

/// One batch producer per partition of the topic, or `unsupported` for settings rskafka lacks.
async fn producers(
    client: &Client,
    o: &Options,
) -> Result<Vec<Arc<BatchProducer<RecordAggregator>>>> {
    if o.transaction_size > 0 {
        unsupported(CLIENT, "rskafka has no transactions");
    }
    if o.acks != "all" {
        unsupported(CLIENT, "rskafka always produces with acks=all");
    }
    if o.idempotence {
        unsupported(CLIENT, "rskafka has no idempotent producer");
    }
    if o.compression != "none" {
        unsupported(CLIENT, "built without compression features");
    }
    let mut producers = Vec::new();
    for p in topic_partitions(client, o).await? {
        let partition = client
            .partition_client(o.topic.clone(), p, UnknownTopicHandling::Retry)
            .await?;
        producers.push(Arc::new(
            BatchProducerBuilder::new(Arc::new(partition))
                .with_linger(o.linger())
                .with_compression(Compression::NoCompression)
                .build(RecordAggregator::new(o.batch_size)),
        ));
    }
    Ok(producers)
}

/// The partition ids of `--topic`, from the cluster's metadata.
async fn topic_partitions(client: &Client, o: &Options) -> Result<Vec<i32>> {
    Ok(client
        .list_topics()
        .await?
        .into_iter()
        .find(|t| t.name == o.topic)
        .ok_or_else(|| format!("topic {} not found", o.topic))?
        .partitions
        .into_iter()
        .collect())
}

fn record(value: &[u8]) -> Record {
    Record {
        key: None,
        value: Some(value.to_vec()),
        headers: BTreeMap::new(),
        timestamp: chrono::Utc::now(),
    }
}

async fn produce(o: &Options, producers: Vec<Arc<BatchProducer<RecordAggregator>>>) -> Result<()> {
    let value = o.value();
    let timer = Timer::start();
    let mut pending = InFlight::new(CLIENT, IN_FLIGHT);
    for i in 0..o.messages {
        let producer = &producers[i as usize % producers.len()];
        pending.push(producer.produce(record(&value))).await;
    }
    let failed = pending.finish().await;
    timer.report(CLIENT, o, failed);
    Ok(())
}

async fn latency(o: &Options, producers: Vec<Arc<BatchProducer<RecordAggregator>>>) -> Result<()> {
    let value = o.value();
    let (producers, value, mut next) = (&producers, &value, 0);
    run_latency(CLIENT, o, move || {
        let producer = Arc::clone(&producers[next % producers.len()]);
        next += 1;
        let record = record(value);
        // Nothing to wait for before the ack: the record is queued when its task first polls
        // `produce`.
        std::future::ready(Ok::<_, ProduceError>(async move {
            producer.produce(record).await
        }))
    })
    .await;
    Ok(())
}

async fn consume(o: Options, client: Client) -> Result<()> {
    if !o.check_crcs {
        unsupported(CLIENT, "rskafka always verifies CRCs");
    }
    let bytes = o.fetch_min_bytes as i32..o.max_partition_fetch_bytes as i32 + 1;
    let wait = o.fetch_max_wait_ms as i32;
    o.check_partitions(topic_partitions(&client, &o).await?.len())?;
    // A partition client finds its leader when it is made: metadata, before the clock starts.
    let mut partitions = Vec::new();
    for p in 0..o.partitions {
        let partition = client
            .partition_client(o.topic.clone(), p, UnknownTopicHandling::Retry)
            .await?;
        partitions.push((p, partition));
    }
    let mut tally = Tally::new(&o);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);

    let timer = Timer::start();
    for (p, partition) in partitions {
        let (tx, bytes) = (tx.clone(), bytes.clone());
        tokio::spawn(async move {
            let fetched = async {
                let mut offset = partition.get_offset(OffsetAt::Earliest).await?;
                loop {
                    let (records, _) = partition.fetch_records(offset, bytes.clone(), wait).await?;
                    let Some(last) = records.last() else { continue };
                    offset = last.offset + 1;
                    if tx.send((p, records)).await.is_err() {
                        return Ok::<_, rskafka::client::error::Error>(());
                    }
                }
            };
            if let Err(e) = fetched.await {
                eprintln!("{CLIENT}: partition {p}: {e}");
                std::process::exit(1);
            }
        });
    }
    while tally.count < o.messages {
        let (p, records) = rx.recv().await.ok_or("every partition reader stopped")?;
        for r in records {
            tally.note(p, r.offset, r.record.value.as_ref().map(Vec::len));
        }
    }
    tally.report(timer, CLIENT, &o);
    Ok(())
}
