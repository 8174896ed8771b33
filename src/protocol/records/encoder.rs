//! The record-batch encoder, the producer's hot path: each record is written once into the
//! batch buffer; the header and CRC are filled in when the batch closes.

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
        body_size(ts_delta, self.count as i64, key, value, headers)
    }

    /// The size of a batch holding just this record: what `message.max.bytes` is checked
    /// against before a record is queued.
    pub fn size_alone(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
        let body = body_size(0, 0, key, value, headers);
        BATCH_HEADER_LEN + varint_size(body as i64) + body
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

/// The size of a record's body (everything after its length varint).
fn body_size(
    ts_delta: i64,
    offset_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut size = 1 // attributes
        + varint_size(ts_delta)
        + varint_size(offset_delta)
        + bytes_size(key)
        + bytes_size(value)
        + varint_size(headers.len() as i64);
    for h in headers {
        size += bytes_size(Some(&h.key)) + bytes_size(h.value.as_deref());
    }
    size
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

#[cfg(test)]
mod tests {
    #[test]
    fn restamped_batches_decode_with_the_new_fields() {
        let batch = build(&java_records());
        let fields = ProducerFields {
            producer_id: 4242,
            producer_epoch: 3,
            base_sequence: 17,
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
    }
}
