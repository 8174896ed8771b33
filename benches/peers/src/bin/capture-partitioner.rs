//! Captures golden partition choices from librdkafka itself: calls its six exported hash
//! partitioners (`rd_kafka_msg_partitioner_{consistent,murmur2,fnv1a}` and their `_random`
//! variants, reached through `rdkafka::bindings`, which re-exports `rdkafka-sys`) for a fixed set
//! of keys and partition counts, and prints `fixtures/golden/librdkafka-partitioner.json` on
//! stdout. Checks and findings go to stderr.
//!
//! ```text
//! cd benches/peers && cargo run --release --bin capture-partitioner > ../../fixtures/golden/librdkafka-partitioner.json
//! ```
//!
//! The partitioners are called directly, not through a produce: a real producer handle
//! (`bootstrap.servers=127.0.0.1:1`, nothing listens there) and a real topic handle `golden` are
//! created only because the `_random` variants, for a NULL key (and `consistent_random` for an
//! empty one), call `rd_kafka_msg_partitioner_random`, which asks
//! `rd_kafka_topic_partition_available(rkt, p)` and so dereferences the topic. The topic never
//! gets metadata, so no partition is "available"; the random partitioner still returns a number in
//! `0..partition_cnt` (it retries once, without checking availability), never -1.
//!
//! Whether a (key, partitioner) cell is random is measured, not assumed: the call is repeated
//! [`RANDOM_PROBES`] times at [`RANDOM_PROBE_COUNT`] partitions; any disagreement makes the cell
//! `"random"` at every partition count, and the deterministic cells must agree on every call.
//! Every deterministic cell is also computed from a 4-byte-aligned and a misaligned copy of the
//! key (librdkafka's murmur2 has separate aligned and unaligned loops) and both must agree.

use std::ffi::{c_void, CStr, CString};
use std::fmt::Write as _;
use std::ptr;

use rdkafka::bindings as rd;

type Partitioner = unsafe extern "C" fn(
    *const rd::rd_kafka_topic_t,
    *const c_void,
    usize,
    i32,
    *mut c_void,
    *mut c_void,
) -> i32;

/// In the order of each JSON object.
const PARTITIONERS: [(&str, Partitioner); 6] = [
    ("consistent", rd::rd_kafka_msg_partitioner_consistent),
    ("murmur2", rd::rd_kafka_msg_partitioner_murmur2),
    ("fnv1a", rd::rd_kafka_msg_partitioner_fnv1a),
    (
        "consistent_random",
        rd::rd_kafka_msg_partitioner_consistent_random,
    ),
    (
        "murmur2_random",
        rd::rd_kafka_msg_partitioner_murmur2_random,
    ),
    ("fnv1a_random", rd::rd_kafka_msg_partitioner_fnv1a_random),
];

const PARTITION_COUNTS: [i32; 19] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 50, 100, 1000,
];

/// `RD_KAFKA_PARTITION_UA` (a macro in rdkafka.h, not in the bindings).
const PARTITION_UA: i32 = -1;

const RANDOM_PROBES: usize = 64;
const RANDOM_PROBE_COUNT: i32 = 1000;

/// A key as passed to librdkafka: `None` is a NULL pointer (length 0), `Some(&[])` a non-NULL
/// pointer with length 0.
type Key<'a> = Option<&'a [u8]>;

struct Librdkafka {
    rk: *mut rd::rd_kafka_t,
    rkt: *mut rd::rd_kafka_topic_t,
}

impl Librdkafka {
    fn new() -> Librdkafka {
        unsafe {
            let conf = rd::rd_kafka_conf_new();
            // Nothing listens on port 1: the producer's connection attempts fail (quietly, at
            // log_level 2) and the topic never gets metadata.
            for (name, value) in [("bootstrap.servers", "127.0.0.1:1"), ("log_level", "2")] {
                let mut errstr = [0 as std::ffi::c_char; 512];
                let (name, value) = (CString::new(name).unwrap(), CString::new(value).unwrap());
                let res = rd::rd_kafka_conf_set(
                    conf,
                    name.as_ptr(),
                    value.as_ptr(),
                    errstr.as_mut_ptr(),
                    errstr.len(),
                );
                assert!(
                    res == rd::rd_kafka_conf_res_t::RD_KAFKA_CONF_OK,
                    "rd_kafka_conf_set: {}",
                    CStr::from_ptr(errstr.as_ptr()).to_string_lossy()
                );
            }
            let mut errstr = [0 as std::ffi::c_char; 512];
            let rk = rd::rd_kafka_new(
                rd::rd_kafka_type_t::RD_KAFKA_PRODUCER,
                conf,
                errstr.as_mut_ptr(),
                errstr.len(),
            );
            assert!(
                !rk.is_null(),
                "rd_kafka_new: {}",
                CStr::from_ptr(errstr.as_ptr()).to_string_lossy()
            );
            let topic = CString::new("golden").unwrap();
            let rkt = rd::rd_kafka_topic_new(rk, topic.as_ptr(), ptr::null_mut());
            assert!(!rkt.is_null(), "rd_kafka_topic_new failed");
            Librdkafka { rk, rkt }
        }
    }

