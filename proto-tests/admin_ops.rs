//! The admin calls operators reach for when something goes wrong: offsets by time and the log's
//! ends, a group's lag seen from outside (checked against Kafka's own kafka-consumer-groups),
//! record deletion, topic and broker configurations, log directories, and ACLs, whose effect is
//! checked on a SASL client they allow or deny.

use std::time::{Duration, Instant};

use purekafka::{
    AclBinding, AclFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
    AlterConfig, ConfigResource, ConfigSource, Error, IsolationLevel, OffsetSpec, Producer,
    ProducerRecord,
};

use crate::common::{admin, ckafka, java_tool, kafka_version, new_topic, plaintext};
use crate::consumer_group::member;

fn code<T: std::fmt::Debug>(result: &Result<T, Error>) -> Option<i16> {
    result
        .as_ref()
        .err()
        .and_then(|e| e.kafka_code())
        .map(|c| c.code())
}

/// Writes `counts[p]` records to each partition `p` of `topic`.
async fn produce_to(topic: &str, counts: &[usize]) {
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    for (p, &n) in counts.iter().enumerate() {
        for i in 0..n {
            let record = ProducerRecord::new(topic).partition(p as i32);
            producer.send(record.value(format!("{i}"))).await.unwrap();
        }
    }
    producer.close().await;
}

/// A second, in ms, well in the past: the records' timestamps count from it.
const T0: i64 = 1_700_000_000_000;

