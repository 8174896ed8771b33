//! The consumer's side of group membership: taking up assignments, giving partitions up, and
//! committing, for both protocols.
//!
//! ```text
//!  classic (group.rs)                          KIP-848 (consumer_group.rs)
//!  rejoin flag ─► join task: JoinGroup, SyncGroup   heartbeat task ─► target assignment
//!       eager: revoke all first                              │
//!       cooperative: keep fetching, revoke the difference    │
//!                 └──────────────► apply(): revoked ─► commit, Revoked event, drop
//!                                           added   ─► OffsetFetch, Assigned event, fetch
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::consumer_group::{Change, ConsumerGroupMember};
use super::group::{GroupMember, Rejoin};
use super::{Consumer, RebalanceEvent};
use crate::cluster::{Cluster, EARLIEST, LATEST};
use crate::config::{AutoOffsetReset, IsolationLevel};
use crate::error::Error;
use crate::protocol::consumer_protocol::TopicPartitions;

/// A consumer's group membership.
pub(super) enum Membership {
    /// JoinGroup / SyncGroup, with a member-side assignor.
    Classic(ClassicGroup),
    /// KIP-848: the coordinator assigns.
    Consumer(Arc<ConsumerGroupMember>),
}

pub(super) struct ClassicGroup {
    pub member: Arc<tokio::sync::Mutex<GroupMember>>,
    /// Set by the member's heartbeats when it must rejoin.
    pub rejoin: Rejoin,
    /// A join in progress. It runs as a task of its own, so a `recv` cancelled by its caller's
    /// timeout does not abandon the rebalance; the next `recv` waits for the same join.
    pub joining: Option<JoinHandle<Result<Rejoined, Error>>>,
    /// The group rebalances cooperatively (every assignor offered is cooperative).
    pub cooperative: bool,
}

impl Membership {
    /// True while offsets can be committed without waiting for a join.
    pub fn can_commit(&self) -> bool {
        match self {
            Membership::Classic(g) => g.joining.is_none(),
            Membership::Consumer(_) => true,
        }
    }

    /// Commits `offsets` (the next offset to read, per partition) for this member. The future
    /// owns what it needs, so it can run as a task of its own.
    pub fn commit(
        &self,
        offsets: Vec<(Arc<str>, i32, i64)>,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send + 'static {
        enum Member {
            Classic(Arc<tokio::sync::Mutex<GroupMember>>),
            Consumer(Arc<ConsumerGroupMember>),
        }
        let member = match self {
            Membership::Classic(g) => Member::Classic(g.member.clone()),
            Membership::Consumer(m) => Member::Consumer(m.clone()),
        };
        async move {
            let offsets: Vec<(&str, i32, i64)> =
                offsets.iter().map(|(t, p, o)| (&**t, *p, *o)).collect();
            match member {
                Member::Classic(m) => m.lock().await.commit(&offsets).await,
                Member::Consumer(m) => m.commit(&offsets).await,
            }
        }
    }
}

/// When the application last asked for records, against `max.poll.interval.ms`: a member
/// whose application stopped reading leaves the group, so its partitions are read elsewhere.
#[derive(Clone, Debug)]
pub(super) struct PollClock {
    start: std::time::Instant,
    /// Milliseconds from `start` to the last poll.
    last: Arc<AtomicU64>,
}

