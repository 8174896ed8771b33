//! Choosing a partition for a record sent without one: librdkafka's partitioners (the
//! `partitioner` property), each picking exactly the partition librdkafka picks for the same key
//! and partition count, `consistent_random` by default; `murmur2_random` matches the Java
//! client. Records that spread at random stick to one partition for
//! `sticky.partitioning.linger.ms` (see the accumulator), as in librdkafka.

/// Chooses the partition of records sent without one, in place of the built-in choice.
///
/// ```
/// use purekafka::Partitioner;
/// /// Sends every record with a key starting with "vip" to partition 0.
/// struct Vip;
/// impl Partitioner for Vip {
///     fn partition(&self, _topic: &str, key: Option<&[u8]>, _partitions: usize) -> Option<i32> {
///         key.filter(|k| k.starts_with(b"vip")).map(|_| 0)
///     }
/// }
/// ```
pub trait Partitioner: Send + Sync {
    /// The partition, below `partitions`, for a record of `topic` with `key`; `None` leaves the
    /// choice to the built-in one (the `partitioner` property).
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: usize) -> Option<i32>;
}

/// librdkafka's built-in partitioners, as the `partitioner` property names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyPartitioner {
    /// `random`: every record to a random partition (keyless ones sticky).
    Random,
    /// `consistent`: the CRC-32 of the key; keyless and empty keys all go to partition 0.
    Consistent,
    /// `consistent_random` (the default, as in librdkafka): the CRC-32 of the key; keyless and
    /// empty keys spread at random.
    ConsistentRandom,
    /// `murmur2`: the Java client's murmur2 of the key; a keyless record hashes as an empty key.
    Murmur2,
    /// `murmur2_random`: the Java client's choice: murmur2 of the key; keyless records spread
    /// at random.
    Murmur2Random,
    /// `fnv1a`: the FNV-1a hash of the key (Sarama's default `NewHashPartitioner`); a keyless
    /// record hashes as an empty key.
    Fnv1a,
    /// `fnv1a_random`: FNV-1a of the key; keyless records spread at random.
    Fnv1aRandom,
}

/// Where a record goes, as a [`KeyPartitioner`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// This partition, from the key's hash.
    Hashed(i32),
    /// A random partition; `sticky` when the record may join the topic's sticky partition.
    Spread { sticky: bool },
}

impl KeyPartitioner {
    /// Every partitioner, as `partitioner` names them.
    pub const ALL: [KeyPartitioner; 7] = [
        KeyPartitioner::Random,
        KeyPartitioner::Consistent,
        KeyPartitioner::ConsistentRandom,
        KeyPartitioner::Murmur2,
        KeyPartitioner::Murmur2Random,
        KeyPartitioner::Fnv1a,
        KeyPartitioner::Fnv1aRandom,
    ];

    /// The property value, as `partitioner=` takes it.
    pub fn name(self) -> &'static str {
        match self {
            KeyPartitioner::Random => "random",
            KeyPartitioner::Consistent => "consistent",
            KeyPartitioner::ConsistentRandom => "consistent_random",
            KeyPartitioner::Murmur2 => "murmur2",
            KeyPartitioner::Murmur2Random => "murmur2_random",
            KeyPartitioner::Fnv1a => "fnv1a",
            KeyPartitioner::Fnv1aRandom => "fnv1a_random",
        }
    }

    /// The partition librdkafka's partitioner of this name picks for a record with `key` among
    /// `partitions`, or `None` when it picks at random (a keyless record, for most). A `None`
    /// key (a keyless record) and an empty key differ where librdkafka's do.
    ///
    /// ```
    /// use purekafka::KeyPartitioner;
    /// assert_eq!(KeyPartitioner::ConsistentRandom.partition(Some(b"user-1"), 6), Some(2));
    /// assert_eq!(KeyPartitioner::ConsistentRandom.partition(None, 6), None);
    /// assert_eq!(KeyPartitioner::Consistent.partition(None, 6), Some(0));
    /// ```
    pub fn partition(self, key: Option<&[u8]>, partitions: usize) -> Option<i32> {
        match self.choose(key, partitions) {
            Choice::Hashed(p) => Some(p),
            Choice::Spread { .. } => None,
        }
    }

    /// The partition of a record with `key` among `partitions` (at least 1), exactly as
    /// librdkafka's partitioner of the same name picks it: `None` (a keyless record) and
    /// `Some(&[])` differ where librdkafka's do.
    pub(crate) fn choose(self, key: Option<&[u8]>, partitions: usize) -> Choice {
        let n = partitions.max(1) as u32;
        let hashed = |hash: u32| Choice::Hashed((hash % n) as i32);
        let keyless = Choice::Spread { sticky: true };
        match (self, key) {
            // librdkafka's `random` spreads keyed records one by one, keyless ones sticky.
            (KeyPartitioner::Random, Some(_)) => Choice::Spread { sticky: false },
            (KeyPartitioner::Random, None) => keyless,
            (KeyPartitioner::ConsistentRandom, None) => keyless,
            (KeyPartitioner::ConsistentRandom, Some([])) => keyless,
            (KeyPartitioner::Consistent | KeyPartitioner::ConsistentRandom, key) => {
                hashed(crc32fast::hash(key.unwrap_or_default()))
            }
            (KeyPartitioner::Murmur2Random | KeyPartitioner::Fnv1aRandom, None) => keyless,
            (KeyPartitioner::Murmur2 | KeyPartitioner::Murmur2Random, key) => {
                hashed(murmur2(key.unwrap_or_default()) as u32 & 0x7fff_ffff)
            }
            (KeyPartitioner::Fnv1a | KeyPartitioner::Fnv1aRandom, key) => {
                hashed(fnv1a(key.unwrap_or_default()))
            }
        }
    }
}

