//! Share groups on the wire (KIP-932), free of I/O: which fetched records a member acquired, and
//! acknowledgements as the broker takes them.
//!
//! ```text
//!  ShareFetch answer: record batches + acquired ranges (first, last, delivery count)
//!        │  deliveries(): each data record inside a range is the member's, with the range's
//!        │  delivery count; an acquired offset with no data record (a transaction marker, a
//!        ▼  record compacted away) is a gap, acknowledged as GAP so the broker archives it
//!  acknowledgements: (offset range, type) runs ─► batches(): ascending, one type per batch
//! ```
//!
//! The broker refuses a partition's acknowledgements unless its batches ascend without
//! overlapping and each carries one type or one type per offset. [`AckRuns`] keeps that shape
//! as acknowledgements arrive in any order.

use kafka_protocol::messages::{share_acknowledge_request, share_fetch_request};

/// A gap: an acquired offset without a record for the application.
pub const ACK_GAP: i8 = 0;
/// Processed: the record is done with.
pub const ACK_ACCEPT: i8 = 1;
/// Not processed: the record goes back to be delivered again (to any member).
pub const ACK_RELEASE: i8 = 2;
/// Unprocessable: the record is archived, never delivered again.
pub const ACK_REJECT: i8 = 3;

/// Records a member acquired, as a ShareFetch answer lists them: `first..=last`, delivered for
/// the `delivery_count`th time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    /// The first offset acquired.
    pub first: i64,
    /// The last offset acquired (inclusive).
    pub last: i64,
    /// How many times the records were delivered, this time included.
    pub delivery_count: i16,
}

/// Matches the offsets of a partition's fetched data records (ascending, control batches left
/// out) to the ranges the member acquired. Calls `deliver(i, count)` for the `i`th offset when
/// it was acquired (with its delivery count), and returns the acquired offsets no data record
/// stands at, as inclusive ranges: the gaps. Records outside every range are another member's
/// or already done with; the broker sends whole batches, so they come along.
pub fn deliveries(
    offsets: impl IntoIterator<Item = i64>,
    acquired: &[Acquired],
    mut deliver: impl FnMut(usize, i16),
) -> Vec<(i64, i64)> {
    let mut ranges: Vec<Acquired> = acquired
        .iter()
        .copied()
        .filter(|a| a.first <= a.last)
        .collect();
    ranges.sort_by_key(|a| a.first);
    let mut gaps: Vec<(i64, i64)> = Vec::new();
    let mut gap = |first: i64, last: i64| match gaps.last_mut() {
        Some(g) if g.1.checked_add(1) == Some(first) => g.1 = last,
        _ => gaps.push((first, last)),
    };
    // The range the next acquired offset is in, and that offset; `None` once all are matched.
    let mut at = 0;
    let mut next = ranges.first().map(|a| a.first);
    // Moves `next` into a range: past the end of one, to the next (ranges may overlap; an
    // offset already matched is never matched again).
    let settle = |at: &mut usize, next: &mut Option<i64>| {
        while let Some(n) = *next {
            match ranges.get(*at) {
                Some(range) if n <= range.last => break,
                Some(_) => {
                    *at += 1;
                    *next = ranges.get(*at).map(|a| a.first.max(n));
                }
                None => *next = None,
            }
        }
    };
    for (i, offset) in offsets.into_iter().enumerate() {
        loop {
            settle(&mut at, &mut next);
            let Some(n) = next else { break };
            let range = ranges[at];
            if offset < n {
                break; // not acquired: another member's, or done with
            }
            if offset > range.last {
                gap(n, range.last);
                next = range.last.checked_add(1);
                continue;
            }
            if offset > n {
                gap(n, offset - 1);
            }
            deliver(i, range.delivery_count);
            next = offset.checked_add(1);
            break;
        }
    }
    loop {
        settle(&mut at, &mut next);
        let Some(n) = next else { break };
        let range = ranges[at];
        gap(n, range.last);
        next = range.last.checked_add(1);
    }
    gaps
}

/// One partition's acknowledgements waiting to be sent, as runs of one type over consecutive
/// offsets, kept ascending.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AckRuns {
    /// `(first, last, type)`, ascending, not overlapping.
    runs: Vec<(i64, i64, i8)>,
}

