//! Produce, then fetch the same records back, over PLAINTEXT and SASL.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use purekafka::{
    Acks, ClientConfig, Compression, Consumer, Header, KeyPartitioner, Offset, Producer,
    ProducerRecord,
};

use crate::common::{admin, ckafka, plaintext, unique_topic};

/// Records with every field exercised: keys (null, empty, set), values (null, empty, large),
/// headers (none, several, null value) and explicit timestamps (including one going back).
fn records(topic: &str) -> Vec<ProducerRecord> {
    let mut out = Vec::new();
    for i in 0..30i64 {
        let mut r = ProducerRecord::new(topic).timestamp(1_700_000_000_000 + i * 7 - (i % 3) * 20);
        r = match i % 3 {
            0 => r.key(format!("key-{i}")),
            1 => r.key(Bytes::new()),
            _ => r,
        };
        r = match i % 5 {
            0 => r,
            1 => r.value(Bytes::new()),
            2 => r.value(vec![b'x'; 10_000]),
            _ => r.value(format!("value-{i}")),
        };
        if i % 4 == 0 {
            r = r.header("trace", format!("t{i}")).header("empty", "");
            r.headers.push(Header {
                key: Bytes::from_static(b"null"),
                value: None,
            });
        }
        out.push(r);
    }
    out
}

async fn round_trip(config: ClientConfig, acks: Acks) {
    let topic = unique_topic("roundtrip");
    admin().await.create_topic(&topic, 3, 1).await.unwrap();
    let producer = Producer::builder(config.clone().acks(acks))
        .build()
        .await
        .unwrap();
    let sent = records(&topic);
    let mut delivered = Vec::new();
    for record in &sent {
        let md = producer.send(record.clone()).await.unwrap();
        assert_eq!(&*md.topic, topic);
        assert!((0..3).contains(&md.partition));
        assert_eq!(md.offset.is_some(), acks != Acks::None);
        delivered.push(md);
    }
    // Keyed records land where librdkafka's default partitioner puts them (an empty key, as a
    // missing one, goes to a random partition).
    let mut hashed = 0;
    for (record, md) in sent.iter().zip(&delivered) {
        let key = record.key.as_deref();
        if let Some(expected) = KeyPartitioner::ConsistentRandom.partition(key, 3) {
            assert_eq!(md.partition, expected, "{key:?}");
            hashed += 1;
        }
    }
    assert!(hashed > 0);

    let mut consumer = Consumer::builder(config).build().await.unwrap();
    let partitions = consumer.partitions(&topic).await.unwrap();
    assert_eq!(partitions, [0, 1, 2]);
    consumer
        .assign(
            partitions.iter().map(|&p| (topic.as_str(), p)),
            Offset::Earliest,
        )
        .await
        .unwrap();
    let mut got = BTreeMap::new();
    while got.len() < sent.len() {
        let msg = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
            .await
            .expect("records arrive")
            .unwrap();
        got.insert((msg.partition, msg.offset), msg);
    }
    // Order within each partition is send order; every field survives.
    let mut next_index = [0usize; 3];
    let by_partition: Vec<Vec<&ProducerRecord>> = (0..3)
        .map(|p| {
            sent.iter()
                .zip(&delivered)
                .filter(|(_, md)| md.partition == p)
                .map(|(r, _)| r)
                .collect()
        })
        .collect();
    for ((partition, offset), msg) in &got {
        let expected = by_partition[*partition as usize][next_index[*partition as usize]];
        next_index[*partition as usize] += 1;
        assert_eq!(msg.key, expected.key, "key at {partition}@{offset}");
        assert_eq!(msg.value, expected.value, "value at {partition}@{offset}");
        assert_eq!(
            msg.headers, expected.headers,
            "headers at {partition}@{offset}"
        );
        assert_eq!(
            Some(msg.timestamp),
            expected.timestamp,
            "timestamp at {partition}@{offset}"
        );
        assert_eq!(&*msg.topic, topic);
    }
    if acks != Acks::None {
        for md in &delivered {
            assert!(
                got.contains_key(&(md.partition, md.offset.unwrap())),
                "{md} was not read back"
            );
        }
    }
    admin().await.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn plaintext_round_trip_acks_all() {
    round_trip(plaintext(), Acks::All).await;
}

#[tokio::test]
async fn plaintext_round_trip_acks_leader() {
    round_trip(plaintext(), Acks::Leader).await;
}

#[tokio::test]
async fn plaintext_round_trip_acks_none() {
    round_trip(plaintext(), Acks::None).await;
}

/// The broker decompresses every batch to validate it, so a codec it cannot read fails the
/// produce; reading back checks our decoder on the broker's copy.
#[tokio::test]
async fn every_codec_round_trips() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        round_trip(plaintext().compression(codec), Acks::All).await;
    }
}

