//! The four codecs Kafka record batches use, all in pure Rust:
//!
//! | codec  | attribute | crate | framing |
//! |--------|-----------|-------|---------|
//! | gzip   | 1 | flate2 (miniz_oxide) | gzip member |
//! | snappy | 2 | snap | the Java client's xerial framing on write; xerial or a bare block on read |
//! | lz4    | 3 | lz4_flex | LZ4 frame, 64 KiB independent blocks, as the Java client writes |
//! | zstd   | 4 | ruzstd | zstd frame (ruzstd's `Fastest` level, about zstd level 1) |
//!
//! Decompression stops at a ceiling, so a small hostile batch cannot inflate into unbounded
//! memory.

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};

/// A record-batch compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4 frames.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// Why a batch could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecompressError {
    /// The output would exceed the limit.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The input is not valid for the codec.
    Corrupt(String),
}

impl std::fmt::Display for DecompressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecompressError::TooLarge { limit } => {
                write!(f, "decompressed batch exceeds {limit} bytes")
            }
            DecompressError::Corrupt(e) => f.write_str(e),
        }
    }
}

impl From<String> for DecompressError {
    fn from(e: String) -> Self {
        DecompressError::Corrupt(e)
    }
}

impl From<&str> for DecompressError {
    fn from(e: &str) -> Self {
        DecompressError::Corrupt(e.to_owned())
    }
}

/// The xerial snappy stream header: magic, version 1, minimum compatible version 1.
const XERIAL_HEADER: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];
/// The block size the Java client's xerial stream uses.
const XERIAL_BLOCK: usize = 32 * 1024;

impl Compression {
    /// The codec in a batch's attribute bits, if it is one of the four.
    pub fn from_id(id: i16) -> Option<Compression> {
        Some(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }

    /// The codec's id in batch attributes.
    pub fn id(self) -> i16 {
        self as i16
    }

    /// The codec's name as `compression.type` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The codec `compression.type` names.
    pub fn from_name(name: &str) -> Option<Compression> {
        [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }

    /// Compresses `input`, appending to `out`.
    pub fn compress(self, input: &[u8], out: &mut BytesMut) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("{} compression failed: {e}", self.name());
        match self {
            Compression::None => out.extend_from_slice(input),
            Compression::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(out.writer(), flate2::Compression::default());
                enc.write_all(input).map_err(fail)?;
                enc.finish().map_err(fail)?;
            }
            Compression::Snappy => {
                out.extend_from_slice(&XERIAL_HEADER);
                let mut enc = snap::raw::Encoder::new();
                for block in input.chunks(XERIAL_BLOCK) {
                    let at = out.len();
                    out.put_i32(0);
                    let len = snap::raw::max_compress_len(block.len());
                    out.resize(at + 4 + len, 0);
                    let n = enc
                        .compress(block, &mut out[at + 4..])
                        .map_err(|e| format!("snappy compression failed: {e}"))?;
                    out.truncate(at + 4 + n);
                    out[at..at + 4].copy_from_slice(&(n as i32).to_be_bytes());
                }
            }
            Compression::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .block_mode(lz4_flex::frame::BlockMode::Independent);
                let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out.writer());
                enc.write_all(input).map_err(fail)?;
                enc.finish()
                    .map_err(|e| format!("lz4 compression failed: {e}"))?;
            }
            Compression::Zstd => {
                ruzstd::encoding::compress(
                    input,
                    out.writer(),
                    ruzstd::encoding::CompressionLevel::Fastest,
                );
            }
        }
        Ok(())
    }

    /// Decompresses `input`; more than `limit` bytes of output is an error.
    pub fn decompress(self, input: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
        let mut out = Vec::with_capacity(input.len().saturating_mul(4).min(limit));
        match self {
            Compression::None => read_limited(input, limit, &mut out)?,
            Compression::Gzip => {
                read_limited(flate2::read::GzDecoder::new(input), limit, &mut out)?
            }
            Compression::Snappy if input.starts_with(&XERIAL_HEADER[..8]) => unxerial(
                &input[XERIAL_HEADER.len().min(input.len())..],
                limit,
                &mut out,
            )?,
            Compression::Snappy => {
                let len = snap::raw::decompress_len(input).map_err(|e| e.to_string())?;
                if len > limit {
                    return Err(too_large(limit));
                }
                out.resize(len, 0);
                snap::raw::Decoder::new()
                    .decompress(input, &mut out)
                    .map_err(|e| format!("snappy: {e}"))?;
            }
            Compression::Lz4 => {
                read_limited(lz4_flex::frame::FrameDecoder::new(input), limit, &mut out)?
            }
            Compression::Zstd => {
                let dec = ruzstd::decoding::StreamingDecoder::new(input)
                    .map_err(|e| format!("zstd: {e}"))?;
                read_limited(dec, limit, &mut out)?
            }
        }
        Ok(Bytes::from(out))
    }
}

fn too_large(limit: usize) -> DecompressError {
    DecompressError::TooLarge { limit }
}

/// Reads all of `reader` into `out`, failing past `limit` bytes.
fn read_limited(reader: impl Read, limit: usize, out: &mut Vec<u8>) -> Result<(), DecompressError> {
    let n = reader
        .take(limit as u64 + 1)
        .read_to_end(out)
        .map_err(|e| e.to_string())?;
    if n > limit {
        return Err(too_large(limit));
    }
    Ok(())
}

/// Reads xerial snappy blocks: `[i32 length][snappy block]…`.
fn unxerial(mut input: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DecompressError> {
    let mut dec = snap::raw::Decoder::new();
    while !input.is_empty() {
        let (len, rest) = input
            .split_first_chunk::<4>()
            .ok_or("snappy: truncated block length")?;
        let len = i32::from_be_bytes(*len);
        let block = usize::try_from(len)
            .ok()
            .and_then(|len| rest.get(..len))
            .ok_or("snappy: block length beyond the data")?;
        let size = snap::raw::decompress_len(block).map_err(|e| format!("snappy: {e}"))?;
        if out.len() + size > limit {
            return Err(too_large(limit));
        }
        let at = out.len();
        out.resize(at + size, 0);
        dec.decompress(block, &mut out[at..])
            .map_err(|e| format!("snappy: {e}"))?;
        input = &rest[block.len()..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn names_and_ids() {
        for c in ALL {
            assert_eq!(Compression::from_name(c.name()), Some(c));
            assert_eq!(Compression::from_id(c.id()), Some(c));
        }
        assert_eq!(Compression::from_id(5), None);
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 1 << 20];
        for c in ALL {
            let mut packed = BytesMut::new();
            c.compress(&zeros, &mut packed).unwrap();
            let err = c.decompress(&packed, 1000).unwrap_err();
            assert_eq!(err, DecompressError::TooLarge { limit: 1000 }, "{c:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        #[test]
        fn round_trips(data in proptest::collection::vec(0u8..4, 0..70_000)) {
            for c in ALL {
                let mut packed = BytesMut::new();
                c.compress(&data, &mut packed).unwrap();
                let unpacked = c.decompress(&packed, 1 << 20).unwrap();
                proptest::prop_assert_eq!(&unpacked[..], &data[..], "{:?}", c);
            }
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            for c in ALL {
                let _ = c.decompress(&data, 1 << 16);
            }
        }
    }
}
