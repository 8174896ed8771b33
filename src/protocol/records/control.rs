//! Control records: the transaction markers the transaction coordinator writes into each partition
//! a transaction touched, once the transaction commits or aborts (KIP-98).
//!
//! A control batch has the control attribute bit set and holds one record, the marker. Its key is
//! two int16s, a version and a type; its value (version, coordinator epoch) is the broker's
//! business and not read here.
//!
//! ```text
//!  key: [ version: i16 | type: i16 ]      type 0 = ABORT, 1 = COMMIT
//! ```
//!
//! As in the Java client, a key of a version other than 0 is read as version 0 (a newer version can
//! only add fields after the type), and a negative version is taken for corruption.

use super::Batch;

/// Bytes of a control record key: version and type, both int16.
const CONTROL_KEY_LEN: usize = 4;

/// What a control record marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecordType {
    /// The end of an aborted transaction: the producer's records since its previous marker are not
    /// delivered under `read_committed`.
    Abort,
    /// The end of a committed transaction.
    Commit,
    /// Any other type id. Types 2 and up (leader change, snapshot header and footer, KRaft version
    /// and voters) belong to KRaft's own metadata log and do not appear in user topics.
    Unknown(i16),
}

impl ControlRecordType {
    /// The type a control record's key names.
    ///
    /// ```
    /// use purekafka::protocol::records::{ControlRecordError, ControlRecordType};
    /// assert_eq!(ControlRecordType::from_key(&[0, 0, 0, 0]), Ok(ControlRecordType::Abort));
    /// assert_eq!(ControlRecordType::from_key(&[0, 0, 0, 1]), Ok(ControlRecordType::Commit));
    /// assert_eq!(
    ///     ControlRecordType::from_key(&[0, 0]),
    ///     Err(ControlRecordError::KeyTooShort { len: 2 })
    /// );
    /// ```
    pub fn from_key(key: &[u8]) -> Result<Self, ControlRecordError> {
        if key.len() < CONTROL_KEY_LEN {
            return Err(ControlRecordError::KeyTooShort { len: key.len() });
        }
        let version = i16::from_be_bytes([key[0], key[1]]);
        if version < 0 {
            return Err(ControlRecordError::NegativeVersion(version));
        }
        Ok(Self::from_type_id(i16::from_be_bytes([key[2], key[3]])))
    }

    /// The type of a type id.
    pub fn from_type_id(id: i16) -> Self {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Unknown(other),
        }
    }
}

/// Why a control record's key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlRecordError {
    /// The control record has a null key.
    #[error("control record without a key")]
    NullKey,
    /// The key is shorter than its version and type.
    #[error("control record key of {len} bytes; it needs at least 4")]
    KeyTooShort {
        /// Bytes in the key.
        len: usize,
    },
    /// The key's version is negative, which points to corrupt data.
    #[error("control record key version {0} is negative")]
    NegativeVersion(i16),
}

impl Batch {
    /// The type of a control batch's marker: `Ok(None)` for a batch that is not a control batch,
    /// or for a control batch that holds no record (as the Java client does, such a batch is
    /// taken for no marker at all).
    ///
    /// The consumer adds the partition and `base_offset` to an error.
    pub fn control_type(&self) -> Result<Option<ControlRecordType>, ControlRecordError> {
        if !self.is_control() {
            return Ok(None);
        }
        let Some(marker) = self.records.first() else {
            return Ok(None);
        };
        let key = marker.key.as_deref().ok_or(ControlRecordError::NullKey)?;
        ControlRecordType::from_key(key).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::super::{BatchDecoder, Record, ATTR_CONTROL, ATTR_TRANSACTIONAL};
    use super::*;
    use bytes::Bytes;

    #[test]
    fn keys_name_their_type() {
        for (key, expected) in [
            (&[0u8, 0, 0, 0][..], ControlRecordType::Abort),
            (&[0, 0, 0, 1], ControlRecordType::Commit),
            (&[0, 0, 0, 2], ControlRecordType::Unknown(2)),
            (&[0, 0, 0xff, 0xff], ControlRecordType::Unknown(-1)),
            // A later version is read as version 0; bytes after the type are its own.
            (&[0, 1, 0, 1, 9, 9], ControlRecordType::Commit),
        ] {
            assert_eq!(ControlRecordType::from_key(key), Ok(expected), "{key:?}");
        }
    }

    #[test]
    fn malformed_keys_are_errors() {
        assert_eq!(
            ControlRecordType::from_key(&[]),
            Err(ControlRecordError::KeyTooShort { len: 0 })
        );
        assert_eq!(
            ControlRecordType::from_key(&[0, 0, 1]),
            Err(ControlRecordError::KeyTooShort { len: 3 })
        );
        assert_eq!(
            ControlRecordType::from_key(&[0x80, 0, 0, 0]),
            Err(ControlRecordError::NegativeVersion(i16::MIN))
        );
        let null_key = Batch {
            records: vec![Record {
                key: None,
                ..marker(&[0, 0, 0, 0]).records[0].clone()
            }],
            ..marker(&[0, 0, 0, 0])
        };
        assert_eq!(null_key.control_type(), Err(ControlRecordError::NullKey));
        assert_eq!(
            marker(&[0, 0]).control_type(),
            Err(ControlRecordError::KeyTooShort { len: 2 })
        );
    }

    #[test]
    fn only_control_batches_have_a_type() {
        let data = Batch {
            attributes: ATTR_TRANSACTIONAL,
            ..marker(&[0, 0, 0, 0])
        };
        assert_eq!(data.control_type(), Ok(None));
        let empty = Batch {
            records: vec![],
            ..marker(&[0, 0, 0, 0])
        };
        assert_eq!(empty.control_type(), Ok(None));
    }

    /// The broker's segment of a topic the Java client wrote a committed, then an aborted
    /// transaction into (fixtures/golden/README.md).
    #[test]
    fn reads_the_brokers_markers() {
        let batches: Vec<Batch> = BatchDecoder::new(golden("java-txn-segment.bin"), true, LIMIT)
            .collect::<Result<_, _>>()
            .unwrap();
        let types: Vec<_> = batches.iter().map(|b| b.control_type().unwrap()).collect();
        assert_eq!(
            types,
            [
                None,
                Some(ControlRecordType::Commit),
                None,
                Some(ControlRecordType::Abort)
            ]
        );
        for batch in &batches {
            assert!(batch.is_transactional());
            assert_eq!(batch.producer_id, batches[0].producer_id);
        }
        assert!(batches[0].producer_id >= 0);
    }

    /// A control batch whose single marker has `key`.
    fn marker(key: &[u8]) -> Batch {
        Batch {
            base_offset: 7,
            last_offset: 7,
            partition_leader_epoch: 0,
            attributes: ATTR_TRANSACTIONAL | ATTR_CONTROL,
            producer_id: 1000,
            producer_epoch: 0,
            base_sequence: -1,
            records: vec![Record {
                offset: 7,
                timestamp: 0,
                key: Some(Bytes::copy_from_slice(key)),
                value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
                headers: vec![],
            }],
            inflated: 0,
        }
    }
}
