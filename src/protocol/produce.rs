//! Produce request bodies written so that record batches are not copied: the small fields go
//! into one buffer, and each batch's `Bytes` becomes its own run of the [`Body`], written to the
//! socket as it is.
//!
//! ```text
//!  [txn id, acks, timeout, topics…, name, partitions…, index, len] [batch 1] [index, len] [batch 2] …
//!   └──────────────── copied small fields ────────────────────┘   └ shared ┘              └ shared ┘
//! ```
//!
//! Versions 3 to 12: v3–v8 use the classic encoding, v9–v12 the flexible one (compact lengths,
//! tagged fields). v13 names topics by id and is not spoken.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::Body;

/// The first Produce version with flexible encoding.
const FIRST_FLEXIBLE: i16 = 9;

/// One topic's batches: `(partition, batch)`.
pub type TopicBatches<'a> = (&'a str, Vec<(i32, Bytes)>);

/// Encodes a Produce request body at `version` (3 to 12) without copying the batches.
pub fn encode_produce(
    version: i16,
    transactional_id: Option<&str>,
    acks: i16,
    timeout_ms: i32,
    topics: &[TopicBatches<'_>],
) -> Result<Body, String> {
    if !(3..=12).contains(&version) {
        return Err(format!("Produce v{version} is not spoken (3 to 12 are)"));
    }
    let flexible = version >= FIRST_FLEXIBLE;
    let mut w = Writer {
        head: BytesMut::with_capacity(64 + topics.len() * 32),
        body: Body::default(),
        flexible,
    };
    w.nullable_string(transactional_id)?;
    w.head.put_i16(acks);
    w.head.put_i32(timeout_ms);
    w.array_len(topics.len());
    for (name, partitions) in topics {
        w.string(name)?;
        w.array_len(partitions.len());
        for (index, batch) in partitions {
            w.head.put_i32(*index);
            w.bytes(batch.clone())?;
            w.tagged_fields();
        }
        w.tagged_fields();
    }
    w.tagged_fields();
    Ok(w.finish())
}

struct Writer {
    head: BytesMut,
    body: Body,
    flexible: bool,
}

impl Writer {
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.head.put_u8(v as u8 | 0x80);
            v >>= 7;
        }
        self.head.put_u8(v as u8);
    }

    fn array_len(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u64 + 1);
        } else {
            self.head.put_i32(n as i32);
        }
    }

    fn string(&mut self, s: &str) -> Result<(), String> {
        if self.flexible {
            self.uvarint(s.len() as u64 + 1);
        } else {
            let len =
                i16::try_from(s.len()).map_err(|_| format!("topic name of {} bytes", s.len()))?;
            self.head.put_i16(len);
        }
        self.head.put_slice(s.as_bytes());
        Ok(())
    }

    fn nullable_string(&mut self, s: Option<&str>) -> Result<(), String> {
        match (s, self.flexible) {
            (None, true) => self.uvarint(0),
            (None, false) => self.head.put_i16(-1),
            (Some(s), _) => return self.string(s),
        }
        Ok(())
    }

    /// A (non-null) bytes field: its length into the head, its contents as a run of its own.
    fn bytes(&mut self, b: Bytes) -> Result<(), String> {
        if self.flexible {
            self.uvarint(b.len() as u64 + 1);
        } else {
            let len = i32::try_from(b.len()).map_err(|_| format!("batch of {} bytes", b.len()))?;
            self.head.put_i32(len);
        }
        let head = self.head.split().freeze();
        self.body.push(head);
        self.body.push(b);
        Ok(())
    }

    fn tagged_fields(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }

    fn finish(mut self) -> Body {
        let head = self.head.split().freeze();
        self.body.push(head);
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::encode_body;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
    use kafka_protocol::protocol::StrBytes;

    fn batches() -> Vec<TopicBatches<'static>> {
        vec![
            (
                "alpha",
                vec![
                    (0, Bytes::from_static(b"batch-a0")),
                    (2, Bytes::from(vec![7u8; 300])),
                ],
            ),
            ("beta", vec![(1, Bytes::from_static(b"b1"))]),
        ]
    }

    #[test]
    fn matches_kafka_protocol_for_every_version() {
        let topics = batches();
        for transactional_id in [None, Some("txn-1")] {
            let theirs_request = ProduceRequest::default()
                .with_transactional_id(
                    transactional_id.map(|t| TransactionalId(StrBytes::from_static_str(t))),
                )
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(
                    topics
                        .iter()
                        .map(|(name, ps)| {
                            TopicProduceData::default()
                                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                                .with_partition_data(
                                    ps.iter()
                                        .map(|(i, b)| {
                                            PartitionProduceData::default()
                                                .with_index(*i)
                                                .with_records(Some(b.clone()))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            for version in 3..=12 {
                let ours = encode_produce(version, transactional_id, -1, 30_000, &topics).unwrap();
                let theirs = encode_body(&theirs_request, version).unwrap();
                let joined: Vec<u8> = ours
                    .parts()
                    .iter()
                    .flat_map(|p| p.iter().copied())
                    .collect();
                assert_eq!(joined, &theirs[..], "v{version} {transactional_id:?}");
                assert_eq!(ours.len(), theirs.len(), "v{version}");
            }
        }
    }

    #[test]
    fn batches_are_shared_not_copied() {
        let topics = batches();
        let body = encode_produce(9, None, 1, 1000, &topics).unwrap();
        let batch = &topics[0].1[1].1;
        assert!(
            body.parts()
                .iter()
                .any(|p| p.as_ptr() == batch.as_ptr() && p.len() == batch.len()),
            "the 300-byte batch travels as its own run"
        );
    }

    #[test]
    fn refuses_versions_it_does_not_speak() {
        assert!(encode_produce(13, None, 1, 1000, &batches()).is_err());
        assert!(encode_produce(2, None, 1, 1000, &batches()).is_err());
    }
}
