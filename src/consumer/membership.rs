//! The consumer's side of group membership: taking up assignments, giving partitions up,
//! following the cluster's shape, and committing, for both protocols.
//!
//! ```text
//!  classic (group.rs)                          KIP-848 (consumer_group.rs)
//!  rejoin flag ─► join task: JoinGroup, SyncGroup   heartbeat task ─► target assignment
//!       eager: revoke all first                              │
//!       cooperative: keep fetching, revoke the difference    │
//!                 └──────────────► apply: bookkeeping now, then a Step task (listener.rs):
//!                                  revoked ─► listener, commit, Revoked event
//!                                  added   ─► OffsetFetch, listener, Assigned event, fetch
//!  topology changes (cluster) ─► follow_topology: subscription resolved again, missing topics
//!                                reported, a leader whose assignment is out of date rejoins
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::listener::Step;
use super::Consumer;
use crate::cluster::{Cluster, EARLIEST, LATEST};
use crate::config::{AutoOffsetReset, IsolationLevel};
use crate::error::Error;
use crate::group::classic::{ClassicCommitter, GroupMember, Rejoin};
use crate::group::consumer_group::{Change, ConsumerGroupMember};
use crate::group::coordinator::Identity;
use crate::group::{AssignedFrom, SharedTopics};
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
    pub topics: SharedTopics,
    pub assigned_from: AssignedFrom,
    /// Commits without waiting for the member (see [`GroupMember::committer`]).
    pub committer: ClassicCommitter,
    /// Joins that failed in a row: the next waits [`rejoin_backoff`] first.
    pub failures: u32,
}

impl Drop for ClassicGroup {
    fn drop(&mut self) {
        // A consumer dropped mid-join: the join must not go on and leave a member in the group
        // that nobody reads for.
        if let Some(joining) = &self.joining {
            joining.abort();
        }
    }
}

/// The pause before a join after `failures` joins failed in a row: none after a success, then
/// 100 ms doubling up to 1 s (the Java client's `retry.backoff.ms` and `retry.backoff.max.ms`),
/// so a coordinator that cannot be reached is not hammered by a consumer polling in a loop.
fn rejoin_backoff(failures: u32) -> std::time::Duration {
    match failures {
        0 => std::time::Duration::ZERO,
        n => std::time::Duration::from_millis(100 << (n - 1).min(4)).min(MAX_REJOIN_BACKOFF),
    }
}

const MAX_REJOIN_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

/// Commits for a member: a handle the [`Step`] tasks and the listener keep.
#[derive(Clone)]
pub(crate) struct GroupCommitter {
    member: Member,
    /// Commit as the member was then, not as it is when the commit goes out (see
    /// [`GroupCommitter::pinned`]).
    as_of: Option<Identity>,
}

#[derive(Clone)]
enum Member {
    Classic(ClassicCommitter),
    Consumer(Arc<ConsumerGroupMember>),
}

impl GroupCommitter {
    /// The member's id and generation (or epoch) now.
    pub fn identity(&self) -> Identity {
        match &self.member {
            Member::Classic(c) => c.identity(),
            Member::Consumer(m) => m.identity(),
        }
    }

    /// This committer, bound to the member's generation (or epoch) now: what it commits later
    /// is refused if the group has moved on meanwhile, instead of landing for partitions that
    /// another member may own by then. For what is revoked: its commit may be tried again
    /// while the coordinator moves, and the member may join again meanwhile.
    pub fn pinned(mut self) -> GroupCommitter {
        self.as_of = Some(self.identity());
        self
    }

    /// Commits `offsets` (the next offset to read, per partition). The future owns what it
    /// needs, so it can run as a task of its own.
    pub fn commit(
        &self,
        offsets: Vec<(Arc<str>, i32, i64)>,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send + 'static {
        let this = self.clone();
        async move {
            let offsets: Vec<(&str, i32, i64)> =
                offsets.iter().map(|(t, p, o)| (&**t, *p, *o)).collect();
            let as_of = this.as_of.as_ref();
            match &this.member {
                Member::Classic(c) => c.commit(&offsets, as_of).await,
                Member::Consumer(m) => m.commit(&offsets, as_of).await,
            }
        }
    }
}

impl Membership {
    /// True while offsets can be committed without waiting for a join.
    pub fn can_commit(&self) -> bool {
        match self {
            Membership::Classic(g) => g.joining.is_none(),
            Membership::Consumer(_) => true,
        }
    }

    pub fn committer(&self) -> GroupCommitter {
        let member = match self {
            Membership::Classic(g) => Member::Classic(g.committer.clone()),
            Membership::Consumer(m) => Member::Consumer(m.clone()),
        };
        GroupCommitter {
            member,
            as_of: None,
        }
    }

