//! The consumer protocol: what members of a classic consumer group put in JoinGroup (their
//! subscription) and get back from SyncGroup (their assignment). Both are a version (`i16`)
//! followed by the fields of that version, so Java, librdkafka and purekafka members can read
//! each other's.
//!
//! purekafka writes version 1 (topics, user data, owned partitions), which every broker and
//! client since Kafka 2.4 reads, and reads any version, taking the fields it knows from newer
//! ones.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedPartitions;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The version purekafka writes.
const VERSION: i16 = 1;
/// The highest version purekafka reads field by field.
const NEWEST: i16 = 3;

/// Partitions per topic, in a stable order.
pub type TopicPartitions = Vec<(String, Vec<i32>)>;

/// A member's subscription: the topics it wants and the partitions it owns now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Partitions the member owns (cooperative rebalancing); empty with eager assignors.
    pub owned: TopicPartitions,
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// Encodes a value with its leading version.
fn versioned<T: Encodable>(value: &T, version: i16) -> Result<Bytes, String> {
    let size = value.compute_size(version).map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(2 + size);
    buf.put_i16(version);
    value.encode(&mut buf, version).map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

/// Reads the leading version and decodes the rest at that version (or the newest known).
fn unversioned<T: Decodable>(mut bytes: Bytes, what: &str) -> Result<T, String> {
    let version = bytes
        .try_get_i16()
        .map_err(|_| format!("empty consumer protocol {what}"))?;
    if version < 0 {
        return Err(format!("consumer protocol {what} has version {version}"));
    }
    T::decode(&mut bytes, version.min(NEWEST))
        .map_err(|e| format!("malformed consumer protocol {what}: {e}"))
}

impl Subscription {
    /// The bytes for JoinGroup's protocol metadata.
    pub fn encode(&self) -> Result<Bytes, String> {
        let data = ConsumerProtocolSubscription::default()
            .with_topics(
                self.topics
                    .iter()
                    .map(|t| StrBytes::from_string(t.clone()))
                    .collect(),
            )
            .with_owned_partitions(
                self.owned
                    .iter()
                    .map(|(t, ps)| {
                        OwnedPartitions::default()
                            .with_topic(topic_name(t))
                            .with_partitions(ps.clone())
                    })
                    .collect(),
            );
        versioned(&data, VERSION)
    }

    /// Reads a member's JoinGroup metadata, written by any client.
    pub fn decode(bytes: Bytes) -> Result<Subscription, String> {
        let data: ConsumerProtocolSubscription = unversioned(bytes, "subscription")?;
        Ok(Subscription {
            topics: data.topics.iter().map(|t| t.to_string()).collect(),
            owned: data
                .owned_partitions
                .into_iter()
                .map(|tp| (tp.topic.0.to_string(), tp.partitions))
                .collect(),
        })
    }
}

/// Encodes a member's assignment for SyncGroup.
pub fn encode_assignment(assigned: &TopicPartitions) -> Result<Bytes, String> {
    let data = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assigned
            .iter()
            .map(|(t, ps)| {
                AssignedPartitions::default()
                    .with_topic(topic_name(t))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    versioned(&data, VERSION)
}

/// Reads the assignment SyncGroup returned. An empty answer is an empty assignment.
pub fn decode_assignment(bytes: Bytes) -> Result<TopicPartitions, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let data: ConsumerProtocolAssignment = unversioned(bytes, "assignment")?;
    Ok(data
        .assigned_partitions
        .into_iter()
        .map(|tp| (tp.topic.0.to_string(), tp.partitions))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_round_trip() {
        let s = Subscription {
            topics: vec!["test".into(), "test-topic".into()],
            owned: vec![("test".into(), vec![0, 2])],
        };
        let bytes = s.encode().unwrap();
        assert_eq!(&bytes[..2], &[0, 1], "version 1 leads");
        assert_eq!(Subscription::decode(bytes).unwrap(), s);
    }

    #[test]
    fn version_0_subscriptions_from_old_clients_read() {
        // Version 0 as Java 2.x writes it: version, topics array, null user data.
        let mut v0 = BytesMut::new();
        v0.put_i16(0);
        v0.put_i32(1);
        v0.put_i16(4);
        v0.put_slice(b"test");
        v0.put_i32(-1);
        let s = Subscription::decode(v0.freeze()).unwrap();
        assert_eq!(s.topics, ["test"]);
        assert!(s.owned.is_empty());
    }

    #[test]
    fn assignment_round_trip_and_garbage() {
        let a: TopicPartitions = vec![("a".into(), vec![0, 1]), ("b".into(), vec![3])];
        assert_eq!(
            decode_assignment(encode_assignment(&a).unwrap()).unwrap(),
            a
        );
        assert_eq!(decode_assignment(Bytes::new()).unwrap(), vec![]);
        assert!(decode_assignment(Bytes::from_static(&[0, 1, 0x7f, 0xff, 0xff])).is_err());
        assert!(Subscription::decode(Bytes::from_static(&[0xff, 0xff])).is_err());
    }
}