impl AckRuns {
    /// Adds `first..=last` as `kind`. A run that continues the last one with the same type
    /// extends it, so a poll's worth of accepted records is one run. An offset already held
    /// takes the newer type (the application changed its mind before it was sent).
    pub fn add(&mut self, first: i64, last: i64, kind: i8) {
        if first > last {
            return;
        }
        match self.runs.last_mut() {
            Some(run) if run.1 < first => {
                if run.2 == kind && run.1.checked_add(1) == Some(first) {
                    run.1 = last;
                } else {
                    self.runs.push((first, last, kind));
                }
            }
            None => self.runs.push((first, last, kind)),
            // Out of order (a record delivered again at a lower offset) or overlapping.
            Some(_) => self.insert(first, last, kind),
        }
    }

    fn insert(&mut self, first: i64, last: i64, kind: i8) {
        let mut out = Vec::with_capacity(self.runs.len() + 2);
        for &(f, l, k) in &self.runs {
            if l < first || f > last {
                out.push((f, l, k));
                continue;
            }
            // Keep the parts of the old run outside the new one.
            if f < first {
                out.push((f, first - 1, k));
            }
            if l > last {
                out.push((last + 1, l, k));
            }
        }
        out.push((first, last, kind));
        out.sort_unstable_by_key(|r| r.0);
        // Join neighbours of the same type.
        let mut joined: Vec<(i64, i64, i8)> = Vec::with_capacity(out.len());
        for run in out {
            match joined.last_mut() {
                Some(prev) if prev.2 == run.2 && prev.1.checked_add(1) == Some(run.0) => {
                    prev.1 = run.1
                }
                _ => joined.push(run),
            }
        }
        self.runs = joined;
    }

    /// Adds every run of `other` (kept in its order).
    pub fn extend(&mut self, other: &AckRuns) {
        for &(f, l, k) in &other.runs {
            self.add(f, l, k);
        }
    }

    /// True when nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The runs, ascending: `(first, last, type)`.
    pub fn runs(&self) -> &[(i64, i64, i8)] {
        &self.runs
    }

    /// The offsets acknowledged with a type other than GAP, as inclusive ranges, whatever
    /// their types: what the application acknowledged.
    pub fn acknowledged(&self) -> Vec<(i64, i64)> {
        let mut out: Vec<(i64, i64)> = Vec::new();
        for &(first, last, _) in self.runs.iter().filter(|r| r.2 != ACK_GAP) {
            match out.last_mut() {
                Some(prev) if prev.1.checked_add(1) == Some(first) => prev.1 = last,
                _ => out.push((first, last)),
            }
        }
        out
    }

    /// The batches of a ShareFetch: one per run, each with one type.
    pub fn fetch_batches(&self) -> Vec<share_fetch_request::AcknowledgementBatch> {
        self.runs
            .iter()
            .map(|&(first, last, kind)| {
                share_fetch_request::AcknowledgementBatch::default()
                    .with_first_offset(first)
                    .with_last_offset(last)
                    .with_acknowledge_types(vec![kind])
            })
            .collect()
    }

