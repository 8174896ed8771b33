//! What the share consumer and its driver task hand each other: fetched records one way,
//! acknowledgements and commits the other, under one lock held for a moment at a time.
//!
//! ```text
//!  application (poll, recv)          Exchange                     driver (one task)
//!    take ◄──────────────── ready: records by partition ◄──── ShareFetch answers
//!    acknowledge ─────────► pending: per broker, per partition ─► ShareFetch / ShareAcknowledge
//!    commit ──────────────► commits: wait for what was queued ◄── answers, per partition
//!    close ───────────────► closing                              ─► epoch -1, task ends
//! ```
//!
//! Acknowledgements go to the broker the records came from, in the order they were queued,
//! one request at a time per broker. Each queueing takes a number; a request carries all a
//! broker has queued and the range of numbers among it, so a commit knows what it waits for:
//! per broker, the numbers between what was answered when it began and what was queued.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{oneshot, Notify};

use super::AcknowledgementCommit;
use crate::cluster::TopicPartition;
use crate::consumer::Message;
use crate::error::Error;
use crate::protocol::share::AckRuns;

/// Records of one partition from one broker's answer, not handed out yet.
pub(super) struct Chunk {
    pub broker: i32,
    pub tp: TopicPartition,
    pub messages: VecDeque<Message>,
}

/// The numbers of the queueings a request carries: `lo..=hi`, empty when `hi` is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Numbers {
    pub lo: u64,
    pub hi: u64,
}

/// One broker's acknowledgements.
#[derive(Default)]
pub(super) struct Pending {
    pub runs: BTreeMap<TopicPartition, AckRuns>,
    /// The number of the earliest queueing in `runs`.
    first: Option<u64>,
    /// The number of the latest queueing.
    queued: u64,
    /// The number carried by the latest request.
    sent: u64,
    /// The number of the latest answer.
    answered: u64,
}

/// A commit waiting for its acknowledgements' answers.
struct Commit {
    /// Per broker: the numbers after `.0` up to `.1`.
    window: BTreeMap<i32, (u64, u64)>,
    results: Vec<AcknowledgementCommit>,
    done: oneshot::Sender<Vec<AcknowledgementCommit>>,
}

#[derive(Default)]
pub(super) struct Exchange {
    pub ready: VecDeque<Chunk>,
    /// Errors for the application, reported once each.
    pub errors: VecDeque<Error>,
    pub pending: BTreeMap<i32, Pending>,
    commits: Vec<Commit>,
    /// The application closes the consumer: the driver sends what is left and ends.
    pub closing: bool,
    /// The driver ended.
    pub ended: bool,
    /// The acquisition lock's duration, as the last ShareFetch answer gave it.
    pub lock_timeout_ms: Option<i32>,
    numbers: u64,
}

impl Exchange {
    /// Queues `runs` of `tp` for `broker`.
    pub fn queue(&mut self, broker: i32, tp: &TopicPartition, runs: &AckRuns) {
        if runs.is_empty() {
            return;
        }
        self.numbers += 1;
        let pending = self.pending.entry(broker).or_default();
        match pending.runs.get_mut(tp) {
            Some(held) => held.extend(runs),
            None => {
                pending.runs.insert(tp.clone(), runs.clone());
            }
        }
        pending.queued = self.numbers;
        pending.first.get_or_insert(self.numbers);
    }

    /// Puts acknowledgements a request carried back in front of what is queued: the session
    /// they went out on ended before the broker took them, and the records are still the
    /// member's. They keep their number.
    pub fn requeue(
        &mut self,
        broker: i32,
        runs: BTreeMap<TopicPartition, AckRuns>,
        numbers: Numbers,
    ) {
        if numbers.hi == 0 {
            return;
        }
        let pending = self.pending.entry(broker).or_default();
        pending.first = Some(pending.first.map_or(numbers.lo, |f| f.min(numbers.lo)));
        // Not sent after all: a commit waiting for them asks for them at once.
        pending.sent = pending.sent.min(numbers.lo.saturating_sub(1));
        for (tp, mut earlier) in runs {
            if let Some(later) = pending.runs.remove(&tp) {
                earlier.extend(&later);
            }
            pending.runs.insert(tp, earlier);
        }
    }

    /// True when `broker` has acknowledgements to send.
    pub fn has_acks(&self, broker: i32) -> bool {
        self.pending
            .get(&broker)
            .is_some_and(|p| !p.runs.is_empty())
    }

    /// True when a commit waits for acknowledgements of `broker` not sent yet.
    pub fn flush(&self, broker: i32) -> bool {
        let sent = self.pending.get(&broker).map_or(0, |p| p.sent);
        self.commits
            .iter()
            .any(|c| c.window.get(&broker).is_some_and(|w| w.1 > sent))
    }

    /// Takes what `broker` has queued, with the numbers a request carrying it answers.
    pub fn take(&mut self, broker: i32) -> (BTreeMap<TopicPartition, AckRuns>, Numbers) {
        let pending = self.pending.entry(broker).or_default();
        let Some(lo) = pending.first.take() else {
            return (BTreeMap::new(), Numbers::default());
        };
        pending.sent = pending.queued;
        let numbers = Numbers {
            lo,
            hi: pending.queued,
        };
        (std::mem::take(&mut pending.runs), numbers)
    }

    /// The brokers with acknowledgements queued.
    pub fn brokers_with_acks(&self) -> Vec<i32> {
        self.pending
            .iter()
            .filter(|(_, p)| !p.runs.is_empty())
            .map(|(&b, _)| b)
            .collect()
    }

