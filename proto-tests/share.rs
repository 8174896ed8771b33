//! Share groups (KIP-932): Kafka 4.2 and later have them on. Against an older broker each test
//! checks the clear error instead.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use purekafka::{
    AcknowledgeType, AlterConfig, ClientConfig, ConfigResource, Error, Message, Producer,
    ProducerRecord, ShareConsumer,
};

use crate::common::{admin, kafka_version, new_topic, plaintext, unique_topic};

/// Whether the broker under test has share groups on (Kafka 4.2 and later, newly formatted).
pub(crate) fn broker_has_share_groups() -> bool {
    kafka_version() >= (4, 2)
}

/// A new share group that starts at the beginning of each partition, with `extra` group
/// configs (`share.record.lock.duration.ms`, say).
pub(crate) async fn share_group(extra: &[(&str, &str)]) -> String {
    let group = unique_topic("share");
    let mut changes = vec![AlterConfig::Set(
        "share.auto.offset.reset".into(),
        "earliest".into(),
    )];
    changes.extend(
        extra
            .iter()
            .map(|(k, v)| AlterConfig::Set(k.to_string(), v.to_string())),
    );
    let outcomes = admin()
        .await
        .incremental_alter_configs(&[(ConfigResource::Group(group.clone()), changes)])
        .await
        .unwrap();
    for (resource, result) in outcomes {
        result.unwrap_or_else(|e| panic!("group config of {resource}: {e}"));
    }
    group
}

pub(crate) fn member(group: &str) -> ClientConfig {
    plaintext().set("group.id", group).unwrap()
}

/// Writes `n` records `0..n` (values as decimal text) to partition 0 of `topic`.
pub(crate) async fn fill(topic: &str, n: usize) {
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    for i in 0..n {
        producer
            .produce(ProducerRecord::new(topic).partition(0).value(i.to_string()))
            .await
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).await.unwrap();
    producer.close().await;
}

fn value(msg: &Message) -> usize {
    std::str::from_utf8(msg.value.as_deref().unwrap())
        .unwrap()
        .parse()
        .unwrap()
}

/// Polls until `n` records came or `within` passed.
async fn poll_until(consumer: &mut ShareConsumer, n: usize, within: Duration) -> Vec<Message> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        out.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    out
}

/// Where share groups are not available, the first poll says so.
async fn older_brokers_say_share_groups_are_unavailable() {
    let topic = new_topic("share-old", 1).await;
    let mut consumer = ShareConsumer::builder(member(&unique_topic("share")))
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        consumer.poll(Duration::from_secs(8)),
    )
    .await
    .expect("an answer within 10 s")
    .unwrap_err();
    assert!(
        matches!(err, Error::ShareGroupsUnavailable { .. }),
        "unexpected {err:?}"
    );
    assert!(err.to_string().contains("share groups"), "{err}");
}

#[tokio::test]
async fn a_share_consumer_reads_every_record_once_and_accepts_it() {
    if !broker_has_share_groups() {
        return older_brokers_say_share_groups_are_unavailable().await;
    }
    let topic = new_topic("share-rt", 1).await;
    fill(&topic, 200).await;
    let group = share_group(&[]).await;
    let mut consumer = ShareConsumer::builder(member(&group))
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let got = poll_until(&mut consumer, 200, Duration::from_secs(30)).await;
    let values: BTreeSet<usize> = got.iter().map(value).collect();
    assert_eq!(values.len(), 200, "every record once");
    assert_eq!(got.len(), 200, "none twice");
    assert!(got.iter().all(|m| m.delivery_count == Some(1)));
    assert!(consumer.acquisition_lock_timeout().is_some());
    // Implicit mode: the commit accepts what the polls handed out.
    let results = consumer.commit_sync().await.unwrap();
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    consumer.close().await.unwrap();

    // Accepted: another member of the group finds nothing left.
    let mut again = ShareConsumer::builder(member(&group))
        .build()
        .await
        .unwrap();
    again.subscribe(&[&topic]).unwrap();
    let left = poll_until(&mut again, 1, Duration::from_secs(4)).await;
    assert!(left.is_empty(), "accepted records came again: {left:?}");
    again.close().await.unwrap();
}

