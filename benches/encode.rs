//! Record-batch encoding, ns per record: purekafka's encoder, kafka-protocol's
//! `RecordBatchEncoder`, and the floor (copying the same key and value bytes into a buffer, then
//! CRC32C over it). 1000 records per batch, 8-byte keys, values of 10, 100 and 1000 bytes.
//!
//! `cargo bench --bench encode`

use std::hint::black_box;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use purekafka::protocol::records::{BatchBuilder, ProducerFields};
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

fn purekafka(records: &[(Bytes, Bytes)], capacity: usize) -> Bytes {
    let mut batch = BatchBuilder::with_capacity(capacity);
    for (i, (key, value)) in records.iter().enumerate() {
        batch.push(TIMESTAMP + i as i64, Some(key), Some(value), &[]);
    }
    batch
        .finish(ProducerFields::NONE, Codec::None)
        .expect("uncompressed batches always encode")
}

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

fn floor(records: &[(Bytes, Bytes)], capacity: usize) -> u32 {
    let mut buf = BytesMut::with_capacity(capacity);
    for (key, value) in records {
        buf.put_slice(key);
        buf.put_slice(value);
    }
    crc32c::crc32c(&buf)
}

fn encode(c: &mut Criterion) {
    for value_size in [10, 100, 1000] {
        let records = inputs(value_size);
        let capacity = records.len() * (value_size + 8 + 16);
        // Both encoders must write the same single batch, byte for byte.
        assert_eq!(
            purekafka(&records, capacity),
            kafka_protocol(&records, capacity)
        );
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
        group.bench_with_input(BenchmarkId::new("floor", RECORDS), &records, |b, r| {
            b.iter(|| black_box(floor(r, capacity)))
        });
        group.finish();
    }
}

criterion_group!(benches, encode);
criterion_main!(benches);