impl PollClock {
    pub fn new() -> Self {
        PollClock {
            start: std::time::Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Milliseconds since the clock started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The application asked for records now; returns [`PollClock::now_ms`], so that the caller
    /// reads the clock once per record.
    pub fn polled(&self) -> u64 {
        let now = self.now_ms();
        self.last.store(now, Ordering::Relaxed);
        now
    }

    /// True when the last poll is more than `limit` ago.
    pub fn overdue(&self, limit: std::time::Duration) -> bool {
        let now = self.start.elapsed().as_millis() as u64;
        let since = now.saturating_sub(self.last.load(Ordering::Relaxed));
        since > limit.as_millis() as u64
    }
}

pub(super) type Positions = Vec<((Arc<str>, i32), i64)>;

/// What a classic join task brings back.
pub(super) struct Rejoined {
    /// Every partition this member has in the new generation.
    assignment: TopicPartitions,
    /// The partitions the member meant to keep were lost during the join.
    lost: bool,
    /// Where each partition new to this member starts.
    positions: Positions,
}

impl Consumer {
    /// True when [`Consumer::follow_group`] may have something to do: checked on every `recv`
    /// without building its future.
    pub(super) fn group_may_change(&self) -> bool {
        match &self.group {
            Some(Membership::Classic(g)) => g.joining.is_some() || g.rejoin.needed(),
            Some(Membership::Consumer(_)) => true,
            None => false,
        }
    }

    /// Brings the membership up to date: starts or finishes a classic rebalance, or applies
    /// what a KIP-848 heartbeat brought.
    pub(super) async fn follow_group(&mut self) -> Result<(), Error> {
        match &self.group {
            Some(Membership::Classic(_)) if self.group_may_change() => self.rebalance().await,
            Some(Membership::Consumer(member)) => match member.change()? {
                Some(Change::Lost) => {
                    self.lose_all();
                    Ok(())
                }
                Some(Change::Target(target)) => {
                    let (added, commit) = self.give_up_all_but(&target, false);
                    PendingCommit::finish(commit).await;
                    let positions = match &self.group {
                        Some(Membership::Consumer(member)) => {
                            let committed = member.committed(&added).await?;
                            let reset = self.config.auto_offset_reset;
                            let isolation = self.config.isolation_level;
                            start_positions(&self.cluster, &added, &committed, reset, isolation)
                                .await?
                        }
                        _ => unreachable!("matched above"),
                    };
                    self.take_up(positions);
                    if let Some(Membership::Consumer(member)) = &self.group {
                        member.owned(&target, group_by_topic(self.assignment()));
                    }
                    Ok(())
                }
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn classic(&mut self) -> &mut ClassicGroup {
        match &mut self.group {
            Some(Membership::Classic(g)) => g,
            _ => unreachable!("called for classic group members"),
        }
    }

    /// Rejoins a classic group and applies the new assignment.
    ///
    /// Eager groups (range, roundrobin) give everything up first: commit what was consumed
    /// (with auto commit), report it revoked, then join. Cooperative groups
    /// (cooperative-sticky) keep fetching their partitions while the join runs, then give up
    /// only what the new assignment lacks, and join once more at once so those partitions can
    /// move (KIP-429). Either way, each new partition starts at its committed offset.
    async fn rebalance(&mut self) -> Result<(), Error> {
        let cooperative = self.classic().cooperative;
        if self.classic().joining.is_none() {
            if self.classic().rejoin.lost() {
                self.lose_all();
            } else if !cooperative {
                let (_, commit) = self.give_up_all_but(&Vec::new(), false);
                PendingCommit::finish(commit).await;
            }
            let owned = group_by_topic(self.assignment());
            let (cluster, reset, isolation) = (
                self.cluster.clone(),
                self.config.auto_offset_reset,
                self.config.isolation_level,
            );
            let group = self.classic();
            let (member, rejoin) = (group.member.clone(), group.rejoin.clone());
            group.joining = Some(tokio::spawn(async move {
                let joined = async {
                    let mut member = member.lock().await;
                    let joined = member.join(&owned).await?;
                    let kept = if joined.lost { Vec::new() } else { owned };
                    let added = difference(&joined.assignment, &kept);
                    let committed = member.committed(&added).await?;
                    drop(member);
                    Ok(Rejoined {
                        positions: start_positions(&cluster, &added, &committed, reset, isolation)
                            .await?,
                        assignment: joined.assignment,
                        lost: joined.lost,
                    })
                }
                .await;
                if joined.is_err() {
                    // The group may count this member in with partitions it never took up:
                    // join again on the next recv rather than sit idle.
                    rejoin.rebalance();
                }
                joined
            }));
        }
        let busy = !self.state.positions.is_empty();
        let joining = self.classic().joining.as_mut().expect("set above");
        if cooperative && busy && !joining.is_finished() {
            // Keep reading the partitions owned meanwhile.
            return Ok(());
        }
        let joined = joining.await;
        self.classic().joining = None;
        let rejoined =
            joined.map_err(|e| Error::protocol("-", format!("group join task failed: {e}")))??;
        let mut commit = None;
        if rejoined.lost {
            self.lose_all();
        } else {
            commit = self.give_up_all_but(&rejoined.assignment, true).1;
        }
        self.take_up(rejoined.positions);
        PendingCommit::finish(commit).await;
        Ok(())
    }

    /// Gives up every partition not in `keep`: reports them revoked and drops them, and with
    /// `rejoin` has a classic member join again at once so the group can hand them on. Returns
    /// what `keep` adds to the current assignment, and (with auto commit) the commit of what
    /// was consumed, snapshotted before the partitions were dropped, for the caller to await
    /// once its own bookkeeping is done: everything here happens before any await, so a `recv`
    /// cancelled by its caller's timeout cannot leave a rebalance half applied.
    fn give_up_all_but(
        &mut self,
        keep: &TopicPartitions,
        rejoin: bool,
    ) -> (TopicPartitions, Option<PendingCommit>) {
        let current = group_by_topic(self.assignment());
        let revoked = difference(&current, keep);
        let mut commit = None;
        if !revoked.is_empty() {
            if self.config.enable_auto_commit && !self.consumed.is_empty() {
                if let Some(group) = &self.group {
                    // A task of its own: it completes even if the caller is cancelled.
                    commit = Some(PendingCommit(tokio::spawn(
                        group.commit(self.consumed_offsets()),
                    )));
                }
            }
            let revoked: Vec<(String, i32)> =
                flatten(&revoked).map(|(t, p)| (t.to_owned(), p)).collect();
            self.event(RebalanceEvent::Revoked(revoked.clone()));
            for (topic, partition) in revoked {
                let tp = (Arc::from(topic.as_str()), partition);
                self.state.remove(&tp);
                self.consumed.remove(&tp);
            }
            if let (true, Some(Membership::Classic(g))) = (rejoin, &self.group) {
                g.rejoin.rebalance();
            }
        }
        (difference(keep, &current), commit)
    }

    /// Drops every partition without committing: the member was dropped from the group, so
    /// they may already be another member's.
    fn lose_all(&mut self) {
        let previous = self.assignment();
        if !previous.is_empty() {
            self.event(RebalanceEvent::Lost(previous));
        }
        self.state.clear();
        self.consumed.clear();
    }

    /// Starts fetching newly assigned partitions, and reports them.
    fn take_up(&mut self, positions: Positions) {
        let mut added: Vec<(String, i32)> = positions
            .iter()
            .map(|((t, p), _)| (t.to_string(), *p))
            .collect();
        added.sort();
        self.state.positions.extend(positions);
        tracing::debug!(assignment = ?self.assignment(), "group assignment");
        self.event(RebalanceEvent::Assigned(added));
    }
}

/// The commit made before partitions are given up, running as a task of its own.
struct PendingCommit(tokio::task::JoinHandle<Result<(), Error>>);

impl PendingCommit {
    /// Waits for the commit; a failure is logged, not returned, since the rebalance goes on
    /// regardless.
    async fn finish(commit: Option<PendingCommit>) {
        let Some(PendingCommit(task)) = commit else {
            return;
        };
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "commit before revoking failed"),
            Err(e) => tracing::debug!(error = %e, "commit before revoking did not finish"),
        }
    }
}

/// `(topic, partition)` pairs, sorted, grouped per topic.
fn group_by_topic(partitions: Vec<(String, i32)>) -> TopicPartitions {
    let mut out: TopicPartitions = Vec::new();
    for (topic, partition) in partitions {
        match out.last_mut() {
            Some((t, ps)) if *t == topic => ps.push(partition),
            _ => out.push((topic, vec![partition])),
        }
    }
    out
}

/// Every `(topic, partition)` of per-topic lists.
fn flatten(partitions: &TopicPartitions) -> impl Iterator<Item = (&str, i32)> {
    partitions
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |&p| (t.as_str(), p)))
}

/// The partitions of `a` that are not in `b`.
fn difference(a: &TopicPartitions, b: &TopicPartitions) -> TopicPartitions {
    let b: BTreeSet<(&str, i32)> = flatten(b).collect();
    a.iter()
        .map(|(t, ps)| {
            let rest = ps.iter().filter(|&&p| !b.contains(&(t.as_str(), p)));
            (t.clone(), rest.copied().collect::<Vec<i32>>())
        })
        .filter(|(_, ps)| !ps.is_empty())
        .collect()
}

/// Where each assigned partition starts: its committed offset, or per `auto.offset.reset`.
async fn start_positions(
    cluster: &Cluster,
    assignment: &TopicPartitions,
    committed: &HashMap<(String, i32), Option<i64>>,
    reset: AutoOffsetReset,
    isolation: IsolationLevel,
) -> Result<Positions, Error> {
    let mut positions = Vec::new();
    let (mut earliest, mut latest) = (Vec::new(), Vec::new());
    for (topic, partitions) in assignment {
        let topic: Arc<str> = Arc::from(topic.as_str());
        for &p in partitions {
            match committed.get(&(topic.to_string(), p)).copied().flatten() {
                Some(offset) => positions.push(((topic.clone(), p), offset)),
                None => match reset {
                    AutoOffsetReset::Earliest => earliest.push((topic.clone(), p)),
                    AutoOffsetReset::Latest => latest.push((topic.clone(), p)),
                    AutoOffsetReset::Error => {
                        return Err(Error::NoCommittedOffset(format!("{topic}[{p}]")))
                    }
                },
            }
        }
    }
    let isolation = isolation.as_i8();
    positions.extend(cluster.list_offsets(&earliest, EARLIEST, isolation).await?);
    positions.extend(cluster.list_offsets(&latest, LATEST, isolation).await?);
    Ok(positions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_between_assignments() {
        let a: TopicPartitions = vec![("t".into(), vec![0, 1, 2]), ("u".into(), vec![0])];
        let b: TopicPartitions = vec![("t".into(), vec![1]), ("v".into(), vec![3])];
        assert_eq!(
            difference(&a, &b),
            vec![("t".to_string(), vec![0, 2]), ("u".to_string(), vec![0])]
        );
        assert_eq!(difference(&b, &a), vec![("v".to_string(), vec![3])]);
        assert_eq!(
            group_by_topic(vec![("t".into(), 0), ("t".into(), 2), ("u".into(), 1)]),
            vec![("t".to_string(), vec![0, 2]), ("u".to_string(), vec![1])]
        );
    }
}
