//! The share consumer's settings, and the share consumer against the in-memory cluster's share groups ([`crate::testing`]) on
//! paused time: records handed out once and accepted, explicit acknowledgements, redelivery,
//! acknowledgements that outlive a lost share session, `poll` dropped while it waits, two
//! members splitting partitions, and close releasing what is left.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::protocol::share::{ACK_ACCEPT, ACK_REJECT, ACK_RELEASE};
use crate::testing::MemCluster;
use crate::{AcknowledgeType, ClientConfig, Error, Message, Producer, ProducerRecord};

use super::settings::DEFAULT_MAX_POLL_RECORDS;
use super::*;

fn config(cluster: &MemCluster) -> ClientConfig {
    ClientConfig::new()
        .bootstrap_servers([cluster.addr(1)])
        .set("group.id", "workers")
        .unwrap()
}

fn explicit(cluster: &MemCluster) -> ClientConfig {
    config(cluster)
        .set("share.acknowledgement.mode", "explicit")
        .unwrap()
}

/// Writes `n` records `0..n` to `topic[partition]`, one request each.
async fn write(cluster: &MemCluster, topic: &str, partition: i32, n: usize) {
    let producer = Producer::builder(config(cluster).set("acks", 1).unwrap())
        .build()
        .await
        .unwrap();
    for i in 0..n {
        let record = ProducerRecord::new(topic)
            .partition(partition)
            .value(Bytes::from(i.to_string()));
        producer.send(record).await.unwrap();
    }
    producer.close().await;
}

