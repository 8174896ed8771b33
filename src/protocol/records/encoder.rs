//! The record-batch encoder, the producer's hot path: each record is written once into the
//! batch buffer; the header and CRC are filled in when the batch closes.
//!
//! ```text
//!  buf: [61-byte header | record | record | … | zeros ahead ]
//!                                           ▲ len           ▲ buf.len()
//!  push: record length, computed from the field sizes ─► written at len, field after field,
//!        into the zeros (a long value is appended instead) ─► len moves past the record
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    bytes_size, put_bytes, put_varint, varint_size, Header, ATTRIBUTES_OFFSET, BATCH_HEADER_LEN,
    CRC_OFFSET, LOG_OVERHEAD,
};
use crate::protocol::compression::Compression;

/// The producer fields of a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerFields {
    /// Producer id, or -1 without idempotence.
    pub producer_id: i64,
    /// Producer epoch, or -1 without idempotence.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1 without idempotence.
    pub base_sequence: i32,
    /// The batch belongs to a transaction (the attributes' transactional bit).
    pub transactional: bool,
}

impl ProducerFields {
    /// The fields of a producer without idempotence.
    pub const NONE: ProducerFields = ProducerFields {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
    };
}

/// The batch attributes' transactional bit.
const TRANSACTIONAL: i16 = 0x10;

/// Writes records into one v2 batch buffer as they arrive.
///
/// A record is written into a byte slice of the buffer, its position kept in a register, and
/// the batch length moves once per record. Appending field by field to the `BytesMut` instead
/// checks the capacity and stores the length after every field: with the same framing code
/// that measured about 1.3–1.5× slower at 10 and 100 B (`benches/encode.rs`, issue 6). A slice
/// must be initialized, so the buffer is kept zero-filled ahead of the last record, in blocks of
/// `ZERO_AHEAD` bytes: one `memset` serves many small records. A value of `APPEND_FROM`
/// bytes or more is appended instead, as zero filling it first would write it twice.
#[derive(Debug)]
pub struct BatchBuilder {
    /// The header placeholder, the records, then zeros up to `buf.len()`.
    buf: BytesMut,
    /// Bytes of the batch so far: where the next record goes.
    len: usize,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

/// How far the zero fill runs ahead of the last record (within the capacity): one fill serves
/// many small records, and a batch that closes after one record wastes little.
const ZERO_AHEAD: usize = 4096;

/// Values from this size on are appended rather than written over zeros. Below it, writing
/// into the zero fill costs less than appending; above it, zero filling the value first costs
/// more (measured with `benches/encode.rs` at 250, 500 and 750 bytes: the two cross between 250
/// and 500).
const APPEND_FROM: usize = 512;

impl BatchBuilder {
    /// Starts an empty batch with room for `capacity` bytes of records.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(BATCH_HEADER_LEN + capacity);
        buf.put_bytes(0, BATCH_HEADER_LEN);
        BatchBuilder {
            buf,
            len: BATCH_HEADER_LEN,
            count: 0,
            base_timestamp: 0,
            max_timestamp: i64::MIN,
        }
    }

    /// Records written so far.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Bytes the finished batch will take, header included.
    pub fn size(&self) -> usize {
        self.len
    }

    /// The bytes one more record with these fields will add to the batch.
    pub fn record_size(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let ts_delta = if self.count == 0 {
            0
        } else {
            timestamp.wrapping_sub(self.base_timestamp)
        };
        Frame::new(ts_delta, self.count, key, value, headers).size()
    }

    /// The size of a batch holding just this record: what `message.max.bytes` is checked
    /// against before a record is queued.
    pub fn size_alone(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
        BATCH_HEADER_LEN + Frame::new(0, 0, key, value, headers).size()
    }

