//! The consumer's fetching against an in-memory cluster ([`crate::testing`]) on paused time:
//! assigned partitions read in order from their leaders, and `recv` and `poll` dropped
//! mid-fetch with nothing lost or handed out twice. (The group's state machines have no such
//! tests yet: the in-memory cluster plays no coordinator.)

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::testing::MemCluster;
use crate::{ClientConfig, Consumer, Offset, Producer, ProducerRecord};

fn config(cluster: &MemCluster) -> ClientConfig {
    ClientConfig::new().bootstrap_servers([cluster.addr(1)])
}

/// Writes `values` to `topic[partition]`, one request each.
async fn write(cluster: &MemCluster, topic: &str, partition: i32, values: &[String]) {
    let config = config(cluster).set("acks", "1").unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    for value in values {
        let record = ProducerRecord::new(topic)
            .partition(partition)
            .value(Bytes::from(value.clone()));
        producer.send(record).await.unwrap();
    }
    producer.close().await;
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// What `consumer` hands out next, `n` records: `(partition, offset, value)`.
async fn read(consumer: &mut Consumer, n: usize) -> Vec<(i32, i64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let msg = consumer.recv().await.unwrap();
        let value = String::from_utf8(msg.value.unwrap_or_default().to_vec()).unwrap();
        out.push((msg.partition, msg.offset, value));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn assigned_partitions_are_read_in_order_from_their_leaders() {
    let cluster = MemCluster::new(2);
    cluster.topic("t", &[1, 2]);
    write(&cluster, "t", 0, &values("a", 5)).await;
    write(&cluster, "t", 1, &values("b", 5)).await;
    let mut consumer = Consumer::builder(config(&cluster)).build().await.unwrap();
    consumer
        .assign([("t", 0), ("t", 1)], Offset::Earliest)
        .await
        .unwrap();
    let mut got = read(&mut consumer, 10).await;
    got.sort();
    let want: Vec<_> = (0..2)
        .flat_map(|p| {
            let prefix = ["a", "b"][p as usize];
            (0..5).map(move |i| (p, i as i64, format!("{prefix}{i}")))
        })
        .collect();
    assert_eq!(got, want);
}

#[tokio::test(start_paused = true)]
async fn a_recv_dropped_mid_fetch_loses_and_repeats_nothing() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let mut consumer = Consumer::builder(config(&cluster)).build().await.unwrap();
    consumer.assign([("t", 0)], Offset::Earliest).await.unwrap();
    // Each of these is dropped while a fetch waits at the broker for records.
    for _ in 0..3 {
        let waited = tokio::time::timeout(Duration::from_millis(150), consumer.recv()).await;
        assert!(waited.is_err(), "nothing to read yet: {waited:?}");
    }
    write(&cluster, "t", 0, &values("x", 10)).await;
    let got = read(&mut consumer, 10).await;
    let want: Vec<_> = (0..10).map(|i| (0, i as i64, format!("x{i}"))).collect();
    assert_eq!(got, want);
    let more = tokio::time::timeout(Duration::from_millis(150), consumer.recv()).await;
    assert!(more.is_err(), "nothing handed out twice: {more:?}");
    // And a poll dropped the same way leaves the consumer as it was.
    let waited =
        tokio::time::timeout(Duration::from_millis(150), consumer.poll(Duration::MAX)).await;
    assert!(waited.is_err(), "nothing to poll yet: {waited:?}");
    write(&cluster, "t", 0, &values("y", 2)).await;
    let mut offsets = Vec::new();
    while offsets.len() < 2 {
        let polled = consumer.poll(Duration::from_secs(1)).await.unwrap();
        offsets.extend(polled.iter().map(|m| m.offset));
    }
    assert_eq!(offsets, [10, 11]);
}

#[tokio::test(start_paused = true)]
async fn poll_gives_nothing_once_its_time_is_up() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let mut consumer = Consumer::builder(config(&cluster)).build().await.unwrap();
    consumer.assign([("t", 0)], Offset::Latest).await.unwrap();
    let started = Instant::now();
    let polled = consumer.poll(Duration::from_millis(700)).await.unwrap();
    assert!(polled.is_empty());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(1300),
        "{took:?}"
    );
}
