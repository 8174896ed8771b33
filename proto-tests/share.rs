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

/// proto-tests/java/ShareReader.java with the Java client of the running broker's jars.
fn java_share_reader(args: &[&str]) -> std::process::Child {
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto-tests/java/ShareReader.java"
    );
    crate::common::java_tool(source, source)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("java runs proto-tests/java/ShareReader.java")
}

/// A record as ShareReader prints it: `(offset, value, delivery count)`.
fn java_record(line: &str) -> Option<(i64, String, i16)> {
    let fields: Vec<&str> = line.strip_prefix("record\t")?.split('\t').collect();
    let [_, offset, value, count] = fields[..] else {
        panic!("ShareReader printed {line:?}");
    };
    Some((
        offset.parse().unwrap(),
        value.to_owned(),
        count.parse().unwrap(),
    ))
}

/// Reads as a member until no record came for `idle` after the first (or 90 s), accepting
/// each (implicit mode); returns the values and their delivery counts.
async fn read_until_idle(config: ClientConfig, topic: String, idle: Duration) -> Vec<(usize, i16)> {
    let mut consumer = ShareConsumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let started = Instant::now();
    let mut last: Option<Instant> = None;
    let mut got = Vec::new();
    while started.elapsed() < Duration::from_secs(90) {
        let batch = consumer.poll(Duration::from_millis(200)).await.unwrap();
        if batch.is_empty() {
            if last.is_some_and(|l| l.elapsed() >= idle) {
                break;
            }
            continue;
        }
        last = Some(Instant::now());
        got.extend(batch.iter().map(|m| (value(m), m.delivery_count.unwrap())));
        // Some work per batch, so that the members take turns.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let results = consumer.commit_sync().await.unwrap();
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    consumer.close().await.unwrap();
    got
}

#[tokio::test]
async fn two_purekafka_members_and_a_java_member_split_a_partition() {
    if !broker_has_share_groups() {
        return older_brokers_say_share_groups_are_unavailable().await;
    }
    const N: usize = 3000;
    let topic = new_topic("share-split", 1).await;
    let group = share_group(&[]).await;
    let b = crate::common::plaintext_addr();
    let java = java_share_reader(&["read", &b, &group, &topic, "3000", "50"]);
    let config = || member(&group).set("max.poll.records", 50).unwrap();
    let idle = Duration::from_secs(3);
    let ours = [
        tokio::spawn(read_until_idle(config(), topic.clone(), idle)),
        tokio::spawn(read_until_idle(config(), topic.clone(), idle)),
    ];
    // Every member in the group before the first record is written.
    let admin = admin().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, described) = admin
            .describe_share_groups(&[&group])
            .await
            .unwrap()
            .remove(0);
        if described.is_ok_and(|d| d.members.len() == 3) {
            break;
        }
        assert!(Instant::now() < deadline, "three members within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Written over about three seconds, as work arriving.
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    for chunk in 0..30 {
        for i in chunk * 100..(chunk + 1) * 100 {
            producer
                .produce(
                    ProducerRecord::new(&topic)
                        .partition(0)
                        .value(i.to_string()),
                )
                .await
                .unwrap();
        }
        producer.flush(Duration::from_secs(30)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    producer.close().await;

    let mut seen: BTreeMap<usize, &str> = BTreeMap::new();
    let mut counts = Vec::new();
    for (name, task) in ["purekafka-1", "purekafka-2"].into_iter().zip(ours) {
        let got = task.await.unwrap();
        assert!(
            got.iter().all(|&(_, count)| count == 1),
            "{name}: delivered twice"
        );
        for (v, _) in &got {
            if let Some(other) = seen.insert(*v, name) {
                panic!("record {v} processed by {other} and {name}");
            }
        }
        counts.push((name, got.len()));
    }
    let java_out = tokio::task::spawn_blocking(move || java.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&java_out.stdout);
    assert!(
        java_out.status.success() && stdout.lines().any(|l| l == "done"),
        "ShareReader failed ({}):\n{stdout}\n{}",
        java_out.status,
        String::from_utf8_lossy(&java_out.stderr)
    );
    let java_records: Vec<(i64, String, i16)> = stdout.lines().filter_map(java_record).collect();
    for (_, v, count) in &java_records {
        assert_eq!(*count, 1, "java: delivered twice");
        let v: usize = v.parse().unwrap();
        if let Some(other) = seen.insert(v, "java") {
            panic!("record {v} processed by {other} and java");
        }
    }
    counts.push(("java", java_records.len()));
    eprintln!("share split of {N} records: {counts:?}");
    assert_eq!(seen.len(), N, "every record processed: {counts:?}");
    assert!(
        counts.iter().all(|&(_, n)| n > 0),
        "each member had some: {counts:?}"
    );
}

#[tokio::test]
async fn records_held_by_a_killed_member_are_delivered_again() {
    if !broker_has_share_groups() {
        return older_brokers_say_share_groups_are_unavailable().await;
    }
    let topic = new_topic("share-kill", 1).await;
    fill(&topic, 10).await;
    let group = share_group(&[("share.record.lock.duration.ms", "2000")]).await;
    let b = crate::common::plaintext_addr();
    let mut java = java_share_reader(&["hold", &b, &group, &topic]);
    // The Java member acquires records, prints them and holds them.
    let stdout = java.stdout.take().unwrap();
    let held = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut held = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line == "holding" {
                return held;
            }
            held.extend(java_record(&line));
        }
        panic!("ShareReader ended before holding anything");
    });
    let held = tokio::time::timeout(Duration::from_secs(60), held)
        .await
        .expect("the Java member holds records within 60 s")
        .unwrap();
    assert!(!held.is_empty());
    // SIGKILL: no acknowledgement, no leaving.
    java.kill().unwrap();
    java.wait().unwrap();
    let killed = Instant::now();
    let mut consumer = ShareConsumer::builder(member(&group))
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let got = poll_until(&mut consumer, 10, Duration::from_secs(30)).await;
    let again = killed.elapsed();
    let counts: BTreeMap<usize, Option<i16>> =
        got.iter().map(|m| (value(m), m.delivery_count)).collect();
    assert_eq!(counts.len(), 10, "{counts:?}");
    for (_, v, _) in &held {
        let v: usize = v.parse().unwrap();
        assert_eq!(counts[&v], Some(2), "record {v} held by the killed member");
    }
    eprintln!(
        "{} records held by a killed member delivered again (count 2) within {:?}",
        held.len(),
        again
    );
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn a_poison_record_is_archived_at_the_delivery_limit() {
    if !broker_has_share_groups() {
        return older_brokers_say_share_groups_are_unavailable().await;
    }
    let topic = new_topic("share-poison", 1).await;
    fill(&topic, 1).await;
    let group = share_group(&[("share.delivery.count.limit", "2")]).await;
    let config = member(&group)
        .set("share.acknowledgement.mode", "explicit")
        .unwrap();
    let mut consumer = ShareConsumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    // Delivered, released, delivered again, released: the limit of two is reached.
    for delivery in 1..=2 {
        let got = poll_until(&mut consumer, 1, Duration::from_secs(30)).await;
        assert_eq!(got.len(), 1, "delivery {delivery}");
        assert_eq!(got[0].delivery_count, Some(delivery));
        consumer
            .acknowledge(&got[0], AcknowledgeType::Release)
            .unwrap();
        let results = consumer.commit_sync().await.unwrap();
        assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    }
    let later = poll_until(&mut consumer, 1, Duration::from_secs(4)).await;
    assert!(
        later.is_empty(),
        "archived, never delivered again: {later:?}"
    );
    consumer.close().await.unwrap();
}
