//! The admin client: topics, partitions, the cluster, groups and their offsets. What it changes
//! is checked through the clients it affects where it can be: a record produced to a partition
//! it added, a member starting where it moved the offsets.

use std::time::Duration;

use purekafka::{Consumer, Error, NewTopic, Producer, ProducerRecord};

use crate::common::{admin, plaintext, plaintext_addr, unique_topic};
use crate::consumer_group::member;

#[tokio::test]
async fn create_then_delete() {
    let admin = admin().await;
    let topic = unique_topic("admin");
    admin.create_topic(&topic, 3, 1).await.unwrap();
    let err = admin.create_topic(&topic, 3, 1).await.unwrap_err();
    assert_eq!(err.kafka_code().map(|c| c.code()), Some(36), "{err}");
    assert!(!admin.create_topic_if_missing(&topic, 3, 1).await.unwrap());
    admin.delete_topic(&topic).await.unwrap();
    let err = admin.delete_topic(&topic).await.unwrap_err();
    assert_eq!(err.kafka_code().map(|c| c.code()), Some(3), "{err}");
}

#[tokio::test]
async fn producing_to_a_missing_topic_is_an_error_not_a_hang() {
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    let topic = unique_topic("missing");
    let err = producer
        .send(ProducerRecord::new(&topic).value("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTopicOrPartition { topic: t, partition: None } if *t == topic),
        "{err:?}"
    );
}

/// The Kafka error code of an outcome.
fn code<T: std::fmt::Debug>(result: &Result<T, Error>) -> Option<i16> {
    match result {
        Err(e) => e.kafka_code().map(|c| c.code()),
        Ok(_) => None,
    }
}

#[tokio::test]
async fn topics_are_created_listed_described_grown_and_deleted_one_outcome_each() {
    let admin = admin().await;
    let (a, b, existing) = (unique_topic("ta"), unique_topic("tb"), unique_topic("tc"));
    admin.create_topic(&existing, 1, 1).await.unwrap();

    let created = admin
        .create_topics(&[
            NewTopic::new(&a, 3, 1).config("retention.ms", "3600000"),
            NewTopic::new(&existing, 1, 1),
            NewTopic::new(&b, 1, 1),
            // One broker cannot hold three copies.
            NewTopic::new(unique_topic("td"), 1, 3),
        ])
        .await
        .unwrap();
    let names: Vec<&str> = created.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..3], [a.as_str(), existing.as_str(), b.as_str()]);
    assert!(created[0].1.is_ok() && created[2].1.is_ok(), "{created:?}");
    assert_eq!(code(&created[1].1), Some(36), "TOPIC_ALREADY_EXISTS");
    assert_eq!(code(&created[3].1), Some(38), "INVALID_REPLICATION_FACTOR");

    let listed = admin.list_topics().await.unwrap();
    let listing = listed.iter().find(|t| t.name == a).expect("a is listed");
    assert_eq!((listing.partitions, listing.internal), (3, false));
    assert!(listed.windows(2).all(|w| w[0].name < w[1].name), "sorted");

    let described = admin
        .describe_topics(&[&a, "no-such-topic-x"])
        .await
        .unwrap();
    let topic = described[0].1.as_ref().unwrap();
    assert_eq!(topic.partitions.len(), 3);
    let cluster = admin.describe_cluster().await.unwrap();
    let broker = cluster.brokers[0].id;
    for p in &topic.partitions {
        assert_eq!(
            (p.leader, &p.replicas, &p.isr),
            (Some(broker), &vec![broker], &vec![broker])
        );
    }
    assert_eq!(
        topic.topic_id.as_deref().map(str::len),
        listing.topic_id.as_deref().map(str::len)
    );
    assert!(
        matches!(described[1].1, Err(Error::UnknownTopicOrPartition { .. })),
        "{described:?}"
    );

    // Grow a to 5; shrinking b is refused. A record goes to a new partition.
    let grown = admin.create_partitions(&[(&a, 5), (&b, 1)]).await.unwrap();
    assert!(grown[0].1.is_ok(), "{grown:?}");
    assert_eq!(code(&grown[1].1), Some(37), "INVALID_PARTITIONS");
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    let sent = producer
        .send(
            ProducerRecord::new(&a)
                .partition(4)
                .value("on the new partition"),
        )
        .await
        .unwrap();
    assert_eq!((sent.partition, sent.offset), (4, Some(0)));
    producer.close().await;

    let deleted = admin
        .delete_topics(&[&a, &b, &existing, "no-such-topic-y"])
        .await
        .unwrap();
    assert!(deleted[..3].iter().all(|(_, r)| r.is_ok()), "{deleted:?}");
    assert_eq!(code(&deleted[3].1), Some(3), "UNKNOWN_TOPIC_OR_PARTITION");
    let listed = admin.list_topics().await.unwrap();
    assert!(!listed.iter().any(|t| t.name == a || t.name == b));
}

