//! How the clients ask for metadata, seen from a fake broker (`fake_broker.rs`) that notes
//! every Metadata request it reads: lookups made at the same time share one request, periodic
//! refreshes ask only for the topics in use, a partition beyond the known count is asked for
//! again before it fails, and `allow.auto.create.topics` reaches the wire.
//!
//! These tests need no real Kafka.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::protocol::Decodable;
use purekafka::{ClientConfig, Consumer, Error, Producer, ProducerRecord};

use crate::fake_broker::{Answer, FakeBroker, METADATA, TOPIC};

/// One Metadata request the fake broker read: the topics it names (`None`: every topic) and
/// whether it lets the broker create them.
#[derive(Debug, Clone)]
struct Asked {
    at: Instant,
    topics: Option<Vec<String>>,
    auto_create: bool,
}

/// Notes every Metadata request the fake broker reads, and answers each after `pause`.
fn note_metadata(broker: &FakeBroker, pause: Duration) -> Arc<Mutex<Vec<Asked>>> {
    let asked: Arc<Mutex<Vec<Asked>>> = Arc::default();
    let log = asked.clone();
    broker.always(METADATA, move |request, genuine| {
        let mut body = request.body.clone();
        let decoded = MetadataRequest::decode(&mut body, request.api_version).unwrap();
        log.lock().unwrap().push(Asked {
            at: Instant::now(),
            topics: decoded.topics.map(|topics| {
                topics
                    .iter()
                    .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                    .collect()
            }),
            auto_create: decoded.allow_auto_topic_creation,
        });
        Answer::SendAfter(pause, genuine)
    });
    asked
}

/// A client of the fake broker; `acks=1`, since the fake broker plays no InitProducerId.
fn config(broker: &FakeBroker) -> ClientConfig {
    ClientConfig::new()
        .bootstrap_servers([broker.addr.clone()])
        .set("acks", 1)
        .unwrap()
}

/// The requests that named topics (not the brokers-only ones).
fn about_topics(asked: &Mutex<Vec<Asked>>) -> Vec<Asked> {
    let asked = asked.lock().unwrap();
    asked
        .iter()
        .filter(|a| a.topics.as_ref().is_none_or(|t| !t.is_empty()))
        .cloned()
        .collect()
}

/// Sixteen records for sixteen topics the cluster does not know, sent at once through one
/// producer: one Metadata request goes out, and the fifteen asking while it is answered share
/// the next. Every record fails, naming its own topic.
#[tokio::test]
async fn lookups_at_the_same_time_share_one_request() {
    let broker = FakeBroker::start().await;
    let config = config(&broker)
        .set("topic.metadata.propagation.max.ms", 0)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let asked = note_metadata(&broker, Duration::from_millis(300));
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..16 {
        let producer = producer.clone();
        sends.spawn(async move {
            let topic = format!("missing-{i}");
            let outcome = producer.send(ProducerRecord::new(&topic).value("x")).await;
            (topic, outcome)
        });
    }
    while let Some(sent) = sends.join_next().await {
        let (topic, outcome) = sent.unwrap();
        match outcome {
            Err(Error::UnknownTopicOrPartition {
                topic: t,
                partition: None,
            }) => assert_eq!(t, topic),
            other => panic!("{topic}: {other:?}"),
        }
    }
    let requests = about_topics(&asked);
    assert!(
        (1..=2).contains(&requests.len()),
        "16 lookups took {} requests: {requests:?}",
        requests.len()
    );
    let mut named: Vec<String> = requests
        .iter()
        .flat_map(|a| a.topics.clone().unwrap())
        .collect();
    named.sort();
    named.dedup();
    assert_eq!(named.len(), 16, "{requests:?}");
}

/// With `topic.metadata.refresh.interval.ms=200`, a producer that sent to the fake broker's
/// topic asks for that topic alone, every 200 ms, and never for every topic; a consumer with
/// nothing in use asks for the brokers no more often than every 10 s.
#[tokio::test]
async fn periodic_refreshes_ask_only_for_the_topics_in_use() {
    let broker = FakeBroker::start().await;
    let config = config(&broker)
        .set("topic.metadata.refresh.interval.ms", 200)
        .unwrap();
    let producer = Producer::builder(config.clone()).build().await.unwrap();
    let idle = Consumer::builder(config).build().await.unwrap();
    producer
        .send(ProducerRecord::new(TOPIC).value("in use"))
        .await
        .unwrap();
    let asked = note_metadata(&broker, Duration::ZERO);
    let watched = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let requests: Vec<Asked> = asked.lock().unwrap().clone();
    assert!(
        requests.len() >= 4 && requests.len() <= 10,
        "a refresh every 200 ms over 1.5 s: {requests:?}"
    );
    for asked in &requests {
        assert_eq!(
            asked.topics.as_deref(),
            Some(&[TOPIC.to_owned()][..]),
            "only the topic in use: {requests:?}"
        );
    }
    let first = requests[0].at - watched;
    assert!(first < Duration::from_millis(400), "{first:?}");
    drop((producer, idle));
}

