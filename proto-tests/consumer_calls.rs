//! The consumer calls a librdkafka program makes, against the real broker: committed offsets,
//! offsets by time and watermarks on demand, offsets stored by the application
//! (`enable.auto.offset.store=false`), single-message commits and commits while streaming,
//! incremental assignment, `enable.partition.eof` and `max.poll.records`.

use std::time::Duration;

use futures_util::StreamExt;
use purekafka::{ClientConfig, Consumer, Error, Offset, Producer, ProducerRecord};

use crate::common::{admin, new_topic, plaintext, unique_topic};

const WAIT: Duration = Duration::from_secs(10);

/// A topic of `partitions` partitions with `n` records in each, timestamped 1000, 2000, ….
async fn topic_with(partitions: i32, n: i64) -> String {
    let topic = new_topic("calls", partitions).await;
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    for p in 0..partitions {
        for i in 0..n {
            let record = ProducerRecord::new(&topic)
                .partition(p)
                .timestamp((i + 1) * 1000)
                .value(format!("{p}-{i}"));
            producer.send(record).await.unwrap();
        }
    }
    producer.close().await;
    topic
}

fn grouped(group: &str, settings: &[(&str, &str)]) -> ClientConfig {
    let mut config = plaintext()
        .group_id(group)
        .set("auto.offset.reset", "earliest")
        .unwrap();
    for (key, value) in settings {
        config = config.set(key, value).unwrap();
    }
    config
}

async fn recv(consumer: &mut Consumer) -> Result<purekafka::Message, Error> {
    tokio::time::timeout(WAIT, consumer.recv())
        .await
        .expect("a message in time")
}