    /// Commits `offsets` (the next offset to read, per partition) for this member.
    pub fn commit(
        &self,
        offsets: Vec<(Arc<str>, i32, i64)>,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send + 'static {
        self.committer().commit(offsets)
    }

    /// The topics the member subscribes to are now `topics`: a classic member rejoins with
    /// them, a KIP-848 member heartbeats them at once.
    pub(super) fn resubscribe(&self, topics: Vec<String>) {
        match self {
            Membership::Classic(g) => {
                *g.topics.lock().unwrap_or_else(|p| p.into_inner()) = topics;
                g.rejoin.rebalance();
            }
            Membership::Consumer(m) => m.subscribe(topics),
        }
    }

    pub(super) fn topics(&self) -> Vec<String> {
        match self {
            Membership::Classic(g) => g.topics.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            Membership::Consumer(m) => m.topics(),
        }
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
    /// What the group had committed for those partitions, for the statistics.
    committed: HashMap<(String, i32), Option<i64>>,
}

impl Consumer {
    /// True when [`Consumer::follow_group`] may have something to do: checked on every `recv`
    /// without building its future.
    pub(super) fn group_may_change(&self) -> bool {
        self.step.is_some()
            || match &self.group {
                Some(Membership::Classic(g)) => g.joining.is_some() || g.rejoin.needed(),
                Some(Membership::Consumer(_)) => true,
                None => false,
            }
    }

