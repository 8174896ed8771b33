//! Record batches as a Fetch response carries them, walked as the consumer walks them: decoded,
//! each batch's control type read, and `read_committed` filtering applied.
//!
//! The first input byte sets the checks: bit 0 verifies CRCs, bits 1-3 choose the decompression
//! budget, bit 4 lists the first batch's producer as aborted from its base offset. The rest is
//! the records buffer.

#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::AbortedTransaction;
use kafka_protocol::messages::ProducerId;
use libfuzzer_sys::fuzz_target;
use purekafka::protocol::records::{AbortedTransactions, BatchDecoder};

/// Decompression budgets, small ones first: a budget runs out across the batches of a buffer.
const BUDGETS: [usize; 8] = [0, 1, 64, 512, 4096, 1 << 16, 1 << 20, 1 << 20];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, records)) = data.split_first() else {
        return;
    };
    let check_crc = flags & 1 != 0;
    let budget = BUDGETS[usize::from(flags >> 1) & 7];
    let records = Bytes::copy_from_slice(records);

    let mut listed = Vec::new();
    if flags & 0x10 != 0 {
        if let Some(Ok(first)) = BatchDecoder::new(records.clone(), check_crc, budget).next() {
            listed.push(
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(first.producer_id))
                    .with_first_offset(first.base_offset),
            );
        }
    }
    let mut aborted = AbortedTransactions::new(&listed);
    let mut decoder = BatchDecoder::new(records, check_crc, budget);
    for batch in decoder.by_ref() {
        let Ok(batch) = batch else { continue };
        let _ = batch.control_type();
        let _ = aborted.delivers(&batch);
    }
    assert!(decoder.budget() <= budget);
});
