//! `read_committed`: which fetched batches a consumer delivers, given the aborted transactions the
//! broker listed for the partition in the same Fetch response (KIP-98).
//!
//! Under `read_committed` the broker returns records only up to the partition's last stable
//! offset, so every transaction in a response has ended: with a COMMIT or an ABORT marker. It
//! also lists, per partition, the aborted transactions that overlap the returned range, each as
//! the producer id and the offset of the transaction's first record. The consumer walks the
//! batches in offset order, as the Java client's fetcher does:
//!
//! ```text
//!  aborted list, by first offset ──► a batch with a producer id reaches an entry's first offset
//!                                    (first_offset <= batch.last_offset): the producer joins
//!                                    the aborted producers
//!  transactional data batch of an aborted producer ──► skipped
//!  ABORT marker of an aborted producer             ──► the producer leaves the set
//!  any control batch                               ──► never delivered
//!  any other batch                                 ──► delivered
//! ```
//!
//! One [`AbortedTransactions`] serves one partition of one Fetch response: the list the broker
//! sends covers exactly the range it returned.

use std::collections::HashSet;

use kafka_protocol::messages::fetch_response::AbortedTransaction;

use super::{Batch, ControlRecordError, ControlRecordType};

/// The aborted transactions of one partition in one Fetch response, and the producers whose
/// aborted transaction the batches walked so far are inside.
///
/// ```
/// use kafka_protocol::messages::fetch_response::AbortedTransaction;
/// use kafka_protocol::messages::ProducerId;
/// use purekafka::protocol::records::{AbortedTransactions, BatchDecoder};
/// # fn demo(records: bytes::Bytes) -> Result<(), Box<dyn std::error::Error>> {
/// // From the partition's `aborted_transactions` in the Fetch response.
/// let listed = vec![AbortedTransaction::default()
///     .with_producer_id(ProducerId(35))
///     .with_first_offset(3)];
/// let mut aborted = AbortedTransactions::new(&listed);
/// for batch in BatchDecoder::new(records, true, 1 << 26) {
///     let batch = batch.map_err(|e| e.to_string())?;
///     if aborted.delivers(&batch)? {
///         // hand batch.records to the application
///     }
///     // either way the next fetch starts at batch.last_offset + 1
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct AbortedTransactions {
    /// `(first_offset, producer_id)` of the aborted transactions not reached yet, the lowest
    /// first offset last so that it pops first.
    pending: Vec<(i64, i64)>,
    /// Producers whose aborted transaction has begun and whose ABORT marker has not been seen.
    aborted_producers: HashSet<i64>,
}

impl AbortedTransactions {
    /// The partition's `aborted_transactions` from a Fetch response, in any order. The broker
    /// sends null for a `read_uncommitted` fetch: pass an empty slice, and every batch but the
    /// control batches is delivered.
    pub fn new(aborted: &[AbortedTransaction]) -> Self {
        let mut pending: Vec<(i64, i64)> = aborted
            .iter()
            .map(|t| (t.first_offset, t.producer_id.0))
            .collect();
        pending.sort_unstable_by(|a, b| b.cmp(a));
        AbortedTransactions {
            pending,
            aborted_producers: HashSet::new(),
        }
    }