#[tokio::test]
async fn sasl_round_trip() {
    round_trip(ckafka().client_config().unwrap(), Acks::All).await;
}

/// Records keep their create time and say so; on a topic that keeps the broker's append time
/// (`message.timestamp.type=LogAppendTime`) they carry that time instead, and say so too.
#[tokio::test]
async fn messages_tell_their_timestamp_type() {
    use purekafka::{NewTopic, TimestampType};
    let (create, append) = (unique_topic("create-time"), unique_topic("append-time"));
    let topics = [
        NewTopic::new(&create, 1, 1),
        NewTopic::new(&append, 1, 1).config("message.timestamp.type", "LogAppendTime"),
    ];
    for (topic, result) in admin().await.create_topics(&topics).await.unwrap() {
        result.unwrap_or_else(|e| panic!("{topic}: {e}"));
    }
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    let mut consumer = Consumer::builder(plaintext()).build().await.unwrap();
    for topic in [&create, &append] {
        let sent = producer
            .send(
                ProducerRecord::new(topic)
                    .value("t")
                    .timestamp(1_000_000_000_000),
            )
            .await
            .unwrap();
        consumer
            .assign([(topic.as_str(), 0)], Offset::Earliest)
            .await
            .unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        if topic == &create {
            assert_eq!(msg.timestamp_type, TimestampType::CreateTime);
            assert_eq!(msg.timestamp, 1_000_000_000_000);
        } else {
            assert_eq!(msg.timestamp_type, TimestampType::LogAppendTime);
            // The broker's time, which the delivery report gave too.
            assert_eq!(msg.timestamp, sent.timestamp);
            assert!(msg.timestamp > 1_700_000_000_000, "{}", msg.timestamp);
        }
    }
    producer.close().await;
    for topic in [&create, &append] {
        admin().await.delete_topic(topic).await.unwrap();
    }
}

#[tokio::test]
async fn latest_skips_what_was_there() {
    let topic = unique_topic("latest");
    admin().await.create_topic(&topic, 1, 1).await.unwrap();
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    producer
        .send(ProducerRecord::new(&topic).value("old"))
        .await
        .unwrap();
    let mut consumer = Consumer::builder(plaintext()).build().await.unwrap();
    consumer
        .assign([(topic.as_str(), 0)], Offset::Latest)
        .await
        .unwrap();
    assert_eq!(consumer.positions().next(), Some((topic.as_str(), 0, 1)));
    let new = producer
        .send(ProducerRecord::new(&topic).value("new"))
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.value.as_deref(), Some(&b"new"[..]));
    assert_eq!(Some(msg.offset), new.offset);
    admin().await.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn a_record_over_message_max_bytes_is_refused_before_sending() {
    let topic = unique_topic("toolarge");
    admin().await.create_topic(&topic, 1, 1).await.unwrap();
    let config = plaintext().set("message.max.bytes", 10_000).unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let err = producer
        .send(ProducerRecord::new(&topic).value(vec![7u8; 20_000]))
        .await
        .unwrap_err();
    match err {
        purekafka::Error::RecordTooLarge { size, max } => {
            assert!(size > 20_000, "{size}");
            assert_eq!(max, 10_000);
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    // A record under the limit still goes through.
    let ok = producer
        .send(ProducerRecord::new(&topic).value(vec![7u8; 5_000]))
        .await
        .unwrap();
    assert_eq!(ok.offset, Some(0));
    admin().await.delete_topic(&topic).await.unwrap();
}
