//! Choosing a partition for a keyed record: Java's murmur2, so a key lands where the Java client
//! and librdkafka's `murmur2_random` put it. Keyless records stick to a partition per batch (see
//! the accumulator).

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
    /// choice to the built-in one (murmur2 of the key, or sticky for keyless records).
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: usize) -> Option<i32>;
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
}
