//! The transactional producer against the real broker: what read_committed readers (ours and
//! the Java client's) see of committed and aborted transactions, zombie fencing, offsets sent
//! with a transaction, and the calls refused in the wrong state.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use purekafka::{ClientConfig, Consumer, Error, Offset, Producer, ProducerRecord};

use crate::common::{admin, new_topic, plaintext, plaintext_addr, unique_topic};

const T: Duration = Duration::from_secs(30);

/// A transactional producer with `id`.
async fn transactional(id: &str) -> Producer {
    let config = plaintext().set("transactional.id", id).unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    producer.init_transactions(T).await.unwrap();
    producer
}

/// Sends `values` to `topic`, each keyed by itself, and waits for every delivery.
async fn send_all(producer: &Producer, topic: &str, values: &[String]) {
    let mut deliveries = Vec::new();
    for v in values {
        let record = ProducerRecord::new(topic).key(v.clone()).value(v.clone());
        deliveries.push(producer.produce(record).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
}

fn named(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// The values a consumer at `level` reads from every partition of `topic` (`partitions` of
/// them), per partition in offset order, reading until nothing comes for two seconds.
async fn read(topic: &str, partitions: i32, level: &str) -> BTreeMap<i32, Vec<String>> {
    let config = plaintext().set("isolation.level", level).unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    let all: Vec<(&str, i32)> = (0..partitions).map(|p| (topic, p)).collect();
    consumer.assign(all, Offset::Earliest).await.unwrap();
    let text = |b: Option<Bytes>| String::from_utf8(b.unwrap().to_vec()).unwrap();
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    while let Ok(msg) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
        let msg = msg.unwrap();
        out.entry(msg.partition).or_default().push(text(msg.value));
    }
    out
}

fn flat(read: &BTreeMap<i32, Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = read.values().flatten().cloned().collect();
    all.sort();
    all
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}

/// Committed transactions are read at read_committed, aborted ones skipped; read_uncommitted
/// sees everything. The Java client's read_committed console consumer agrees.
#[tokio::test]
async fn committed_transactions_are_read_and_aborted_ones_skipped() {
    let topic = new_topic("txn-produce", 3).await;
    let producer = transactional(&unique_topic("txn-id")).await;

    producer.begin_transaction().unwrap();
    send_all(&producer, &topic, &named("first", 30)).await;
    producer.commit_transaction(T).await.unwrap();

    producer.begin_transaction().unwrap();
    send_all(&producer, &topic, &named("aborted", 30)).await;
    producer.abort_transaction(T).await.unwrap();

    // Records still queued when the abort comes are purged, not sent.
    producer.begin_transaction().unwrap();
    let mut queued = Vec::new();
    for v in named("dropped", 20) {
        let record = ProducerRecord::new(&topic).key(v.clone()).value(v);
        queued.push(producer.produce(record).await.unwrap());
    }
    producer.abort_transaction(T).await.unwrap();
    for delivery in queued {
        // Each either went before the abort (and is aborted) or was purged.
        if let Err(e) = delivery.await {
            assert!(matches!(e, Error::Purged), "{e}");
        }
    }

    producer.begin_transaction().unwrap();
    send_all(&producer, &topic, &named("second", 30)).await;
    producer.commit_transaction(T).await.unwrap();
    producer.close().await;

    let committed = sorted([named("first", 30), named("second", 30)].concat());
    let got = read(&topic, 3, "read_committed").await;
    assert_eq!(flat(&got), committed);
    // Per partition, in the order sent (keys hash to fixed partitions).
    for values in got.values() {
        let firsts: Vec<&String> = values.iter().filter(|v| v.starts_with("first")).collect();
        let seconds = values.iter().position(|v| v.starts_with("second"));
        if let Some(at) = seconds {
            assert!(
                values[..at].iter().all(|v| v.starts_with("first")),
                "{values:?}"
            );
        }
        assert!(firsts.windows(2).all(|w| {
            let n = |v: &str| v.rsplit('-').next().unwrap().parse::<u32>().unwrap();
            n(w[0]) < n(w[1])
        }));
    }
    let everything = flat(&read(&topic, 3, "read_uncommitted").await);
    assert!(everything.len() >= 90, "{} records", everything.len());
    assert!(named("aborted", 30).iter().all(|v| everything.contains(v)));

    // The Java client's read_committed consumer: exactly the committed records.
    let out = crate::common::java_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "kafka.tools.ConsoleConsumer",
    )
    .args(["--bootstrap-server", &plaintext_addr()])
    .args(["--topic", &topic, "--from-beginning"])
    .args(["--isolation-level", "read_committed"])
    .args(["--timeout-ms", "10000"])
    .output()
    .expect("java runs the Java client's console consumer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let java = sorted(
        stdout
            .lines()
            .filter(|l| {
                l.starts_with("first-")
                    || l.starts_with("second-")
                    || l.starts_with("aborted-")
                    || l.starts_with("dropped-")
            })
            .map(str::to_owned)
            .collect(),
    );
    assert_eq!(
        java,
        committed,
        "Java read_committed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    admin().await.delete_topic(&topic).await.unwrap();
}

/// A second producer with the same transactional.id fences the first: the first's next call
/// fails as fatal, and its open transaction is aborted.
#[tokio::test]
async fn a_second_producer_fences_the_first() {
    let topic = new_topic("txn-fence", 1).await;
    let id = unique_topic("txn-fenced");
    let zombie = transactional(&id).await;
    let mut events = zombie.events();
    zombie.begin_transaction().unwrap();
    send_all(&zombie, &topic, &named("zombie", 10)).await;

    let successor = transactional(&id).await;
    successor.begin_transaction().unwrap();
    send_all(&successor, &topic, &named("successor", 10)).await;
    successor.commit_transaction(T).await.unwrap();

    let e = zombie.commit_transaction(T).await.unwrap_err();
    assert!(e.is_fatal(), "{e}");
    assert!(!e.txn_requires_abort() && !e.is_retriable(), "{e}");
    // The application hears of it as an event too, once (librdkafka's ERR__FATAL).
    match events.try_recv() {
        Some(purekafka::ClientEvent::Fatal(fatal)) => assert!(fatal.is_fatal(), "{fatal}"),
        other => panic!("expected ClientEvent::Fatal, got {other:?}"),
    }
    // Every later call says so too.
    let e = zombie
        .produce(ProducerRecord::new(&topic).value("late"))
        .await
        .unwrap_err();
    assert!(e.is_fatal(), "{e}");
    assert!(zombie.begin_transaction().unwrap_err().is_fatal());
    assert!(events.try_recv().is_none(), "reported once");

    assert_eq!(
        flat(&read(&topic, 1, "read_committed").await),
        named("successor", 10)
    );
    admin().await.delete_topic(&topic).await.unwrap();
}

/// Consume-transform-produce: the offsets sent with a committed transaction are the group's;
/// with an aborted one, they are not, and neither are its records.
#[tokio::test]
async fn offsets_commit_with_the_transaction_and_not_without() {
    let input = new_topic("txn-in", 1).await;
    let output = new_topic("txn-out", 1).await;
    let group = unique_topic("txn-group");
    let plain = Producer::builder(plaintext()).build().await.unwrap();
    send_all(&plain, &input, &named("in", 20)).await;

    // The offsets are committed with the transactions only.
    let config = plaintext()
        .set("group.id", &group)
        .unwrap()
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("enable.auto.commit", "false")
        .unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[input.as_str()]).unwrap();
    let producer = transactional(&unique_topic("txn-ctp")).await;

    // Transaction 1: the first 10 records, committed with their offsets.
    let (values, next, metadata) = round(&mut consumer, 10).await;
    assert_eq!(next, 10);
    assert!(
        !metadata.member_id.is_empty() && metadata.generation_id >= 1,
        "{metadata:?}"
    );
    transform(&producer, &output, &values, (&input, next), &metadata).await;
    producer.commit_transaction(T).await.unwrap();
    assert_eq!(committed_after_commit(&group, &input, 10).await, Some(10));

    // Transaction 2: the next 10, aborted: neither the records nor the offsets stand.
    let (values, next, metadata) = round(&mut consumer, 10).await;
    assert_eq!(next, 20);
    transform(&producer, &output, &values, (&input, next), &metadata).await;
    producer.abort_transaction(T).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(committed_offset(&group, &input).await, Some(10));
    let out = flat(&read(&output, 1, "read_committed").await);
    assert_eq!(
        out,
        sorted((0..10).map(|i| format!("out-in-{i}")).collect())
    );

    // A member the group has moved on from cannot commit: a stale generation is refused.
    let mut stale = metadata.clone();
    stale.generation_id += 100;
    producer.begin_transaction().unwrap();
    let sent = producer
        .send_offsets_to_transaction(&[(input.as_str(), 0, 20)], &stale, T)
        .await;
    if crate::common::kafka_version() >= (2, 5) {
        let e = sent.unwrap_err();
        assert!(e.txn_requires_abort(), "{e}");
    } else {
        // TxnOffsetCommit v2 carries no generation (KIP-447 came with Kafka 2.5).
        sent.unwrap();
    }
    producer.abort_transaction(T).await.unwrap();
    assert_eq!(committed_offset(&group, &input).await, Some(10));
    consumer.close().await.unwrap();
    producer.close().await;
    admin().await.delete_topic(&input).await.unwrap();
    admin().await.delete_topic(&output).await.unwrap();
}

/// Opens a transaction with `values` sent to `output`, and the input's next offset
/// (`(topic, offset)` of partition 0) with it.
async fn transform(
    producer: &Producer,
    output: &str,
    values: &[String],
    (input, next): (&str, i64),
    metadata: &purekafka::ConsumerGroupMetadata,
) {
    producer.begin_transaction().unwrap();
    send_all(producer, output, values).await;
    producer
        .send_offsets_to_transaction(&[(input, 0, next)], metadata, T)
        .await
        .unwrap();
}

/// Reads `n` records: the transformed values, the offset after the last, and the group's
/// metadata after reading them.
async fn round(
    consumer: &mut Consumer,
    n: usize,
) -> (Vec<String>, i64, purekafka::ConsumerGroupMetadata) {
    let mut values = Vec::new();
    let mut next = 0;
    for _ in 0..n {
        let msg = tokio::time::timeout(T, consumer.recv())
            .await
            .unwrap()
            .unwrap();
        values.push(format!(
            "out-{}",
            String::from_utf8(msg.value.unwrap().to_vec()).unwrap()
        ));
        next = msg.offset + 1;
    }
    (values, next, consumer.group_metadata().unwrap())
}

/// The group's committed offset of partition 0 of `topic`, once no transaction holds it.
/// The group's committed offset of `topic[0]` after a transaction committing `expected` for
/// it. From Kafka 2.5 a read_committed consumer asks for stable offsets (KIP-447), so the
/// answer waits for the transaction's markers and comes at once. Older brokers answer with
/// what they have, the offset before, until the markers land a moment after EndTxn returned:
/// there the offset must show within a few seconds.
async fn committed_after_commit(group: &str, topic: &str, expected: i64) -> Option<i64> {
    if crate::common::kafka_version() < (2, 5) {
        for _ in 0..50 {
            if committed_offset(group, topic).await == Some(expected) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    committed_offset(group, topic).await
}

async fn committed_offset(group: &str, topic: &str) -> Option<i64> {
    let config = plaintext().set("group.id", group).unwrap();
    let consumer = Consumer::builder(config).build().await.unwrap();
    let committed = consumer.committed(&[(topic, 0)], T).await.unwrap();
    committed.into_iter().next().and_then(|(_, _, o)| o)
}

/// Calls in the wrong state are refused with what was wrong, and nothing is sent.
#[tokio::test]
async fn calls_out_of_order_are_refused() {
    let topic = new_topic("txn-state", 1).await;
    // Not transactional.
    let plain = Producer::builder(plaintext()).build().await.unwrap();
    let e = plain.begin_transaction().unwrap_err();
    assert!(matches!(e, Error::TransactionState { .. }), "{e}");
    assert!(e.to_string().contains("transactional.id"), "{e}");

    let config = plaintext()
        .set("transactional.id", unique_topic("txn-state"))
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    // Before init_transactions.
    let e = producer.begin_transaction().unwrap_err();
    assert!(e.to_string().contains("init_transactions"), "{e}");
    let e = producer
        .produce(ProducerRecord::new(&topic).value("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::TransactionState {
                call: "produce",
                ..
            }
        ),
        "{e}"
    );
    producer.init_transactions(T).await.unwrap();
    // Outside a transaction.
    let e = producer
        .produce(ProducerRecord::new(&topic).value("x"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("begin_transaction"), "{e}");
    assert!(matches!(
        producer.commit_transaction(T).await,
        Err(Error::TransactionState { .. })
    ));
    assert!(matches!(
        producer.init_transactions(T).await,
        Err(Error::TransactionState { .. })
    ));
    producer.begin_transaction().unwrap();
    assert!(matches!(
        producer.begin_transaction(),
        Err(Error::TransactionState { .. })
    ));
    // An empty transaction commits (and aborts) without the coordinator.
    producer.commit_transaction(T).await.unwrap();
    producer.begin_transaction().unwrap();
    producer.abort_transaction(T).await.unwrap();
    producer.close().await;
    admin().await.delete_topic(&topic).await.unwrap();
}

/// Settings that contradict a transactional id are refused when the producer is built.
#[tokio::test]
async fn settings_that_contradict_transactions_are_refused() {
    for (key, value) in [("enable.idempotence", "false"), ("acks", "1")] {
        let config: ClientConfig = plaintext()
            .set("transactional.id", "t")
            .unwrap()
            .set(key, value)
            .unwrap();
        let e = Producer::builder(config).build().await.unwrap_err();
        assert!(e.to_string().contains(key), "{key}: {e}");
    }
}