    /// Whether `batch`'s records go to the application. Call it for each batch of the
    /// partition's response, in offset order, whatever the answer.
    ///
    /// The only error is an ABORT/COMMIT marker whose key cannot be read; the caller adds the
    /// partition and `batch.base_offset`.
    pub fn delivers(&mut self, batch: &Batch) -> Result<bool, ControlRecordError> {
        // A batch without a producer id (neither idempotent nor transactional) can neither be
        // part of a transaction nor end one; it moves nothing forward.
        if batch.producer_id >= 0 {
            while let Some(&(first_offset, producer_id)) = self.pending.last() {
                if first_offset > batch.last_offset {
                    break;
                }
                self.pending.pop();
                self.aborted_producers.insert(producer_id);
            }
            if batch.is_control() {
                if batch.control_type()? == Some(ControlRecordType::Abort) {
                    self.aborted_producers.remove(&batch.producer_id);
                }
            } else if batch.is_transactional()
                && self.aborted_producers.contains(&batch.producer_id)
            {
                return Ok(false);
            }
        }
        Ok(!batch.is_control())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::super::{BatchDecoder, Record, ATTR_CONTROL, ATTR_TRANSACTIONAL};
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::ProducerId;

    /// What a walk over `batches` delivers: the offsets of the records handed over.
    fn delivered(listed: &[(i64, i64)], batches: &[Batch]) -> Vec<i64> {
        let listed: Vec<AbortedTransaction> = listed
            .iter()
            .map(|&(producer_id, first_offset)| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(producer_id))
                    .with_first_offset(first_offset)
            })
            .collect();
        let mut aborted = AbortedTransactions::new(&listed);
        let mut out = Vec::new();
        for batch in batches {
            if aborted.delivers(batch).unwrap() {
                out.extend(batch.records.iter().map(|r| r.offset));
            }
        }
        out
    }

    fn batch(
        attributes: i16,
        producer_id: i64,
        base: i64,
        count: i64,
        key: Option<&[u8]>,
    ) -> Batch {
        Batch {
            base_offset: base,
            last_offset: base + count - 1,
            partition_leader_epoch: 0,
            attributes,
            producer_id,
            producer_epoch: if producer_id < 0 { -1 } else { 0 },
            base_sequence: -1,
            records: (base..base + count)
                .map(|offset| Record {
                    offset,
                    timestamp: 0,
                    key: key.map(Bytes::copy_from_slice),
                    value: None,
                    headers: vec![],
                })
                .collect(),
            inflated: 0,
        }
    }

    /// `count` records of transactional producer `pid` from `base`.
    fn txn(pid: i64, base: i64, count: i64) -> Batch {
        batch(ATTR_TRANSACTIONAL, pid, base, count, Some(b"k"))
    }

    fn commit(pid: i64, offset: i64) -> Batch {
        batch(
            ATTR_TRANSACTIONAL | ATTR_CONTROL,
            pid,
            offset,
            1,
            Some(&[0, 0, 0, 1]),
        )
    }

    fn abort(pid: i64, offset: i64) -> Batch {
        batch(
            ATTR_TRANSACTIONAL | ATTR_CONTROL,
            pid,
            offset,
            1,
            Some(&[0, 0, 0, 0]),
        )
    }

    /// Records of a producer without idempotence.
    fn plain(base: i64, count: i64) -> Batch {
        batch(0, -1, base, count, Some(b"k"))
    }

    /// Records of an idempotent producer outside any transaction.
    fn idempotent(pid: i64, base: i64, count: i64) -> Batch {
        batch(0, pid, base, count, Some(b"k"))
    }

    #[test]
    fn without_aborted_transactions_everything_but_markers_is_delivered() {
        let batches = [
            txn(1, 0, 2),
            commit(1, 2),
            plain(3, 1),
            txn(1, 4, 1),
            abort(1, 5),
            idempotent(2, 6, 2),
        ];
        assert_eq!(delivered(&[], &batches), [0, 1, 3, 4, 6, 7]);
    }

    #[test]
    fn an_aborted_transaction_is_skipped_and_its_marker_too() {
        let batches = [txn(1, 0, 2), commit(1, 2), txn(1, 3, 2), abort(1, 5)];
        assert_eq!(delivered(&[(1, 3)], &batches), [0, 1]);
    }

    #[test]
    fn abort_then_commit_from_the_same_producer() {
        let batches = [
            txn(1, 0, 2),
            txn(1, 2, 1),
            abort(1, 3),
            txn(1, 4, 2),
            commit(1, 6),
            txn(1, 7, 1),
            abort(1, 8),
            txn(1, 9, 1),
            commit(1, 10),
        ];
        assert_eq!(delivered(&[(1, 0), (1, 7)], &batches), [4, 5, 9]);
        // The order of the list does not matter.
        assert_eq!(delivered(&[(1, 7), (1, 0)], &batches), [4, 5, 9]);
    }

    #[test]
    fn interleaved_producers() {
        // Producer 1 aborts, producer 2 commits, their batches alternating; a producer without
        // idempotence and an idempotent one write in between.
        let batches = [
            txn(1, 0, 1),
            txn(2, 1, 1),
            plain(2, 1),
            txn(1, 3, 2),
            idempotent(3, 5, 1),
            txn(2, 6, 1),
            abort(1, 7),
            txn(2, 8, 1),
            commit(2, 9),
        ];
        assert_eq!(delivered(&[(1, 0)], &batches), [1, 2, 5, 6, 8]);
        // Both aborted.
        let both = [
            txn(1, 0, 1),
            txn(2, 1, 1),
            txn(1, 2, 1),
            abort(2, 3),
            txn(1, 4, 1),
            abort(1, 5),
            txn(2, 6, 1),
            commit(2, 7),
        ];
        assert_eq!(delivered(&[(2, 1), (1, 0)], &both), [6]);
    }

    #[test]
    fn an_aborted_transaction_starting_mid_fetch() {
        // Producer 1 commits, then its next transaction, which starts further on, aborts: what
        // came before its first offset is delivered.
        let batches = [
            txn(1, 10, 3),
            plain(13, 2),
            commit(1, 15),
            txn(2, 16, 1),
            txn(1, 17, 2),
            txn(2, 19, 1),
            abort(1, 21),
            commit(2, 22),
        ];
        assert_eq!(
            delivered(&[(1, 17)], &batches),
            [10, 11, 12, 13, 14, 16, 19]
        );
    }

    #[test]
    fn an_aborted_transaction_that_began_before_the_fetch() {
        // The fetch starts at 20, inside producer 1's transaction that began at 12: the broker
        // still lists it, and the first batch with a producer id reaches it.
        let batches = [plain(20, 1), txn(1, 21, 2), abort(1, 23), txn(1, 24, 1)];
        assert_eq!(delivered(&[(1, 12)], &batches), [20, 24]);
    }

    #[test]
    fn an_entry_is_reached_by_a_batch_that_ends_at_or_after_it() {
        // Another producer's batch spanning the entry's first offset reaches it first (its last
        // offset counts, not its base), which is harmless: the set only matters for producer 1.
        let batches = [idempotent(2, 0, 5), txn(1, 5, 1), abort(1, 6)];
        let mut aborted = AbortedTransactions::new(&[AbortedTransaction::default()
            .with_producer_id(ProducerId(1))
            .with_first_offset(4)]);
        assert!(aborted.delivers(&batches[0]).unwrap());
        assert!(aborted.aborted_producers.contains(&1));
        assert!(!aborted.delivers(&batches[1]).unwrap());
        assert!(!aborted.delivers(&batches[2]).unwrap());
        assert!(aborted.aborted_producers.is_empty());
    }

    #[test]
    fn a_malformed_marker_is_an_error() {
        let mut aborted = AbortedTransactions::new(&[]);
        let broken = batch(ATTR_TRANSACTIONAL | ATTR_CONTROL, 1, 0, 1, Some(&[0]));
        assert_eq!(
            aborted.delivers(&broken),
            Err(ControlRecordError::KeyTooShort { len: 1 })
        );
        // An empty control batch is no marker, as in the Java client, and delivers nothing.
        let empty = Batch {
            records: vec![],
            ..broken
        };
        assert_eq!(aborted.delivers(&empty), Ok(false));
    }

    /// The broker's own segment and transaction index (fixtures/golden/README.md): a committed
    /// then an aborted transaction; the index lists the aborted one as a read_committed Fetch
    /// would.
    #[test]
    fn the_brokers_segment_reads_committed() {
        let index = golden("java-txn-segment.txnindex");
        // Each entry: version i16, producer id, first offset, last offset, last stable offset.
        assert_eq!(index.len() % 34, 0);
        let listed: Vec<AbortedTransaction> = index
            .chunks(34)
            .map(|e| {
                let long = |at: usize| i64::from_be_bytes(e[at..at + 8].try_into().unwrap());
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(long(2)))
                    .with_first_offset(long(10))
            })
            .collect();
        assert_eq!(listed.len(), 1);
        let mut aborted = AbortedTransactions::new(&listed);
        let mut committed = Vec::new();
        let mut uncommitted = Vec::new();
        let mut read_uncommitted = AbortedTransactions::new(&[]);
        for batch in BatchDecoder::new(golden("java-txn-segment.bin"), true, LIMIT) {
            let batch = batch.unwrap();
            let key = |r: &Record| r.key.clone().unwrap();
            if aborted.delivers(&batch).unwrap() {
                committed.extend(batch.records.iter().map(key));
            }
            if read_uncommitted.delivers(&batch).unwrap() {
                uncommitted.extend(batch.records.iter().map(key));
            }
        }
        assert_eq!(committed, ["c0", "c1"]);
        assert_eq!(uncommitted, ["c0", "c1", "a0", "a1"]);
    }
}