async fn member(config: ClientConfig, topic: &str) -> ShareConsumer {
    let mut consumer = ShareConsumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

/// Polls until `n` records came or a minute (paused) passed.
async fn poll_n(consumer: &mut ShareConsumer, n: usize) -> Vec<Message> {
    let mut out = Vec::new();
    for _ in 0..120 {
        if out.len() >= n {
            break;
        }
        out.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    out
}

fn offsets(msgs: &[Message]) -> Vec<i64> {
    msgs.iter().map(|m| m.offset).collect()
}

#[tokio::test(start_paused = true)]
async fn every_record_is_handed_out_once_and_accepted_by_the_next_poll() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    write(&cluster, "t", 0, 10).await;
    let mut consumer = member(config(&cluster), "t").await;
    let got = poll_n(&mut consumer, 10).await;
    assert_eq!(offsets(&got), (0..10).collect::<Vec<_>>());
    assert!(got.iter().all(|m| m.delivery_count == Some(1)));
    // Nothing is accepted until the next call.
    assert!(cluster.share_acknowledged().is_empty());
    assert!(consumer
        .poll(Duration::from_millis(100))
        .await
        .unwrap()
        .is_empty());
    let results = consumer.commit_sync().await.unwrap();
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    let accepted: Vec<(i64, i64, i8)> = cluster
        .share_acknowledged()
        .into_iter()
        .map(|(_, _, first, last, kind)| (first, last, kind))
        .collect();
    assert_eq!(accepted, vec![(0, 9, ACK_ACCEPT)], "one batch, one type");
    consumer.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn explicit_acknowledgements_go_out_as_given() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    write(&cluster, "t", 0, 4).await;
    let mut consumer = member(explicit(&cluster), "t").await;
    let got = poll_n(&mut consumer, 4).await;
    assert_eq!(got.len(), 4);
    let refused = consumer.poll(Duration::ZERO).await.unwrap_err();
    assert!(
        matches!(&refused, Error::State { call: "poll", state }
            if state == "All records must be acknowledged in explicit acknowledgement mode."),
        "{refused:?}"
    );
    consumer
        .acknowledge(&got[0], AcknowledgeType::Accept)
        .unwrap();
    consumer
        .acknowledge(&got[1], AcknowledgeType::Reject)
        .unwrap();
    consumer
        .acknowledge(&got[2], AcknowledgeType::Release)
        .unwrap();
    // A later word for the same record wins, until it is sent.
    consumer
        .acknowledge(&got[3], AcknowledgeType::Release)
        .unwrap();
    consumer
        .acknowledge(&got[3], AcknowledgeType::Accept)
        .unwrap();
    let results = consumer.commit_sync().await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].offsets, vec![(0, 3)]);
    let kinds: Vec<(i64, i64, i8)> = cluster
        .share_acknowledged()
        .into_iter()
        .map(|(_, _, first, last, kind)| (first, last, kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (0, 0, ACK_ACCEPT),
            (1, 1, ACK_REJECT),
            (2, 2, ACK_RELEASE),
            (3, 3, ACK_ACCEPT)
        ]
    );
    // Sent: no longer acknowledgeable. The released one comes back, delivered twice.
    let err = consumer
        .acknowledge(&got[0], AcknowledgeType::Accept)
        .unwrap_err();
    assert!(
        matches!(&err, Error::State { state, .. } if state == "The record cannot be acknowledged.")
    );
    let again = poll_n(&mut consumer, 1).await;
    assert_eq!(offsets(&again), vec![2]);
    assert_eq!(again[0].delivery_count, Some(2));
    consumer
        .acknowledge(&again[0], AcknowledgeType::Accept)
        .unwrap();
    consumer.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn implicit_mode_refuses_acknowledge_and_a_record_past_the_limit_is_archived() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    cluster.share_delivery_limit(2);
    write(&cluster, "t", 0, 1).await;
    let mut implicit = member(config(&cluster), "t").await;
    let got = poll_n(&mut implicit, 1).await;
    let err = implicit
        .acknowledge(&got[0], AcknowledgeType::Accept)
        .unwrap_err();
    assert!(matches!(&err, Error::State { state, .. }
        if state == "Implicit acknowledgement of delivery is being used."));
    // Closing without accepting releases it: delivered again, once more, then archived.
    implicit.close().await.unwrap();
    let mut consumer = member(explicit(&cluster), "t").await;
    let second = poll_n(&mut consumer, 1).await;
    assert_eq!(second[0].delivery_count, Some(2));
    consumer
        .acknowledge(&second[0], AcknowledgeType::Release)
        .unwrap();
    consumer.commit_sync().await.unwrap();
    assert!(
        poll_n(&mut consumer, 1).await.is_empty(),
        "archived at the limit"
    );
    consumer.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn acknowledgements_a_lost_session_did_not_take_go_out_in_the_next() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    write(&cluster, "t", 0, 5).await;
    let mut consumer = member(explicit(&cluster), "t").await;
    let got = poll_n(&mut consumer, 5).await;
    for msg in &got {
        consumer.acknowledge(msg, AcknowledgeType::Accept).unwrap();
    }
    // The broker restarts its sessions before the acknowledgements reach it.
    cluster.forget_share_sessions();
    let results = consumer.commit_sync().await.unwrap();
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    let accepted: Vec<(i64, i64, i8)> = cluster
        .share_acknowledged()
        .into_iter()
        .map(|(_, _, first, last, kind)| (first, last, kind))
        .collect();
    assert_eq!(accepted, vec![(0, 4, ACK_ACCEPT)]);
    // The new session opened at epoch 0, without acknowledgements; they followed at epoch 1.
    let epochs = cluster.share_epochs();
    let reopened = epochs.iter().rposition(|&(_, e)| e == 0).unwrap();
    assert_eq!(epochs[reopened].0, "ShareFetch");
    assert!(epochs[reopened + 1..].iter().any(|&(_, e)| e == 1));
    consumer.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_dropped_poll_loses_no_record() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let mut consumer = member(config(&cluster), "t").await;
    // Waiting with nothing there, then dropped.
    let dropped = tokio::time::timeout(
        Duration::from_millis(700),
        consumer.poll(Duration::from_secs(10)),
    )
    .await;
    assert!(dropped.is_err());
    write(&cluster, "t", 0, 3).await;
    let mut got = Vec::new();
    for _ in 0..20 {
        // Polls cut short over and over: whatever a call took, it returned.
        if let Ok(batch) = tokio::time::timeout(
            Duration::from_millis(30),
            consumer.poll(Duration::from_secs(1)),
        )
        .await
        {
            got.extend(batch.unwrap());
        }
    }
    got.extend(poll_n(&mut consumer, 3usize.saturating_sub(got.len())).await);
    assert_eq!(offsets(&got), vec![0, 1, 2]);
    consumer.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn two_members_split_the_records_and_a_lock_that_runs_out_frees_them() {
    let cluster = MemCluster::new(2);
    cluster.topic("t", &[1, 2]);
    cluster.share_lock(Duration::from_secs(2));
    write(&cluster, "t", 0, 20).await;
    write(&cluster, "t", 1, 20).await;
    let small = |c: ClientConfig| c.set("max.poll.records", 5).unwrap();
    let mut a = member(small(explicit(&cluster)), "t").await;
    let mut b = member(small(config(&cluster)), "t").await;
    // `a` takes a batch and sits on it; its lock runs out and `b` gets those records too.
    let held = poll_n(&mut a, 1).await;
    assert!(!held.is_empty());
    let mut seen: Vec<(i32, i64, i16)> = Vec::new();
    for _ in 0..200 {
        if seen.len() >= 40 {
            break;
        }
        let batch = b.poll(Duration::from_millis(200)).await.unwrap();
        seen.extend(
            batch
                .iter()
                .map(|m| (m.partition, m.offset, m.delivery_count.unwrap())),
        );
    }
    let distinct: BTreeSet<(i32, i64)> = seen.iter().map(|&(p, o, _)| (p, o)).collect();
    assert_eq!(distinct.len(), 40, "every record reached b: {seen:?}");
    assert_eq!(seen.len(), 40, "none twice");
    for msg in &held {
        let again = seen
            .iter()
            .find(|&&(p, o, _)| (p, o) == (msg.partition, msg.offset))
            .unwrap();
        assert_eq!(again.2, 2, "held by a until its lock ran out");
    }
    b.commit_sync().await.unwrap();
    // a's acknowledgements come too late: the broker says so, and nothing is lost.
    for msg in &held {
        a.acknowledge(msg, AcknowledgeType::Accept).unwrap();
    }
    let late = a.commit_sync().await.unwrap();
    assert!(
        late.iter().all(|r| r.result.as_ref().is_err_and(|e| e
            .kafka_code()
            .is_some_and(|c| c.code() == crate::protocol::codes::INVALID_RECORD_STATE))),
        "{late:?}"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn close_sends_the_last_acknowledgements_and_releases_the_rest() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    write(&cluster, "t", 0, 6).await;
    let mut consumer = member(explicit(&cluster).set("max.poll.records", 3).unwrap(), "t").await;
    let got = poll_n(&mut consumer, 3).await;
    consumer
        .acknowledge(&got[0], AcknowledgeType::Accept)
        .unwrap();
    consumer.close().await.unwrap();
    let epochs = cluster.share_epochs();
    assert_eq!(epochs.last(), Some(&("ShareAcknowledge", -1)), "{epochs:?}");
    let acknowledged: Vec<(i64, i64, i8)> = cluster
        .share_acknowledged()
        .into_iter()
        .map(|(_, _, first, last, kind)| (first, last, kind))
        .collect();
    assert_eq!(
        acknowledged,
        vec![(got[0].offset, got[0].offset, ACK_ACCEPT)]
    );
    // Everything else is available again, each record delivered once more at most.
    let mut next = member(config(&cluster), "t").await;
    let rest = poll_n(&mut next, 5).await;
    assert_eq!(offsets(&rest), vec![1, 2, 3, 4, 5]);
    next.close().await.unwrap();
}

fn refused_key(config: ClientConfig) -> String {
    match check(&config.consumer) {
        Err(ConfigError::InvalidValue { key, .. }) | Err(ConfigError::Missing { key }) => key,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn settings_a_share_group_decides_are_refused_by_name() {
    let base = || ClientConfig::new().set("group.id", "g").unwrap();
    for (key, value) in [
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("group.instance.id", "i-1"),
        ("isolation.level", "read_uncommitted"),
        ("group.protocol", "consumer"),
        ("group.remote.assignor", "uniform"),
        ("partition.assignment.strategy", "cooperative-sticky"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "1000"),
    ] {
        assert_eq!(refused_key(base().set(key, value).unwrap()), key);
    }
    assert_eq!(refused_key(ClientConfig::new()), "group.id");
    assert_eq!(check(&base().consumer).unwrap(), "g");
}

#[test]
fn the_mode_and_the_record_limit_come_from_the_properties() {
    let config = ClientConfig::new()
        .set("group.id", "g")
        .unwrap()
        .set("share.acknowledgement.mode", "explicit")
        .unwrap();
    let settings = Settings::of(&config, "g".into());
    assert_eq!(settings.mode, ShareAcknowledgementMode::Explicit);
    assert_eq!(settings.max_poll_records, DEFAULT_MAX_POLL_RECORDS);
    assert_eq!(settings.params.max_records, 500);
    let config = config.set("max.poll.records", 20).unwrap();
    assert_eq!(Settings::of(&config, "g".into()).params.max_records, 20);
    let err = ClientConfig::new()
        .set("share.acknowledgement.mode", "sometimes")
        .unwrap_err();
    assert!(
        err.to_string().contains("share.acknowledgement.mode"),
        "{err}"
    );
    let err = ClientConfig::new()
        .set("share.acquire.mode", "record_limit")
        .unwrap_err();
    assert!(err.to_string().contains("share.acquire.mode"), "{err}");
}

#[test]
fn records_delivered_again_below_those_handed_out_keep_the_offsets_ascending() {
    let mut handed = Handed {
        broker: 1,
        tp: (Arc::from("t"), 0),
        offsets: Vec::new(),
        acks: Vec::new(),
    };
    for offset in [5, 6, 9, 2, 7, 6] {
        insert_sorted(&mut handed, offset);
    }
    assert_eq!(handed.offsets, vec![2, 5, 6, 7, 9]);
    assert_eq!(handed.acks.len(), 5);
}