    /// Brings the membership up to date: finishes a step in progress, starts or finishes a
    /// classic rebalance, or applies what a KIP-848 heartbeat brought.
    pub(super) async fn follow_group(&mut self) -> Result<(), Error> {
        self.finish_step().await;
        match &self.group {
            Some(Membership::Classic(g)) if g.joining.is_some() || g.rejoin.needed() => {
                self.rebalance().await
            }
            Some(Membership::Consumer(member)) => match member.change()? {
                Some(Change::Lost) => {
                    let mut step = Step::default();
                    self.lose_all(&mut step);
                    self.start(step);
                    self.finish_step().await;
                    Ok(())
                }
                Some(Change::Target(target)) => {
                    let mut step = Step::default();
                    let added = self.give_up_all_but(&target, &mut step);
                    self.start(step);
                    self.finish_step().await;
                    let positions = match &self.group {
                        Some(Membership::Consumer(member)) => {
                            let committed = member.committed(&added).await?;
                            self.note_committed(&committed);
                            let reset = self.config.auto_offset_reset;
                            let isolation = self.config.isolation_level;
                            start_positions(&self.cluster, &added, &committed, reset, isolation)
                                .await?
                        }
                        _ => unreachable!("matched above"),
                    };
                    let mut step = Step::default();
                    self.take_up(positions, &mut step);
                    self.start(step);
                    self.finish_step().await;
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
    /// Eager groups (range, roundrobin) give everything up first: the listener and (with auto
    /// commit) the commit of what was consumed, then the join. Cooperative groups
    /// (cooperative-sticky) keep fetching their partitions while the join runs, then give up
    /// only what the new assignment lacks, and join once more as soon as that is done, so
    /// those partitions can move (KIP-429). Either way, each new partition starts at its
    /// committed offset.
    async fn rebalance(&mut self) -> Result<(), Error> {
        let cooperative = self.classic().cooperative;
        if self.classic().joining.is_none() {
            let mut step = Step::default();
            if self.classic().rejoin.lost() {
                self.lose_all(&mut step);
            } else if !cooperative {
                self.give_up_all_but(&Vec::new(), &mut step);
            }
            self.start(step);
            // What is given up is committed before the group hands it on.
            self.finish_step().await;
            let owned = group_by_topic(self.assignment());
            let (cluster, reset, isolation) = (
                self.cluster.clone(),
                self.config.auto_offset_reset,
                self.config.isolation_level,
            );
            let group = self.classic();
            let (member, rejoin) = (group.member.clone(), group.rejoin.clone());
            let pause = rejoin_backoff(group.failures);
            group.joining = Some(tokio::spawn(async move {
                if !pause.is_zero() {
                    // Even a zero sleep waits for the timer's next millisecond.
                    tokio::time::sleep(pause).await;
                }
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
                        committed,
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
                rejoin.poke();
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
        let group = self.classic();
        group.joining = None;
        let joined = joined
            .map_err(|e| Error::protocol("-", format!("group join task failed: {e}")))
            .and_then(|joined| joined);
        group.failures = match &joined {
            Ok(_) => 0,
            Err(_) => group.failures.saturating_add(1),
        };
        let rejoined = joined?;
        let mut step = Step::default();
        if rejoined.lost {
            self.lose_all(&mut step);
        } else {
            // What the assignment adds comes with the join, positions and all.
            self.give_up_all_but(&rejoined.assignment, &mut step);
        }
        if !step.revoked.is_empty() {
            // Cooperative: join again at once, once the step is done, so that what was given
            // up can go to the members it was taken from for.
            self.classic().rejoin.rebalance();
        }
        self.note_committed(&rejoined.committed);
        self.take_up(rejoined.positions, &mut step);
        self.start(step);
        self.finish_step().await;
        Ok(())
    }

    /// Gives up every partition not in `keep`: drops them from what is fetched and handed
    /// out, and adds them to `step` (the listener's `revoking`, the commit of what was
    /// consumed of them, the Revoked event). Returns what `keep` adds to the current
    /// assignment. No await: see [`Step`].
    pub(super) fn give_up_all_but(
        &mut self,
        keep: &TopicPartitions,
        step: &mut Step,
    ) -> TopicPartitions {
        let current = group_by_topic(self.assignment());
        let revoked = difference(&current, keep);
        if !revoked.is_empty() {
            let revoked: Vec<(String, i32)> =
                flatten(&revoked).map(|(t, p)| (t.to_owned(), p)).collect();
            let consumed = self.consumed_offsets();
            for (topic, partition) in &revoked {
                let tp = (Arc::from(topic.as_str()), *partition);
                self.state.remove(&tp);
                self.consumed.remove(&tp);
            }
            step.consumed = consumed
                .into_iter()
                .filter(|(t, p, _)| revoked.iter().any(|(rt, rp)| **rt == **t && rp == p))
                .map(|(t, p, o)| (t.to_string(), p, o))
                .collect();
            step.revoked = revoked;
            step.committer = self.group.as_ref().map(|group| group.committer().pinned());
            step.auto_commit = self.config.enable_auto_commit;
            step.commit_patience = self.config.session_timeout;
        }
        difference(keep, &current)
    }

    /// Drops every partition without committing: the member was dropped from the group, so
    /// they may already be another member's.
    fn lose_all(&mut self, step: &mut Step) {
        step.lost = self.assignment();
        self.state.clear();
        self.consumed.clear();
    }

    /// Starts fetching newly assigned partitions; `step` reports them.
    fn take_up(&mut self, positions: Positions, step: &mut Step) {
        let mut added: Vec<(String, i32, i64)> = positions
            .iter()
            .map(|((t, p), o)| (t.to_string(), *p, *o))
            .collect();
        added.sort();
        self.state.positions.extend(positions);
        tracing::debug!(assignment = ?self.assignment(), "group assignment");
        step.assigned = added;
    }

    /// Runs `step`, when it has anything to do: at once when nothing in it waits, else as the
    /// task the next `recv` waits for.
    pub(super) fn start(&mut self, step: Step) {
        if step.is_empty() {
            return;
        }
        if let Some(counting) = &mut self.counting {
            counting.rebalanced(step.reason());
        }
        let Some(step) = step.run_at_once(self.listener.as_ref(), self.events.as_ref()) else {
            return;
        };
        debug_assert!(self.step.is_none(), "one step at a time");
        self.step = Some(step.spawn(self.listener.clone(), self.events.clone()));
    }

    /// Waits for the step in progress, if any, and applies the seeks its listener asked for.
    /// Cancel-safe: the step is a task; a later call waits for the same one.
    pub(super) async fn finish_step(&mut self) {
        let Some(step) = self.step.as_mut() else {
            return;
        };
        let finished = step.await;
        self.step = None;
        let finished = match finished {
            Ok(finished) => finished,
            Err(e) => {
                tracing::warn!(error = %e, "a rebalance listener call did not finish");
                return;
            }
        };
        if let Some(Err(e)) = &finished.commit {
            // The rebalance goes on regardless, as in the Java client.
            tracing::debug!(error = %e, "commit before revoking failed");
        }
        for (topic, partition, offset) in finished.seeks {
            // Still assigned unless the group moved on meanwhile.
            let _ = self.seek(&topic, partition, offset);
        }
    }
}

/// `(topic, partition)` pairs, sorted, grouped per topic.
pub(super) fn group_by_topic(partitions: Vec<(String, i32)>) -> TopicPartitions {
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
pub(super) async fn start_positions(
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
    fn failed_joins_back_off_up_to_a_second() {
        let pauses: Vec<u128> = (0..7).map(|n| rejoin_backoff(n).as_millis()).collect();
        assert_eq!(pauses, [0, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(rejoin_backoff(u32::MAX), MAX_REJOIN_BACKOFF);
    }

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
