//! The CKafka guide's Go producer, in Rust: reads `ckafka.json`, connects with SASL_PLAINTEXT +
//! PLAIN as `instanceId#username`, sends two messages and prints a delivery report for each.
//!
//! ```text
//! cargo run --example producer -- [--config fixtures/ckafka.json] [VALUE...]
//! ```

use purekafka::{Acks, CKafkaConfig, Producer, ProducerRecord};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let mut path = "fixtures/ckafka.json".to_owned();
    if args.peek().map(String::as_str) == Some("--config") {
        args.next();
        path = args.next().ok_or("--config needs a path")?;
    }
    let mut values: Vec<String> = args.collect();
    if values.is_empty() {
        values = vec!["Confluent-Kafka".into(), "Golang Client Message".into()];
    }

    let cfg = CKafkaConfig::load(&path)?;
    let config = cfg
        .client_config()?
        // As in the guide: acks=1, no retries, 100 ms retry backoff, 6 s socket timeout,
        // reconnect backoff up to 3 s.
        .acks(Acks::Leader)
        .set("retries", 0)?
        .set("retry.backoff.ms", 100)?
        .set("socket.timeout.ms", 6000)?
        .set("reconnect.backoff.max.ms", 3000)?;
    let producer = Producer::builder(config).build().await?;

    // One at a time, so the two messages land in the order given, as in the guide.
    let topic = &cfg.topic[0];
    let mut failed = false;
    for word in values {
        match producer
            .send(ProducerRecord::new(topic.as_str()).value(word))
            .await
        {
            Ok(delivered) => println!("Delivered message to {delivered}"),
            Err(e) => {
                failed = true;
                println!("Delivery failed: {e}");
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
