//! The record-batch decoder: records whose key, value and headers are slices of the fetched
//! (or decompressed) buffer.

use bytes::{Buf, Bytes};

use super::{
    Cursor, Header, ATTR_COMPRESSION_MASK, ATTR_CONTROL, ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL,
    BATCH_HEADER_LEN, LENGTH_OFFSET, LOG_OVERHEAD,
};
use crate::protocol::compression::{Compression, DecompressError};

/// One decoded record. Key, value and headers share the fetched buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's offset in its partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch: create time, or log-append time (see [`Batch`]).
    pub timestamp: i64,
    /// The key, or `None` for a null key.
    pub key: Option<Bytes>,
    /// The value, or `None` for a null value (a tombstone).
    pub value: Option<Bytes>,
    /// The headers, in order.
    pub headers: Vec<Header>,
}

/// One decoded batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record (base offset + last offset delta).
    pub last_offset: i64,
    /// The epoch of the leader that appended the batch (KIP-101), or -1.
    pub partition_leader_epoch: i32,
    /// The batch attributes.
    pub attributes: i16,
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// The records, in offset order.
    pub records: Vec<Record>,
    /// Bytes the records took once decompressed (0 for an uncompressed batch).
    pub inflated: usize,
}

impl Batch {
    /// True for control batches (transaction commit/abort markers), which applications skip.
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// True if the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// True if timestamps are the broker's log-append time rather than the producer's.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }
}

/// Why a batch could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The CRC in the header does not match the bytes.
    Crc {
        /// Base offset of the batch.
        base_offset: i64,
        /// CRC stored in the batch.
        stored: u32,
        /// CRC computed over the batch.
        computed: u32,
    },
    /// A magic byte other than 2 (the message formats of Kafka before 0.11).
    UnsupportedMagic(i8),
    /// A codec id that is none of the four Kafka defines.
    UnsupportedCompression(i16),
    /// The compressed records could not be decompressed.
    Decompression(String),
    /// The compressed records would inflate beyond what is left of the decoder's budget.
    InflatesBeyond(usize),
    /// The bytes end before what they announce, or a length is negative where it must not be.
    Malformed(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Crc {
                base_offset,
                stored,
                computed,
            } => write!(
                f,
                "CRC mismatch in batch at offset {base_offset}: stored {stored:#010x}, computed {computed:#010x}"
            ),
            DecodeError::UnsupportedMagic(m) => write!(f, "unsupported message format (magic {m})"),
            DecodeError::UnsupportedCompression(c) => write!(f, "unknown compression codec {c}"),
            DecodeError::Decompression(e) => write!(f, "cannot decompress batch: {e}"),
            DecodeError::InflatesBeyond(limit) => {
                write!(f, "decompressed batch exceeds the {limit} bytes left to decode")
            }
            DecodeError::Malformed(what) => write!(f, "malformed batch: {what}"),
        }
    }
}

/// Iterates over the batches in a fetched `records` buffer.
#[derive(Debug)]
pub struct BatchDecoder {
    buf: Bytes,
    check_crc: bool,
    /// Bytes compressed batches may still inflate to.
    budget: usize,
}

impl BatchDecoder {
    /// Decodes the batches in `buf`; `check_crc` verifies each batch's CRC32C. Compressed
    /// batches may inflate to `budget` bytes in all: a batch that would go beyond what is left
    /// is [`DecodeError::InflatesBeyond`].
    pub fn new(buf: Bytes, check_crc: bool, budget: usize) -> Self {
        BatchDecoder {
            buf,
            check_crc,
            budget,
        }
    }