#[tokio::test]
async fn the_cluster_describes_itself() {
    let cluster = admin().await.describe_cluster().await.unwrap();
    assert!(cluster
        .cluster_id
        .as_deref()
        .is_some_and(|id| !id.is_empty()));
    let first = plaintext_addr().split(',').next().unwrap().to_owned();
    assert!(
        cluster
            .brokers
            .iter()
            .any(|b| format!("{}:{}", b.host, b.port) == first),
        "{cluster:?} advertises {first}"
    );
    let controller = cluster.controller.expect("a controller");
    assert!(cluster.brokers.iter().any(|b| b.id == controller));
}

/// A group of one member that read `topic` (3 partitions, 5 records each), then left having
/// committed.
async fn a_group_that_read(topic: &str, group: &str, protocol: &str) {
    admin().await.create_topic(topic, 3, 1).await.unwrap();
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    for p in 0..3 {
        for i in 0..5 {
            producer
                .send(
                    ProducerRecord::new(topic)
                        .partition(p)
                        .value(format!("{i}")),
                )
                .await
                .unwrap();
        }
    }
    producer.close().await;
    let mut consumer = Consumer::builder(member(group).set("group.protocol", protocol).unwrap())
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    for _ in 0..15 {
        tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a record within 30 s")
            .unwrap();
    }
    consumer.close().await.unwrap();
}

/// A member of `group` on `topic` (`group.protocol` `protocol`), once it holds all 3 partitions.
async fn active_member(topic: &str, group: &str, protocol: &str) -> Consumer {
    let config = member(group).set("group.protocol", protocol).unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[topic]).unwrap();
    for _ in 0..300 {
        let _ = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await;
        if consumer.assignment().len() == 3 {
            return consumer;
        }
    }
    panic!(
        "the member of {group} holds {:?} after 30 s",
        consumer.assignment()
    );
}

/// Where a new member of `group` starts on each partition of `topic`, reading until it has one
/// record from each.
async fn first_offsets(topic: &str, group: &str) -> Vec<i64> {
    let mut consumer = Consumer::builder(member(group)).build().await.unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut first = [None; 3];
    while first.iter().any(Option::is_none) {
        let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a record within 30 s")
            .unwrap();
        first[msg.partition as usize].get_or_insert(msg.offset);
    }
    consumer.close().await.unwrap();
    first.iter().map(|o| o.unwrap()).collect()
}