    /// Waits for everything queued so far: `done` gets the answers, per partition.
    pub fn commit(&mut self, done: oneshot::Sender<Vec<AcknowledgementCommit>>) {
        if self.ended {
            // Nothing will be sent any more.
            let _ = done.send(Vec::new());
            return;
        }
        let window: BTreeMap<i32, (u64, u64)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.queued > p.answered)
            .map(|(&b, p)| (b, (p.answered, p.queued)))
            .collect();
        if window.is_empty() {
            let _ = done.send(Vec::new());
            return;
        }
        self.commits.push(Commit {
            window,
            results: Vec::new(),
            done,
        });
    }

    /// `broker` answered the acknowledgements `numbers` with `results`. A commit takes the
    /// results of every request that carried some of what it waits for.
    pub fn answered(&mut self, broker: i32, numbers: Numbers, results: &[AcknowledgementCommit]) {
        if numbers.hi == 0 {
            return;
        }
        let pending = self.pending.entry(broker).or_default();
        pending.answered = pending.answered.max(numbers.hi);
        for commit in &mut self.commits {
            if let Some(&(after, until)) = commit.window.get(&broker) {
                if numbers.hi > after && numbers.lo <= until {
                    commit.results.extend(results.iter().cloned());
                }
            }
        }
        let pending = &self.pending;
        let (done, waiting): (Vec<Commit>, Vec<Commit>) = std::mem::take(&mut self.commits)
            .into_iter()
            .partition(|c| {
                c.window
                    .iter()
                    .all(|(b, w)| pending.get(b).is_some_and(|p| p.answered >= w.1))
            });
        self.commits = waiting;
        for commit in done {
            let _ = commit.done.send(commit.results);
        }
    }

    /// The driver ended: commits still waiting get what came.
    pub fn end(&mut self) {
        self.ended = true;
        for commit in self.commits.drain(..) {
            let _ = commit.done.send(commit.results);
        }
    }
}

/// The exchange and the two wake-ups.
pub(super) struct Inner {
    state: Mutex<Exchange>,
    /// Wakes the driver: acknowledgements queued, records taken, a commit, the close.
    pub driver: Notify,
    /// Wakes the application: records or an error arrived; also the member's attention.
    pub app: Arc<Notify>,
}

impl Inner {
    pub fn new(app: Arc<Notify>) -> Self {
        Inner {
            state: Mutex::new(Exchange::default()),
            driver: Notify::new(),
            app,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, Exchange> {
        // Every change under the lock is complete before it is released, so a panic elsewhere
        // never leaves the exchange half-changed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::share::ACK_ACCEPT;

    fn tp(p: i32) -> TopicPartition {
        (Arc::from("t"), p)
    }

    fn runs(first: i64, last: i64) -> AckRuns {
        let mut r = AckRuns::default();
        r.add(first, last, ACK_ACCEPT);
        r
    }

    fn ok(p: i32) -> AcknowledgementCommit {
        AcknowledgementCommit {
            topic: Arc::from("t"),
            partition: p,
            offsets: vec![],
            result: Ok(()),
        }
    }

    #[test]
    fn a_commit_waits_for_what_was_queued_before_it_on_every_broker() {
        let mut x = Exchange::default();
        x.queue(1, &tp(0), &runs(0, 9));
        x.queue(2, &tp(1), &runs(0, 4));
        let (tx, mut rx) = oneshot::channel();
        x.commit(tx);
        assert!(x.flush(1) && x.flush(2));
        // Queued after the commit: not waited for.
        let (carried, numbers) = x.take(1);
        assert_eq!(carried[&tp(0)].runs(), &[(0, 9, ACK_ACCEPT)]);
        assert!(!x.flush(1));
        x.queue(1, &tp(0), &runs(10, 19));
        x.answered(1, numbers, &[ok(0)]);
        assert!(rx.try_recv().is_err(), "broker 2 has not answered");
        let (_, numbers) = x.take(2);
        x.answered(2, numbers, &[ok(1)]);
        let results = rx.try_recv().expect("answered");
        assert_eq!(results.len(), 2);
        // The later acknowledgements are still there for the next request.
        assert!(x.has_acks(1));
    }

    #[test]
    fn a_commit_with_nothing_queued_is_answered_at_once() {
        let mut x = Exchange::default();
        let (tx, mut rx) = oneshot::channel();
        x.commit(tx);
        assert!(rx.try_recv().unwrap().is_empty());
    }

    #[test]
    fn requeued_acknowledgements_go_first_and_keep_the_commit_waiting() {
        let mut x = Exchange::default();
        x.queue(1, &tp(0), &runs(0, 9));
        let (tx, mut rx) = oneshot::channel();
        x.commit(tx);
        let (carried, numbers) = x.take(1);
        x.queue(1, &tp(0), &runs(10, 11));
        // The session ended before the broker took them.
        x.requeue(1, carried, numbers);
        assert!(rx.try_recv().is_err());
        assert!(x.flush(1), "the commit asks for them again at once");
        let (carried, numbers) = x.take(1);
        assert_eq!(numbers, Numbers { lo: 1, hi: 2 });
        assert_eq!(carried[&tp(0)].runs(), &[(0, 11, ACK_ACCEPT)]);
        x.answered(1, numbers, &[ok(0)]);
        assert_eq!(rx.try_recv().unwrap().len(), 1);
    }

    #[test]
    fn the_end_answers_every_waiting_commit() {
        let mut x = Exchange::default();
        x.queue(1, &tp(0), &runs(0, 0));
        let (tx, mut rx) = oneshot::channel();
        x.commit(tx);
        x.end();
        assert!(rx.try_recv().unwrap().is_empty());
        assert!(x.ended);
        // A commit after the end is answered at once: nothing goes out any more.
        let (tx, mut rx) = oneshot::channel();
        x.queue(1, &tp(0), &runs(1, 1));
        x.commit(tx);
        assert!(rx.try_recv().unwrap().is_empty());
    }
}
