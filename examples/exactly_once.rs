//! Consume-transform-produce, exactly once, in the style of the CKafka guide's programs: reads
//! `ckafka.json`, consumes the configured topics in the consumer group `consumerGroupId`, and
//! writes each message's value in upper case to `--output`, keyed as it came. Each batch of
//! records goes out in one transaction together with the consumer's offsets, so the output
//! holds every input record once, whatever fails or restarts.
//!
//! ```text
//! cargo run --example exactly_once -- --output OUT [--config fixtures/ckafka.json]
//!     [--input TOPIC]... [--transactional-id ID] [--batch N] [--max-messages N]
//!     [--idle-timeout-ms MS] [-X key=value]...
//! ```
//!
//! `--input` replaces the topics of `ckafka.json`. `--transactional-id` defaults to `<consumerGroupId>-eos`: give each running copy its own
//! when several share the work. It stops after N messages, or once nothing arrived for the
//! idle timeout (default 5000 ms). `-X` sets any property, for both clients.

use std::collections::HashMap;
use std::time::Duration;

use purekafka::{AutoOffsetReset, CKafkaConfig, Consumer, Error, Producer, ProducerRecord};

/// How long each transactional call may take before it is retried.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut path = "fixtures/ckafka.json".to_owned();
    let mut output = None;
    let mut inputs: Vec<String> = Vec::new();
    let mut transactional_id = None;
    let mut batch = 500;
    let mut max_messages = u64::MAX;
    let mut idle = Duration::from_millis(5000);
    let mut properties: Vec<(String, String)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--config" => path = value()?,
            "--output" => output = Some(value()?),
            "--input" => inputs.push(value()?),
            "--transactional-id" => transactional_id = Some(value()?),
            "--batch" => batch = value()?.parse()?,
            "--max-messages" => max_messages = value()?.parse()?,
            "--idle-timeout-ms" => idle = Duration::from_millis(value()?.parse()?),
            "-X" => {
                let property = value()?;
                let (key, v) = property
                    .split_once('=')
                    .ok_or_else(|| format!("-X takes key=value, got {property:?}"))?;
                properties.push((key.to_owned(), v.to_owned()));
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let output = output.ok_or("--output names the topic to write to")?;

    let cfg = CKafkaConfig::load(&path)?;
    let mut base = cfg.client_config()?;
    for (key, value) in &properties {
        base = base.set(key, value.as_str())?;
    }
    // The consumer reads only committed records and commits nothing itself: its offsets go
    // with the producer's transactions.
    let consumer_config = base
        .clone()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .set("enable.auto.commit", "false")?
        .set("isolation.level", "read_committed")?;
    let id = transactional_id.unwrap_or_else(|| format!("{}-eos", cfg.consumer_group_id));
    let producer_config = base.set("transactional.id", id.as_str())?;

    let mut consumer = Consumer::builder(consumer_config).build().await?;
    let inputs = if inputs.is_empty() {
        cfg.topic.clone()
    } else {
        inputs
    };
    consumer.subscribe(&inputs)?;
    let producer = Producer::builder(producer_config).build().await?;
    // Fences any earlier copy with this transactional id, and settles what it left open.
    producer.init_transactions(CALL_TIMEOUT).await?;

    let mut seen = 0;
    let mut done = false;
    while !done {
        // One transaction: up to `batch` records, and where each partition was before them.
        producer.begin_transaction()?;
        let mut started: HashMap<(String, i32), i64> = HashMap::new();
        let mut next: HashMap<(String, i32), i64> = HashMap::new();
        let mut deliveries = Vec::new();
        while deliveries.len() < batch && seen < max_messages {
            let msg = match tokio::time::timeout(idle, consumer.recv()).await {
                Err(_) => {
                    done = true; // idle: nothing more to read
                    break;
                }
                Ok(Ok(msg)) => msg,
                Ok(Err(e)) if e.is_retriable() => {
                    println!("Consumer error: {e}");
                    continue;
                }
                Ok(Err(e)) => return Err(e.into()),
            };
            seen += 1;
            let place = (msg.topic.to_string(), msg.partition);
            started.entry(place.clone()).or_insert(msg.offset);
            next.insert(place, msg.offset + 1);
            let upper = msg.value.as_deref().map(|v| v.to_ascii_uppercase());
            let mut record = ProducerRecord::new(output.as_str());
            if let Some(key) = msg.key.clone() {
                record = record.key(key);
            }
            if let Some(value) = upper {
                record = record.value(value);
            }
            deliveries.push(producer.produce(record).await?);
        }
        if seen >= max_messages {
            done = true;
        }
        let count = deliveries.len();
        let offsets: Vec<(&str, i32, i64)> = next
            .iter()
            .map(|((topic, partition), offset)| (topic.as_str(), *partition, *offset))
            .collect();
        let outcome = finish(&producer, &consumer, &offsets).await;
        match outcome {
            Ok(()) => {
                if count > 0 {
                    println!("Committed a transaction of {count} records");
                }
            }
            Err(e) if e.txn_requires_abort() => {
                // Nothing of it stands: abort, and read its records again.
                println!("Transaction aborted: {e}");
                producer.abort_transaction(CALL_TIMEOUT).await?;
                for ((topic, partition), offset) in &started {
                    consumer.seek(topic, *partition, *offset)?;
                }
                seen -= count as u64;
                done = false;
            }
            // Fatal (fenced by a newer copy), or the cluster gone for too long: stop.
            Err(e) => return Err(e.into()),
        }
    }
    consumer.close().await?;
    producer.close().await;
    Ok(())
}

/// Sends the offsets with the transaction and commits it, retrying a call that timed out.
async fn finish(
    producer: &Producer,
    consumer: &Consumer,
    offsets: &[(&str, i32, i64)],
) -> Result<(), Error> {
    if !offsets.is_empty() {
        let group = consumer
            .group_metadata()
            .expect("the consumer has a group.id");
        retry(|| producer.send_offsets_to_transaction(offsets, &group, CALL_TIMEOUT)).await?;
    }
    retry(|| producer.commit_transaction(CALL_TIMEOUT)).await
}

/// Calls `call` again while it fails as retriable, up to ten times.
async fn retry<F, Fut>(mut call: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let mut attempts = 0;
    loop {
        match call().await {
            Err(e) if e.is_retriable() && attempts < 10 => {
                println!("Retrying: {e}");
                attempts += 1;
            }
            outcome => return outcome,
        }
    }
}
