//! The CKafka guide's Go consumer, in Rust: reads `ckafka.json`, connects with SASL_PLAINTEXT +
//! PLAIN, joins the consumer group `consumerGroupId` subscribed to the configured topics, and
//! prints each message. A new group starts at the earliest offset; a known one where it left off.
//!
//! ```text
//! cargo run --example consumer -- [--config fixtures/ckafka.json] [--max-messages N] [--idle-timeout-ms MS]
//!     [-X key=value]...
//! ```
//!
//! It stops after N messages, or once no message arrived for the idle timeout (default 5000 ms).
//! `-X` sets any librdkafka / Java client property, over the defaults here.

use std::time::Duration;

use purekafka::{AutoOffsetReset, CKafkaConfig, Consumer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut path = "fixtures/ckafka.json".to_owned();
    let mut max_messages = u64::MAX;
    let mut idle = Duration::from_millis(5000);
    let mut properties: Vec<(String, String)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--config" => path = value()?,
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

    let cfg = CKafkaConfig::load(&path)?;
    let mut config = cfg
        .client_config()?
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .set("session.timeout.ms", 10000)?
        .set("request.timeout.ms", 305000)?
        .set("reconnect.backoff.max.ms", 3000)?;
    for (key, value) in &properties {
        config = config.set(key, value.as_str())?;
    }
    let mut consumer = Consumer::builder(config).build().await?;
    consumer.subscribe(&cfg.topic)?;

    let mut seen = 0;
    while seen < max_messages {
        match tokio::time::timeout(idle, consumer.recv()).await {
            Err(_) => break, // idle: nothing more to read
            Ok(Ok(msg)) => {
                seen += 1;
                let value = msg
                    .value
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                println!("Message on {msg}: {value}");
            }
            Ok(Err(e)) => {
                // As the guide's loop: report and go on; the client recovers what it can.
                println!("Consumer error: {e}");
                if !e.is_retriable() {
                    return Err(e.into());
                }
            }
        }
    }
    // Commits what was read and leaves the group.
    consumer.close().await?;
    Ok(())
}
