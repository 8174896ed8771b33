//! The application's view of and say in a rebalance: [`RebalanceEvent`]s as they happen, and a
//! [`RebalanceListener`] called before partitions are revoked (the last chance to commit what
//! was processed of them) and after partitions are assigned (the chance to choose where each
//! starts), as rdkafka's `pre_rebalance` / `post_rebalance` and Java's
//! `ConsumerRebalanceListener` give.
//!
//! A change to the member's partitions is applied in two halves. The consumer's own
//! bookkeeping (which partitions it fetches and hands out) changes at once, with no await in
//! between, so a cancelled `recv` never leaves it half done. What takes time runs as one task
//! of its own, a [`Step`]: the listener's calls, the commit before revoking, the events. The
//! next `recv` waits for the same task, so a step is never cut short nor run twice.
//!
//! ```text
//!  lost ─► listener.lost ─► Lost event
//!  revoked ─► listener.revoking (may commit) ─► auto commit ─► Revoked event
//!  assigned ─► listener.assigned (may seek) ─► Assigned event ─► seeks applied by the consumer
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::membership::GroupCommitter;
use crate::error::Error;

/// A change to a group member's partitions, reported as it happens (see
/// [`Consumer::rebalance_events`](super::Consumer::rebalance_events)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RebalanceEvent {
    /// These partitions now belong to this member; each starts at its committed offset. In an
    /// eager group this is the whole assignment; in a cooperative one (cooperative-sticky),
    /// only the partitions added to what the member kept, as in the Java client.
    Assigned(Vec<(String, i32)>),
    /// These partitions are taken away in good order (the group is rebalancing); with
    /// `enable.auto.commit` their positions were committed first. An eager group revokes the
    /// whole assignment before every rebalance; a cooperative one only what moves elsewhere.
    Revoked(Vec<(String, i32)>),
    /// These partitions were lost: the group dropped this member (for example its session
    /// expired), so another member may already be reading them. Nothing was committed.
    Lost(Vec<(String, i32)>),
    /// A topic subscribed to by name does not exist, or the cluster refuses to describe it
    /// (TOPIC_AUTHORIZATION_FAILED): librdkafka's "Subscribed topic not available". Reported
    /// once, with the same error from `recv`, and again only if the topic appears and goes
    /// again. The subscription stays: its partitions are assigned once the topic appears.
    TopicNotAvailable(String),
}

/// The stream of a consumer's [`RebalanceEvent`]s.
#[derive(Debug)]
pub struct RebalanceEvents(pub(super) mpsc::UnboundedReceiver<RebalanceEvent>);

impl RebalanceEvents {
    /// The next event; `None` once the consumer is gone.
    ///
    /// Cancel-safe: an event is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<RebalanceEvent> {
        self.0.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<RebalanceEvent> {
        self.0.try_recv().ok()
    }
}

