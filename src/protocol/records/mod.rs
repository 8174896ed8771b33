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

use bytes::{BufMut, Bytes, BytesMut};

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

/// A reading position in a decoded batch's records, up to `end`. Fields are read from the
/// byte slice by index (no `Bytes` bookkeeping per varint); keys, values and headers come out
/// as `Bytes` slices of the shared buffer, not copies.
pub(super) struct Cursor<'a> {
    whole: &'a Bytes,
    /// `whole` as a slice, ready to index.
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over all of `whole`.
    pub fn new(whole: &'a Bytes) -> Self {
        Cursor {
            whole,
            data: whole,
            pos: 0,
            end: whole.len(),
        }
    }

    /// Bytes left before the end.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// Skips `n` bytes, at most to the end.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    /// Splits off the next `len` bytes (at most `remaining()`) as a cursor of their own.
    #[inline]
    pub fn split(&mut self, len: usize) -> Cursor<'a> {
        let end = self.pos + len.min(self.remaining());
        let part = Cursor {
            whole: self.whole,
            data: self.data,
            pos: self.pos,
            end,
        };
        self.pos = end;
        part
    }

    /// Reads a zig-zag varint.
    #[inline]
    pub fn varint(&mut self) -> Result<i64, DecodeError> {
        let bytes = self.data.get(self.pos..self.end).unwrap_or_default();
        // Most varints in a batch (lengths, deltas, counts) take one byte.
        if let Some(&b) = bytes.first().filter(|&&b| b < 0x80) {
            self.pos += 1;
            return Ok((b >> 1) as i64 ^ -((b & 1) as i64));
        }
        let mut z: u64 = 0;
        for (i, &b) in bytes.iter().take(10).enumerate() {
            z |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                self.pos += i + 1;
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(DecodeError::Malformed(if bytes.len() < 10 {
            "truncated varint"
        } else {
            "varint longer than 10 bytes"
        }))
    }

    /// Reads a field with a varint length: -1 is null; any other negative length is malformed,
    /// with the message `negative` naming the field. (The Java client reads every negative key
    /// or value length as null; no encoder writes one, so here it is the corruption it must be.)
    #[inline]
    pub fn bytes(&mut self, negative: &'static str) -> Result<Option<Bytes>, DecodeError> {
        match self.varint()? {
            -1 => Ok(None),
            len if len < 0 => Err(DecodeError::Malformed(negative)),
            len if len as usize > self.remaining() => {
                Err(DecodeError::Malformed("field length beyond the record"))
            }
            len => {
                let start = self.pos;
                self.pos += len as usize;
                Ok(Some(self.whole.slice(start..self.pos)))
            }
        }
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
            let buf = buf.freeze();
            let mut cursor = Cursor::new(&buf);
            assert_eq!(cursor.varint().unwrap(), v);
            assert_eq!(cursor.remaining(), 0);
        }
    }

    #[test]
    fn cursor_refuses_short_and_long_varints_and_fields() {
        let short = Bytes::from_static(&[0x80, 0x80]);
        let err = Cursor::new(&short).varint().unwrap_err();
        assert_eq!(err, DecodeError::Malformed("truncated varint"));
        let long = Bytes::from_static(&[0xff; 11]);
        let err = Cursor::new(&long).varint().unwrap_err();
        assert_eq!(err, DecodeError::Malformed("varint longer than 10 bytes"));
        // A length of 3 with two bytes behind it, then -1 (null) and -2.
        let field = Bytes::from_static(&[6, b'a', b'b']);
        let err = Cursor::new(&field).bytes("negative").unwrap_err();
        assert_eq!(
            err,
            DecodeError::Malformed("field length beyond the record")
        );
        let null = Bytes::from_static(&[1, 3]);
        let mut cursor = Cursor::new(&null);
        assert_eq!(cursor.bytes("negative").unwrap(), None);
        assert_eq!(
            cursor.bytes("negative"),
            Err(DecodeError::Malformed("negative"))
        );
        // A field within a split-off part cannot reach past the part's end.
        let two = Bytes::from_static(&[4, b'a', b'b', 2, b'c']);
        let mut outer = Cursor::new(&two);
        let mut part = outer.split(2);
        assert_eq!(
            part.bytes("negative").unwrap_err(),
            DecodeError::Malformed("field length beyond the record")
        );
        assert_eq!(outer.remaining(), 3);
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