    /// The same batches, for a ShareAcknowledge.
    pub fn acknowledge_batches(&self) -> Vec<share_acknowledge_request::AcknowledgementBatch> {
        self.runs
            .iter()
            .map(|&(first, last, kind)| {
                share_acknowledge_request::AcknowledgementBatch::default()
                    .with_first_offset(first)
                    .with_last_offset(last)
                    .with_acknowledge_types(vec![kind])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets delivered with their counts, and the gaps.
    type Matched = (Vec<(i64, i16)>, Vec<(i64, i64)>);

    fn run(offsets: &[i64], acquired: &[(i64, i64, i16)]) -> Matched {
        let acquired: Vec<Acquired> = acquired
            .iter()
            .map(|&(first, last, delivery_count)| Acquired {
                first,
                last,
                delivery_count,
            })
            .collect();
        let mut delivered = Vec::new();
        let gaps = deliveries(offsets.iter().copied(), &acquired, |i, n| {
            delivered.push((offsets[i], n))
        });
        (delivered, gaps)
    }

    #[test]
    fn every_record_of_an_acquired_range_is_delivered_with_its_count() {
        let (delivered, gaps) = run(&[10, 11, 12], &[(10, 12, 1)]);
        assert_eq!(delivered, vec![(10, 1), (11, 1), (12, 1)]);
        assert!(gaps.is_empty());
    }

    #[test]
    fn records_outside_the_ranges_are_skipped() {
        // The broker sends whole batches: 0..=9 in the bytes, 3..=5 acquired.
        let offsets: Vec<i64> = (0..10).collect();
        let (delivered, gaps) = run(&offsets, &[(3, 5, 2)]);
        assert_eq!(delivered, vec![(3, 2), (4, 2), (5, 2)]);
        assert!(gaps.is_empty());
    }

    #[test]
    fn acquired_offsets_without_records_are_gaps() {
        // 12 is a transaction marker (control batches are left out), 15..=16 compacted away,
        // and the range runs past the last record.
        let (delivered, gaps) = run(&[10, 11, 13, 14, 17], &[(10, 19, 1)]);
        assert_eq!(delivered, vec![(10, 1), (11, 1), (13, 1), (14, 1), (17, 1)]);
        assert_eq!(gaps, vec![(12, 12), (15, 16), (18, 19)]);
    }

    #[test]
    fn ranges_with_different_counts_and_no_records_at_all() {
        let (delivered, gaps) = run(&[5, 6, 7, 8], &[(7, 8, 3), (5, 6, 1)]);
        assert_eq!(delivered, vec![(5, 1), (6, 1), (7, 3), (8, 3)]);
        assert!(gaps.is_empty());
        let (delivered, gaps) = run(&[], &[(0, 4, 1), (8, 9, 2)]);
        assert!(delivered.is_empty());
        assert_eq!(gaps, vec![(0, 4), (8, 9)]);
    }

    #[test]
    fn a_gap_between_ranges_is_not_invented() {
        // 3..=4 are not acquired (another member's): no gap for them.
        let (delivered, gaps) = run(&[0, 1, 2, 3, 4, 5], &[(0, 2, 1), (5, 6, 1)]);
        assert_eq!(delivered, vec![(0, 1), (1, 1), (2, 1), (5, 1)]);
        assert_eq!(gaps, vec![(6, 6)]);
    }

    #[test]
    fn overlapping_or_backwards_ranges_never_deliver_twice() {
        let (delivered, gaps) = run(&[0, 1, 2, 3], &[(0, 2, 1), (1, 3, 2), (9, 8, 1)]);
        assert_eq!(delivered, vec![(0, 1), (1, 1), (2, 1), (3, 2)]);
        assert!(gaps.is_empty());
    }

    #[test]
    fn runs_extend_and_keep_order() {
        let mut acks = AckRuns::default();
        for o in 0..100 {
            acks.add(o, o, ACK_ACCEPT);
        }
        assert_eq!(acks.runs(), &[(0, 99, ACK_ACCEPT)]);
        acks.add(100, 101, ACK_GAP);
        acks.add(102, 102, ACK_ACCEPT);
        // A record delivered again below what is held.
        acks.add(-5, -5, ACK_RELEASE);
        assert_eq!(
            acks.runs(),
            &[
                (-5, -5, ACK_RELEASE),
                (0, 99, ACK_ACCEPT),
                (100, 101, ACK_GAP),
                (102, 102, ACK_ACCEPT)
            ]
        );
        assert_eq!(acks.acknowledged(), vec![(-5, -5), (0, 99), (102, 102)]);
        acks.add(103, 103, ACK_REJECT);
        assert_eq!(acks.acknowledged(), vec![(-5, -5), (0, 99), (102, 103)]);
    }

    #[test]
    fn a_newer_type_replaces_the_older_one_for_the_same_offsets() {
        let mut acks = AckRuns::default();
        acks.add(0, 9, ACK_ACCEPT);
        acks.add(4, 5, ACK_REJECT);
        assert_eq!(
            acks.runs(),
            &[(0, 3, ACK_ACCEPT), (4, 5, ACK_REJECT), (6, 9, ACK_ACCEPT)]
        );
        acks.add(4, 5, ACK_ACCEPT);
        assert_eq!(acks.runs(), &[(0, 9, ACK_ACCEPT)]);
    }

    #[test]
    fn batches_ascend_without_overlap_and_carry_one_type() {
        let mut acks = AckRuns::default();
        acks.add(7, 7, ACK_REJECT);
        acks.add(0, 6, ACK_ACCEPT);
        acks.add(8, 8, ACK_ACCEPT);
        let batches = acks.fetch_batches();
        let shape: Vec<(i64, i64, Vec<i8>)> = batches
            .iter()
            .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, 6, vec![ACK_ACCEPT]),
                (7, 7, vec![ACK_REJECT]),
                (8, 8, vec![ACK_ACCEPT])
            ]
        );
    }
}
