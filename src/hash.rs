//! A fast hasher for the maps a client looks up on every record: topic name → partition queues
//! in the producer, topic name → metadata in the cluster cache.
//!
//! std's SipHash-1-3 is built to resist chosen-key flooding and costs about 150 instructions for
//! a topic name; the producer hashed every record's topic four to five times, a quarter of its
//! CPU. This is FxHash (rustc's hasher: rotate, xor, multiply per 8 bytes), a handful of
//! instructions per name. The keys are topic names chosen by the application and its brokers,
//! not by whoever sends records, so flooding resistance buys nothing here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FxHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// rustc's FxHash, 64-bit.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, mut bytes: &[u8]) {
        while let Some((word, rest)) = bytes.split_first_chunk::<8>() {
            self.add(u64::from_le_bytes(*word));
            bytes = rest;
        }
        if let Some((word, rest)) = bytes.split_first_chunk::<4>() {
            self.add(u32::from_le_bytes(*word) as u64);
            bytes = rest;
        }
        for &b in bytes {
            self.add(b as u64);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn equal_names_hash_alike_and_near_names_apart() {
        let build = BuildHasherDefault::<FxHasher>::default();
        let names = [
            "",
            "a",
            "test",
            "test-topic",
            "test-topid",
            "perf-12345678",
            "perf-12345679",
        ];
        let hashes: Vec<u64> = names.iter().map(|n| build.hash_one(n)).collect();
        for (i, a) in hashes.iter().enumerate() {
            assert_eq!(*a, build.hash_one(names[i].to_owned()));
            for b in &hashes[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn a_map_of_topics_finds_what_it_holds() {
        let mut map: FastMap<std::sync::Arc<str>, usize> = FastMap::default();
        for i in 0..1000 {
            map.insert(format!("topic-{i}").into(), i);
        }
        for i in 0..1000 {
            assert_eq!(map.get(format!("topic-{i}").as_str()), Some(&i));
        }
        assert_eq!(map.get("topic-1000"), None);
    }
}
