//! The cluster changing shape under running clients: a subscribed topic created after the
//! member started, partitions added to a topic being read and written, a producer sending to a
//! topic or partition that appears a moment later, regex subscriptions picking up new topics.
//! Each scenario runs with both group protocols where the broker has KIP-848, against one
//! broker here and against three in `cargo xtask test --faults` (the same file, included).
//! Every timing is printed as a `TOPOLOGY-REPORT {json}` line.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use purekafka::{ClientConfig, Consumer, Error, Message, Producer, ProducerRecord, RebalanceEvent};

use crate::common::{admin, broker_has_kip848, plaintext, unique_topic};

/// The group protocols to run a scenario with: classic, and KIP-848 where the broker serves it.
async fn protocols() -> Vec<&'static str> {
    let mut protocols = vec!["classic"];
    if broker_has_kip848().await {
        protocols.push("consumer");
    }
    protocols
}

/// A member of `group` with the protocol given, quick heartbeats, reading from the start, and
/// the refresh interval given (`None`: the default, 300 s).
fn member(group: &str, protocol: &str, refresh_ms: Option<u64>) -> ClientConfig {
    let mut config = plaintext()
        .group_id(group)
        .set("group.protocol", protocol)
        .and_then(|c| c.set("auto.offset.reset", "earliest"))
        .and_then(|c| c.set("session.timeout.ms", 6000))
        .unwrap();
    if protocol == "classic" {
        config = config.set("heartbeat.interval.ms", 200).unwrap();
    }
    if let Some(ms) = refresh_ms {
        config = config
            .set("topic.metadata.refresh.interval.ms", ms)
            .unwrap();
    }
    config
}

/// Prints one figure of a scenario.
fn report(scenario: &str, figures: serde_json::Value) {
    let line = serde_json::json!({ "scenario": scenario, "figures": figures });
    println!("TOPOLOGY-REPORT {line}");
}

/// Writes `n` records to `topic[partition]` with a producer of its own.
async fn produce(topic: &str, partition: i32, n: usize) {
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    for i in 0..n {
        let record = ProducerRecord::new(topic)
            .partition(partition)
            .value(format!("{partition}-{i}"));
        producer.send(record).await.unwrap();
    }
    producer.close().await;
}

/// What a consumer read until `done` said enough or `within` passed, and the errors it got.
struct Read {
    messages: Vec<Message>,
    errors: Vec<Error>,
    /// When each message was read.
    at: Vec<Instant>,
}

async fn read_until(
    consumer: &mut Consumer,
    within: Duration,
    mut done: impl FnMut(&[Message]) -> bool,
) -> Read {
    let deadline = Instant::now() + within;
    let mut read = Read {
        messages: Vec::new(),
        errors: Vec::new(),
        at: Vec::new(),
    };
    while !done(&read.messages) && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)).await {
            Ok(batch) => {
                let now = Instant::now();
                read.at.extend(batch.iter().map(|_| now));
                read.messages.extend(batch);
            }
            Err(e) => read.errors.push(e),
        }
    }
    read
}

/// A member subscribes to a topic that does not exist: one UnknownTopicOrPartition through
/// `poll` and one TopicNotAvailable event, no more while it stays missing; once the topic is
/// created and written, every record is read. Returns the time from the topic's creation to
/// the first record read.
async fn subscribed_before_created(protocol: &str, refresh_ms: Option<u64>) -> Duration {
    let topic = unique_topic("later");
    let config = member(&unique_topic("g"), protocol, refresh_ms);
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    let mut events = consumer.rebalance_events();
    consumer.subscribe(&[&topic]).unwrap();

    let before = read_until(&mut consumer, Duration::from_secs(3), |_| false).await;
    assert!(before.messages.is_empty());
    assert_eq!(before.errors.len(), 1, "{protocol}: {:?}", before.errors);
    match &before.errors[0] {
        Error::UnknownTopicOrPartition {
            topic: t,
            partition: None,
        } => assert_eq!(t, &topic),
        other => panic!("{protocol}: expected UnknownTopicOrPartition, got {other:?}"),
    }
    assert!(before.errors[0].is_retriable());
    let mut unavailable = 0;
    while let Some(event) = events.try_recv() {
        if event == RebalanceEvent::TopicNotAvailable(topic.clone()) {
            unavailable += 1;
        }
    }
    assert_eq!(unavailable, 1, "{protocol}: one TopicNotAvailable event");

    admin().await.create_topic(&topic, 1, 1).await.unwrap();
    let created = Instant::now();
    produce(&topic, 0, 10).await;
    let after = read_until(&mut consumer, Duration::from_secs(60), |m| m.len() >= 10).await;
    assert!(after.errors.is_empty(), "{protocol}: {:?}", after.errors);
    let offsets: BTreeSet<i64> = after.messages.iter().map(|m| m.offset).collect();
    assert_eq!(
        offsets,
        (0..10).collect(),
        "{protocol}: every record once, after the topic was created"
    );
    let first = after.at[0] - created;
    consumer.close().await.unwrap();
    admin().await.delete_topic(&topic).await.unwrap();
    first
}

