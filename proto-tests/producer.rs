//! The batching producer: queueing, linger, flush, close, back-pressure, delivery reports.

use std::collections::BTreeMap;
use std::time::Duration;

use purekafka::{ClientConfig, Consumer, Error, Offset, Producer, ProducerRecord};

use crate::common::plaintext;

/// Reads every record of `topic` (with `partitions` partitions) until `count` arrived.
async fn read_all(topic: &str, partitions: i32, count: usize) -> Vec<purekafka::Message> {
    let mut consumer = Consumer::builder(plaintext()).build().await.unwrap();
    consumer
        .assign((0..partitions).map(|p| (topic, p)), Offset::Earliest)
        .await
        .unwrap();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let msg = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .expect("records arrive")
            .unwrap();
        out.push(msg);
    }
    out
}

/// The values read are the numbers 0..n, each exactly once: nothing lost, nothing duplicated.
fn assert_each_once(read: &[purekafka::Message], n: usize) {
    let mut seen: Vec<usize> = read
        .iter()
        .map(|m| {
            std::str::from_utf8(m.value.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..n).collect::<Vec<_>>(),
        "every record exactly once"
    );
}

async fn topic(partitions: i32) -> String {
    crate::common::new_topic("producer", partitions).await
}

#[tokio::test]
async fn queued_records_arrive_once_and_in_order() {
    let topic = topic(3).await;
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    let n = 20_000;
    let mut pending = Vec::with_capacity(n);
    for i in 0..n {
        let record = ProducerRecord::new(&topic)
            .key(format!("k{}", i % 7))
            .value(format!("{i}"));
        pending.push(producer.produce(record).await.unwrap());
    }
    let mut offsets = BTreeMap::new();
    for (i, delivery) in pending.into_iter().enumerate() {
        let md = delivery.await.unwrap();
        offsets.insert((md.partition, md.offset.unwrap()), i);
    }
    assert_eq!(offsets.len(), n, "every record has its own offset");
    // Per partition, offsets follow the order records were queued in, with no gaps.
    let mut last: BTreeMap<i32, (i64, usize)> = BTreeMap::new();
    for (&(partition, offset), &i) in &offsets {
        if let Some(&(o, j)) = last.get(&partition) {
            assert_eq!(offset, o + 1);
            assert!(i > j, "record {i} overtook {j} in partition {partition}");
        }
        last.insert(partition, (offset, i));
    }
    assert_each_once(&read_all(&topic, 3, n).await, n);
    producer.close().await;
}

#[tokio::test]
async fn keyless_records_stick_to_one_partition_per_batch() {
    let topic = topic(4).await;
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    let mut pending = Vec::new();
    for i in 0..100 {
        pending.push(
            producer
                .produce(ProducerRecord::new(&topic).value(format!("{i}")))
                .await
                .unwrap(),
        );
    }
    let mut partitions = std::collections::BTreeSet::new();
    for d in pending {
        partitions.insert(d.await.unwrap().partition);
    }
    assert_eq!(
        partitions.len(),
        1,
        "100 small keyless records fill one batch: {partitions:?}"
    );
}

#[tokio::test]
async fn flush_sends_without_waiting_for_linger() {
    let topic = topic(1).await;
    let config = plaintext().set("linger.ms", 60_000).unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let pending = producer
        .produce(ProducerRecord::new(&topic).value("x"))
        .await
        .unwrap();
    assert_eq!(producer.in_flight_count(), 1);
    producer.flush(Duration::from_secs(10)).await.unwrap();
    assert_eq!(producer.in_flight_count(), 0);
    assert_eq!(pending.await.unwrap().offset, Some(0));
}

#[tokio::test]
async fn close_delivers_everything_queued() {
    let topic = topic(2).await;
    let config = plaintext().set("linger.ms", 60_000).unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let mut pending = Vec::new();
    for i in 0..500 {
        pending.push(
            producer
                .produce(ProducerRecord::new(&topic).key(format!("{i}")).value("v"))
                .await
                .unwrap(),
        );
    }
    let clone = producer.clone();
    producer.close().await;
    for d in pending {
        d.await.expect("delivered before close returned");
    }
    let err = clone
        .send(ProducerRecord::new(&topic).value("late"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    assert_eq!(read_all(&topic, 2, 500).await.len(), 500);
}

#[tokio::test]
async fn try_send_reports_a_full_queue() {
    let topic = topic(1).await;
    let config: ClientConfig = plaintext()
        .set("linger.ms", 60_000)
        .unwrap()
        .set("queue.buffering.max.messages", 10)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let mut pending = Vec::new();
    for _ in 0..10 {
        pending.push(
            producer
                .try_send(ProducerRecord::new(&topic).value("x"))
                .await
                .unwrap(),
        );
    }
    let err = producer
        .try_send(ProducerRecord::new(&topic).value("x"))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::QueueFull { messages: 10, .. }),
        "{err:?}"
    );
    // A waiting send goes through once the queue drains.
    let waiting = {
        let producer = producer.clone();
        let topic = topic.clone();
        tokio::spawn(async move { producer.send(ProducerRecord::new(&topic).value("y")).await })
    };
    producer.flush(Duration::from_secs(10)).await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().offset, Some(10));
    for d in pending {
        d.await.unwrap();
    }
}