/// What a [`RebalanceListener`] method returns: a future that may borrow the listener and what
/// it was given.
pub type ListenerFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The application's hooks into a group member's rebalances, given to
/// [`ConsumerBuilder::rebalance_listener`](super::ConsumerBuilder::rebalance_listener). Every
/// method has a default that does nothing.
///
/// The consumer calls them from within [`Consumer::recv`](super::Consumer::recv) (and `poll`,
/// the stream, `unsubscribe` and `close`), one at a time, in a task of its own: a `recv`
/// dropped by its caller's timeout does not cut a call short, and the next `recv` waits for
/// it to finish.
///
/// ```no_run
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use purekafka::{ListenerFuture, RebalanceListener, Revoking};
///
/// /// Commits, before each partition goes, the offset after the last record the application
/// /// finished processing (`enable.auto.commit=false`).
/// struct CommitProcessed {
///     processed: Arc<Mutex<HashMap<(String, i32), i64>>>,
/// }
///
/// impl RebalanceListener for CommitProcessed {
///     fn revoking<'a>(&'a mut self, revoking: &'a Revoking) -> ListenerFuture<'a> {
///         Box::pin(async move {
///             let offsets: Vec<(String, i32, i64)> = {
///                 let processed = self.processed.lock().unwrap();
///                 revoking
///                     .partitions()
///                     .iter()
///                     .filter_map(|tp| processed.get(tp).map(|&o| (tp.0.clone(), tp.1, o)))
///                     .collect()
///             };
///             if let Err(e) = revoking.commit(&offsets).await {
///                 eprintln!("commit before revoking failed: {e}");
///             }
///         })
///     }
/// }
/// ```
pub trait RebalanceListener: Send + 'static {
    /// Before `revoking`'s partitions are given up in good order (the group is rebalancing, or
    /// the consumer unsubscribes or closes). Nothing more of them is handed out from now on;
    /// commit here what was processed of them ([`Revoking::commit`]). Once the future
    /// completes, and with `enable.auto.commit` the consumer has committed what it handed out,
    /// they go to other members.
    fn revoking<'a>(&'a mut self, revoking: &'a Revoking) -> ListenerFuture<'a> {
        let _ = revoking;
        Box::pin(async {})
    }

    /// After partitions were assigned, before any of their records is handed out. Each starts
    /// at the group's committed offset (or per `auto.offset.reset`); [`Assigned::seek`] moves
    /// that. In a cooperative group, only the partitions added.
    fn assigned<'a>(&'a mut self, assigned: &'a Assigned) -> ListenerFuture<'a> {
        let _ = assigned;
        Box::pin(async {})
    }

    /// After partitions were lost: the group dropped this member (its session expired, say),
    /// so another member may already read them, and nothing can be committed for them.
    fn lost<'a>(&'a mut self, lost: &'a [(String, i32)]) -> ListenerFuture<'a> {
        let _ = lost;
        Box::pin(async {})
    }
}

/// Partitions about to be revoked, given to [`RebalanceListener::revoking`].
pub struct Revoking {
    partitions: Vec<(String, i32)>,
    consumed: Vec<(String, i32, i64)>,
    committer: GroupCommitter,
}

impl Revoking {
    /// The partitions, sorted.
    pub fn partitions(&self) -> &[(String, i32)] {
        &self.partitions
    }

    /// For each partition something was handed out of, the offset after the last record
    /// handed out: what `enable.auto.commit` commits, and [`Revoking::commit_consumed`].
    pub fn consumed(&self) -> &[(String, i32, i64)] {
        &self.consumed
    }

    /// Commits `(topic, partition, offset)` for the group, each offset being that of the next
    /// record to read, while the member still owns the partitions: the commit goes out in the
    /// generation (or epoch) they were owned in, and the group refuses it once it has moved on.
    ///
    /// Dropped before it returns, the commit may or may not have been made.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the commit may or may
    /// not have been made.
    pub async fn commit<T: AsRef<str>>(&self, offsets: &[(T, i32, i64)]) -> Result<(), Error> {
        let offsets = offsets
            .iter()
            .map(|(t, p, o)| (Arc::from(t.as_ref()), *p, *o))
            .collect();
        self.committer.commit(offsets).await
    }

    /// Commits [`Revoking::consumed`].
    ///
    /// Cancel-safe as [`Revoking::commit`] is.
    pub async fn commit_consumed(&self) -> Result<(), Error> {
        self.commit(&self.consumed).await
    }
}

/// Partitions just assigned, given to [`RebalanceListener::assigned`].
pub struct Assigned {
    positions: Vec<(String, i32, i64)>,
    seeks: Mutex<Vec<(String, i32, i64)>>,
}

impl Assigned {
    /// Each partition and the offset it starts at, sorted.
    pub fn positions(&self) -> &[(String, i32, i64)] {
        &self.positions
    }

