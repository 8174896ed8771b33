//! The consumer protocol: what members of a classic consumer group put in JoinGroup (their
//! subscription) and get back from SyncGroup (their assignment). Both are a version (`i16`)
//! followed by the fields of that version, so Java, librdkafka and purekafka members can read
//! each other's.
//!
//! purekafka writes version 1 (topics, user data, owned partitions), which every broker and
//! client since Kafka 2.4 reads, and reads any version, taking the fields it knows from newer
//! ones.
//!
//! The generation a member owned its partitions in travels two ways. Version 2 added a
//! `generation_id` field; before it, the cooperative-sticky assignor put the generation in the
//! subscription's user data as a big-endian `i32`, and Java still writes both. purekafka writes
//! version 1 with the user data, so a Kafka 2.4-era Java leader understands it. User data is the
//! assignor's own business, so only [`Subscription::decode_for`] with `cooperative_sticky` reads
//! it as a generation; [`Subscription::decode`] never guesses.

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
    /// The generation in which the member was given `owned`; `None` for a member that has
    /// never been in the group. Written as the cooperative-sticky user data (a big-endian
    /// `i32`) when set.
    pub generation: Option<i32>,
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
            )
            .with_user_data(
                self.generation
                    .map(|g| Bytes::copy_from_slice(&g.to_be_bytes())),
            );
        versioned(&data, VERSION)
    }

    /// Reads a member's JoinGroup metadata, written by any client. The generation comes only
    /// from the `generation_id` of version 2 and later; user data is left alone.
    pub fn decode(bytes: Bytes) -> Result<Subscription, String> {
        Subscription::decode_for(bytes, false)
    }

    /// Reads a member's JoinGroup metadata for the protocol the group chose. With
    /// `cooperative_sticky` (the group runs `cooperative-sticky`), a subscription without a
    /// `generation_id` (before version 2, or -1) whose user data is exactly four bytes takes
    /// them as the generation, as Java's `CooperativeStickyAssignor` writes it. A negative
    /// generation is read as `None`.
    pub fn decode_for(bytes: Bytes, cooperative_sticky: bool) -> Result<Subscription, String> {
        let data: ConsumerProtocolSubscription = unversioned(bytes, "subscription")?;
        let from_user_data = || match data.user_data.as_deref() {
            Some(&[a, b, c, d]) if cooperative_sticky => Some(i32::from_be_bytes([a, b, c, d])),
            _ => None,
        };
        // Version 0 and 1 decode with generation_id -1. Java writes -1 (its "no generation")
        // in the user data of a member that has none, so a negative one is no generation.
        let generation = if data.generation_id >= 0 {
            Some(data.generation_id)
        } else {
            from_user_data().filter(|g| *g >= 0)
        };
        Ok(Subscription {
            topics: data.topics.iter().map(|t| t.to_string()).collect(),
            generation,
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
            generation: None,
        };
        let bytes = s.encode().unwrap();
        assert_eq!(&bytes[..2], &[0, 1], "version 1 leads");
        assert_eq!(Subscription::decode(bytes.clone()).unwrap(), s);
        assert_eq!(Subscription::decode_for(bytes, true).unwrap(), s);
    }

    #[test]
    fn generation_travels_as_cooperative_sticky_user_data() {
        let s = Subscription {
            topics: vec!["t".into()],
            owned: vec![("t".into(), vec![1])],
            generation: Some(0x0102_0304),
        };
        let bytes = s.encode().unwrap();
        assert_eq!(&bytes[..2], &[0, 1], "still version 1");
        // Java's CooperativeStickyAssignor user data: one big-endian int32.
        let mut raw = bytes.clone();
        raw.advance(2);
        let data = ConsumerProtocolSubscription::decode(&mut raw, 1).unwrap();
        assert_eq!(data.user_data.as_deref(), Some(&[1, 2, 3, 4][..]));
        assert_eq!(Subscription::decode_for(bytes.clone(), true).unwrap(), s);
        // Other protocols' user data is not a generation.
        let other = Subscription::decode(bytes).unwrap();
        assert_eq!(other.generation, None);
        assert_eq!((other.topics, other.owned), (s.topics, s.owned));
    }

    #[test]
    fn user_data_of_another_length_or_negative_is_no_generation() {
        let java_none = &(-1i32).to_be_bytes()[..];
        for user_data in [
            None,
            Some(&[][..]),
            Some(&[0, 0, 7][..]),
            Some(&[0; 8][..]),
            Some(java_none),
        ] {
            let data = ConsumerProtocolSubscription::default()
                .with_topics(vec![StrBytes::from_static_str("t")])
                .with_user_data(user_data.map(Bytes::copy_from_slice));
            let bytes = versioned(&data, 1).unwrap();
            let s = Subscription::decode_for(bytes, true).unwrap();
            assert_eq!(s.generation, None, "{user_data:?}");
        }
    }

    #[test]
    fn version_2_generation_id_wins_over_user_data() {
        // As a Java 3.x member writes it: generation_id and the older user data.
        let data = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t")])
            .with_user_data(Some(Bytes::from_static(&[0, 0, 0, 3])))
            .with_owned_partitions(vec![OwnedPartitions::default()
                .with_topic(topic_name("t"))
                .with_partitions(vec![0, 4])])
            .with_generation_id(9);
        let bytes = versioned(&data, 2).unwrap();
        for cooperative_sticky in [false, true] {
            let s = Subscription::decode_for(bytes.clone(), cooperative_sticky).unwrap();
            assert_eq!(s.generation, Some(9));
            assert_eq!(s.owned, vec![("t".to_string(), vec![0, 4])]);
        }
        // generation_id -1 (no generation yet) falls back to the user data.
        let bytes = versioned(&data.with_generation_id(-1), 2).unwrap();
        let s = Subscription::decode_for(bytes.clone(), true).unwrap();
        assert_eq!(s.generation, Some(3));
        assert_eq!(Subscription::decode(bytes).unwrap().generation, None);
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