#[tokio::test]
async fn offsets_are_listed_by_time_and_records_deleted() {
    let admin = admin().await;
    let topic = new_topic("offs", 2).await;
    // Partition 0: ten records a second apart, but the sixth carries the latest time.
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    for i in 0..10i64 {
        let at = if i == 5 { T0 + 60_000 } else { T0 + i * 1000 };
        let record = ProducerRecord::new(&topic).partition(0).timestamp(at);
        producer.send(record.value(format!("{i}"))).await.unwrap();
    }
    producer.close().await;

    let asked = [
        (topic.as_str(), 0, OffsetSpec::Earliest),
        (topic.as_str(), 0, OffsetSpec::Latest),
        (topic.as_str(), 0, OffsetSpec::Timestamp(T0 + 3000)),
        (topic.as_str(), 0, OffsetSpec::Timestamp(T0 + 3500)),
        (topic.as_str(), 0, OffsetSpec::Timestamp(T0 + 120_000)),
        (topic.as_str(), 1, OffsetSpec::Latest),
        ("no-such-topic-offs", 0, OffsetSpec::Latest),
        // Asked twice: answered twice (Kafka refuses a request naming a partition twice).
        (topic.as_str(), 0, OffsetSpec::Latest),
    ];
    let listed = admin
        .list_offsets(&asked, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    let offsets: Vec<Option<i64>> = listed[..6]
        .iter()
        .map(|(_, r)| r.as_ref().unwrap().map(|o| o.offset))
        .collect();
    // 3.5 s finds the first record at or after it: the fifth (4.0 s), not the fourth.
    assert_eq!(
        offsets,
        [Some(0), Some(10), Some(3), Some(4), None, Some(0)],
        "{listed:?}"
    );
    let by_time = listed[2].1.as_ref().unwrap().unwrap();
    assert_eq!(by_time.timestamp, Some(T0 + 3000));
    assert_eq!(listed[1].1.as_ref().unwrap().unwrap().timestamp, None);
    assert_eq!(listed[6].0, ("no-such-topic-offs".to_owned(), 0));
    assert!(
        matches!(listed[6].1, Err(Error::UnknownTopicOrPartition { .. })),
        "{:?}",
        listed[6].1
    );
    assert_eq!(listed[7].1.as_ref().unwrap().unwrap().offset, 10);

    // The record with the largest timestamp, from ListOffsets v7 (Kafka 3.0).
    let max = admin
        .list_offsets(
            &[(&topic, 0, OffsetSpec::MaxTimestamp)],
            IsolationLevel::ReadUncommitted,
        )
        .await
        .unwrap();
    match &max[0].1 {
        Ok(found) if kafka_version() >= (3, 0) => {
            let found = found.unwrap();
            assert_eq!((found.offset, found.timestamp), (5, Some(T0 + 60_000)));
        }
        Err(Error::UnsupportedApi { .. }) if kafka_version() < (3, 0) => {}
        other => panic!("max timestamp on Kafka {:?}: {other:?}", kafka_version()),
    }

    // Deleting moves the log start; past the high watermark is refused; -1 deletes all.
    let deleted = admin
        .delete_records(&[(&topic, 0, 4), (&topic, 1, 5)])
        .await
        .unwrap();
    assert_eq!(deleted[0].1.as_ref().ok(), Some(&4), "{deleted:?}");
    assert_eq!(
        code(&deleted[1].1),
        Some(1),
        "OFFSET_OUT_OF_RANGE: {deleted:?}"
    );
    let earliest = admin
        .list_offsets(
            &[(&topic, 0, OffsetSpec::Earliest)],
            IsolationLevel::ReadUncommitted,
        )
        .await
        .unwrap();
    assert_eq!(earliest[0].1.as_ref().unwrap().unwrap().offset, 4);
    let all = admin.delete_records(&[(&topic, 0, -1)]).await.unwrap();
    assert_eq!(all[0].1.as_ref().ok(), Some(&10), "{all:?}");
    admin.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn a_groups_lag_is_what_kafka_consumer_groups_reports() {
    let admin = admin().await;
    let topic = new_topic("lag", 3).await;
    let group = crate::common::unique_topic("lag-group");
    // 4 records on each partition; the group reads them and commits; then 2, 5 and 0 more.
    produce_to(&topic, &[4, 4, 4]).await;
    let mut consumer = purekafka::Consumer::builder(member(&group))
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    for _ in 0..12 {
        tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a record within 30 s")
            .unwrap();
    }
    consumer.commit().await.unwrap();
    consumer.close().await.unwrap();
    produce_to(&topic, &[2, 5, 0]).await;

    let lag = admin.group_lag(&group).await.unwrap();
    let ours: Vec<(i32, Option<i64>, i64, Option<i64>)> = lag
        .iter()
        .map(|((t, p), r)| {
            assert_eq!(t, &topic);
            let l = r.as_ref().unwrap();
            (*p, l.committed, l.log_end, l.lag)
        })
        .collect();
    assert_eq!(
        ours,
        [
            (0, Some(4), 6, Some(2)),
            (1, Some(4), 9, Some(5)),
            (2, Some(4), 4, Some(0))
        ]
    );

    // Kafka's own tool, from its jars: PARTITION, CURRENT-OFFSET, LOG-END-OFFSET, LAG columns.
    let out = java_tool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "kafka.admin.ConsumerGroupCommand",
    )
    .args([
        "--bootstrap-server",
        &crate::common::plaintext_addr(),
        "--describe",
        "--group",
        &group,
    ])
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut theirs: Vec<(i32, Option<i64>, i64, Option<i64>)> = text
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let at = cols.iter().position(|c| *c == topic)?;
            let num = |c: &str| c.parse::<i64>().ok();
            Some((
                cols[at + 1].parse().ok()?,
                num(cols[at + 2]),
                num(cols[at + 3])?,
                num(cols[at + 4]),
            ))
        })
        .collect();
    theirs.sort();
    assert_eq!(ours, theirs, "kafka-consumer-groups printed:\n{text}");

    // A group nobody knows: no partitions, or the coordinator's error.
    match admin.group_lag("no-such-group-lag").await {
        Ok(lag) => assert!(lag.is_empty(), "{lag:?}"),
        Err(e) => assert_eq!(e.kafka_code().map(|c| c.code()), Some(69), "{e}"),
    }
    admin.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn topic_and_broker_configs_are_described_and_altered() {
    let admin = admin().await;
    let topic = new_topic("cfg", 1).await;
    let broker = admin.describe_cluster().await.unwrap().brokers[0].id;
    let entry = |described: &[purekafka::ConfigEntry], name: &str| {
        described
            .iter()
            .find(|e| e.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {described:?}"))
    };
    let topic_config = ConfigResource::Topic(topic.clone());
    let described = admin
        .describe_configs(&[
            topic_config.clone(),
            ConfigResource::Broker(broker),
            ConfigResource::Topic("no-such-topic-cfg".into()),
            // A broker the cluster does not have fails alone.
            ConfigResource::Broker(999),
        ])
        .await
        .unwrap();
    assert!(described[3].1.is_err(), "{:?}", described[3].1);
    let topic_entries = described[0].1.as_ref().unwrap();
    let retention = entry(topic_entries, "retention.ms");
    assert_eq!(retention.value.as_deref(), Some("604800000"));
    assert!(retention.is_default(), "{retention:?}");
    // The harness's server.properties names each broker's rack.
    let rack = entry(described[1].1.as_ref().unwrap(), "broker.rack");
    assert_eq!(rack.value, Some(format!("rack-{broker}")));
    assert_eq!(rack.source, ConfigSource::StaticBroker);
    assert_eq!(code(&described[2].1), Some(3), "{:?}", described[2].1);

    // Kafka 2.4 fails an APPEND to an entry the topic does not set itself (it splits the
    // topic's own value, null, and answers UNKNOWN_SERVER_ERROR): so it is set first.
    let policy = vec![AlterConfig::Set("cleanup.policy".into(), "delete".into())];
    let set = admin
        .incremental_alter_configs(&[(topic_config.clone(), policy)])
        .await
        .unwrap();
    assert!(set[0].1.is_ok(), "{set:?}");
    let altered = admin
        .incremental_alter_configs(&[
            (
                topic_config.clone(),
                vec![
                    AlterConfig::Set("retention.ms".into(), "3600000".into()),
                    AlterConfig::Append("cleanup.policy".into(), "compact".into()),
                ],
            ),
            (
                ConfigResource::Broker(broker),
                vec![AlterConfig::Set(
                    "log.cleaner.backoff.ms".into(),
                    "16000".into(),
                )],
            ),
            (
                topic_config.clone(),
                vec![AlterConfig::Set("no.such.config".into(), "1".into())],
            ),
        ])
        .await
        .unwrap();
    assert!(altered[0].1.is_ok(), "{altered:?}");
    assert!(altered[1].1.is_ok(), "{altered:?}");
    assert_eq!(code(&altered[2].1), Some(40), "INVALID_CONFIG: {altered:?}");

    // Dynamic changes reach the answers a moment after the change is accepted.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let described = admin
            .describe_configs(&[topic_config.clone(), ConfigResource::Broker(broker)])
            .await
            .unwrap();
        let topic_entries = described[0].1.as_ref().unwrap();
        let retention = entry(topic_entries, "retention.ms");
        let policy = entry(topic_entries, "cleanup.policy");
        let backoff = entry(described[1].1.as_ref().unwrap(), "log.cleaner.backoff.ms");
        let seen = (
            retention.value.as_deref() == Some("3600000"),
            policy.value.as_deref() == Some("delete,compact"),
            backoff.value.as_deref() == Some("16000"),
        );
        if seen == (true, true, true) {
            assert_eq!(retention.source, ConfigSource::DynamicTopic);
            assert_eq!(backoff.source, ConfigSource::DynamicBroker);
            break;
        }
        assert!(Instant::now() < deadline, "after 15 s: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Deleting the entries puts the defaults back.
    let restored = admin
        .incremental_alter_configs(&[
            (
                topic_config.clone(),
                vec![AlterConfig::Delete("retention.ms".into())],
            ),
            (
                ConfigResource::Broker(broker),
                vec![AlterConfig::Delete("log.cleaner.backoff.ms".into())],
            ),
        ])
        .await
        .unwrap();
    assert!(restored.iter().all(|(_, r)| r.is_ok()), "{restored:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let described = admin
            .describe_configs(std::slice::from_ref(&topic_config))
            .await
            .unwrap();
        let retention = entry(described[0].1.as_ref().unwrap(), "retention.ms");
        if retention.is_default() {
            assert_eq!(retention.value.as_deref(), Some("604800000"));
            break;
        }
        assert!(Instant::now() < deadline, "after 15 s: {retention:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn log_dirs_hold_each_replica_with_its_size() {
    let admin = admin().await;
    let topic = new_topic("logdirs", 2).await;
    produce_to(&topic, &[3, 0]).await;
    let broker = admin.describe_cluster().await.unwrap().brokers[0].id;
    let described = admin.describe_log_dirs(&[broker, 999]).await.unwrap();
    let dirs = described[0].1.as_ref().unwrap();
    assert_eq!(
        dirs.len(),
        1,
        "the harness has one log dir per broker: {dirs:?}"
    );
    let dir = &dirs[0];
    assert!(dir.path.ends_with("data"), "{dir:?}");
    assert_eq!(dir.error, None);
    let replicas: Vec<(i32, bool)> = dir
        .replicas
        .iter()
        .filter(|r| r.topic == topic)
        .map(|r| (r.partition, r.size > 0))
        .collect();
    assert_eq!(replicas, [(0, true), (1, false)], "{dir:?}");
    if kafka_version() >= (3, 3) {
        assert!(dir.total_bytes.unwrap() >= dir.usable_bytes.unwrap());
    }
    // A broker the cluster does not have.
    assert!(described[1].1.is_err(), "{:?}", described[1].1);
    admin.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn acls_are_created_described_and_deleted_and_bind_a_sasl_user() {
    let admin = admin().await;
    let topic = new_topic("acl", 1).await;
    let principal = format!("User:{}", ckafka().sasl_username());
    let sasl = Producer::builder(ckafka().client_config().unwrap())
        .build()
        .await
        .unwrap();
    let send = || sasl.send(ProducerRecord::new(&topic).value("x"));
    send().await.expect("no ACL on the topic: anyone writes");

    // Deny the SASL user writes on every topic starting with the name's first part.
    let prefix = &topic[..topic.len() - 4];
    let deny = AclBinding::new(
        AclResourceType::Topic,
        prefix,
        &principal,
        AclOperation::Write,
        AclPermission::Deny,
    )
    .prefixed();
    let created = admin
        .create_acls(std::slice::from_ref(&deny))
        .await
        .unwrap();
    assert!(created[0].1.is_ok(), "{created:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match send().await {
            Err(e) if e.kafka_code().map(|c| c.code()) == Some(29) => break,
            other => assert!(
                Instant::now() < deadline,
                "TOPIC_AUTHORIZATION_FAILED after 15 s, not {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Described by its resource, and found by Match from a topic name under the prefix.
    let exact = admin
        .describe_acls(&AclFilter::on(
            AclResourceType::Topic,
            prefix,
            AclPatternType::Prefixed,
        ))
        .await
        .unwrap();
    assert_eq!(exact, std::slice::from_ref(&deny));
    let matching = admin
        .describe_acls(&AclFilter::on(
            AclResourceType::Topic,
            &topic,
            AclPatternType::Match,
        ))
        .await
        .unwrap();
    assert_eq!(matching, std::slice::from_ref(&deny));

    // Deleted, it is gone, and the user writes again.
    let deleted = admin
        .delete_acls(&[AclFilter::exactly(&deny)])
        .await
        .unwrap();
    assert_eq!(deleted[0].1.as_ref().unwrap(), std::slice::from_ref(&deny));
    assert!(admin
        .describe_acls(&AclFilter::exactly(&deny))
        .await
        .unwrap()
        .is_empty());
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Err(e) = send().await {
        assert!(Instant::now() < deadline, "still refused after 15 s: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sasl.close().await;
    admin.delete_topic(&topic).await.unwrap();
}