    /// Appends one record. `timestamp` is milliseconds since the Unix epoch.
    ///
    /// The record's length comes first; it is added up from the sizes of the other fields,
    /// which their values give, so every byte is written once, in order.
    #[inline]
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        let ts_delta = timestamp.wrapping_sub(self.base_timestamp);
        let frame = Frame::new(ts_delta, self.count, key, value, headers);
        let end = self.len + frame.size();
        match value {
            Some(value) if value.len() >= APPEND_FROM => {
                // Zeros up to the value only: the value and the headers are appended.
                let value_at = end - frame.headers_size - value.len();
                self.buf.resize(value_at, 0);
                let out = &mut self.buf[self.len..];
                let at = frame.put_up_to_value(out, ts_delta, self.count, key);
                debug_assert_eq!(self.len + at, value_at);
                self.buf.put_slice(value);
                put_headers(&mut self.buf, headers);
            }
            _ => {
                if end > self.buf.len() {
                    self.zero_fill(end);
                }
                let out = &mut self.buf[self.len..end];
                let mut at = frame.put_up_to_value(out, ts_delta, self.count, key);
                if let Some(value) = value {
                    out[at..at + value.len()].copy_from_slice(value);
                    at += value.len();
                }
                at = put_varint_at(out, at, headers.len() as i64);
                for h in headers {
                    at = put_bytes_at(out, at, Some(&h.key));
                    at = put_bytes_at(out, at, h.value.as_deref());
                }
                debug_assert_eq!(self.len + at, end);
            }
        }
        self.len = end;
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// Extends the zero fill to `end` at least, and [`ZERO_AHEAD`] bytes past the last record
    /// while that stays within the capacity.
    #[cold]
    fn zero_fill(&mut self, end: usize) {
        let ahead = (self.len + ZERO_AHEAD).min(self.buf.capacity());
        self.buf.resize(end.max(ahead), 0);
    }

    /// Closes the batch: fills in the header and the CRC and returns the batch bytes. A
    /// compressed batch compresses the records section once, into the buffer it is sent from.
    pub fn finish(
        self,
        producer: ProducerFields,
        compression: Compression,
    ) -> Result<Bytes, String> {
        let mut buf = self.buf;
        buf.truncate(self.len); // the zero fill ahead
        let mut buf = match compression {
            Compression::None => buf,
            codec => {
                let records = &buf[BATCH_HEADER_LEN..];
                let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + records.len() / 2);
                out.put_bytes(0, BATCH_HEADER_LEN);
                codec.compress(records, &mut out)?;
                out
            }
        };
        let header = BatchHeader {
            batch_length: (buf.len() - LOG_OVERHEAD) as i32,
            attributes: compression.id()
                | if producer.transactional {
                    TRANSACTIONAL
                } else {
                    0
                },
            last_offset_delta: self.count - 1,
            base_timestamp: self.base_timestamp,
            max_timestamp: if self.count == 0 {
                self.base_timestamp
            } else {
                self.max_timestamp
            },
            producer,
            count: self.count,
        };
        header.write(&mut buf);
        Ok(buf.freeze())
    }
}

/// Offset of the producer id in the batch header; the epoch and base sequence follow it.
const PRODUCER_ID_OFFSET: usize = 43;