    /// What is left of the decompression budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    fn next_batch(&mut self) -> Result<Option<Batch>, DecodeError> {
        if self.buf.len() < LOG_OVERHEAD {
            return Ok(None);
        }
        let batch_length = i32::from_be_bytes(
            self.buf[LENGTH_OFFSET..LOG_OVERHEAD]
                .try_into()
                .expect("4 bytes"),
        );
        if batch_length < 0 {
            return Err(DecodeError::Malformed("negative batch length"));
        }
        let total = LOG_OVERHEAD + batch_length as usize;
        if self.buf.len() < total {
            // A partial batch at the end of a fetch response: the broker cut it at the size limit.
            self.buf.clear();
            return Ok(None);
        }
        let mut batch = self.buf.split_to(total);
        if total < BATCH_HEADER_LEN {
            return Err(DecodeError::Malformed("batch shorter than its header"));
        }
        let magic = batch[16] as i8;
        if magic != 2 {
            return Err(DecodeError::UnsupportedMagic(magic));
        }
        let base_offset = batch.get_i64();
        batch.advance(4); // length
        let partition_leader_epoch = batch.get_i32();
        batch.advance(1); // magic
        let stored = batch.get_u32();
        if self.check_crc {
            let computed = crc32c::crc32c(&batch);
            if computed != stored {
                return Err(DecodeError::Crc {
                    base_offset,
                    stored,
                    computed,
                });
            }
        }
        let attributes = batch.get_i16();
        let last_offset_delta = batch.get_i32();
        let base_timestamp = batch.get_i64();
        let max_timestamp = batch.get_i64();
        let producer_id = batch.get_i64();
        let producer_epoch = batch.get_i16();
        let base_sequence = batch.get_i32();
        let count = batch.get_i32();
        if count < 0 {
            return Err(DecodeError::Malformed("negative record count"));
        }
        let codec = attributes & ATTR_COMPRESSION_MASK;
        let batch = match Compression::from_id(codec) {
            Some(Compression::None) => batch,
            Some(codec) => match codec.decompress(&batch, self.budget) {
                Ok(inflated) => inflated,
                Err(DecompressError::TooLarge { limit }) => {
                    return Err(DecodeError::InflatesBeyond(limit))
                }
                Err(DecompressError::Corrupt(e)) => return Err(DecodeError::Decompression(e)),
            },
            None => return Err(DecodeError::UnsupportedCompression(codec)),
        };
        let inflated = if codec == 0 { 0 } else { batch.len() };
        self.budget -= inflated;
        let log_append = attributes & ATTR_LOG_APPEND_TIME != 0;
        // Each record takes at least 7 bytes, so the count cannot reserve more than the bytes hold.
        let mut records = Vec::with_capacity((count as usize).min(batch.len() / 7));
        let mut cursor = Cursor::new(&batch);
        for _ in 0..count {
            if cursor.remaining() == 0 {
                return Err(DecodeError::Malformed(
                    "record count beyond the records present",
                ));
            }
            let mut record = decode_record(&mut cursor, base_offset, base_timestamp)?;
            if log_append {
                record.timestamp = max_timestamp;
            }
            records.push(record);
        }
        let last_offset = base_offset
            .checked_add(last_offset_delta as i64)
            .ok_or(DecodeError::Malformed("last offset beyond i64"))?;
        Ok(Some(Batch {
            base_offset,
            last_offset,
            partition_leader_epoch,
            attributes,
            producer_id,
            producer_epoch,
            base_sequence,
            records,
            inflated,
        }))
    }
}

impl Iterator for BatchDecoder {
    type Item = Result<Batch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_batch();
        if next.is_err() {
            // One bad batch poisons the rest of the buffer: the framing is no longer trusted.
            self.buf.clear();
        }
        next.transpose()
    }
}

