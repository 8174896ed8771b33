//! The four codecs' decompressors, on their own: the first input byte chooses the codec (bits
//! 0-1) and the output limit (bits 2-3); the rest is the compressed data. Output beyond the
//! limit must be refused, whatever the data claims.

#![no_main]

use libfuzzer_sys::fuzz_target;
use purekafka::Compression;

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];
const LIMITS: [usize; 4] = [0, 100, 4096, 1 << 20];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, input)) = data.split_first() else {
        return;
    };
    let codec = CODECS[usize::from(choice) & 3];
    let limit = LIMITS[usize::from(choice >> 2) & 3];
    if let Ok(out) = codec.decompress(input, limit) {
        assert!(
            out.len() <= limit,
            "{} gave {} bytes, limit {limit}",
            codec.name(),
            out.len()
        );
    }
});