#[tokio::test]
async fn a_member_reads_a_topic_created_after_it_subscribed() {
    for protocol in protocols().await {
        for refresh_ms in [None, Some(2000)] {
            let first = subscribed_before_created(protocol, refresh_ms).await;
            report(
                "subscribed topic created later: creation to first record read",
                serde_json::json!({
                    "protocol": protocol,
                    "refresh_interval_ms": refresh_ms.unwrap_or(300_000),
                    "first_record_s": first.as_secs_f64(),
                }),
            );
        }
    }
}

/// The same through the consumer as a `Stream`: one error item for the missing topic, then
/// the records once it exists; the stream goes on after the error.
#[tokio::test]
async fn the_stream_reports_a_missing_topic_once_and_goes_on() {
    use futures_core::Stream;
    let topic = unique_topic("later-stream");
    let config = member(&unique_topic("g"), "classic", None);
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut stream = consumer.stream();
    fn next<S: Stream + Unpin>(
        stream: &mut S,
    ) -> impl std::future::Future<Output = Option<S::Item>> + '_ {
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx))
    }
    let first = tokio::time::timeout(Duration::from_secs(10), next(&mut stream))
        .await
        .expect("an item within 10 s")
        .expect("the stream goes on");
    assert!(
        matches!(&first, Err(Error::UnknownTopicOrPartition { topic: t, partition: None }) if *t == topic),
        "{first:?}"
    );
    admin().await.create_topic(&topic, 1, 1).await.unwrap();
    produce(&topic, 0, 3).await;
    let mut offsets = Vec::new();
    while offsets.len() < 3 {
        let item = tokio::time::timeout(Duration::from_secs(30), next(&mut stream))
            .await
            .expect("a record within 30 s")
            .expect("the stream goes on");
        offsets.push(item.expect("no second error").offset);
    }
    assert_eq!(offsets, [0, 1, 2]);
    drop(stream);
    consumer.close().await.unwrap();
    admin().await.delete_topic(&topic).await.unwrap();
}

/// A member owns the one partition of a topic; partitions are added (3 more) and a producer
/// built before that writes to each. The member comes to own all four and reads every
/// record. Returns the time from the partitions' creation to the first record read from a new
/// one.
async fn partitions_added_while_reading(protocol: &str, refresh_ms: u64) -> Duration {
    let topic = unique_topic("grows");
    admin().await.create_topic(&topic, 1, 1).await.unwrap();
    let config = member(&unique_topic("g"), protocol, Some(refresh_ms));
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    produce(&topic, 0, 1).await;
    let first = read_until(&mut consumer, Duration::from_secs(30), |m| !m.is_empty()).await;
    assert_eq!(first.messages.len(), 1, "{protocol}: {:?}", first.errors);
    assert_eq!(consumer.assignment(), [(topic.clone(), 0)]);

    // A producer that knows the topic with one partition.
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    producer
        .send(ProducerRecord::new(&topic).partition(0).value("before"))
        .await
        .unwrap();
    let outcomes = admin()
        .await
        .create_partitions(&[(&topic, 4)])
        .await
        .unwrap();
    assert!(outcomes[0].1.is_ok(), "{outcomes:?}");
    let added = Instant::now();
    for p in 1..4 {
        let delivered = producer
            .send(
                ProducerRecord::new(&topic)
                    .partition(p)
                    .value(format!("new {p}")),
            )
            .await
            .unwrap_or_else(|e| panic!("the producer built before the add, to [{p}]: {e}"));
        assert_eq!(delivered.partition, p);
    }
    producer.close().await;

    let read = read_until(&mut consumer, Duration::from_secs(60), |m| {
        m.iter().map(|m| m.partition).collect::<BTreeSet<_>>().len() == 4
    })
    .await;
    assert!(read.errors.is_empty(), "{protocol}: {:?}", read.errors);
    let partitions: BTreeSet<i32> = read.messages.iter().map(|m| m.partition).collect();
    assert_eq!(
        partitions,
        (0..4).collect(),
        "{protocol}: records from every partition, old and new"
    );
    let assignment: Vec<i32> = consumer.assignment().iter().map(|(_, p)| *p).collect();
    assert_eq!(assignment, [0, 1, 2, 3], "{protocol}");
    let new_first = read
        .messages
        .iter()
        .zip(&read.at)
        .find(|(m, _)| m.partition > 0)
        .map(|(_, at)| *at - added)
        .expect("a record from a new partition");
    consumer.close().await.unwrap();
    admin().await.delete_topic(&topic).await.unwrap();
    new_first
}

