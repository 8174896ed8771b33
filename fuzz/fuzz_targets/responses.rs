//! Response bodies. The input is a request header's first two fields, API key and version (two
//! big-endian `i16`s), then the body of the response to that request, decoded as a connection
//! decodes it. Inputs that name an API or a version purekafka does not speak are skipped, so
//! `cargo xtask fuzz` can name each finding's API from its first two bytes.
//!
//! ApiVersions bodies also go through `parse_api_versions`, as in the handshake, which reads an
//! UNSUPPORTED_VERSION answer in the v0 layout.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use purekafka::protocol::api::decode_response;
use purekafka::protocol::versions::{our_range, parse_api_versions};

/// ApiVersions' key.
const API_VERSIONS: i16 = 18;

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let key = i16::from_be_bytes([head[0], head[1]]);
    let version = i16::from_be_bytes([head[2], head[3]]);
    match our_range(key) {
        Some(range) if (range.min..=range.max).contains(&version) => {}
        _ => return,
    }
    let body = Bytes::copy_from_slice(body);
    if key == API_VERSIONS {
        let _ = parse_api_versions(&body, version);
    }
    let decoded = decode_response(key, version, body);
    assert!(decoded.is_some(), "API {key} is in OURS but not dispatched");
});