#[tokio::test]
async fn explicit_mode_refuses_a_poll_with_records_unacknowledged() {
    if !broker_has_share_groups() {
        return older_brokers_say_share_groups_are_unavailable().await;
    }
    let topic = new_topic("share-explicit", 1).await;
    fill(&topic, 10).await;
    let group = share_group(&[]).await;
    let config = member(&group)
        .set("share.acknowledgement.mode", "explicit")
        .unwrap();
    let mut consumer = ShareConsumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let got = poll_until(&mut consumer, 1, Duration::from_secs(30)).await;
    assert!(!got.is_empty());
    let err = consumer.poll(Duration::from_millis(10)).await.unwrap_err();
    match &err {
        Error::State { call, state } => {
            assert_eq!(*call, "poll");
            assert_eq!(
                state,
                "All records must be acknowledged in explicit acknowledgement mode."
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // The records stay acknowledgeable; acknowledged, the next poll goes ahead.
    for msg in &got {
        consumer.acknowledge(msg, AcknowledgeType::Accept).unwrap();
    }
    consumer.poll(Duration::from_millis(10)).await.unwrap();
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn release_delivers_again_and_reject_archives() {
    if !broker_has_share_groups() {
        return older_brokers_say_share_groups_are_unavailable().await;
    }
    let topic = new_topic("share-release", 1).await;
    fill(&topic, 2).await;
    let group = share_group(&[]).await;
    let config = member(&group)
        .set("share.acknowledgement.mode", "explicit")
        .unwrap();
    let mut consumer = ShareConsumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let first = poll_until(&mut consumer, 2, Duration::from_secs(30)).await;
    assert_eq!(first.iter().map(value).collect::<Vec<_>>(), vec![0, 1]);
    // Record 0 released, record 1 rejected.
    consumer
        .acknowledge(&first[0], AcknowledgeType::Release)
        .unwrap();
    consumer
        .acknowledge(&first[1], AcknowledgeType::Reject)
        .unwrap();
    let results = consumer.commit_sync().await.unwrap();
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    let again = poll_until(&mut consumer, 1, Duration::from_secs(15)).await;
    let redelivered: BTreeMap<usize, Option<i16>> =
        again.iter().map(|m| (value(m), m.delivery_count)).collect();
    assert_eq!(redelivered, BTreeMap::from([(0, Some(2))]));
    for msg in &again {
        consumer.acknowledge(msg, AcknowledgeType::Accept).unwrap();
    }
    // The rejected record never comes back.
    let later = poll_until(&mut consumer, 1, Duration::from_secs(3)).await;
    assert!(later.is_empty(), "{later:?}");
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn admin_lists_describes_resets_and_deletes_share_groups() {
    if !broker_has_share_groups() {
        let err = admin()
            .await
            .describe_share_groups(&["no-such-group"])
            .await
            .unwrap()
            .remove(0)
            .1
            .unwrap_err();
        assert!(
            matches!(err, Error::ShareGroupsUnavailable { .. }),
            "unexpected {err:?}"
        );
        return;
    }
    let topic = new_topic("share-admin", 2).await;
    fill(&topic, 10).await;
    let group = share_group(&[]).await;
    let admin = admin().await;
    let mut consumer = ShareConsumer::builder(member(&group))
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let got = poll_until(&mut consumer, 10, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 10);
    let results = consumer.commit_sync().await.unwrap();
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");

    // Listed, and described with its member and both partitions.
    let listed = admin.list_share_groups().await.unwrap();
    let listing = listed.iter().find(|g| g.group_id == group).expect("listed");
    assert_eq!(
        listing
            .group_type
            .as_deref()
            .map(str::to_lowercase)
            .as_deref(),
        Some("share")
    );
    let (_, described) = admin
        .describe_share_groups(&[&group])
        .await
        .unwrap()
        .remove(0);
    let described = described.unwrap();
    assert_eq!(described.state, "Stable");
    assert_eq!(described.members.len(), 1);
    assert_eq!(described.members[0].subscribed_topics, vec![topic.clone()]);
    assert_eq!(
        described.members[0].assignment,
        vec![(topic.clone(), vec![0, 1])]
    );
    // The group reads partition 0 (Kafka stores where it starts when it next writes the
    // partition's state, so it may still say 0 here).
    let start = |offsets: &[purekafka::PartitionOutcome<purekafka::ShareGroupOffset>]| {
        offsets
            .iter()
            .find(|(tp, _)| *tp == (topic.clone(), 0))
            .map(|(_, r)| r.as_ref().unwrap().start_offset)
    };
    let offsets = admin.list_share_group_offsets(&group).await.unwrap();
    assert!(
        start(&offsets).is_some_and(|o| (0..=10).contains(&o)),
        "{offsets:?}"
    );

    // A group with a member can be neither reset nor deleted.
    let err = admin
        .alter_share_group_offsets(&group, &[(&topic, 0, 0)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NonEmptyGroup"), "{err}");
    consumer.close().await.unwrap();

    // Empty: back to offset 3, and the records from 3 on are delivered again.
    let reset = admin
        .alter_share_group_offsets(&group, &[(&topic, 0, 3)])
        .await
        .unwrap();
    assert!(reset.iter().all(|(_, r)| r.is_ok()), "{reset:?}");
    let offsets = admin.list_share_group_offsets(&group).await.unwrap();
    assert_eq!(start(&offsets), Some(3), "{offsets:?}");
    let mut again = ShareConsumer::builder(member(&group))
        .build()
        .await
        .unwrap();
    again.subscribe(&[&topic]).unwrap();
    let redone: BTreeSet<usize> = poll_until(&mut again, 7, Duration::from_secs(30))
        .await
        .iter()
        .map(value)
        .collect();
    assert_eq!(redone, (3..10).collect());
    again.commit_sync().await.unwrap();
    again.close().await.unwrap();

    let forgotten = admin
        .delete_share_group_offsets(&group, &[&topic])
        .await
        .unwrap();
    assert!(forgotten.iter().all(|(_, r)| r.is_ok()), "{forgotten:?}");
    let deleted = admin.delete_groups(&[&group]).await.unwrap();
    assert!(deleted.iter().all(|(_, r)| r.is_ok()), "{deleted:?}");
    let (_, gone) = admin
        .describe_share_groups(&[&group])
        .await
        .unwrap()
        .remove(0);
    assert!(
        gone.as_ref().map_or(true, |d| d.state == "Dead"),
        "{gone:?}"
    );
}