#[tokio::test]
async fn a_group_is_listed_described_its_offsets_altered_and_deleted() {
    let admin = admin().await;
    let (topic, group) = (unique_topic("gt"), unique_topic("admin-group"));
    a_group_that_read(&topic, &group, "classic").await;

    let listed = admin.list_groups().await.unwrap();
    let listing = listed.iter().find(|g| g.group_id == group).expect("listed");
    assert_eq!(listing.protocol_type, "consumer");
    if let Some(state) = &listing.state {
        assert_eq!(state, "Empty");
    }

    let offsets = admin.list_group_offsets(&group).await.unwrap();
    let committed: Vec<((String, i32), i64)> = offsets
        .iter()
        .map(|(tp, r)| (tp.clone(), r.as_ref().unwrap().offset))
        .collect();
    let expected: Vec<((String, i32), i64)> = (0..3).map(|p| ((topic.clone(), p), 5)).collect();
    assert_eq!(committed, expected);

    // Back to 1 on partition 0, 3 on partition 1; partition 2's offset goes. A member then
    // starts there (and, where nothing is committed, at auto.offset.reset=earliest).
    let altered = admin
        .alter_group_offsets(&group, &[(&topic, 0, 1), (&topic, 1, 3)])
        .await
        .unwrap();
    assert!(altered.iter().all(|(_, r)| r.is_ok()), "{altered:?}");
    let deleted = admin
        .delete_group_offsets(&group, &[(&topic, 2)])
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].1.is_ok(), "{deleted:?}");
    assert_eq!(first_offsets(&topic, &group).await, [1, 3, 0]);

    // While a member is in the group, its offsets are its own.
    let consumer = active_member(&topic, &group, "classic").await;
    let described = admin
        .describe_groups(&[&group, "no-such-group-z"])
        .await
        .unwrap();
    let description = described[0].1.as_ref().unwrap();
    assert_eq!(
        (
            description.state.as_str(),
            description.protocol_type.as_str()
        ),
        ("Stable", "consumer")
    );
    assert_eq!(description.assignor, "range");
    assert_eq!(description.members.len(), 1);
    let mut assigned = description.members[0].assignment.clone();
    assigned.iter_mut().for_each(|(_, ps)| ps.sort_unstable());
    assert_eq!(assigned, [(topic.clone(), vec![0, 1, 2])]);
    assert_eq!(
        description.coordinator,
        admin.describe_cluster().await.unwrap().brokers[0].id
    );
    match &described[1].1 {
        Ok(unknown) => assert_eq!(unknown.state, "Dead", "older brokers: {unknown:?}"),
        Err(e) => assert_eq!(e.kafka_code().map(|c| c.code()), Some(69), "{e}"),
    }
    let refused = admin
        .alter_group_offsets(&group, &[(&topic, 0, 0)])
        .await
        .unwrap();
    assert_eq!(
        code(&refused[0].1),
        Some(25),
        "UNKNOWN_MEMBER_ID: {refused:?}"
    );
    let refused = admin.delete_groups(&[&group]).await.unwrap();
    assert_eq!(
        code(&refused[0].1),
        Some(68),
        "NON_EMPTY_GROUP: {refused:?}"
    );
    consumer.close().await.unwrap();

    let deleted = admin
        .delete_groups(&[&group, "no-such-group-z"])
        .await
        .unwrap();
    assert!(deleted[0].1.is_ok(), "{deleted:?}");
    assert_eq!(code(&deleted[1].1), Some(69), "GROUP_ID_NOT_FOUND");
    assert!(admin.list_group_offsets(&group).await.unwrap().is_empty());
    admin.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn a_kip848_group_is_described_with_its_assignment() {
    let admin = admin().await;
    let kip848 = crate::common::broker_has_kip848().await;
    let (topic, group) = (unique_topic("gk"), unique_topic("admin-kip848"));
    if !kip848 {
        // No KIP-848 group to describe where the broker does not serve them: joining one fails
        // by name.
        return crate::kip848::older_brokers_name_the_setting().await;
    }
    a_group_that_read(&topic, &group, "consumer").await;
    let consumer = active_member(&topic, &group, "consumer").await;
    let listed = admin.list_groups().await.unwrap();
    let listing = listed.iter().find(|g| g.group_id == group).expect("listed");
    assert_eq!(listing.group_type.as_deref(), Some("consumer"));
    let described = admin.describe_groups(&[&group]).await.unwrap();
    let description = described[0].1.as_ref().unwrap();
    assert_eq!(description.members.len(), 1);
    assert_eq!(description.members[0].assignment.len(), 1);
    assert_eq!(description.members[0].assignment[0].1.len(), 3);
    assert!(!description.assignor.is_empty());
    consumer.close().await.unwrap();
    admin.delete_topic(&topic).await.unwrap();
}
