//! An unclean leader election truncates a partition's log under two consumers that read it to
//! the end (KIP-320). The follower is killed, the leader takes 100 more records alone, both
//! consumers read them, then the leader is killed and the follower, started again, is elected
//! uncleanly: its log ends at 100, and 50 new records go to offsets 100..150. The consumer with
//! `auto.offset.reset=latest` goes back to where the log diverges and reads the 50 new records
//! (fetching on from 200 would skip them, and `latest` would not go back for them); the one with
//! `auto.offset.reset=error` stops with `LogTruncated`, naming both offsets.

use std::time::{Duration, Instant};

use purekafka::{Consumer, Error, NewTopic, Offset, Producer, ProducerRecord};

use super::cluster;
use crate::common::unique_topic;

async fn send(producer: &Producer, topic: &str, prefix: &str, range: std::ops::Range<i64>) {
    for i in range {
        let record = ProducerRecord::new(topic)
            .partition(0)
            .value(format!("{prefix}{i}"));
        producer.send(record).await.unwrap();
    }
}

/// A consumer of `topic[0]` from the start, with `auto.offset.reset` as given, having read
/// 200 records.
async fn reader(topic: &str, reset: &str) -> Consumer {
    let config = cluster::config().set("auto.offset.reset", reset).unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer
        .assign([(topic, 0)], Offset::Earliest)
        .await
        .unwrap();
    for _ in 0..200 {
        tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("the first 200 records within 30 s")
            .unwrap();
    }
    consumer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclean_election_truncates_the_log_under_consumers() {
    let _turn = cluster::serial().await;
    let topic = unique_topic("unclean");
    let admin = cluster::admin().await;
    let new = NewTopic::new(&topic, 1, 2)
        .config("unclean.leader.election.enable", "true")
        .config("min.insync.replicas", "1");
    let created = admin.create_topics(&[new]).await.unwrap();
    assert!(created[0].1.is_ok(), "{created:?}");
    let described = admin.describe_topics(&[&topic]).await.unwrap();
    let partition = described[0].1.as_ref().unwrap().partitions[0].clone();
    let leader = partition.leader.expect("a leader");
    let follower = *partition.replicas.iter().find(|&&r| r != leader).unwrap();

    // The first 100 records are on both replicas before the follower goes: acks=all waits for
    // the follower (acks=1 left a race, the follower sometimes one record short when killed).
    // The rest go with acks=1: with the follower down, acks=all would wait for the ISR to
    // shrink (replica.lag.time.max.ms).
    let replicated = Producer::builder(cluster::config().set("acks", "all").unwrap())
        .build()
        .await
        .unwrap();
    send(&replicated, &topic, "a", 0..100).await;
    replicated.close().await;
    let producer = Producer::builder(cluster::config().set("acks", 1).unwrap())
        .build()
        .await
        .unwrap();
    cluster::kill(follower).await;
    // The leader alone: these 100 are on no other replica.
    send(&producer, &topic, "b", 100..200).await;
    let mut latest = reader(&topic, "latest").await;
    let mut error = reader(&topic, "error").await;

    cluster::kill(leader).await;
    cluster::start(follower).await;
    let started = Instant::now();
    let elected = loop {
        let described = admin.describe_topics(&[&topic]).await.unwrap();
        let now = described[0].1.as_ref().ok().map(|d| d.partitions[0].leader);
        if now == Some(Some(follower)) {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no unclean election within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    send(&producer, &topic, "c", 100..150).await;
    let written = Instant::now();

    let mut read = Vec::new();
    let mut errors = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.len() < 50 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), latest.recv()).await {
            Ok(Ok(msg)) => {
                let value = String::from_utf8_lossy(msg.value.as_deref().unwrap()).into_owned();
                read.push((msg.offset, value));
            }
            Ok(Err(e)) => {
                assert!(e.is_retriable(), "{e}");
                errors += 1;
            }
            Err(_) => {}
        }
    }
    let read_after = written.elapsed();
    let stopped = loop {
        match tokio::time::timeout(Duration::from_secs(30), error.recv()).await {
            Ok(Err(Error::LogTruncated {
                offset, diverging, ..
            })) => break (offset, diverging),
            Ok(Err(e)) if e.is_retriable() => continue,
            other => panic!("auto.offset.reset=error: expected LogTruncated, got {other:?}"),
        }
    };
    cluster::start(leader).await;
    cluster::report(
        "an unclean leader election truncates the log under consumers (KIP-320)",
        serde_json::json!({
            "read_before": 200,
            "log_after_election": 100,
            "written_after_election": 50,
            "unclean_election_after_s": elected.as_secs_f64(),
            "latest_reader_read": read.len(),
            "latest_reader_first": read.first(),
            "latest_reader_errors_on_the_way": errors,
            "all_read_after_s": read_after.as_secs_f64(),
            "error_reader_stopped_at": { "offset": stopped.0, "diverging": stopped.1 },
        }),
    );
    let expected: Vec<(i64, String)> = (100..150).map(|i| (i, format!("c{i}"))).collect();
    assert_eq!(
        read, expected,
        "the records written after the election, each once"
    );
    assert_eq!(stopped, (200, 100));
}
