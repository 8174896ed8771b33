//! Hostile input: a broker, or another member of a consumer group, may send any bytes at all.
//! Every decoder of such bytes gets arbitrary bytes, and bytes mutated from valid ones where a
//! valid seed exists, and must neither panic nor hold memory beyond a bound proportional to what
//! it was given:
//!
//! | decoder | seeds for mutation |
//! |---|---|
//! | each response purekafka reads, at each version of [`versions::OURS`] | ApiVersions answers of `fixtures/golden/` |
//! | [`split_frame`], the response header, [`parse_api_versions`] | the same |
//! | [`BatchDecoder`], CRC checked and not, small decompression budgets | `fixtures/golden/` batches |
//! | [`Compression::decompress`] | our own compressed bytes |
//! | [`Subscription`] and assignments of the consumer protocol | our encodings, versions 0 to 3 |
//! | control records and [`AbortedTransactions`] | the golden transactional segment |
//!
//! Memory is measured with `allocation-counter` on the test's own thread: the peak of bytes held
//! at once while decoding, which catches a length read from the wire sizing an allocation
//! (kafka-protocol did, vendor/kafka-protocol/PATCH.md) long before it is large enough to abort.
//!
//! The fuzz targets in `fuzz/` (`cargo xtask fuzz`) drive the same decoders for longer, guided by
//! coverage; these tests keep a fast, deterministic share of that in `cargo xtask test`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::AbortedTransaction;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::messages::{ProducerId, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use super::api::decode_response;
use super::compression::Compression;
use super::consumer_protocol::{decode_assignment, encode_assignment, Subscription};
use super::frame::{peek_correlation_id, split_frame, strip_response_header};
use super::records::{AbortedTransactions, Batch, BatchDecoder, ControlRecordType};
use super::versions::{self, parse_api_versions};

/// Memory a decoder may hold per byte of input: decoded structs are larger than their encoding
/// (a topic of a Metadata response takes a few bytes on the wire and about a hundred in memory),
/// and a `Vec` that grows may hold twice what it needs. The largest peak measured over these
/// tests is 30 bytes per input byte, fixed costs included.
const PER_INPUT_BYTE: usize = 256;
/// Memory any decode may hold whatever its input: error messages, and a backtrace when
/// RUST_BACKTRACE is set (kafka-protocol's errors are `anyhow`).
const SLACK: usize = 64 << 10;

/// The peak of bytes held on this thread while `f` runs, and its result.
fn held<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let mut out = None;
    let info = allocation_counter::measure(|| out = Some(f()));
    (out.expect("measured closure ran"), info.bytes_max as usize)
}

/// Fails when `f` holds more than `bound` bytes at once.
fn within<T>(what: &str, bound: usize, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let (out, peak) = held(f);
    prop_assert!(peak <= bound, "{what}: held {peak} bytes, bound {bound}");
    Ok(out)
}

/// Bytes biased towards the values that keep a decoder going: zero lengths and counts, null
/// markers (-1), small varints, next to any byte at all.
fn hostile_bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => Just(0u8),
        1 => Just(1u8),
        1 => Just(2u8),
        1 => Just(0xffu8),
        4 => any::<u8>(),
    ];
    vec(byte, 0..max_len)
}

/// What [`mutate`] does at one place.
#[derive(Debug, Clone)]
enum Edit {
    Set(Index, u8),
    FlipBit(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// A big-endian i32 (a length or count) written over four bytes.
    Length(Index, i32),
    Truncate(Index),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        4 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::FlipBit(i, b)),
        1 => (any::<Index>(), vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Edit::Remove(i, n)),
        2 => (any::<Index>(), prop_oneof![Just(-1), Just(i32::MAX), Just(i32::MIN), any::<i32>()])
            .prop_map(|(i, n)| Edit::Length(i, n)),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ];
    vec(edit, 1..6)
}

/// `seed` with `edits` applied, in order.
fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for edit in edits {
        if out.is_empty() {
            break;
        }
        match edit {
            Edit::Set(i, b) => {
                let at = i.index(out.len());
                out[at] = *b;
            }
            Edit::FlipBit(i, bit) => {
                let at = i.index(out.len());
                out[at] ^= 1 << bit;
            }
            Edit::Insert(i, bytes) => {
                let at = i.index(out.len() + 1);
                out.splice(at..at, bytes.iter().copied());
            }
            Edit::Remove(i, n) => {
                let at = i.index(out.len());
                out.drain(at..(at + n).min(out.len()));
            }
            Edit::Length(i, n) => {
                let at = i.index(out.len());
                let end = (at + 4).min(out.len());
                out[at..end].copy_from_slice(&n.to_be_bytes()[..end - at]);
            }
            Edit::Truncate(i) => out.truncate(i.index(out.len())),
        }
    }
    out
}

