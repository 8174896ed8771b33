//! Record-batch encoding, ns per record: purekafka's encoder, kafka-protocol's
//! `RecordBatchEncoder`, and two floors. 1000 records per batch, 8-byte keys, values of 10, 100
//! and 1000 bytes, no headers.
//!
//! - **floor-copy** (the floor of the first figures, kept as it was): the key and value bytes
//!   copied into a buffer, then CRC32C over them. It writes fewer bytes than any encoder can: a
//!   v2 record also carries its framing, 7 to 11 bytes here (length varint, attributes, timestamp
//!   delta varint, offset delta varint, key length varint, value length varint, header count),
//!   and the batch CRC covers those bytes too.
//! - **floor-framed**: the same bytes as the batch's records section, framing included, written
//!   by the simplest code there is: each record's framing bytes are computed before the timing
//!   starts, so inside it a record is five plain appends (framing head, key, value length, value,
//!   header count), then CRC32C over the whole buffer. It is what these bytes cost written
//!   plainly, with nothing to compute; not a strict lower bound, as an encoder that writes the
//!   small fields without a `memcpy` call each can come close to it or beat it. The setup checks
//!   that these bytes equal the records section purekafka writes.
//!
//! `cargo bench --bench encode`
//!
//! Instruction counts, which unlike times do not move with the load of a shared machine: the
//! timed functions are `#[inline(never)]`, so callgrind reports each one's inclusive cost and
//! call count (`encode::purekafka`, `encode::floor_copy`, …; one call is one batch of 1000):
//!
//! ```text
//! cargo bench --bench encode --no-run        # prints the binary's path
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/deps/encode-HASH --bench --profile-time 5 100B
//! callgrind_annotate --inclusive=yes --tree=caller /tmp/cg.out | grep -E 'encode::(purekafka|kafka_protocol|floor)'
//! ```
//!
//! Callgrind counts every byte of a `rep stosb` as one instruction, and glibc's `memset` uses it
//! for blocks of 2 KiB and more: purekafka's zero fill ahead of the records (4 KiB blocks, see
//! `BatchBuilder`) shows as about one instruction per record byte, which it does not cost.

use std::hint::black_box;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use purekafka::protocol::records::{BatchBuilder, ProducerFields, BATCH_HEADER_LEN};
use purekafka::Compression as Codec;

const RECORDS: usize = 1000;
const TIMESTAMP: i64 = 1_700_000_000_000;

fn inputs(value_size: usize) -> Vec<(Bytes, Bytes)> {
    (0..RECORDS)
        .map(|i| {
            let key = Bytes::from(format!("key{:05}", i % 100_000));
            let value = Bytes::from(vec![(i % 251) as u8; value_size]);
            (key, value)
        })
        .collect()
}

#[inline(never)]
fn purekafka(records: &[(Bytes, Bytes)], capacity: usize) -> Bytes {
    let mut batch = BatchBuilder::with_capacity(capacity);
    for (i, (key, value)) in records.iter().enumerate() {
        batch.push(TIMESTAMP + i as i64, Some(key), Some(value), &[]);
    }
    batch
        .finish(ProducerFields::NONE, Codec::None)
        .expect("uncompressed batches always encode")
}

#[inline(never)]
fn kafka_protocol(records: &[(Bytes, Bytes)], capacity: usize) -> Bytes {
    // A producer using kafka-protocol builds a Record per message, then encodes them as one
    // batch.
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol starts a new batch where offset - sequence changes; this keeps it
            // constant and the batch's base sequence at -1.
            sequence: i as i32 - 1,
            timestamp: TIMESTAMP + i as i64,
            key: Some(key.clone()),
            value: Some(value.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::with_capacity(capacity + 64);
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encodes");
    buf.freeze()
}

#[inline(never)]
fn floor_copy(records: &[(Bytes, Bytes)], capacity: usize) -> u32 {
    let mut buf = BytesMut::with_capacity(capacity);
    for (key, value) in records {
        buf.put_slice(key);
        buf.put_slice(value);
    }
    crc32c::crc32c(&buf)
}

/// One record's framing, computed before the timing: the bytes before the key (length,
/// attributes, timestamp delta, offset delta, key length) and the value's length.
struct Framing {
    head: Vec<u8>,
    value_len: Vec<u8>,
}

/// The framing of the records as purekafka lays them out: timestamps `TIMESTAMP + i`, no headers.
fn framing(records: &[(Bytes, Bytes)]) -> Vec<Framing> {
    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push(z as u8 | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
    records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let mut rest = vec![0]; // attributes
            varint(&mut rest, i as i64); // timestamp delta
            varint(&mut rest, i as i64); // offset delta
            varint(&mut rest, key.len() as i64);
            let mut value_len = Vec::new();
            varint(&mut value_len, value.len() as i64);
            let body = rest.len() + key.len() + value_len.len() + value.len() + 1;
            let mut head = Vec::new();
            varint(&mut head, body as i64);
            head.extend_from_slice(&rest);
            Framing { head, value_len }
        })
        .collect()
}

#[inline(never)]
fn floor_framed(records: &[(Bytes, Bytes)], framing: &[Framing], capacity: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(capacity);
    for ((key, value), f) in records.iter().zip(framing) {
        buf.put_slice(&f.head);
        buf.put_slice(key);
        buf.put_slice(&f.value_len);
        buf.put_slice(value);
        buf.put_u8(0); // header count
    }
    let crc = crc32c::crc32c(&buf);
    buf.put_u32(crc);
    buf
}

fn encode(c: &mut Criterion) {
    for value_size in [10, 100, 1000] {
        let records = inputs(value_size);
        let capacity = records.len() * (value_size + 8 + 16);
        let ours = purekafka(&records, capacity);
        // Both encoders must write the same single batch, byte for byte.
        assert_eq!(ours, kafka_protocol(&records, capacity));
        // And the framed floor the same records section.
        let framing = framing(&records);
        let floor = floor_framed(&records, &framing, capacity);
        assert_eq!(ours[BATCH_HEADER_LEN..], floor[..floor.len() - 4]);

        let mut group = c.benchmark_group(format!("encode/{value_size}B"));
        group.throughput(Throughput::Elements(RECORDS as u64));
        group.bench_with_input(BenchmarkId::new("purekafka", RECORDS), &records, |b, r| {
            b.iter(|| black_box(purekafka(r, capacity)))
        });
        group.bench_with_input(
            BenchmarkId::new("kafka-protocol", RECORDS),
            &records,
            |b, r| b.iter(|| black_box(kafka_protocol(r, capacity))),
        );
        group.bench_with_input(BenchmarkId::new("floor-copy", RECORDS), &records, |b, r| {
            b.iter(|| black_box(floor_copy(r, capacity)))
        });
        group.bench_with_input(
            BenchmarkId::new("floor-framed", RECORDS),
            &records,
            |b, r| b.iter(|| black_box(floor_framed(r, &framing, capacity))),
        );
        group.finish();
    }
}

criterion_group!(benches, encode);
criterion_main!(benches);