    fn version() -> String {
        unsafe {
            CStr::from_ptr(rd::rd_kafka_version_str())
                .to_string_lossy()
                .into_owned()
        }
    }

    /// Calls `f` with a 4-byte-aligned copy of the key.
    fn call(&self, f: Partitioner, key: Key, partition_cnt: i32) -> i32 {
        self.call_at(f, key, partition_cnt, 0)
    }

    /// Calls `f` with the key copied to byte offset `offset` of 4-byte-aligned storage.
    fn call_at(&self, f: Partitioner, key: Key, partition_cnt: i32, offset: usize) -> i32 {
        let p = match key {
            None => unsafe {
                f(
                    self.rkt,
                    ptr::null(),
                    0,
                    partition_cnt,
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            },
            Some(key) => {
                let mut storage = vec![0u32; (offset + key.len()) / 4 + 2];
                let base = storage.as_mut_ptr() as *mut u8;
                unsafe {
                    ptr::copy_nonoverlapping(key.as_ptr(), base.add(offset), key.len());
                    f(
                        self.rkt,
                        base.add(offset) as *const c_void,
                        key.len(),
                        partition_cnt,
                        ptr::null_mut(),
                        ptr::null_mut(),
                    )
                }
            }
        };
        assert!(
            p == PARTITION_UA || (0..partition_cnt).contains(&p),
            "partition {p} out of range for {partition_cnt} partitions"
        );
        p
    }

    /// Whether `f` gives `key` different partitions on repeated calls.
    fn is_random(&self, f: Partitioner, key: Key) -> bool {
        let first = self.call(f, key, RANDOM_PROBE_COUNT);
        (1..RANDOM_PROBES).any(|_| self.call(f, key, RANDOM_PROBE_COUNT) != first)
    }

    /// One cell: `None` when random, otherwise the partition (checked stable and alignment-proof).
    fn cell(&self, f: Partitioner, key: Key, partition_cnt: i32, random: bool) -> Option<i32> {
        if random {
            return None;
        }
        let p = self.call(f, key, partition_cnt);
        assert_ne!(
            p, PARTITION_UA,
            "deterministic partitioner returned RD_KAFKA_PARTITION_UA"
        );
        for _ in 0..3 {
            assert_eq!(
                self.call(f, key, partition_cnt),
                p,
                "deterministic partitioner disagreed with itself"
            );
        }
        for offset in 1..4 {
            assert_eq!(
                self.call_at(f, key, partition_cnt, offset),
                p,
                "aligned and misaligned key disagree"
            );
        }
        Some(p)
    }
}

impl Drop for Librdkafka {
    fn drop(&mut self) {
        unsafe {
            rd::rd_kafka_topic_destroy(self.rkt);
            rd::rd_kafka_destroy(self.rk);
        }
    }
}

/// Numerical Recipes' 32-bit LCG; each byte is the top 8 bits of the next state.
struct Lcg(u32);

impl Lcg {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (self.0 >> 24) as u8
            })
            .collect()
    }
}

fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
    // Single bytes: every fourth, plus the edges.
    for b in 0..=255u8 {
        if b % 4 == 0 || [0x01, 0x7f, 0x81, 0xfe, 0xff].contains(&b) {
            keys.push(vec![b]);
        }
    }
    // ASCII: murmur2.json's strings, librdkafka's own murmur2/fnv1a unit-test keys, and others.
    for word in [
        "a",
        "ab",
        "abc",
        "abcd",
        "abcde",
        "21",
        "foobar",
        "a-little-bit-long-string",
        "a-little-bit-longer-string",
        "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
        "user-1",
        "kafka",
        "giberish123456789",
        "1234",
        "PreAmbleWillBeRemoved,ThePrePartThatIs",
        "hello",
        "world",
        "The quick brown fox jumps over the lazy dog",
        "order-42",
        "null",
        " ",
        "-1",
        "key",
        "Key",
        "KEY",
    ] {
        keys.push(word.as_bytes().to_vec());
    }
    for i in 0..100 {
        keys.push(format!("key-{i}").into_bytes());
    }
    // UTF-8, 2- to 4-byte sequences.
    for s in [
        "é",
        "ü",
        "ñandú",
        "€100",
        "Ωμέγα",
        "Привет",
        "مرحبا",
        "日本語",
        "中文键",
        "😀",
        "🦀 rust",
        "\u{10FFFF}",
    ] {
        keys.push(s.as_bytes().to_vec());
    }
    // Binary: two keys of each length 1..=40.
    let mut lcg = Lcg(0x5eed);
    for len in 1..=40 {
        keys.push(lcg.bytes(len));
        keys.push(lcg.bytes(len));
    }
    // Long: 1 KiB (and 1 KiB + 3, for murmur2's 3-byte tail).
    keys.push(vec![b'x'; 1024]);
    keys.push(vec![0; 1024]);
    keys.push(lcg.bytes(1024));
    keys.push(lcg.bytes(1027));

    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    keys
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn cell_json(cell: Option<i32>) -> String {
    cell.map_or_else(|| "\"random\"".to_string(), |p| p.to_string())
}

