//! A share session with one broker (KIP-932), as the member sees it: which partitions the
//! broker holds for it, and the epoch of the next request. Pure bookkeeping: the driver asks
//! what to send and reports what came back.
//!
//! ```text
//!  no session ─► ShareFetch at epoch 0: every partition wanted, no acknowledgements
//!       ▲            │ answered
//!       │            ▼
//!       │      epoch 1, 2, 3, … (after i32::MAX, 1): ShareFetch names the partitions added
//!       │      and forgotten (the broker fetches all it holds), and carries acknowledgements;
//!       │      ShareAcknowledge carries acknowledgements alone
//!       └──── an error of any kind, or a lost connection ◄──┘
//!  close ─► ShareAcknowledge at epoch -1: the last acknowledgements; the broker releases
//!           every record the member still holds there
//! ```
//!
//! The member's records stay its own across sessions (the broker keys them by member id),
//! but a lost connection ends the session and releases them.

use std::collections::BTreeSet;

use crate::cluster::TopicPartition;

/// The epoch that opens a session.
pub(super) const OPEN_EPOCH: i32 = 0;
/// The epoch that closes one.
pub(super) const FINAL_EPOCH: i32 = -1;

#[derive(Debug, Default)]
pub(super) struct ShareSession {
    /// The epoch of the next request.
    epoch: i32,
    /// The partitions the broker holds in the session.
    held: BTreeSet<TopicPartition>,
}

/// What one ShareFetch names.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct FetchPlan {
    pub epoch: i32,
    /// Partitions to add to the session (all of them when it opens), and those whose
    /// acknowledgements the request carries.
    pub fetch: Vec<TopicPartition>,
    /// Partitions the session should drop.
    pub forget: Vec<TopicPartition>,
}

impl ShareSession {
    /// The epoch of the next request.
    pub fn epoch(&self) -> i32 {
        self.epoch
    }

    /// True while a session is open: acknowledgements can go out.
    pub fn is_open(&self) -> bool {
        self.epoch > OPEN_EPOCH
    }

    /// The ShareFetch that makes the session fetch `wanted`, with acknowledgements for
    /// `acked` (which must be among `wanted`, and are carried only by an open session).
    pub fn plan<'a>(
        &self,
        wanted: &BTreeSet<TopicPartition>,
        acked: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> FetchPlan {
        if !self.is_open() {
            return FetchPlan {
                epoch: OPEN_EPOCH,
                fetch: wanted.iter().cloned().collect(),
                forget: Vec::new(),
            };
        }
        let mut fetch: BTreeSet<TopicPartition> = wanted.difference(&self.held).cloned().collect();
        fetch.extend(acked.into_iter().filter(|tp| wanted.contains(*tp)).cloned());
        FetchPlan {
            epoch: self.epoch,
            fetch: fetch.into_iter().collect(),
            forget: self.held.difference(wanted).cloned().collect(),
        }
    }

    /// The broker answered a ShareFetch planned as `plan` without a top-level error.
    pub fn fetched(&mut self, plan: &FetchPlan) {
        if plan.epoch == OPEN_EPOCH {
            self.held.clear();
        }
        self.held.extend(plan.fetch.iter().cloned());
        for tp in &plan.forget {
            self.held.remove(tp);
        }
        self.advance();
    }

    /// The broker answered a ShareAcknowledge without a top-level error.
    pub fn acknowledged(&mut self) {
        self.advance();
    }

    /// Anything else: the next request opens a new session (which replaces the broker's).
    pub fn reset(&mut self) {
        self.epoch = OPEN_EPOCH;
        self.held.clear();
    }

    fn advance(&mut self) {
        self.epoch = match self.epoch {
            i32::MAX => 1,
            epoch => epoch + 1,
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        (Arc::from(t), p)
    }

    fn set(tps: &[TopicPartition]) -> BTreeSet<TopicPartition> {
        tps.iter().cloned().collect()
    }

    #[test]
    fn a_session_opens_with_everything_and_no_acknowledgements() {
        let session = ShareSession::default();
        let wanted = set(&[tp("a", 0), tp("a", 1)]);
        let plan = session.plan(&wanted, &[tp("a", 0)]);
        assert_eq!(plan.epoch, OPEN_EPOCH);
        assert_eq!(plan.fetch, vec![tp("a", 0), tp("a", 1)]);
        assert!(plan.forget.is_empty());
        assert!(!session.is_open());
    }

    #[test]
    fn an_open_session_names_only_changes_and_acknowledged_partitions() {
        let mut session = ShareSession::default();
        let wanted = set(&[tp("a", 0), tp("a", 1)]);
        let plan = session.plan(&wanted, []);
        session.fetched(&plan);
        assert_eq!(session.epoch(), 1);
        // Nothing changed, nothing acknowledged: an empty request fetches all the session holds.
        let plan = session.plan(&wanted, []);
        assert_eq!((plan.epoch, plan.fetch.len(), plan.forget.len()), (1, 0, 0));
        // a-1 goes, b-0 comes, a-0 carries acknowledgements; a-1's would not ride along.
        let wanted = set(&[tp("a", 0), tp("b", 0)]);
        let plan = session.plan(&wanted, &[tp("a", 0), tp("a", 1)]);
        assert_eq!(plan.fetch, vec![tp("a", 0), tp("b", 0)]);
        assert_eq!(plan.forget, vec![tp("a", 1)]);
        session.fetched(&plan);
        assert_eq!(session.epoch(), 2);
        assert_eq!(session.held, wanted);
        session.acknowledged();
        assert_eq!(session.epoch(), 3);
    }

    #[test]
    fn any_failure_opens_a_new_session_and_the_epoch_wraps_to_one() {
        let mut session = ShareSession::default();
        let wanted = set(&[tp("a", 0)]);
        session.fetched(&session.plan(&wanted, []));
        session.reset();
        assert_eq!(session.plan(&wanted, []).epoch, OPEN_EPOCH);
        session.epoch = i32::MAX;
        session.acknowledged();
        assert_eq!(session.epoch(), 1);
    }
}