/// A copy of a closed batch with other producer fields, its CRC recomputed: for an idempotent
/// batch that must go again under a new producer epoch.
pub fn restamp(batch: &[u8], producer: ProducerFields) -> Bytes {
    let mut copy = BytesMut::from(batch);
    let mut fields = &mut copy[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 14];
    fields.put_i64(producer.producer_id);
    fields.put_i16(producer.producer_epoch);
    fields.put_i32(producer.base_sequence);
    let crc = crc32c::crc32c(&copy[ATTRIBUTES_OFFSET..]);
    copy[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    copy.freeze()
}

/// The sizes of a record, known before any of it is written.
struct Frame {
    /// Bytes after the record's length varint.
    body: usize,
    /// The key's length, -1 for a null key.
    key_len: i64,
    /// The value's length, -1 for a null value.
    value_len: i64,
    /// Bytes of the header count and the headers.
    headers_size: usize,
}

impl Frame {
    #[inline]
    fn new(
        ts_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Frame {
        let key_len = key.map_or(-1, |k| k.len() as i64);
        let value_len = value.map_or(-1, |v| v.len() as i64);
        let headers_size = headers
            .iter()
            .fold(varint_size(headers.len() as i64), |size, h| {
                size + bytes_size(Some(&h.key)) + bytes_size(h.value.as_deref())
            });
        let body = 1 // attributes
            + varint_size(ts_delta)
            + varint_size(offset_delta as i64)
            + varint_size(key_len)
            + key.map_or(0, <[u8]>::len)
            + varint_size(value_len)
            + value.map_or(0, <[u8]>::len)
            + headers_size;
        Frame {
            body,
            key_len,
            value_len,
            headers_size,
        }
    }

    /// The whole record's size, its length varint included.
    #[inline]
    fn size(&self) -> usize {
        varint_size(self.body as i64) + self.body
    }

    /// Writes the record from its length through the value's length into `out`; returns where
    /// the value goes.
    #[inline(always)] // into both branches of `push`, the hot one above all
    fn put_up_to_value(
        &self,
        out: &mut [u8],
        ts_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
    ) -> usize {
        let mut at = put_varint_at(out, 0, self.body as i64);
        out[at] = 0; // attributes
        at = put_varint_at(out, at + 1, ts_delta);
        at = put_varint_at(out, at, offset_delta as i64);
        at = put_varint_at(out, at, self.key_len);
        if let Some(key) = key {
            out[at..at + key.len()].copy_from_slice(key);
            at += key.len();
        }
        put_varint_at(out, at, self.value_len)
    }
}

/// Appends a record's header count and headers.
fn put_headers(buf: &mut BytesMut, headers: &[Header]) {
    put_varint(buf, headers.len() as i64);
    for h in headers {
        put_bytes(buf, Some(&h.key));
        put_bytes(buf, h.value.as_deref());
    }
}

/// Writes a field with a varint length (-1 for null) into `out` at `at`; returns the position
/// after it.
fn put_bytes_at(out: &mut [u8], at: usize, b: Option<&[u8]>) -> usize {
    match b {
        Some(b) => {
            let at = put_varint_at(out, at, b.len() as i64);
            out[at..at + b.len()].copy_from_slice(b);
            at + b.len()
        }
        None => put_varint_at(out, at, -1),
    }
}

/// Writes `v` as a zig-zag varint into `out` at `at`; returns the position after it.
#[inline]
fn put_varint_at(out: &mut [u8], at: usize, v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    if z < 0x80 {
        // Most lengths and deltas in a batch take one byte.
        out[at] = z as u8;
        return at + 1;
    }
    put_long_varint_at(out, at, z)
}

/// [`put_varint_at`] for a zig-zagged value of two bytes or more.
fn put_long_varint_at(out: &mut [u8], mut at: usize, mut z: u64) -> usize {
    while z >= 0x80 {
        out[at] = z as u8 | 0x80;
        z >>= 7;
        at += 1;
    }
    out[at] = z as u8;
    at + 1
}

/// The fields of a batch header that the encoder fills in when the batch closes.
struct BatchHeader {
    batch_length: i32,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer: ProducerFields,
    count: i32,
}

impl BatchHeader {
    /// Writes the header over the first [`BATCH_HEADER_LEN`] bytes of `batch`, then the CRC.
    fn write(&self, batch: &mut BytesMut) {
        let mut header = &mut batch[..BATCH_HEADER_LEN];
        header.put_i64(0); // base offset: the broker assigns it
        header.put_i32(self.batch_length);
        header.put_i32(-1); // partition leader epoch
        header.put_i8(2); // magic
        header.put_u32(0); // crc, below
        header.put_i16(self.attributes); // codec; create time; transactional or not
        header.put_i32(self.last_offset_delta);
        header.put_i64(self.base_timestamp);
        header.put_i64(self.max_timestamp);
        header.put_i64(self.producer.producer_id);
        header.put_i16(self.producer.producer_epoch);
        header.put_i32(self.producer.base_sequence);
        header.put_i32(self.count);
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn restamped_batches_decode_with_the_new_fields() {
        let batch = build(&java_records());
        let fields = ProducerFields {
            producer_id: 4242,
            producer_epoch: 3,
            base_sequence: 17,
            transactional: false,
        };
        let again = restamp(&batch, fields);
        let decoded = BatchDecoder::new(again, true, LIMIT)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                decoded.producer_id,
                decoded.producer_epoch,
                decoded.base_sequence
            ),
            (4242, 3, 17)
        );
        assert_eq!(decoded.records.len(), 4);
    }

    use super::super::testdata::*;
    use super::super::BatchDecoder;
    use super::*;
    use kafka_protocol::records::{RecordBatchDecoder, TimestampType};

    #[test]
    fn kafka_protocol_reads_our_batches() {
        let headers = vec![
            Header::new("h", "v"),
            Header {
                key: "n".into(),
                value: None,
            },
        ];
        let batch = build(&[
            (1_700_000_000_000, Some(b"k1"), Some(b"v1"), headers.clone()),
            (1_700_000_000_005, None, Some(b""), vec![]),
            (1_699_999_999_990, Some(b""), None, vec![]),
        ]);
        let decoded = RecordBatchDecoder::decode(&mut batch.clone()).unwrap();
        let records = decoded.records;
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(records[0].value.as_deref(), Some(&b"v1"[..]));
        assert_eq!(records[0].headers.len(), 2);
        assert_eq!(records[0].timestamp, 1_700_000_000_000);
        assert_eq!(records[0].timestamp_type, TimestampType::Creation);
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].offset, 1);
        assert_eq!(records[2].value, None);
        assert_eq!(records[2].timestamp, 1_699_999_999_990);
    }

    #[test]
    fn encodes_the_same_bytes_as_the_java_client() {
        let java = golden("java-batch-none.bin");
        let ours = build(&java_records());
        assert_eq!(ours.len(), java.len());
        // The broker fills in the partition leader epoch (bytes 12..16, outside the CRC) when it
        // appends; everything else, CRC included, is the producer's.
        assert_eq!(ours[..12], java[..12]);
        assert_eq!(&ours[12..16], &(-1i32).to_be_bytes());
        assert_eq!(ours[16..], java[16..]);
    }

    #[test]
    fn our_compressed_batches_decode() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bytes = build_with(&java_records(), codec);
            assert_eq!(
                bytes[21..23],
                codec.id().to_be_bytes(),
                "{codec:?} attributes"
            );
            let batch = BatchDecoder::new(bytes, true, LIMIT)
                .next()
                .unwrap()
                .unwrap();
            assert_java_records(&batch);
        }
    }

    /// The records section written the plain way, as the encoder did before issue 6: each
    /// record's body appended field by field to a buffer of its own, its length taken from
    /// that buffer.
    fn plainly_encoded(records: &[Fields<'_>]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for (i, (ts, key, value, headers)) in records.iter().enumerate() {
            let mut body = BytesMut::new();
            body.put_i8(0);
            put_varint(&mut body, ts.wrapping_sub(records[0].0));
            put_varint(&mut body, i as i64);
            put_bytes(&mut body, *key);
            put_bytes(&mut body, *value);
            put_varint(&mut body, headers.len() as i64);
            for h in headers {
                put_bytes(&mut body, Some(&h.key));
                put_bytes(&mut body, h.value.as_deref());
            }
            put_varint(&mut out, body.len() as i64);
            out.put_slice(&body);
        }
        out.to_vec()
    }

    fn header_strategy() -> impl proptest::strategy::Strategy<Value = Header> {
        use proptest::prelude::*;
        (
            "[a-z]{0,8}",
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        )
            .prop_map(|(k, v)| Header {
                key: Bytes::copy_from_slice(k.as_bytes()),
                value: v.map(Bytes::from),
            })
    }

    proptest::proptest! {
        /// Every path of `push` (into the zero fill, appending a long value, growing past the
        /// capacity, varints of any length) writes what the plain encoder writes, and
        /// `record_size` foretells each record's size.
        #[test]
        fn pushes_write_what_the_plain_encoder_writes(
            records in proptest::collection::vec(
                (proptest::num::i64::ANY,
                 proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
                 // Across APPEND_FROM.
                 proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..1200)),
                 proptest::collection::vec(header_strategy(), 0..3)),
                1..40),
            capacity in 0usize..8192,
        ) {
            let records: Vec<Fields<'_>> = records
                .iter()
                .map(|(ts, k, v, h)| (*ts, k.as_deref(), v.as_deref(), h.clone()))
                .collect();
            let mut b = BatchBuilder::with_capacity(capacity);
            for (ts, k, v, h) in &records {
                let expected = b.size() + b.record_size(*ts, *k, *v, h);
                b.push(*ts, *k, *v, h);
                proptest::prop_assert_eq!(b.size(), expected);
            }
            let batch = b.finish(ProducerFields::NONE, Compression::None).unwrap();
            proptest::prop_assert_eq!(&batch[BATCH_HEADER_LEN..], &plainly_encoded(&records)[..]);
        }
    }

    #[test]
    fn a_batch_within_its_capacity_never_grows() {
        let value = [7u8; 100];
        let mut b = BatchBuilder::with_capacity(10_000);
        let capacity = b.buf.capacity();
        while b.size() + b.record_size(0, Some(b"key"), Some(&value), &[]) <= capacity {
            b.push(0, Some(b"key"), Some(&value), &[]);
        }
        // The zero fill stopped at the capacity; the records filled it.
        assert_eq!(b.buf.capacity(), capacity);
        assert!(b.size() > capacity - 200);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_records_round_trip(
            records in proptest::collection::vec(
                // kafka-protocol's decoder adds timestamp deltas without wrapping (it panics on
                // overflow), so the timestamps stay within real dates.
                (0i64..1 << 45,
                 proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
                 proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..300)),
                 proptest::collection::vec(("[a-z]{0,8}", proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..8))), 0..3)),
                1..20)
        ) {
            let mut b = BatchBuilder::with_capacity(0);
            for (ts, k, v, h) in &records {
                let headers: Vec<Header> = h.iter().map(|(k, v)| Header {
                    key: Bytes::copy_from_slice(k.as_bytes()),
                    value: v.clone().map(Bytes::from),
                }).collect();
                b.push(*ts, k.as_deref(), v.as_deref(), &headers);
            }
            let bytes = b
                .finish(ProducerFields { producer_id: 7, producer_epoch: 1, base_sequence: 3, transactional: false }, Compression::None)
                .unwrap();
            let batch = BatchDecoder::new(bytes.clone(), true, LIMIT).next().unwrap().unwrap();
            proptest::prop_assert_eq!(batch.records.len(), records.len());
            proptest::prop_assert_eq!(batch.producer_id, 7);
            proptest::prop_assert_eq!(batch.base_sequence, 3);
            for (i, (rec, (ts, k, v, h))) in batch.records.iter().zip(&records).enumerate() {
                proptest::prop_assert_eq!(rec.offset, i as i64);
                proptest::prop_assert_eq!(rec.timestamp, *ts);
                proptest::prop_assert_eq!(rec.key.as_deref(), k.as_deref());
                proptest::prop_assert_eq!(rec.value.as_deref(), v.as_deref());
                proptest::prop_assert_eq!(rec.headers.len(), h.len());
            }
            let theirs = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
            proptest::prop_assert_eq!(theirs.records.len(), records.len());
        }
    }
}