#[tokio::test]
async fn committed_offsets_for_times_and_watermarks_on_demand() {
    let topic = topic_with(2, 3).await;
    let group = unique_topic("calls-group");
    let mut consumer = Consumer::builder(grouped(&group, &[("enable.auto.commit", "false")]))
        .build()
        .await
        .unwrap();
    let partitions = [(topic.as_str(), 0), (topic.as_str(), 1)];
    assert_eq!(
        consumer.committed(&partitions, WAIT).await.unwrap(),
        [(topic.clone(), 0, None), (topic.clone(), 1, None)]
    );
    // An assigned consumer commits as no member of its group.
    consumer
        .assign([(&*topic, 0)], Offset::Earliest)
        .await
        .unwrap();
    let first = recv(&mut consumer).await.unwrap();
    assert_eq!(consumer.position(&topic, 0), Some(1));
    consumer.commit_message(&first).await.unwrap();
    assert_eq!(
        consumer.committed(&partitions, WAIT).await.unwrap(),
        [(topic.clone(), 0, Some(1)), (topic.clone(), 1, None)]
    );
    let by_admin = admin()
        .await
        .committed_offsets(&group, &topic)
        .await
        .unwrap();
    assert_eq!(by_admin, [(0, Some(1)), (1, None)]);

    let times = [
        (topic.as_str(), 0, 0),
        (topic.as_str(), 0, 1500),
        (topic.as_str(), 1, 3000),
        (topic.as_str(), 1, 3001),
    ];
    assert_eq!(
        consumer.offsets_for_times(&times, WAIT).await.unwrap(),
        [
            (topic.clone(), 0, Some(0)),
            (topic.clone(), 0, Some(1)),
            (topic.clone(), 1, Some(2)),
            (topic.clone(), 1, None),
        ]
    );
    // Any partition, assigned or not.
    assert_eq!(
        consumer.fetch_watermarks(&topic, 1, WAIT).await.unwrap(),
        (0, 3)
    );
    // Another assigned consumer of the group starts where it committed (Go's OffsetStored),
    // and, where it committed nothing, as auto.offset.reset says (earliest).
    let mut next = Consumer::builder(grouped(&group, &[]))
        .build()
        .await
        .unwrap();
    let stored = [(&*topic, 0, Offset::Stored), (&*topic, 1, Offset::Stored)];
    next.incremental_assign(&stored).await.unwrap();
    assert_eq!(next.position(&topic, 0), Some(1));
    assert_eq!(next.position(&topic, 1), Some(0));
    let missing = consumer
        .fetch_watermarks(&topic, 7, WAIT)
        .await
        .unwrap_err();
    assert_eq!(
        missing.topic_partition(),
        Some((topic.as_str(), Some(7))),
        "{missing:?}"
    );
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn only_stored_offsets_are_committed_without_the_automatic_store() {
    let topic = topic_with(1, 4).await;
    let group = unique_topic("calls-store");
    let config = grouped(
        &group,
        &[
            ("enable.auto.offset.store", "false"),
            ("enable.auto.commit", "false"),
        ],
    );
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut read = Vec::new();
    for _ in 0..4 {
        read.push(recv(&mut consumer).await.unwrap());
    }
    // All four were handed out; only the second was processed and stored.
    assert_eq!(consumer.position(&topic, 0), Some(4));
    consumer.store_offset(&read[1]).unwrap();
    consumer.commit().await.unwrap();
    let committed = consumer.committed(&[(&topic, 0)], WAIT).await.unwrap();
    assert_eq!(committed, [(topic.clone(), 0, Some(2))]);
    let not_assigned = consumer.store_offsets(&[(&topic, 5, 1)]).unwrap_err();
    assert!(
        matches!(not_assigned, Error::NotAssigned { partition: 5, .. }),
        "{not_assigned:?}"
    );
    consumer.close().await.unwrap();
    // The next member starts after what was stored, not after what was handed out.
    let mut next = Consumer::builder(grouped(&group, &[]))
        .build()
        .await
        .unwrap();
    next.subscribe(&[&topic]).unwrap();
    assert_eq!(recv(&mut next).await.unwrap().offset, 2);
    next.close().await.unwrap();
}

#[tokio::test]
async fn a_stream_commits_while_it_reads_and_gives_the_consumer_back() {
    let topic = topic_with(1, 3).await;
    let group = unique_topic("calls-stream");
    let mut consumer = Consumer::builder(grouped(&group, &[("enable.auto.commit", "false")]))
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    {
        let mut messages = consumer.stream();
        for _ in 0..3 {
            let msg = tokio::time::timeout(WAIT, messages.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let consumer = messages.consumer().expect("between messages");
            consumer.commit_message(&msg).await.unwrap();
        }
        // A timeout around next(): the stream is dropped while it waits.
        let idle = tokio::time::timeout(Duration::from_millis(300), messages.next()).await;
        assert!(idle.is_err(), "no fourth message");
    }
    let committed = consumer.committed(&[(&topic, 0)], WAIT).await.unwrap();
    assert_eq!(committed, [(topic.clone(), 0, Some(3))]);
    // The consumer is whole: it reads what comes next.
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    producer
        .send(ProducerRecord::new(&topic).partition(0).value("later"))
        .await
        .unwrap();
    assert_eq!(recv(&mut consumer).await.unwrap().offset, 3);
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn partitions_are_assigned_and_unassigned_one_by_one() {
    let topic = topic_with(3, 2).await;
    let mut consumer = Consumer::builder(plaintext()).build().await.unwrap();
    consumer
        .incremental_assign(&[(&*topic, 0, Offset::Earliest)])
        .await
        .unwrap();
    consumer
        .incremental_assign(&[(&*topic, 1, Offset::At(1)), (&*topic, 2, Offset::Latest)])
        .await
        .unwrap();
    let mut assigned = consumer.assignment();
    assigned.sort();
    assert_eq!(
        assigned,
        [(topic.clone(), 0), (topic.clone(), 1), (topic.clone(), 2)]
    );
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = recv(&mut consumer).await.unwrap();
        got.push((m.partition, m.offset));
    }
    got.sort();
    // Partition 0 from its start, 1 from offset 1, 2 from its end (nothing).
    assert_eq!(got, [(0, 0), (0, 1), (1, 1)]);
    consumer.incremental_unassign(&[(&*topic, 0)]).unwrap();
    assert_eq!(consumer.position(&topic, 0), None);
    let err = consumer.incremental_unassign(&[(&*topic, 0)]).unwrap_err();
    assert!(matches!(err, Error::NotAssigned { .. }), "{err:?}");
    // assign replaces the assignment, as librdkafka's does.
    consumer
        .assign([(&*topic, 2)], Offset::Earliest)
        .await
        .unwrap();
    assert_eq!(consumer.assignment(), [(topic.clone(), 2)]);
    assert_eq!(recv(&mut consumer).await.unwrap().partition, 2);
    consumer.unassign().unwrap();
    assert!(consumer.assignment().is_empty());
    // A subscribed consumer's partitions are the group's to assign.
    let mut member = Consumer::builder(grouped(&unique_topic("g"), &[]))
        .build()
        .await
        .unwrap();
    member.subscribe(&[&topic]).unwrap();
    assert!(member.unassign().is_err());
    member.close().await.unwrap();
}

#[tokio::test]
async fn the_end_of_a_partition_is_reported_once_per_offset_reached() {
    let topic = topic_with(2, 2).await;
    let config = plaintext().set("enable.partition.eof", "true").unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer
        .assign([(&*topic, 0), (&*topic, 1)], Offset::Earliest)
        .await
        .unwrap();
    let mut messages = 0;
    let mut ends = Vec::new();
    while ends.len() < 2 {
        match recv(&mut consumer).await {
            Ok(_) => messages += 1,
            Err(Error::PartitionEof {
                topic: t,
                partition,
                offset,
            }) => {
                assert_eq!(t, topic);
                ends.push((partition, offset));
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    ends.sort();
    assert_eq!((messages, ends), (4, vec![(0, 2), (1, 2)]));
    // Nothing more: no end reported again.
    let idle = tokio::time::timeout(Duration::from_millis(800), consumer.recv()).await;
    assert!(idle.is_err(), "{idle:?}");
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    producer
        .send(ProducerRecord::new(&topic).partition(1).value("more"))
        .await
        .unwrap();
    assert_eq!(recv(&mut consumer).await.unwrap().offset, 2);
    let again = recv(&mut consumer).await.unwrap_err();
    assert!(
        matches!(
            again,
            Error::PartitionEof {
                partition: 1,
                offset: 3,
                ..
            }
        ),
        "{again:?}"
    );
    assert!(again.is_retriable());
}

#[tokio::test]
async fn poll_returns_at_most_max_poll_records() {
    let topic = topic_with(1, 5).await;
    let config = plaintext().set("max.poll.records", "2").unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer
        .assign([(&*topic, 0)], Offset::Earliest)
        .await
        .unwrap();
    let mut sizes = Vec::new();
    let mut total = 0;
    while total < 5 {
        let batch = consumer.poll(WAIT).await.unwrap();
        assert!(!batch.is_empty());
        total += batch.len();
        sizes.push(batch.len());
    }
    assert!(sizes.iter().all(|&n| n <= 2), "{sizes:?}");
    assert_eq!(consumer.position(&topic, 0), Some(5));
}
