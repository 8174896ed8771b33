//! `statistics.interval.ms`: the statistics a producer, a transactional producer and a group
//! consumer emit against the real broker have every key, of the same JSON type, that
//! librdkafka 2.12.1's own statistics had for the same kind of client
//! (`fixtures/golden/librdkafka-stats-*.json`, captured from librdkafka itself), and their
//! figures say what the clients did.

use std::time::Duration;

use purekafka::{Consumer, Producer, ProducerRecord, Statistics};
use serde_json::Value;

use crate::common::{new_topic, plaintext, unique_topic};

/// librdkafka's statistics for `kind` (`producer`, `txn-producer`, `consumer`).
fn golden(kind: &str) -> Value {
    let path = format!(
        "{}/fixtures/golden/librdkafka-stats-{kind}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The objects whose keys are names (brokers, topics, partitions, ...), not fields: their
/// entries are compared with each other, whatever their names.
const MAPS: &[&str] = &["brokers", "topics", "partitions", "req", "toppars"];

/// Where `ours` lacks a key `theirs` has, or has it with another JSON type: one line each.
fn missing(theirs: &Value, ours: &Value, path: &str, out: &mut Vec<String>) {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if kind(theirs) != kind(ours) {
        out.push(format!(
            "{path}: librdkafka has a {}, we a {}",
            kind(theirs),
            kind(ours)
        ));
        return;
    }
    let (Value::Object(theirs), Value::Object(ours)) = (theirs, ours) else {
        return;
    };
    let name = path.rsplit('.').next().unwrap_or("");
    if MAPS.contains(&name) {
        // Every entry of ours has the fields of librdkafka's entries: of a real broker, not
        // its logical coordinators (node id -1), and of a real partition, not its unassigned
        // partition -1.
        let real =
            |k: &str, v: &Value| k != "-1" && v.get("nodeid").and_then(Value::as_i64) != Some(-1);
        let Some((_, example)) = theirs.iter().find(|(k, v)| real(k, v)) else {
            return;
        };
        if ours.is_empty() && ["brokers", "topics", "partitions"].contains(&name) {
            out.push(format!("{path}: no entries"));
        }
        for (k, v) in ours {
            missing(example, v, &format!("{path}[{k}]"), out);
        }
        return;
    }
    for (key, value) in theirs {
        match ours.get(key) {
            None => out.push(format!("{path}.{key}: missing")),
            Some(v) => missing(value, v, &format!("{path}.{key}"), out),
        }
    }
}

/// Checks `stats` against librdkafka's statistics for `kind`.
fn same_shape(kind: &str, stats: &Statistics) {
    let ours: Value = serde_json::from_str(&stats.to_json()).unwrap();
    let mut out = Vec::new();
    missing(&golden(kind), &ours, "stats", &mut out);
    assert!(
        out.is_empty(),
        "against librdkafka's {kind} statistics:\n{}",
        out.join("\n")
    );
}

/// Waits for the next statistics object that `done` accepts, for up to 30 s.
async fn next_where(
    stream: &mut purekafka::StatisticsStream,
    done: impl Fn(&Statistics) -> bool,
) -> std::sync::Arc<Statistics> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats = tokio::time::timeout_at(deadline, stream.recv())
            .await
            .expect("statistics within 30 s")
            .expect("the stream goes on while the client lives");
        if done(&stats) {
            return stats;
        }
    }
}

#[tokio::test]
async fn a_producers_statistics_have_librdkafkas_keys_and_its_figures() {
    let topic = new_topic("stats-p", 2).await;
    let config = plaintext()
        .set("statistics.interval.ms", 200)
        .unwrap()
        .set("client.id", "stats-producer")
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let mut stream = producer.statistics();
    for i in 0..100 {
        let record = ProducerRecord::new(&topic)
            .partition(i % 2)
            .value(format!("v{i}"));
        producer.send(record).await.unwrap();
    }
    let stats = next_where(&mut stream, |s| s.txmsgs == 100).await;
    same_shape("producer", &stats);
    assert_eq!(stats.client_type, "producer");
    assert!(
        stats.name.starts_with("stats-producer#producer-"),
        "{}",
        stats.name
    );
    assert_eq!((stats.msg_cnt, stats.msg_size), (0, 0));
    let t = &stats.topics[&topic];
    let acked: Vec<i64> = t.partitions.values().map(|p| p.txmsgs).collect();
    assert_eq!(acked, [50, 50]);
    assert_eq!(t.partitions["0"].msgs, 50);
    // The broker that took them: requests, bytes and round trips counted.
    let broker = stats
        .brokers
        .values()
        .find(|b| b.toppars.contains_key(&format!("{topic}-0")))
        .expect("the leader lists the partition");
    assert_eq!(broker.state, "UP");
    assert!(broker.req["Produce"] >= 50, "{:?}", broker.req);
    assert!(broker.tx >= broker.req["Produce"] && broker.txbytes > 0 && broker.rxbytes > 0);
    let eos = stats.eos.as_ref().expect("idempotent by default");
    assert_eq!(
        (eos.idemp_state.as_str(), eos.txn_state.as_str()),
        ("Assigned", "Init")
    );
    assert!(eos.producer_id >= 0);

    // The windows cover one interval each: the next object, with nothing sent, has none.
    let quiet = next_where(&mut stream, |_| true).await;
    let broker = quiet.brokers.values().find(|b| b.state == "UP").unwrap();
    assert_eq!(broker.rtt.cnt, 0, "{:?}", broker.rtt);
    producer.close().await;
}