/// What the `_random` variants do with a NULL key on a topic without metadata, on stderr.
fn report_null_key_random(lib: &Librdkafka) {
    let available = unsafe { rd::rd_kafka_topic_partition_available(lib.rkt, 0) };
    eprintln!("rd_kafka_topic_partition_available(golden, 0) without metadata = {available}");
    for (name, f) in &PARTITIONERS[3..] {
        for cnt in [1, 7, 1000] {
            let results: Vec<i32> = (0..1000).map(|_| lib.call(*f, None, cnt)).collect();
            let ua = results.iter().filter(|&&p| p == PARTITION_UA).count();
            let mut distinct = results.clone();
            distinct.sort_unstable();
            distinct.dedup();
            eprintln!(
                "{name}(NULL, 0, {cnt}) x1000: min {} max {} distinct {} RD_KAFKA_PARTITION_UA {ua}",
                distinct.first().unwrap(),
                distinct.last().unwrap(),
                distinct.len()
            );
        }
    }
}

fn main() {
    let lib = Librdkafka::new();
    let version = Librdkafka::version();
    eprintln!("librdkafka {version}");
    report_null_key_random(&lib);

    let mut out = String::new();
    let _ = writeln!(out, "{{");
    let _ = writeln!(out, "  \"librdkafka_version\": {},", json_string(&version));
    let counts: Vec<String> = PARTITION_COUNTS.iter().map(|n| n.to_string()).collect();
    let _ = writeln!(out, "  \"partition_counts\": [{}],", counts.join(", "));

    // NULL key (pointer NULL, length 0).
    let _ = writeln!(out, "  \"null_key\": {{");
    for (i, (name, f)) in PARTITIONERS.iter().enumerate() {
        let random = lib.is_random(*f, None);
        let value = if random {
            "\"random\"".to_string()
        } else {
            let cells: Vec<String> = PARTITION_COUNTS
                .iter()
                .map(|&n| format!("\"{n}\": {}", cell_json(lib.cell(*f, None, n, false))))
                .collect();
            format!("{{{}}}", cells.join(", "))
        };
        let comma = if i + 1 < PARTITIONERS.len() { "," } else { "" };
        let _ = writeln!(out, "    \"{name}\": {value}{comma}");
        // The deterministic hashes see a NULL key exactly as an empty one.
        if !random {
            for &n in &PARTITION_COUNTS {
                assert_eq!(
                    lib.cell(*f, None, n, false),
                    lib.cell(*f, Some(&[]), n, false)
                );
            }
        }
        eprintln!(
            "{name}: NULL key is {}",
            if random {
                "random"
            } else {
                "deterministic (same as empty key)"
            }
        );
    }
    let _ = writeln!(out, "  }},");

    let keys = keys();
    let _ = writeln!(out, "  \"keys\": [");
    for (k, key) in keys.iter().enumerate() {
        let randoms: Vec<bool> = PARTITIONERS
            .iter()
            .map(|(_, f)| lib.is_random(*f, Some(key)))
            .collect();
        if key.is_empty() {
            let names: Vec<&str> = PARTITIONERS
                .iter()
                .zip(&randoms)
                .filter(|(_, &r)| r)
                .map(|((n, _), _)| *n)
                .collect();
            eprintln!("empty (non-NULL) key is random for: {names:?}");
        } else {
            assert!(
                !randoms.contains(&true),
                "non-empty key {} partitioned randomly",
                hex(key)
            );
        }
        let per_count: Vec<String> = PARTITION_COUNTS
            .iter()
            .map(|&n| {
                let cells: Vec<Option<i32>> = PARTITIONERS
                    .iter()
                    .zip(&randoms)
                    .map(|((_, f), &random)| lib.cell(*f, Some(key), n, random))
                    .collect();
                // A non-empty key hashes the same with and without `_random`.
                if !key.is_empty() {
                    assert_eq!(cells[0..3], cells[3..6], "key {}", hex(key));
                }
                let fields: Vec<String> = PARTITIONERS
                    .iter()
                    .zip(cells)
                    .map(|((name, _), cell)| format!("\"{name}\": {}", cell_json(cell)))
                    .collect();
                format!("\"{n}\": {{{}}}", fields.join(", "))
            })
            .collect();
        let comma = if k + 1 < keys.len() { "," } else { "" };
        let _ = writeln!(
            out,
            "    {{\"key_hex\": \"{}\", \"partitions\": {{{}}}}}{comma}",
            hex(key),
            per_count.join(", ")
        );
    }
    let _ = writeln!(out, "  ]");
    let _ = writeln!(out, "}}");
    print!("{out}");
    eprintln!(
        "{} keys x {} partition counts x {} partitioners",
        keys.len(),
        PARTITION_COUNTS.len(),
        PARTITIONERS.len()
    );
}