/// A producer that knows the topic with one partition is asked to send to partition 1: it asks
/// the cluster again, at the fast interval (100 ms, doubling), until
/// `topic.metadata.propagation.max.ms` (700 ms) has passed, then fails naming the partition.
#[tokio::test]
async fn a_partition_beyond_the_count_is_asked_for_before_it_fails() {
    let broker = FakeBroker::start().await;
    let config = config(&broker)
        .set("topic.metadata.propagation.max.ms", 700)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    producer
        .send(ProducerRecord::new(TOPIC).partition(0).value("known"))
        .await
        .unwrap();
    let asked = note_metadata(&broker, Duration::ZERO);
    let started = Instant::now();
    let err = producer
        .send(ProducerRecord::new(TOPIC).partition(1).value("beyond"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, Error::UnknownTopicOrPartition { topic, partition: Some(1) } if topic == TOPIC),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // At once, then after 100, 200 and 400 ms (cut short by the deadline).
    let requests = about_topics(&asked);
    assert!((3..=5).contains(&requests.len()), "{requests:?}");
}

/// `allow.auto.create.topics` as the Metadata request carries it: producers ask for the topics
/// they send to to be created unless told not to; consumers only when told to, for the topics
/// they subscribe to or are assigned, as librdkafka does. Periodic refreshes never ask: they
/// would bring a deleted topic back.
#[tokio::test]
async fn auto_creation_is_asked_by_producers_and_not_by_consumers() {
    #[derive(Clone, Copy)]
    enum Use {
        Produce,
        Subscribe,
        Assign,
    }
    let broker = FakeBroker::start().await;
    let asked = note_metadata(&broker, Duration::ZERO);
    let flag_for = |config: ClientConfig, how: Use| {
        let asked = asked.clone();
        async move {
            let config = config
                .set("topic.metadata.propagation.max.ms", 0)
                .unwrap()
                .set("group.id", "g")
                .unwrap();
            let topic = crate::unique_topic("auto");
            match how {
                Use::Produce => {
                    let producer = Producer::builder(config).build().await.unwrap();
                    let _ = producer.send(ProducerRecord::new(&topic).value("x")).await;
                }
                Use::Subscribe => {
                    let mut consumer = Consumer::builder(config).build().await.unwrap();
                    consumer.subscribe(&[&topic]).unwrap();
                    // The keeper asks for the subscribed topic at once.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Use::Assign => {
                    let mut consumer = Consumer::builder(config).build().await.unwrap();
                    let _ = consumer
                        .assign([(topic.as_str(), 0)], purekafka::Offset::Earliest)
                        .await;
                }
            }
            let asked = asked.lock().unwrap();
            let named: Vec<bool> = asked
                .iter()
                .filter(|a| a.topics.as_ref().is_some_and(|t| t.contains(&topic)))
                .map(|a| a.auto_create)
                .collect();
            assert!(!named.is_empty());
            named
        }
    };
    let allow = |yes: bool| {
        config(&broker)
            .set("allow.auto.create.topics", yes)
            .unwrap()
    };
    // The first request for a topic sent to asks for its creation; none of a consumer's do.
    assert!(flag_for(config(&broker), Use::Produce).await[0]);
    assert!(!flag_for(allow(false), Use::Produce).await[0]);
    for how in [Use::Subscribe, Use::Assign] {
        let named = flag_for(config(&broker), how).await;
        assert!(named.iter().all(|&f| !f), "{named:?}");
        assert!(flag_for(allow(true), how).await[0]);
    }
}

/// A producer keeps a topic it sent to in use, and refreshes it periodically; when the topic
/// is deleted, those refreshes do not ask the broker to create it again.
#[tokio::test]
async fn periodic_refreshes_never_ask_for_creation() {
    let broker = FakeBroker::start().await;
    let config = config(&broker)
        .set("topic.metadata.refresh.interval.ms", 200)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    producer
        .send(ProducerRecord::new(TOPIC).value("in use"))
        .await
        .unwrap();
    let asked = note_metadata(&broker, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let requests = asked.lock().unwrap().clone();
    assert!(requests.len() >= 3, "{requests:?}");
    assert!(requests.iter().all(|a| !a.auto_create), "{requests:?}");
    drop(producer);
}
