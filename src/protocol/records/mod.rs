//! Record batches, magic v2: the encoder on the producer's hot path and the zero-copy decoder on
//! the consumer's.
//!
//! ```text
//!  BatchBuilder::new ──► [61-byte header placeholder]
//!  push(record)      ──► [.. | len varint, attrs, ts delta, offset delta, key, value, headers]
//!  finish(header)    ──► fills length, counts, timestamps, producer fields, then CRC32C ──► Bytes
//! ```
//!
//! A record is written once, straight into the batch buffer; the batch header is filled in when
//! the batch closes, and the finished batch is `Bytes` that travels to the socket as it is.
//!
//! The decoder hands out records whose key, value and header fields are `Bytes` slices of the
//! fetched buffer: nothing is copied. A partial batch at the end of a fetch response (the broker
//! cuts responses at the size limit) ends the iteration without an error.
//!
//! For transactions, [`Batch::control_type`] reads a control batch's marker (COMMIT or ABORT), and
//! [`AbortedTransactions`] decides, batch by batch, what a `read_committed` consumer delivers.

mod control;
mod decoder;
mod encoder;
mod transactions;

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub use control::{ControlRecordError, ControlRecordType};
pub use decoder::{Batch, BatchDecoder, DecodeError, Record};
pub use encoder::{restamp, BatchBuilder, ProducerFields};
pub use transactions::AbortedTransactions;

/// Bytes of a v2 batch header, from base offset through the record count.
pub const BATCH_HEADER_LEN: usize = 61;
/// Offset of the batch length field.
pub(super) const LENGTH_OFFSET: usize = 8;
/// Offset of the CRC field.
pub(super) const CRC_OFFSET: usize = 17;
/// Offset of the attributes field: the CRC covers everything from here on.
pub(super) const ATTRIBUTES_OFFSET: usize = 21;
/// Bytes counted before the batch length field ends (base offset + length).
pub(super) const LOG_OVERHEAD: usize = 12;

/// Attribute bit: the batch is part of a transaction.
pub(super) const ATTR_TRANSACTIONAL: i16 = 1 << 4;
/// Attribute bit: the batch is a control batch (transaction markers).
pub(super) const ATTR_CONTROL: i16 = 1 << 5;
/// Attribute bits holding the compression codec.
pub(super) const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit: timestamps are the broker's log-append time.
pub(super) const ATTR_LOG_APPEND_TIME: i16 = 1 << 3;

/// A record header: a string key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header key, UTF-8 by convention (not checked when decoding, to avoid a pass over it).
    pub key: Bytes,
    /// The header value; `None` is a null value.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a key and a value.
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// Size of `v` as a zig-zag varint.
#[inline]
pub fn varint_size(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    if z < 0x80 {
        // Most lengths and deltas in a batch take one byte.
        return 1;
    }
    // 1 byte per 7 bits: ⌈bits / 7⌉ = ⌊(9 × bits + 64) / 64⌋ for bits in 1..=64, without a
    // division.
    let bits = 64 - z.leading_zeros() as usize;
    (9 * bits + 64) / 64
}

#[inline]
pub(super) fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

#[inline]
pub(super) fn bytes_size(b: Option<&[u8]>) -> usize {
    match b {
        Some(b) => varint_size(b.len() as i64) + b.len(),
        None => 1,
    }
}

#[inline]
pub(super) fn put_bytes(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.put_slice(b);
        }
        None => put_varint(buf, -1),
    }
}