fn decode_record(
    buf: &mut Cursor<'_>,
    base_offset: i64,
    base_timestamp: i64,
) -> Result<Record, DecodeError> {
    let len = buf.varint()?;
    if len < 0 {
        return Err(DecodeError::Malformed("negative record length"));
    }
    if len as usize > buf.remaining() {
        return Err(DecodeError::Malformed("record length beyond the batch"));
    }
    let mut rec = buf.split(len as usize);
    if rec.remaining() == 0 {
        return Err(DecodeError::Malformed("empty record"));
    }
    rec.advance(1); // attributes, unused in v2
    let timestamp_delta = rec.varint()?;
    let offset_delta = rec.varint()?;
    let key = rec.bytes("negative key length")?;
    let value = rec.bytes("negative value length")?;
    let header_count = rec.varint()?;
    if header_count < 0 {
        return Err(DecodeError::Malformed("negative header count"));
    }
    let mut headers = Vec::with_capacity((header_count as usize).min(rec.remaining() / 2));
    for _ in 0..header_count {
        let key = rec
            .bytes("negative header key length")?
            .ok_or(DecodeError::Malformed("null header key"))?;
        let value = rec.bytes("negative header value length")?;
        headers.push(Header { key, value });
    }
    Ok(Record {
        offset: base_offset.wrapping_add(offset_delta),
        timestamp: base_timestamp.wrapping_add(timestamp_delta),
        key,
        value,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn round_trip_and_zero_copy() {
        let batch = build(&[(5, Some(b"key"), Some(b"value"), vec![Header::new("a", "b")])]);
        let decoded: Vec<Batch> = BatchDecoder::new(batch.clone(), true, LIMIT)
            .collect::<Result<_, _>>()
            .unwrap();
        let rec = &decoded[0].records[0];
        assert_eq!(rec.value.as_deref(), Some(&b"value"[..]));
        assert_eq!(rec.headers, vec![Header::new("a", "b")]);
        let start = batch.as_ptr() as usize;
        let value_ptr = rec.value.as_ref().unwrap().as_ptr() as usize;
        assert!(
            value_ptr > start && value_ptr < start + batch.len(),
            "value is a slice of the batch"
        );
    }

    #[test]
    fn bad_crc_and_partial_batches() {
        let batch = build(&[(5, None, Some(b"x"), vec![])]);
        let mut corrupt = BytesMut::from(&batch[..]);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        let err = BatchDecoder::new(corrupt.freeze(), true, LIMIT)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, DecodeError::Crc { .. }), "{err:?}");
        // Without CRC checks the same bytes still decode.
        let partial = batch.slice(..batch.len() - 3);
        assert_eq!(BatchDecoder::new(partial, true, LIMIT).count(), 0);
    }

    #[test]
    fn record_count_beyond_the_bytes() {
        let batch = build(&[(5, None, Some(b"x"), vec![])]);
        let mut hostile = BytesMut::from(&batch[..]);
        hostile[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let err = BatchDecoder::new(hostile.freeze(), false, LIMIT)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err,
            DecodeError::Malformed("record count beyond the records present")
        );
    }

    #[test]
    fn negative_lengths_other_than_null_are_malformed() {
        // One record, key "k", value "v", no headers: its last five bytes are the key length,
        // "k", the value length, "v" and the header count.
        let batch = build(&[(5, Some(b"k"), Some(b"v"), vec![])]);
        let decode = |from_end: usize, length: u8| {
            let mut bytes = BytesMut::from(&batch[..]);
            let at = bytes.len() - from_end;
            bytes[at] = length;
            BatchDecoder::new(bytes.freeze(), false, LIMIT)
                .next()
                .unwrap()
        };
        // -5 is zig-zag 9. (-1, null, is read in the Java client's batches.)
        assert_eq!(
            decode(5, 9),
            Err(DecodeError::Malformed("negative key length"))
        );
        assert_eq!(
            decode(3, 9),
            Err(DecodeError::Malformed("negative value length"))
        );
    }

    #[test]
    fn decodes_the_java_clients_batch() {
        let batches: Vec<Batch> = BatchDecoder::new(golden("java-batch-none.bin"), true, LIMIT)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!((batch.base_offset, batch.last_offset), (0, 3));
        // The first leader of a new topic on one broker stamps its epoch, 0.
        assert_eq!(batch.partition_leader_epoch, 0);
        assert_eq!(
            (batch.producer_id, batch.producer_epoch, batch.base_sequence),
            (-1, -1, -1)
        );
        assert!(!batch.is_control() && !batch.is_transactional() && !batch.is_log_append_time());
        assert_java_records(batch);
    }

    #[test]
    fn decodes_the_java_clients_compressed_batches() {
        for (file, codec) in [("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4)] {
            let batches: Vec<Batch> =
                BatchDecoder::new(golden(&format!("java-batch-{file}.bin")), true, LIMIT)
                    .collect::<Result<_, _>>()
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(batches.len(), 1, "{file}");
            assert_eq!(batches[0].attributes, codec, "{file}");
            assert_java_records(&batches[0]);
        }
    }

    #[test]
    fn compressed_batches_share_one_budget() {
        let big: Vec<Fields<'static>> = (0..100)
            .map(|i| (i, None, Some(&[b'z'; 1000][..]), vec![]))
            .collect();
        let one = build_with(&big, Compression::Gzip);
        let mut two = BytesMut::from(&one[..]);
        two.extend_from_slice(&one);
        let inflated = 100 * (1000 + 8);
        let mut decoder = BatchDecoder::new(two.freeze(), true, inflated * 3 / 2);
        let first = decoder.next().unwrap().unwrap();
        assert!(first.inflated >= 100_000, "{}", first.inflated);
        assert_eq!(decoder.budget(), inflated * 3 / 2 - first.inflated);
        assert!(matches!(
            decoder.next().unwrap(),
            Err(DecodeError::InflatesBeyond(_))
        ));
    }

    #[test]
    fn an_unknown_codec_is_named() {
        let mut bytes = BytesMut::from(&build(&java_records())[..]);
        bytes[22] = 6;
        let err = BatchDecoder::new(bytes.freeze(), false, LIMIT)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(err, DecodeError::UnsupportedCompression(6));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for batch in BatchDecoder::new(Bytes::from(bytes), true, LIMIT) {
                let _ = batch;
            }
        }
    }
}