#[tokio::test]
async fn a_member_takes_up_partitions_added_while_it_reads() {
    for protocol in protocols().await {
        let first = partitions_added_while_reading(protocol, 2000).await;
        report(
            "partitions added: creation to first record read from a new partition",
            serde_json::json!({
                "protocol": protocol,
                "refresh_interval_ms": 2000,
                "first_record_s": first.as_secs_f64(),
            }),
        );
    }
}

/// A producer sends to a topic that does not exist yet: the record waits (up to
/// `topic.metadata.propagation.max.ms`) and is delivered once the topic is created meanwhile.
/// Where nothing creates it, the record fails with UnknownTopicOrPartition naming the topic,
/// once the window has passed; a partition beyond the count fails the same way, naming it.
#[tokio::test]
async fn a_producer_waits_for_a_topic_or_partition_to_appear() {
    let topic = unique_topic("soon");
    let config = plaintext()
        .set("topic.metadata.propagation.max.ms", 20_000)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let create = {
        let topic = topic.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            admin().await.create_topic(&topic, 2, 1).await.unwrap();
        })
    };
    let asked = Instant::now();
    let delivered = producer
        .send(ProducerRecord::new(&topic).value("waited"))
        .await
        .expect("delivered once the topic exists");
    create.await.unwrap();
    assert!(asked.elapsed() >= Duration::from_millis(1500));
    assert!(delivered.offset.is_some());

    let short = plaintext()
        .set("topic.metadata.propagation.max.ms", 1000)
        .unwrap();
    let producer = Producer::builder(short).build().await.unwrap();
    let missing = unique_topic("never");
    let asked = Instant::now();
    let err = producer
        .send(ProducerRecord::new(&missing).value("lost"))
        .await
        .unwrap_err();
    let waited = asked.elapsed();
    assert!(
        matches!(&err, Error::UnknownTopicOrPartition { topic, partition: None } if *topic == missing),
        "{err:?}"
    );
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_secs(5),
        "failed after {waited:?}"
    );
    let err = producer
        .send(ProducerRecord::new(&topic).partition(7).value("beyond"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTopicOrPartition { topic: t, partition: Some(7) } if *t == topic),
        "{err:?}"
    );
    admin().await.delete_topic(&topic).await.unwrap();
}

/// A regex subscription (`^prefix-.*`) takes up a matching topic created while the member
/// runs, and leaves out one that does not match.
#[tokio::test]
async fn a_regex_subscription_picks_up_new_matching_topics() {
    for protocol in protocols().await {
        let prefix = unique_topic("rx");
        let first = format!("{prefix}-a");
        admin().await.create_topic(&first, 1, 1).await.unwrap();
        let config = member(&unique_topic("g"), protocol, Some(2000));
        let mut consumer = Consumer::builder(config).build().await.unwrap();
        consumer.subscribe(&[format!("^{prefix}-[a-z]+$")]).unwrap();
        produce(&first, 0, 1).await;
        let read = read_until(&mut consumer, Duration::from_secs(30), |m| !m.is_empty()).await;
        assert_eq!(read.messages.len(), 1, "{protocol}: {:?}", read.errors);

        let (later, other) = (format!("{prefix}-b"), format!("{prefix}-1"));
        admin().await.create_topic(&later, 1, 1).await.unwrap();
        admin().await.create_topic(&other, 1, 1).await.unwrap();
        let created = Instant::now();
        produce(&later, 0, 1).await;
        produce(&other, 0, 1).await;
        let read = read_until(&mut consumer, Duration::from_secs(60), |m| !m.is_empty()).await;
        assert!(read.errors.is_empty(), "{protocol}: {:?}", read.errors);
        assert_eq!(read.messages.len(), 1, "{protocol}");
        assert_eq!(&*read.messages[0].topic, later);
        let extra = read_until(&mut consumer, Duration::from_secs(2), |_| false).await;
        assert!(
            extra.messages.is_empty(),
            "{protocol}: {other} does not match"
        );
        let mut assigned: Vec<String> = consumer.assignment().into_iter().map(|(t, _)| t).collect();
        assigned.sort();
        assert_eq!(assigned, [first.clone(), later.clone()], "{protocol}");
        report(
            "regex subscription: matching topic created to first record read",
            serde_json::json!({
                "protocol": protocol,
                "refresh_interval_ms": 2000,
                "first_record_s": (read.at[0] - created).as_secs_f64(),
            }),
        );
        consumer.close().await.unwrap();
        for topic in [first, later, other] {
            admin().await.delete_topic(&topic).await.unwrap();
        }
    }
}
