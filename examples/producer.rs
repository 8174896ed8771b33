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
    let producer = Producer::builder(config).delivery_reports().build().await?;

    // Delivery reports arrive on a stream, as the Go client's Events().
    let mut reports = producer.delivery_reports().expect("enabled above");
    let printer = tokio::spawn(async move {
        let mut failed = false;
        while let Some(report) = reports.recv().await {
            match report.error {
                None => println!("Delivered message to {}", report.metadata),
                Some(e) => {
                    failed = true;
                    println!("Delivery failed: {e}");
                }
            }
        }
        failed
    });

    // Produce asynchronously, then wait for the deliveries (the guide's p.Flush(10 * 1000)).
    let topic = &cfg.topic[0];
    for word in values {
        producer
            .produce(ProducerRecord::new(topic.as_str()).value(word))
            .await?;
    }
    producer.flush(std::time::Duration::from_secs(10)).await?;
    producer.close().await;
    let failed = printer.await?;
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
