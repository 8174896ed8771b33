//! librdkafka (through the `rdkafka` crate, bundled build) under the harness's common flags.
//!
//! The way librdkafka's own `rdkafka_performance` drives it: a `BaseProducer` whose delivery
//! callback counts outcomes, `send` until the queue is full, then `poll` to serve callbacks and
//! make room. No async runtime: librdkafka runs its own threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use purekafka_peers::{Options, Timer};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = Options::from_env();
    let producer: BaseProducer<Counter> = ClientConfig::new()
        .set("bootstrap.servers", &o.bootstrap)
        .set("acks", &o.acks)
        .set("enable.idempotence", o.idempotence.to_string())
        .set("linger.ms", o.linger_ms.to_string())
        .set("batch.size", o.batch_size.to_string())
        .set("compression.type", &o.compression)
        .create_with_context(Counter::default())?;
    let value = o.value();

    let timer = Timer::start();
    for _ in 0..o.messages {
        let mut record = BaseRecord::<[u8], [u8]>::to(&o.topic).payload(&value[..]);
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
    producer.flush(Duration::from_secs(120))?;
    let ctx = producer.context();
    let done = ctx.acked.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed);
    let failed = ctx.failed.load(Ordering::Relaxed) + (o.messages - done);
    timer.report(CLIENT, &o, failed);
    Ok(())
}
