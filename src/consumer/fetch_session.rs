//! KIP-227 incremental fetch sessions, one per leader: after a first full fetch the broker
//! remembers the partitions and their fetch offsets, so each later request names only the
//! partitions whose offset moved and those to forget, and each answer carries only the
//! partitions with something new.
//!
//! ```text
//!  no session ─► full fetch, epoch 0 ─► broker answers session id ─► epoch 1, 2, 3, …
//!       ▲            (the broker may decline: id 0, stay sessionless)       │
//!       └──── FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, ◄────┘
//!             a lost connection or any other failure
//! ```
//!
//! Pure bookkeeping: the fetcher asks what to send and reports what came back.

use std::collections::BTreeMap;

use crate::cluster::TopicPartition;

/// The first Fetch version with sessions.
const MIN_VERSION: i16 = 7;
/// The epoch that asks the broker to open a session.
const INITIAL_EPOCH: i32 = 0;
/// The epoch of a sessionless full fetch.
const NO_SESSION_EPOCH: i32 = -1;

/// One leader's fetch session as the client sees it. `V` is what the broker keeps of each
/// partition: where to fetch from (the fetch offset and the leader epoch it is asked at).
#[derive(Debug)]
pub(super) struct FetchSession<V> {
    /// The broker's session id; 0 while there is none.
    id: i32,
    /// The epoch of the next request.
    epoch: i32,
    /// The partitions the broker holds in the session, as last sent.
    sent: BTreeMap<TopicPartition, V>,
}

impl<V> Default for FetchSession<V> {
    fn default() -> Self {
        FetchSession {
            id: 0,
            epoch: 0,
            sent: BTreeMap::new(),
        }
    }
}

/// What one Fetch request carries.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct FetchPlan<V> {
    pub session_id: i32,
    pub epoch: i32,
    /// Partitions to fetch, with where from: all of them in a full fetch, those that changed
    /// (or that are new) in an incremental one.
    pub partitions: Vec<(TopicPartition, V)>,
    /// Partitions the session should drop.
    pub forgotten: Vec<TopicPartition>,
}

impl<V: Copy + PartialEq> FetchSession<V> {
    /// The request for fetching `wanted` (partition → where from) from this leader at Fetch
    /// `version`, recorded as sent.
    pub fn plan(&mut self, wanted: &BTreeMap<TopicPartition, V>, version: i16) -> FetchPlan<V> {
        if version < MIN_VERSION {
            *self = FetchSession::default();
            return FetchPlan {
                session_id: 0,
                epoch: NO_SESSION_EPOCH,
                partitions: wanted.iter().map(|(tp, o)| (tp.clone(), *o)).collect(),
                forgotten: Vec::new(),
            };
        }
        let plan = if self.id == 0 {
            FetchPlan {
                session_id: 0,
                epoch: INITIAL_EPOCH,
                partitions: wanted.iter().map(|(tp, o)| (tp.clone(), *o)).collect(),
                forgotten: Vec::new(),
            }
        } else {
            FetchPlan {
                session_id: self.id,
                epoch: self.epoch,
                partitions: wanted
                    .iter()
                    .filter(|(tp, o)| self.sent.get(*tp) != Some(*o))
                    .map(|(tp, o)| (tp.clone(), *o))
                    .collect(),
                forgotten: self
                    .sent
                    .keys()
                    .filter(|tp| !wanted.contains_key(*tp))
                    .cloned()
                    .collect(),
            }
        };
        self.sent = wanted.clone();
        plan
    }

    /// The broker answered the planned request without a session error, with `session_id`.
    pub fn answered(&mut self, session_id: i32) {
        if self.id == 0 {
            // A new session starts at epoch 1; id 0 means the broker declined one.
            self.id = session_id;
            self.epoch = 1;
        } else {
            // After i32::MAX the epoch wraps to 1, never to the epochs that open or close.
            self.epoch = self.epoch.checked_add(1).unwrap_or(1);
        }
        if self.id == 0 {
            self.sent.clear();
        }
    }

    /// The request failed, or the broker lost the session: start again with a full fetch.
    pub fn reset(&mut self) {
        *self = FetchSession::default();
    }

    /// The session id, 0 when there is none.
    pub fn id(&self) -> i32 {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    type FetchSession = super::FetchSession<i64>;

    fn tp(p: i32) -> TopicPartition {
        (Arc::from("t"), p)
    }

    fn wanted(offsets: &[(i32, i64)]) -> BTreeMap<TopicPartition, i64> {
        offsets.iter().map(|&(p, o)| (tp(p), o)).collect()
    }

    #[test]
    fn full_then_incremental_then_forget() {
        let mut s = FetchSession::default();
        let first = s.plan(&wanted(&[(0, 5), (1, 7)]), 12);
        assert_eq!((first.session_id, first.epoch), (0, 0));
        assert_eq!(first.partitions.len(), 2);
        s.answered(42);

        // Partition 0 advanced, 1 did not: only 0 is named.
        let second = s.plan(&wanted(&[(0, 9), (1, 7)]), 12);
        assert_eq!((second.session_id, second.epoch), (42, 1));
        assert_eq!(second.partitions, vec![(tp(0), 9)]);
        assert!(second.forgotten.is_empty());
        s.answered(42);

        // Partition 1 paused or revoked, 2 added.
        let third = s.plan(&wanted(&[(0, 9), (2, 0)]), 12);
        assert_eq!(third.epoch, 2);
        assert_eq!(third.partitions, vec![(tp(2), 0)]);
        assert_eq!(third.forgotten, vec![tp(1)]);
    }

    #[test]
    fn a_declined_or_lost_session_falls_back_to_full_fetches() {
        let mut s = FetchSession::default();
        s.plan(&wanted(&[(0, 5)]), 12);
        s.answered(0);
        let again = s.plan(&wanted(&[(0, 5)]), 12);
        assert_eq!(
            (again.session_id, again.epoch, again.partitions.len()),
            (0, 0, 1)
        );

        s.answered(7);
        s.plan(&wanted(&[(0, 6)]), 12);
        s.reset();
        let full = s.plan(&wanted(&[(0, 6)]), 12);
        assert_eq!(
            (full.session_id, full.epoch, full.partitions.len()),
            (0, 0, 1)
        );
    }

    #[test]
    fn old_versions_never_open_a_session_and_epochs_wrap_to_one() {
        let mut s = FetchSession::default();
        let plan = s.plan(&wanted(&[(0, 5)]), 6);
        assert_eq!((plan.session_id, plan.epoch), (0, -1));

        let mut s = FetchSession {
            id: 3,
            epoch: i32::MAX,
            sent: BTreeMap::new(),
        };
        s.plan(&wanted(&[(0, 5)]), 12);
        s.answered(3);
        assert_eq!(s.epoch, 1);
    }
}
