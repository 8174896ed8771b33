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

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::compression::Compression;

/// Bytes of a v2 batch header, from base offset through the record count.
pub const BATCH_HEADER_LEN: usize = 61;
/// Offset of the batch length field.
const LENGTH_OFFSET: usize = 8;
/// Offset of the CRC field.
const CRC_OFFSET: usize = 17;
/// Offset of the attributes field: the CRC covers everything from here on.
const ATTRIBUTES_OFFSET: usize = 21;
/// Bytes counted before the batch length field ends (base offset + length).
const LOG_OVERHEAD: usize = 12;

/// Attribute bit: the batch is part of a transaction.
const ATTR_TRANSACTIONAL: i16 = 1 << 4;
/// Attribute bit: the batch is a control batch (transaction markers).
const ATTR_CONTROL: i16 = 1 << 5;
/// Attribute bits holding the compression codec.
const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit: timestamps are the broker's log-append time.
const ATTR_LOG_APPEND_TIME: i16 = 1 << 3;

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

/// The producer fields of a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerFields {
    /// Producer id, or -1 without idempotence.
    pub producer_id: i64,
    /// Producer epoch, or -1 without idempotence.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1 without idempotence.
    pub base_sequence: i32,
}

impl ProducerFields {
    /// The fields of a producer without idempotence.
    pub const NONE: ProducerFields = ProducerFields {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// Writes records into one v2 batch buffer as they arrive.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: BytesMut,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// Starts an empty batch with room for `capacity` bytes of records.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(BATCH_HEADER_LEN + capacity);
        buf.put_bytes(0, BATCH_HEADER_LEN);
        BatchBuilder {
            buf,
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
        self.buf.len()
    }

    /// The bytes one more record with these fields will add to the batch.
    pub fn record_size(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let body = self.body_size(timestamp, key, value, headers);
        varint_size(body as i64) + body
    }

    fn body_size(
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
        let mut size = 1 // attributes
            + varint_size(ts_delta)
            + varint_size(self.count as i64)
            + bytes_size(key)
            + bytes_size(value)
            + varint_size(headers.len() as i64);
        for h in headers {
            size += bytes_size(Some(&h.key)) + bytes_size(h.value.as_deref());
        }
        size
    }

    /// Appends one record. `timestamp` is milliseconds since the Unix epoch.
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
        let body = self.body_size(timestamp, key, value, headers);
        let buf = &mut self.buf;
        buf.reserve(varint_size(body as i64) + body);
        put_varint(buf, body as i64);
        buf.put_i8(0);
        put_varint(buf, timestamp.wrapping_sub(self.base_timestamp));
        put_varint(buf, self.count as i64);
        put_bytes(buf, key);
        put_bytes(buf, value);
        put_varint(buf, headers.len() as i64);
        for h in headers {
            put_bytes(buf, Some(&h.key));
            put_bytes(buf, h.value.as_deref());
        }
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// Closes the batch: fills in the header and the CRC and returns the batch bytes. A
    /// compressed batch compresses the records section once, into the buffer it is sent from.
    pub fn finish(
        self,
        producer: ProducerFields,
        compression: Compression,
    ) -> Result<Bytes, String> {
        let mut buf = match compression {
            Compression::None => self.buf,
            codec => {
                let records = &self.buf[BATCH_HEADER_LEN..];
                let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + records.len() / 2);
                out.put_bytes(0, BATCH_HEADER_LEN);
                codec.compress(records, &mut out)?;
                out
            }
        };
        let header = BatchHeader {
            batch_length: (buf.len() - LOG_OVERHEAD) as i32,
            attributes: compression.id(),
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
        header.put_i16(self.attributes); // codec; create time; not transactional
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
            DecodeError::Malformed(what) => write!(f, "malformed batch: {what}"),
        }
    }
}

/// Iterates over the batches in a fetched `records` buffer.
#[derive(Debug)]
pub struct BatchDecoder {
    buf: Bytes,
    check_crc: bool,
    decompression_limit: usize,
}

