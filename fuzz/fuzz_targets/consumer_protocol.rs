//! What other members of a consumer group write: the input is decoded as a subscription (for
//! the classic protocols and for cooperative-sticky) and as an assignment. A subscription that
//! decodes must survive purekafka's own encoding unchanged, since the group leader reads back
//! what members wrote.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use purekafka::protocol::consumer_protocol::{decode_assignment, Subscription};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    for cooperative_sticky in [false, true] {
        let Ok(subscription) = Subscription::decode_for(bytes.clone(), cooperative_sticky) else {
            continue;
        };
        // purekafka writes the generation as cooperative-sticky user data.
        let again = subscription
            .encode()
            .and_then(|b| Subscription::decode_for(b, true));
        assert_eq!(again.as_ref(), Ok(&subscription));
    }
    let _ = decode_assignment(bytes);
});