#[tokio::test]
async fn delivery_reports_stream_every_record() {
    let topic = topic(1).await;
    let producer = Producer::builder(plaintext())
        .delivery_reports()
        .build()
        .await
        .unwrap();
    let mut reports = producer.delivery_reports().expect("enabled in the builder");
    assert!(producer.delivery_reports().is_none(), "taken once");
    for word in ["Confluent-Kafka", "Golang Client Message"] {
        producer
            .produce(ProducerRecord::new(&topic).value(word))
            .await
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).await.unwrap();
    for offset in 0..2 {
        let report = reports.recv().await.unwrap();
        assert!(report.error.is_none());
        assert_eq!(report.metadata.to_string(), format!("{topic}[0]@{offset}"));
    }
}

/// How many records the broker's log segments of `topic`'s first `partitions` hold.
fn stored_records(topic: &str, partitions: i32) -> usize {
    (0..partitions)
        .map(|p| {
            stored_batches(topic, p)
                .iter()
                .map(|b| b.records.len())
                .sum::<usize>()
        })
        .sum()
}

/// The batches the broker stored for `topic[partition]`, read from its log segment (the local
/// single-broker layout keeps data under target/kafka/run/broker-1/data).
fn stored_batches(topic: &str, partition: i32) -> Vec<purekafka::protocol::records::Batch> {
    let dir = std::env::var("PUREKAFKA_DATA_DIR").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/kafka/run/broker-1/data"
        )
        .to_owned()
    });
    let path = format!("{dir}/{topic}-{partition}/00000000000000000000.log");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    purekafka::protocol::records::BatchDecoder::new(bytes.into(), true, 1 << 26)
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn idempotent_batches_carry_contiguous_sequences() {
    let topic = topic(2).await;
    // acks=all is the default, and with it idempotence, as in the Java client.
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    let n = 5_000;
    let mut pending = Vec::new();
    for i in 0..n {
        pending.push(
            producer
                .produce(ProducerRecord::new(&topic).key(format!("{i}")).value("v"))
                .await
                .unwrap(),
        );
    }
    for d in pending {
        d.await.unwrap();
    }
    producer.close().await;
    let mut total = 0;
    let mut ids = std::collections::BTreeSet::new();
    for partition in 0..2 {
        let mut next_sequence = 0;
        for batch in stored_batches(&topic, partition) {
            assert!(
                batch.producer_id >= 0 && batch.producer_epoch >= 0,
                "{batch:?}"
            );
            assert_eq!(batch.base_sequence, next_sequence, "partition {partition}");
            next_sequence += batch.records.len() as i32;
            total += batch.records.len();
            ids.insert(batch.producer_id);
        }
    }
    assert_eq!(total, n);
    assert_eq!(ids.len(), 1, "one producer id: {ids:?}");
}

#[tokio::test]
async fn acks_one_is_not_idempotent_and_cannot_be_forced() {
    let topic = topic(1).await;
    let config = plaintext().set("acks", 1).unwrap();
    let producer = Producer::builder(config.clone()).build().await.unwrap();
    producer
        .send(ProducerRecord::new(&topic).value("x"))
        .await
        .unwrap();
    let batches = stored_batches(&topic, 0);
    assert_eq!((batches[0].producer_id, batches[0].base_sequence), (-1, -1));
    let conflicting = config.set("enable.idempotence", true).unwrap();
    let err = Producer::builder(conflicting).build().await.err().unwrap();
    assert!(
        err.to_string()
            .contains("enable.idempotence=true requires acks=all"),
        "{err}"
    );
}

#[tokio::test]
async fn a_custom_partitioner_chooses_and_can_defer() {
    struct EvenToTwo;
    impl purekafka::Partitioner for EvenToTwo {
        fn partition(&self, _topic: &str, key: Option<&[u8]>, partitions: usize) -> Option<i32> {
            assert_eq!(partitions, 3);
            let n: u32 = std::str::from_utf8(key?).ok()?.parse().ok()?;
            n.is_multiple_of(2).then_some(2)
        }
    }
    let topic = topic(3).await;
    let producer = Producer::builder(plaintext())
        .partitioner(EvenToTwo)
        .build()
        .await
        .unwrap();
    for n in 0..10u32 {
        let key = n.to_string();
        let md = producer
            .send(ProducerRecord::new(&topic).key(key.clone()))
            .await
            .unwrap();
        let expected = if n % 2 == 0 {
            2
        } else {
            purekafka::KeyPartitioner::ConsistentRandom
                .partition(Some(key.as_bytes()), 3)
                .unwrap()
        };
        assert_eq!(md.partition, expected, "key {n}");
    }
}