pub(super) fn get_varint(buf: &mut Bytes) -> Result<i64, DecodeError> {
    let mut z: u64 = 0;
    for i in 0..10 {
        if !buf.has_remaining() {
            return Err(DecodeError::Malformed("truncated varint"));
        }
        let b = buf.get_u8();
        z |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    Err(DecodeError::Malformed("varint longer than 10 bytes"))
}

/// Reads a field with a varint length: -1 is null; any other negative length is malformed, with
/// the message `negative` naming the field. (The Java client reads every negative key or value
/// length as null; no encoder writes one, so here it is the corruption it must be.)
pub(super) fn get_bytes(
    buf: &mut Bytes,
    negative: &'static str,
) -> Result<Option<Bytes>, DecodeError> {
    match get_varint(buf)? {
        -1 => Ok(None),
        len if len < 0 => Err(DecodeError::Malformed(negative)),
        len if len as usize > buf.len() => {
            Err(DecodeError::Malformed("field length beyond the record"))
        }
        len => Ok(Some(buf.split_to(len as usize))),
    }
}

#[cfg(test)]
mod testdata {
    //! Records and helpers the encoder's and decoder's tests share.

    use super::*;
    use crate::protocol::compression::Compression;

    /// Timestamp, key, value and headers of one record.
    pub type Fields<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>, Vec<Header>);

    /// Decompression ceiling in tests.
    pub const LIMIT: usize = 1 << 24;

    pub fn build(records: &[Fields<'_>]) -> Bytes {
        build_with(records, Compression::None)
    }

    pub fn build_with(records: &[Fields<'_>], codec: Compression) -> Bytes {
        let mut b = BatchBuilder::with_capacity(64);
        for (ts, k, v, h) in records {
            let before = b.size();
            let expect = b.record_size(*ts, *k, *v, h);
            b.push(*ts, *k, *v, h);
            assert_eq!(b.size() - before, expect);
        }
        b.finish(ProducerFields::NONE, codec).unwrap()
    }

    pub fn golden(name: &str) -> Bytes {
        let path = format!("{}/fixtures/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        Bytes::from(std::fs::read(&path).unwrap())
    }

    /// The records the Java client wrote into every `java-batch-*.bin` (fixtures/golden/README.md).
    pub fn java_records() -> Vec<Fields<'static>> {
        let big: &'static [u8] = Box::leak(vec![b'x'; 300].into_boxed_slice());
        vec![
            (
                1_700_000_000_000,
                Some(b"k1"),
                Some(b"Confluent-Kafka"),
                vec![
                    Header::new("trace", "abc"),
                    Header {
                        key: "empty".into(),
                        value: None,
                    },
                ],
            ),
            (
                1_700_000_000_005,
                None,
                Some(b"Golang Client Message"),
                vec![],
            ),
            (1_699_999_999_990, Some(b""), None, vec![]),
            (
                1_700_000_000_100,
                Some(b"k4"),
                Some(big),
                vec![Header::new("h", "v")],
            ),
        ]
    }

    pub fn assert_java_records(batch: &Batch) {
        assert_eq!(batch.records.len(), 4);
        for (i, (rec, (ts, key, value, headers))) in
            batch.records.iter().zip(java_records()).enumerate()
        {
            assert_eq!(rec.offset, i as i64);
            assert_eq!(rec.timestamp, ts);
            assert_eq!(rec.key.as_deref(), key);
            assert_eq!(rec.value.as_deref(), value);
            assert_eq!(rec.headers, headers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_protocol() {
        for (v, bytes) in [
            (0i64, &[0u8][..]),
            (-1, &[1]),
            (1, &[2]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
            (
                i64::MIN,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut buf = BytesMut::new();
            put_varint(&mut buf, v);
            assert_eq!(&buf[..], bytes, "{v}");
            assert_eq!(varint_size(v), bytes.len(), "{v}");
            assert_eq!(get_varint(&mut buf.freeze()).unwrap(), v);
        }
    }

    proptest::proptest! {
        #[test]
        fn varint_sizes_match_the_bytes_written(v in proptest::num::i64::ANY, shift in 0u32..64) {
            // Shifted right, `v` covers every length, 1 to 10 bytes, not just the longest.
            let v = v >> shift;
            let mut buf = BytesMut::new();
            put_varint(&mut buf, v);
            proptest::prop_assert_eq!(varint_size(v), buf.len());
        }
    }
}