#[tokio::test]
async fn a_transactional_producers_statistics_have_librdkafkas_keys() {
    let topic = new_topic("stats-t", 1).await;
    let config = plaintext()
        .set("statistics.interval.ms", 200)
        .unwrap()
        .set("transactional.id", unique_topic("stats-txn"))
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let mut stream = producer.statistics();
    producer
        .init_transactions(Duration::from_secs(30))
        .await
        .unwrap();
    producer.begin_transaction().unwrap();
    for i in 0..10 {
        producer
            .produce(ProducerRecord::new(&topic).value(format!("{i}")))
            .await
            .unwrap();
    }
    producer
        .commit_transaction(Duration::from_secs(30))
        .await
        .unwrap();
    let stats = next_where(&mut stream, |s| s.txmsgs == 10).await;
    same_shape("txn-producer", &stats);
    let eos = stats.eos.as_ref().unwrap();
    assert_eq!(eos.txn_state, "Ready");
    assert!(!eos.txn_may_enq);
    assert!(eos.epoch_cnt >= 1 && eos.producer_epoch >= 0);
    producer.close().await;
}

#[tokio::test]
async fn a_group_consumers_statistics_have_librdkafkas_keys_and_its_lag() {
    let topic = new_topic("stats-c", 2).await;
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    for i in 0..20 {
        let record = ProducerRecord::new(&topic)
            .partition(i % 2)
            .value(format!("v{i}"));
        producer.send(record).await.unwrap();
    }
    producer.close().await;
    let config = crate::consumer_group::member(&unique_topic("stats-group"))
        .set("statistics.interval.ms", 200)
        .unwrap()
        .set("enable.auto.commit", false)
        .unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    let mut stream = consumer.statistics();
    consumer.subscribe(&[&topic]).unwrap();
    // All 20, then a commit of partition 0's ten and of five of partition 1's.
    for _ in 0..20 {
        tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a record within 30 s")
            .unwrap();
    }
    consumer
        .commit_offsets(&[(topic.as_str(), 0, 10), (topic.as_str(), 1, 5)])
        .await
        .unwrap();
    // Statistics come from within recv: read on (nothing more comes) until one shows it all.
    let stats = loop {
        let _ = tokio::time::timeout(Duration::from_millis(300), consumer.recv()).await;
        if let Some(stats) = stream_now(&mut stream).await {
            if stats.rxmsgs == 20 && lag(&stats, &topic) == Some(5) {
                break stats;
            }
        }
    };
    same_shape("consumer", &stats);
    let cgrp = stats.cgrp.as_ref().expect("a group member");
    assert_eq!(
        (cgrp.state.as_str(), cgrp.join_state.as_str()),
        ("up", "steady")
    );
    assert_eq!(cgrp.assignment_size, 2);
    assert!(cgrp.rebalance_cnt >= 1);
    let partitions = &stats.topics[&topic].partitions;
    let figures: Vec<_> = partitions
        .values()
        .map(|p| {
            assert!(p.desired && p.fetch_state == "active", "{p:?}");
            let offsets = (p.hi_offset, p.app_offset, p.committed_offset);
            (offsets, p.consumer_lag, p.consumer_lag_stored, p.rxmsgs)
        })
        .collect();
    assert_eq!(figures, [((10, 10, 10), 0, 0, 10), ((10, 10, 5), 5, 0, 10)]);
    consumer.close().await.unwrap();
}

/// The newest statistics object, if one came since the last look.
async fn stream_now(
    stream: &mut purekafka::StatisticsStream,
) -> Option<std::sync::Arc<Statistics>> {
    tokio::time::timeout(Duration::from_millis(1), stream.recv())
        .await
        .ok()
        .flatten()
}

/// The consumer lag summed over `topic`'s partitions, when every partition knows its own.
fn lag(stats: &Statistics, topic: &str) -> Option<i64> {
    let partitions = &stats.topics.get(topic)?.partitions;
    partitions
        .values()
        .map(|p| (p.consumer_lag >= 0).then_some(p.consumer_lag))
        .sum()
}

#[test]
fn the_comparison_finds_a_missing_key_and_a_changed_type() {
    let theirs = golden("consumer");
    let mut ours = theirs.clone();
    let partition = ours["topics"]["stats-golden"]["partitions"]["0"]
        .as_object_mut()
        .unwrap();
    partition.remove("commited_offset");
    partition.insert("desired".into(), Value::from(1));
    let mut out = Vec::new();
    missing(&theirs, &ours, "stats", &mut out);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].contains("commited_offset: missing") || out[1].contains("commited_offset"));
    let mut out = Vec::new();
    missing(&theirs, &theirs, "stats", &mut out);
    assert!(out.is_empty(), "{out:?}");
}