fn golden(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The golden ApiVersions response bodies (correlation id stripped) and their versions.
fn api_versions_seeds() -> Vec<(Vec<u8>, i16)> {
    [
        ("api-versions-v0-response.bin", 0),
        ("api-versions-v3-response.bin", 3),
        ("api-versions-v127-response.bin", 3),
    ]
    .into_iter()
    .map(|(file, version)| (golden(file)[4..].to_vec(), version))
    .collect()
}

/// Decodes `body` as the response of every API purekafka uses, at every version it speaks.
fn decode_every_response(body: &[u8]) -> Result<(), TestCaseError> {
    let bound = PER_INPUT_BYTE * body.len() + SLACK;
    for &(key, min, max) in versions::OURS {
        for version in min..=max {
            let body = Bytes::copy_from_slice(body);
            let what = format!("{} v{version}", super::api::api_name(key));
            let decoded = within(&what, bound, || decode_response(key, version, body))?;
            prop_assert!(decoded.is_some(), "{what}: not dispatched");
        }
    }
    Ok(())
}

/// Every batch in `bytes`, with each check the consumer makes on it, under `budget`.
fn decode_batches(
    bytes: &[u8],
    check_crc: bool,
    budget: usize,
    aborted: &[AbortedTransaction],
) -> Result<(), TestCaseError> {
    // Decompression may hold up to twice its budget while its output grows, and a codec's own
    // working memory.
    let bound = PER_INPUT_BYTE * bytes.len() + 2 * budget + SLACK + CODEC_STATE;
    let bytes = Bytes::copy_from_slice(bytes);
    within("batches", bound, || {
        let mut walk = AbortedTransactions::new(aborted);
        let mut decoder = BatchDecoder::new(bytes, check_crc, budget);
        for batch in decoder.by_ref() {
            let Ok(batch) = batch else { continue };
            let _ = batch.control_type();
            let _ = walk.delivers(&batch);
        }
        assert!(decoder.budget() <= budget);
    })
}

/// Working memory a codec holds whatever the decompression limit. The largest is LZ4's: a frame
/// declares its block size, up to 4 MiB (sarama writes those; the Java client 64 KiB), and
/// lz4_flex holds an input and an output block of that size, 8 MiB for a 16-byte frame, as the
/// Java client's decoder does. ruzstd does not reserve a declared zstd window up front (a 128 MiB
/// window, its ceiling and zstd-jni's, measured 9 KiB), gzip holds about 75 KiB.
const CODEC_STATE: usize = 9 << 20;

fn aborted_list() -> impl Strategy<Value = Vec<AbortedTransaction>> {
    vec((-2i64..4, any::<i64>()), 0..4).prop_map(|list| {
        list.into_iter()
            .map(|(producer, first)| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(producer))
                    .with_first_offset(first)
            })
            .collect()
    })
}

fn budgets() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0), Just(1), Just(64), Just(4096), Just(1 << 16)]
}

/// Consumer-protocol seeds: a subscription at versions 0 to 3 and an assignment, as any client
/// writes them.
fn consumer_protocol_seeds() -> Vec<Vec<u8>> {
    let topic = |t: &'static str| TopicName(StrBytes::from_static_str(t));
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(vec![StrBytes::from_static_str("orders")])
        .with_user_data(Some(Bytes::from_static(&[0, 0, 0, 3])))
        .with_owned_partitions(vec![
            kafka_protocol::messages::consumer_protocol_subscription::TopicPartition::default()
                .with_topic(topic("orders"))
                .with_partitions(vec![0, 2]),
        ])
        .with_generation_id(4)
        .with_rack_id(Some(StrBytes::from_static_str("r1")));
    let mut seeds: Vec<Vec<u8>> = (0..=3)
        .map(|version| {
            let mut buf = BytesMut::new();
            buf.extend_from_slice(&i16::to_be_bytes(version));
            subscription.encode(&mut buf, version).unwrap();
            buf.to_vec()
        })
        .collect();
    let assigned = vec![
        ("orders".to_string(), vec![0, 1]),
        ("x".to_string(), vec![]),
    ];
    seeds.push(encode_assignment(&assigned).unwrap().to_vec());
    let v3 = ConsumerProtocolAssignment::default();
    let mut buf = BytesMut::from(&[0u8, 3][..]);
    v3.encode(&mut buf, 3).unwrap();
    seeds.push(buf.to_vec());
    seeds
}