/// Connections cut mid-request: the idempotent producer retries what was in flight with the
/// same sequences, so every record is stored exactly once.
#[tokio::test]
async fn cut_connections_lose_and_duplicate_nothing() {
    let topic = topic(2).await;
    let (_turn, proxy) = crate::common::proxied().await;
    let config = ClientConfig::new()
        .bootstrap_servers([proxy.addr.clone()])
        .set("reconnect.backoff.ms", 10)
        .unwrap()
        .set("retry.backoff.ms", 10)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let n = 30_000;
    let mut pending = Vec::with_capacity(n);
    for i in 0..n {
        if i % 5_000 == 2_500 {
            proxy.cut();
        }
        let record = ProducerRecord::new(&topic)
            .key(format!("k{}", i % 11))
            .value(format!("{i}"));
        pending.push(producer.produce(record).await.unwrap());
        if i % 1000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    for delivery in pending {
        delivery.await.expect("delivered despite the cuts");
    }
    producer.close().await;
    println!("connections through the proxy: {}", proxy.count());
    assert!(
        proxy.count() > 1,
        "the producer reconnected ({} connections)",
        proxy.count()
    );
    assert_each_once(&read_all(&topic, 2, n).await, n);
    // And nothing beyond: the log holds n records.
    let stored = stored_records(&topic, 2);
    assert_eq!(stored, n);
}

/// With the broker out of reach, queued records fail after delivery.timeout.ms with a timeout:
/// the producer neither hangs nor drops them silently.
#[tokio::test]
async fn an_unreachable_broker_fails_records_after_the_delivery_timeout() {
    let topic = topic(1).await;
    let (_turn, proxy) = crate::common::proxied().await;
    let config = ClientConfig::new()
        .bootstrap_servers([proxy.addr.clone()])
        .set("delivery.timeout.ms", 1500)
        .unwrap()
        .set("socket.timeout.ms", 500)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    producer
        .send(ProducerRecord::new(&topic).value("reachable"))
        .await
        .unwrap();
    proxy.close();
    let started = std::time::Instant::now();
    let mut pending = Vec::new();
    for i in 0..50 {
        pending.push(
            producer
                .produce(ProducerRecord::new(&topic).value(format!("{i}")))
                .await
                .unwrap(),
        );
    }
    for delivery in pending {
        let err = delivery.await.unwrap_err();
        assert!(err.to_string().contains("delivery.timeout.ms"), "{err}");
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
}

/// The network at its worst, through a proxy: connections stalled past the socket timeout
/// (their requests reach the broker late, after the producer gave up on them and retried),
/// reset mid-request, and refused for a while. The idempotent producer still stores every
/// record exactly once, and while refused it reconnects with a backoff that grows from
/// reconnect.backoff.ms to reconnect.backoff.max.ms, not in a storm.
#[tokio::test]
async fn stalls_resets_and_refusals_lose_and_duplicate_nothing() {
    let topic = topic(2).await;
    let (_turn, proxy) = crate::common::proxied().await;
    let proxy = std::sync::Arc::new(proxy);
    let config = ClientConfig::new()
        .bootstrap_servers([proxy.addr.clone()])
        .set("socket.timeout.ms", 1000)
        .unwrap()
        .set("reconnect.backoff.ms", 50)
        .unwrap()
        .set("reconnect.backoff.max.ms", 400)
        .unwrap()
        .set("retry.backoff.ms", 20)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let n = 12_000;
    let mut pending = Vec::with_capacity(n);
    let mut refused = None;
    for i in 0..n {
        match i {
            3_000 => {
                // Stalled for 2.5 s, past the 1 s socket timeout.
                proxy.stall(true);
                let p = proxy.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(2500)).await;
                    p.stall(false);
                });
            }
            6_000 => proxy.reset(),
            9_000 => {
                // Refused for 3 s: every connection accepted then closed.
                proxy.refuse(true);
                proxy.cut();
                let p = proxy.clone();
                refused = Some(tokio::spawn(async move {
                    let from = std::time::Instant::now();
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    p.refuse(false);
                    let during: Vec<_> =
                        p.accepted_at().into_iter().filter(|t| *t >= from).collect();
                    during
                }));
            }
            _ => {}
        }
        let record = ProducerRecord::new(&topic)
            .key(format!("k{}", i % 7))
            .value(format!("{i}"));
        pending.push(producer.produce(record).await.unwrap());
        if i % 500 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for delivery in pending {
        delivery.await.expect("delivered despite the faults");
    }
    producer.close().await;
    assert_each_once(&read_all(&topic, 2, n).await, n);
    let stored = stored_records(&topic, 2);
    assert_eq!(stored, n, "nothing stored twice, even what arrived late");

    let attempts = refused.unwrap().await.unwrap();
    let gaps: Vec<u128> = attempts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    println!("reconnects while refused: {} {gaps:?}", attempts.len());
    // 50, 100, 200, 400, 400, … ms (±20 % jitter) over 3 s: about ten, not hundreds.
    assert!(
        (3..=25).contains(&attempts.len()),
        "{} reconnects in 3 s: {gaps:?}",
        attempts.len()
    );
    assert!(
        gaps.iter().rev().take(2).all(|&g| g >= 250),
        "the backoff grew toward reconnect.backoff.max.ms: {gaps:?}"
    );
}