    /// Starts `topic[partition]`, one of those assigned, at `offset` instead.
    pub fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<(), Error> {
        if !self
            .positions
            .iter()
            .any(|(t, p, _)| t == topic && *p == partition)
        {
            return Err(Error::NotAssigned {
                topic: topic.to_owned(),
                partition,
            });
        }
        let mut seeks = self.seeks.lock().unwrap_or_else(|p| p.into_inner());
        seeks.push((topic.to_owned(), partition, offset));
        Ok(())
    }
}

/// The application's listener, shared with the step tasks that call it.
pub(super) type SharedListener = Arc<tokio::sync::Mutex<Box<dyn RebalanceListener>>>;

/// What one change to the member's partitions asks of the listener and the group, in order.
#[derive(Default)]
pub(super) struct Step {
    pub lost: Vec<(String, i32)>,
    /// Revoked partitions, what was handed out of them, and the commit to make before they go
    /// (`None` without a group to commit to).
    pub revoked: Vec<(String, i32)>,
    pub consumed: Vec<(String, i32, i64)>,
    pub committer: Option<GroupCommitter>,
    /// Commit `consumed` once the listener is done (`enable.auto.commit`).
    pub auto_commit: bool,
    /// How long that commit is tried again while the coordinator cannot be reached (the
    /// session timeout: a member away longer is dropped from the group anyway).
    pub commit_patience: std::time::Duration,
    /// Newly assigned partitions and where they start.
    pub assigned: Vec<(String, i32, i64)>,
}

impl Step {
    /// Why the partitions change, as the statistics' `rebalance_reason` says it.
    pub fn reason(&self) -> &'static str {
        match (self.lost.is_empty(), self.revoked.is_empty()) {
            (false, _) => "partitions lost",
            (true, false) => "partitions revoked",
            (true, true) => "partitions assigned",
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lost.is_empty() && self.revoked.is_empty() && self.assigned.is_empty()
    }

    /// Does the step at once when nothing in it waits: no listener to call and nothing to
    /// commit first, only events to send (a task would cost the rebalance a hop between
    /// threads). Gives the step back, to run as a task, otherwise.
    pub fn run_at_once(
        self,
        listener: Option<&SharedListener>,
        events: Option<&mpsc::UnboundedSender<RebalanceEvent>>,
    ) -> Option<Step> {
        let commits = self.auto_commit && !self.revoked.is_empty() && !self.consumed.is_empty();
        if listener.is_some() || commits {
            return Some(self);
        }
        let event = |event: RebalanceEvent| {
            if let Some(events) = events {
                let _ = events.send(event);
            }
        };
        if !self.lost.is_empty() {
            event(RebalanceEvent::Lost(self.lost));
        }
        if !self.revoked.is_empty() {
            event(RebalanceEvent::Revoked(self.revoked));
        }
        if !self.assigned.is_empty() {
            let partitions = self.assigned.into_iter().map(|(t, p, _)| (t, p)).collect();
            event(RebalanceEvent::Assigned(partitions));
        }
        None
    }

    /// Runs the step as a task of its own. It ends with the seeks the listener asked for, and
    /// the outcome of the auto commit.
    pub fn spawn(
        self,
        listener: Option<SharedListener>,
        events: Option<mpsc::UnboundedSender<RebalanceEvent>>,
    ) -> JoinHandle<Finished> {
        tokio::spawn(self.run(listener, events))
    }

