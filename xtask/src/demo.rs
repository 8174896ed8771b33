//! `cargo xtask demo`: the CKafka guide end to end against the local Kafka. Starts the cluster
//! when none is up, creates the config's topics when missing, runs the producer example and then
//! the consumer example with `fixtures/ckafka.json`, and checks that every delivered message was
//! read back.

use crate::kafka::{self, UpOptions};
use crate::run::{cargo, output_of, root};

pub fn demo() -> Result<(), String> {
    kafka::ensure_up(&UpOptions::default())?;
    let config = root().join("fixtures/ckafka.json");
    create_topics(&config)?;
    let config = config.to_string_lossy().into_owned();

    let produced = output_of(cargo(&[
        "run",
        "--quiet",
        "--example",
        "producer",
        "--",
        "--config",
        &config,
    ]))?;
    print!("{produced}");
    let consumed = output_of(cargo(&[
        "run",
        "--quiet",
        "--example",
        "consumer",
        "--",
        "--config",
        &config,
        "--idle-timeout-ms",
        "3000",
    ]))?;
    print!("{consumed}");

    let delivered: Vec<&str> = produced
        .lines()
        .filter_map(|l| l.strip_prefix("Delivered message to "))
        .collect();
    if delivered.is_empty() {
        return Err("the producer delivered nothing".into());
    }
    for at in delivered {
        let wanted = format!("Message on {at}: ");
        if !consumed.lines().any(|l| l.starts_with(&wanted)) {
            return Err(format!(
                "the consumer did not read the message delivered to {at}"
            ));
        }
    }
    Ok(())
}

/// Creates each topic of the CKafka config (one partition, as a fresh CKafka topic) unless it
/// exists, through the SASL listener the config names.
pub fn create_topics(path: &std::path::Path) -> Result<(), String> {
    let ckafka = purekafka::CKafkaConfig::load(path).map_err(|e| e.to_string())?;
    let config = ckafka.client_config().map_err(|e| e.to_string())?;
    crate::run::block_on(async {
        let admin = crate::run::admin(config).await?;
        for topic in &ckafka.topic {
            if admin
                .create_topic_if_missing(topic, 1, 1)
                .await
                .map_err(|e| e.to_string())?
            {
                eprintln!("created topic {topic}");
            }
        }
        Ok(())
    })
}