impl BatchDecoder {
    /// Decodes the batches in `buf`; `check_crc` verifies each batch's CRC32C. A compressed
    /// batch may inflate to at most `decompression_limit` bytes.
    pub fn new(buf: Bytes, check_crc: bool, decompression_limit: usize) -> Self {
        BatchDecoder {
            buf,
            check_crc,
            decompression_limit,
        }
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
        batch.advance(4 + 4 + 1); // length, partition leader epoch, magic
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
        let mut batch = match Compression::from_id(codec) {
            Some(Compression::None) => batch,
            Some(codec) => codec
                .decompress(&batch, self.decompression_limit)
                .map_err(DecodeError::Decompression)?,
            None => return Err(DecodeError::UnsupportedCompression(codec)),
        };
        let log_append = attributes & ATTR_LOG_APPEND_TIME != 0;
        // Each record takes at least 7 bytes, so the count cannot reserve more than the bytes hold.
        let mut records = Vec::with_capacity((count as usize).min(batch.len() / 7));
        for _ in 0..count {
            let mut record = decode_record(&mut batch, base_offset, base_timestamp)?;
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
            attributes,
            producer_id,
            producer_epoch,
            base_sequence,
            records,
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
    buf: &mut Bytes,
    base_offset: i64,
    base_timestamp: i64,
) -> Result<Record, DecodeError> {
    let len = get_varint(buf)?;
    if len < 0 || len as usize > buf.len() {
        return Err(DecodeError::Malformed("record length beyond the batch"));
    }
    let mut rec = buf.split_to(len as usize);
    if rec.is_empty() {
        return Err(DecodeError::Malformed("empty record"));
    }
    rec.advance(1); // attributes, unused in v2
    let timestamp_delta = get_varint(&mut rec)?;
    let offset_delta = get_varint(&mut rec)?;
    let key = get_bytes(&mut rec)?;
    let value = get_bytes(&mut rec)?;
    let header_count = get_varint(&mut rec)?;
    if header_count < 0 {
        return Err(DecodeError::Malformed("negative header count"));
    }
    let mut headers = Vec::with_capacity((header_count as usize).min(rec.len() / 2));
    for _ in 0..header_count {
        let key = get_bytes(&mut rec)?.ok_or(DecodeError::Malformed("null header key"))?;
        let value = get_bytes(&mut rec)?;
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

/// Size of `v` as a zig-zag varint.
#[inline]
pub fn varint_size(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    // 1 byte per 7 bits, at least one byte.
    (64 - (z | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

#[inline]
fn bytes_size(b: Option<&[u8]>) -> usize {
    match b {
        Some(b) => varint_size(b.len() as i64) + b.len(),
        None => 1,
    }
}

#[inline]
fn put_bytes(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.put_slice(b);
        }
        None => put_varint(buf, -1),
    }
}

fn get_varint(buf: &mut Bytes) -> Result<i64, DecodeError> {
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

fn get_bytes(buf: &mut Bytes) -> Result<Option<Bytes>, DecodeError> {
    let len = get_varint(buf)?;
    if len < 0 {
        return Ok(None);
    }
    if len as usize > buf.len() {
        return Err(DecodeError::Malformed("field length beyond the record"));
    }
    Ok(Some(buf.split_to(len as usize)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{RecordBatchDecoder, TimestampType};

    /// Timestamp, key, value and headers of one record.
    type Fields<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>, Vec<Header>);

    /// Decompression ceiling in tests.
    const LIMIT: usize = 1 << 24;

    fn build(records: &[Fields<'_>]) -> Bytes {
        build_with(records, Compression::None)
    }

    fn build_with(records: &[Fields<'_>], codec: Compression) -> Bytes {
        let mut b = BatchBuilder::with_capacity(64);
        for (ts, k, v, h) in records {
            let before = b.size();
            let expect = b.record_size(*ts, *k, *v, h);
            b.push(*ts, *k, *v, h);
            assert_eq!(b.size() - before, expect);
        }
        b.finish(ProducerFields::NONE, codec).unwrap()
    }

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
        assert_eq!(err, DecodeError::Malformed("truncated varint"));
    }

    fn golden(name: &str) -> Bytes {
        let path = format!("{}/fixtures/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        Bytes::from(std::fs::read(&path).unwrap())
    }

    /// The records the Java client wrote into every `java-batch-*.bin` (fixtures/golden/README.md).
    fn java_records() -> Vec<Fields<'static>> {
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

    #[test]
    fn decodes_the_java_clients_batch() {
        let batches: Vec<Batch> = BatchDecoder::new(golden("java-batch-none.bin"), true, LIMIT)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!((batch.base_offset, batch.last_offset), (0, 3));
        assert_eq!(
            (batch.producer_id, batch.producer_epoch, batch.base_sequence),
            (-1, -1, -1)
        );
        assert!(!batch.is_control() && !batch.is_transactional() && !batch.is_log_append_time());
        assert_java_records(batch);
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

    fn assert_java_records(batch: &Batch) {
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
                .finish(ProducerFields { producer_id: 7, producer_epoch: 1, base_sequence: 3 }, Compression::None)
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

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for batch in BatchDecoder::new(Bytes::from(bytes), true, LIMIT) {
                let _ = batch;
            }
        }
    }
}
