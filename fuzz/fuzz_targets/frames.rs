//! Frame splitting, as the connection reads the socket: the first input byte chooses the frame
//! ceiling (bits 0-1) and the second where the stream is cut in two reads; the rest is the
//! stream. Each whole frame has its correlation id read and its response header stripped (both
//! header versions). A frame beyond the ceiling or of negative size ends the stream.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use purekafka::protocol::frame::{peek_correlation_id, split_frame, strip_response_header};

/// Small ceilings: a partial frame reserves room up to the ceiling, and bigger ones would only
/// slow each run (the reservation is what `split_frame`'s unit tests check).
const CEILINGS: [usize; 4] = [0, 16, 4096, 1 << 16];

fuzz_target!(|data: &[u8]| {
    let Some(([choice, cut], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max = CEILINGS[usize::from(*choice) & 3];
    let cut = stream.len() * usize::from(*cut) / 255;
    let mut buf = BytesMut::new();
    let mut taken = 0;
    for part in [&stream[..cut], &stream[cut..]] {
        buf.extend_from_slice(part);
        loop {
            match split_frame(&mut buf, max) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max);
                    taken += 4 + frame.len();
                    let _ = peek_correlation_id(&frame);
                    for header_version in [0, 1] {
                        let _ = strip_response_header(&mut frame.clone(), header_version);
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    assert_eq!(
        taken + buf.len(),
        stream.len(),
        "frames lose or invent bytes"
    );
});