fn decode_consumer_protocol(bytes: &[u8]) -> Result<(), TestCaseError> {
    let bound = PER_INPUT_BYTE * bytes.len() + SLACK;
    for cooperative_sticky in [false, true] {
        let b = Bytes::copy_from_slice(bytes);
        let _ = within("subscription", bound, || {
            Subscription::decode_for(b, cooperative_sticky)
        })?;
    }
    let b = Bytes::copy_from_slice(bytes);
    let _ = within("assignment", bound, || decode_assignment(b))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn response_decoders_take_any_bytes(body in hostile_bytes(160)) {
        decode_every_response(&body)?;
    }

    #[test]
    fn mutated_api_versions_answers(seed in 0usize..3, edits in edits()) {
        let (seed, version) = &api_versions_seeds()[seed];
        let body = mutate(seed, &edits);
        decode_every_response(&body)?;
        let bound = PER_INPUT_BYTE * body.len() + SLACK;
        for version in [*version, 0, 127] {
            let b = Bytes::from(body.clone());
            let _ = within("parse_api_versions", bound, || parse_api_versions(&b, version))?;
        }
    }

    #[test]
    fn response_headers_take_any_bytes(frame in hostile_bytes(24)) {
        let _ = peek_correlation_id(&frame);
        for header_version in 0..=1 {
            let mut b = Bytes::from(frame.clone());
            let _ = within("response header", SLACK, || strip_response_header(&mut b, header_version))?;
        }
    }

    /// Frames come out whole and in order however the stream is cut, and a size beyond the
    /// ceiling or below zero is refused before any room is reserved for it.
    #[test]
    fn frames_split_from_any_stream(
        stream in hostile_bytes(64),
        cuts in vec(any::<Index>(), 0..4),
        max in prop_oneof![Just(0usize), Just(16), Just(1 << 20)],
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let bound = 2 * (stream.len() + 4 + max.min(i32::MAX as usize)) + SLACK;
        let mut buf = BytesMut::new();
        let mut at = 0;
        within("split_frame", bound, || {
            for cut in cuts {
                buf.extend_from_slice(&stream[at..cut]);
                at = cut;
                loop {
                    match split_frame(&mut buf, max) {
                        Ok(Some(frame)) => assert!(frame.len() <= max),
                        Ok(None) => break,
                        Err(_) => return,
                    }
                }
            }
        })?;
    }

    #[test]
    fn batch_decoder_takes_any_bytes(
        bytes in hostile_bytes(300),
        check_crc in any::<bool>(),
        budget in budgets(),
        aborted in aborted_list(),
    ) {
        decode_batches(&bytes, check_crc, budget, &aborted)?;
    }

    /// The golden batches, every codec and the transactional segment, mutated. Without the CRC
    /// check the mutations reach the decompressors and the record parser.
    #[test]
    fn mutated_golden_batches(
        seed in 0usize..6,
        edits in edits(),
        check_crc in any::<bool>(),
        budget in prop_oneof![budgets(), Just(1 << 20)],
        aborted in aborted_list(),
    ) {
        let file = ["none", "gzip", "snappy", "lz4", "zstd", "txn"][seed];
        let seed = match file {
            "txn" => golden("java-txn-segment.bin"),
            codec => golden(&format!("java-batch-{codec}.bin")),
        };
        decode_batches(&mutate(&seed, &edits), check_crc, budget, &aborted)?;
    }

    #[test]
    fn decompression_takes_any_bytes(
        data in hostile_bytes(200),
        plain in vec(0u8..4, 0..2000),
        edits in edits(),
        limit in prop_oneof![Just(0usize), Just(100), Just(4096)],
    ) {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut packed = BytesMut::new();
            codec.compress(&plain, &mut packed).unwrap();
            for input in [&data[..], &mutate(&packed, &edits)[..]] {
                let bound = PER_INPUT_BYTE * input.len() + 2 * limit + SLACK + CODEC_STATE;
                let out = within(codec.name(), bound, || codec.decompress(input, limit))?;
                if let Ok(out) = out {
                    prop_assert!(out.len() <= limit);
                }
            }
        }
    }

    #[test]
    fn consumer_protocol_takes_any_bytes(bytes in hostile_bytes(120)) {
        decode_consumer_protocol(&bytes)?;
    }

    #[test]
    fn mutated_consumer_protocol(seed in 0usize..6, edits in edits()) {
        decode_consumer_protocol(&mutate(&consumer_protocol_seeds()[seed], &edits))?;
    }

    #[test]
    fn control_keys_take_any_bytes(key in hostile_bytes(8)) {
        let _ = ControlRecordType::from_key(&key);
    }

    /// Batches with any producer, offsets and markers, against any list of aborted
    /// transactions: `delivers` holds no more than the list.
    #[test]
    fn aborted_transactions_take_any_batches(
        aborted in aborted_list(),
        batches in vec((-2i64..4, any::<i64>(), 0i16..64, proptest::option::of(hostile_bytes(6))), 0..12),
    ) {
        let template = BatchDecoder::new(Bytes::from(golden("java-txn-segment.bin")), true, 1 << 20)
            .next()
            .unwrap()
            .unwrap();
        let mut walk = AbortedTransactions::new(&aborted);
        for (producer_id, last_offset, attributes, key) in batches {
            let mut batch = Batch { producer_id, last_offset, attributes, ..template.clone() };
            batch.records.truncate(1);
            if let Some(record) = batch.records.first_mut() {
                record.key = key.map(Bytes::from);
            }
            let _ = within("delivers", SLACK, || walk.delivers(&batch))?;
        }
    }
}