    async fn run(
        self,
        listener: Option<SharedListener>,
        events: Option<mpsc::UnboundedSender<RebalanceEvent>>,
    ) -> Finished {
        let mut listener = match &listener {
            Some(listener) => Some(listener.lock().await),
            None => None,
        };
        let event = |event: RebalanceEvent| {
            if let Some(events) = &events {
                let _ = events.send(event);
            }
        };
        let mut finished = Finished::default();
        if !self.lost.is_empty() {
            if let Some(listener) = listener.as_mut() {
                listener.lost(&self.lost).await;
            }
            event(RebalanceEvent::Lost(self.lost));
        }
        if !self.revoked.is_empty() {
            if let Some(committer) = self.committer {
                let revoking = Revoking {
                    partitions: self.revoked,
                    consumed: self.consumed,
                    committer,
                };
                if let Some(listener) = listener.as_mut() {
                    listener.revoking(&revoking).await;
                }
                if self.auto_commit && !revoking.consumed.is_empty() {
                    finished.commit = Some(commit_patiently(&revoking, self.commit_patience).await);
                }
                event(RebalanceEvent::Revoked(revoking.partitions));
            } else {
                event(RebalanceEvent::Revoked(self.revoked));
            }
        }
        if !self.assigned.is_empty() {
            let assigned = Assigned {
                positions: self.assigned,
                seeks: Mutex::new(Vec::new()),
            };
            if let Some(listener) = listener.as_mut() {
                listener.assigned(&assigned).await;
            }
            let partitions = assigned
                .positions
                .iter()
                .map(|(t, p, _)| (t.clone(), *p))
                .collect();
            event(RebalanceEvent::Assigned(partitions));
            finished.seeks = assigned
                .seeks
                .into_inner()
                .unwrap_or_else(|p| p.into_inner());
        }
        finished
    }
}

/// Commits what was consumed of partitions being revoked, trying again (100 ms, doubling to
/// 1 s) while the coordinator cannot be reached or moves, for up to `patience`: what is not
/// committed is read again by the next owner.
async fn commit_patiently(revoking: &Revoking, patience: std::time::Duration) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut pause = std::time::Duration::from_millis(100);
    loop {
        match revoking.commit_consumed().await {
            Err(e) if e.is_retriable() && tokio::time::Instant::now() + pause < deadline => {
                tracing::debug!(error = %e, "commit before revoking; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            }
            outcome => return outcome,
        }
    }
}

/// What a finished [`Step`] leaves for the consumer.
#[derive(Default)]
pub(super) struct Finished {
    /// Where the listener moved newly assigned partitions.
    pub seeks: Vec<(String, i32, i64)>,
    /// The auto commit before revoking, if one was made.
    pub commit: Option<Result<(), Error>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> (String, i32) {
        ("t".to_owned(), p)
    }

    #[test]
    fn a_step_with_nothing_to_wait_for_is_done_at_once_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let step = Step {
            lost: vec![tp(0)],
            revoked: vec![tp(1)],
            auto_commit: true,
            assigned: vec![("t".to_owned(), 2, 40)],
            ..Step::default()
        };
        assert!(step.run_at_once(None, Some(&tx)).is_none());
        assert_eq!(rx.try_recv().ok(), Some(RebalanceEvent::Lost(vec![tp(0)])));
        assert_eq!(
            rx.try_recv().ok(),
            Some(RebalanceEvent::Revoked(vec![tp(1)]))
        );
        assert_eq!(
            rx.try_recv().ok(),
            Some(RebalanceEvent::Assigned(vec![tp(2)]))
        );
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_commit_before_revoking_or_a_listener_makes_it_a_task() {
        let commits = Step {
            revoked: vec![tp(1)],
            consumed: vec![("t".to_owned(), 1, 7)],
            auto_commit: true,
            ..Step::default()
        };
        assert!(commits.run_at_once(None, None).is_some());
        struct Nothing;
        impl RebalanceListener for Nothing {}
        let listener: SharedListener = Arc::new(tokio::sync::Mutex::new(Box::new(Nothing)));
        let assigned = Step {
            assigned: vec![("t".to_owned(), 2, 0)],
            ..Step::default()
        };
        assert!(assigned.run_at_once(Some(&listener), None).is_some());
        // Without auto commit, nothing to wait for.
        let manual = Step {
            revoked: vec![tp(1)],
            consumed: vec![("t".to_owned(), 1, 7)],
            ..Step::default()
        };
        assert!(manual.run_at_once(None, None).is_none());
    }
}