/// librdkafka's FNV-1a (32-bit), with the absolute value of its signed result that Sarama's
/// `NewHashPartitioner` takes (`i32::MIN` stays as it is, as in C).
pub fn fnv1a(data: &[u8]) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let h = data
        .iter()
        .fold(OFFSET, |h, &b| (h ^ b as u32).wrapping_mul(PRIME)) as i32;
    h.wrapping_abs() as u32
}

/// Kafka's murmur2 hash (the Java client's `Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ len as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Java's default partitioner picks for `key` among `partitions` (0 for a topic
/// without partitions, which no broker reports).
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as usize)
        .checked_rem(partitions)
        .unwrap_or(0) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Values computed by the Java client's `Utils.murmur2` and `BuiltInPartitioner`.
    #[test]
    fn matches_the_java_client() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/golden/murmur2.json");
        let cases: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = cases.as_array().unwrap();
        assert!(cases.len() > 30);
        for case in cases {
            let key = hex(case["key_hex"].as_str().unwrap());
            assert_eq!(
                murmur2(&key) as i64,
                case["murmur2"].as_i64().unwrap(),
                "{case}"
            );
            for (n, p) in case["partitions"].as_object().unwrap() {
                let n: usize = n.parse().unwrap();
                assert_eq!(
                    partition_for_key(&key, n) as i64,
                    p.as_i64().unwrap(),
                    "{case} n={n}"
                );
            }
        }
    }

    /// Every partitioner against what librdkafka 2.12.1's own partitioner functions returned
    /// for the same keys and partition counts (fixtures/golden/README.md says how they were
    /// captured). "random" marks where librdkafka spreads the record at random.
    #[test]
    fn matches_librdkafka() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/golden/librdkafka-partitioner.json"
        );
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let expect =
            |partitioner: KeyPartitioner, key: Option<&[u8]>, n: &str, want: &serde_json::Value| {
                let got = partitioner.choose(key, n.parse().unwrap());
                match want.as_i64() {
                    Some(p) => assert_eq!(
                        got,
                        Choice::Hashed(p as i32),
                        "{partitioner:?} {key:?} n={n}"
                    ),
                    None => {
                        assert_eq!(want, "random");
                        assert_eq!(
                            got,
                            Choice::Spread { sticky: true },
                            "{partitioner:?} {key:?}"
                        );
                    }
                }
            };
        let by_name = |name: &str| {
            KeyPartitioner::ALL
                .into_iter()
                .find(|p| p.name() == name)
                .unwrap()
        };
        let mut checked = 0;
        for (name, counts) in golden["null_key"].as_object().unwrap() {
            let partitioner = by_name(name);
            match counts.as_object() {
                Some(counts) => {
                    for (n, want) in counts {
                        expect(partitioner, None, n, want);
                        checked += 1;
                    }
                }
                None => expect(partitioner, None, "1", counts),
            }
        }
        let keys = golden["keys"].as_array().unwrap();
        assert!(keys.len() > 250);
        for case in keys {
            let key = hex(case["key_hex"].as_str().unwrap());
            for (n, choices) in case["partitions"].as_object().unwrap() {
                for (name, want) in choices.as_object().unwrap() {
                    expect(by_name(name), Some(&key), n, want);
                    checked += 1;
                }
            }
        }
        assert!(checked > 30_000, "{checked}");
        // librdkafka's `random` hashes nothing: keyed records spread one by one.
        assert_eq!(
            KeyPartitioner::Random.choose(Some(b"k"), 6),
            Choice::Spread { sticky: false }
        );
    }

    #[test]
    fn fnv1a_keeps_c_s_absolute_value() {
        // The empty key: the offset basis, negative as i32, so its absolute value.
        assert_eq!(fnv1a(b""), (0x811c_9dc5_u32 as i32).wrapping_abs() as u32);
        assert_eq!(fnv1a(b""), 2_128_831_035);
    }
}
