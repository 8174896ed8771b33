//! The consumer: a member of a consumer group, or a reader of explicitly assigned partitions.
//! Records are handed out with key, value and headers as slices of the fetch response, without
//! a copy.
//!
//! ```text
//!  subscribe ─► subscription.rs (names, ^regexes; follows the cluster's shape)
//!                     │
//!                     ▼
//!               membership.rs ─► group.rs (classic: JoinGroup/SyncGroup, assignor.rs)
//!                     │          consumer_group.rs (KIP-848: ConsumerGroupHeartbeat)
//!                     │          coordinator.rs (FindCoordinator, OffsetFetch, OffsetCommit)
//!                     │          listener.rs (events; RebalanceListener calls, as Steps)
//!                     ▼
//!  assign / assignment ─► positions ─► fetch.rs: pipelined rounds, one Fetch per leader,
//!                                      fetch_session.rs (KIP-227), validation.rs (KIP-320)
//!                                      ─► absorb.rs: BatchDecoder ─► recv()
//! ```

mod absorb;
mod consumed;
mod fetch;
mod fetch_session;
mod listener;
mod membership;
mod message;
mod offsets;
mod statistics;
mod stream;
mod subscription;
mod validation;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::cluster::{ClientEvents, ClientKind, Cluster, TopicPartition};
use crate::config::{ClientConfig, ConsumerConfig};
use crate::error::Error;
use crate::group::coordinator::stale_commit;
use crate::group::poll_clock::PollClock;
use crate::group::Attention;
use crate::group::ConsumerGroupMetadata;
use crate::stats::{Emitter, StatisticsStream};
use consumed::Consumed;
use fetch::{FetchState, Fetcher};
pub use listener::{
    Assigned, ListenerFuture, RebalanceEvent, RebalanceEvents, RebalanceListener, Revoking,
};
use listener::{Finished, SharedListener};
use membership::Membership;
pub use message::{Message, TimestampType};
pub(crate) use stream::Recv;
pub use stream::{CommitHandle, MessageStream, RecordStream};
use subscription::Subscription;

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Offset {
    /// The oldest record still in the log.
    Earliest,
    /// The next record written after the assignment.
    Latest,
    /// This offset.
    At(i64),
    /// The offset the group (`group.id`) committed for the partition, or, where it has
    /// none, where `auto.offset.reset` says (librdkafka's `RD_KAFKA_OFFSET_STORED`,
    /// confluent-kafka-go's `OffsetStored`).
    Stored,
}

/// Builds a [`Consumer`].
pub struct ConsumerBuilder {
    config: ClientConfig,
    listener: Option<Box<dyn RebalanceListener>>,
}

impl fmt::Debug for ConsumerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("config", &self.config)
            .field("listener", &self.listener.is_some())
            .finish()
    }
}

impl ConsumerBuilder {
    /// Calls `listener` before partitions are revoked and after they are assigned (see
    /// [`RebalanceListener`]): where a member that commits by hand commits what it processed
    /// before its partitions go.
    pub fn rebalance_listener(mut self, listener: impl RebalanceListener) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// Checks the configuration and connects to the cluster.
    ///
    /// Cancel-safe: dropped, nothing is kept (no group is joined before the first `recv`).
    pub async fn build(self) -> Result<Consumer, Error> {
        let cluster = Cluster::connect(&self.config, ClientKind::Consumer).await?;
        Ok(Consumer {
            topology: cluster.topology_changes(),
            look_again: false,
            attention: Attention::default(),
            cluster,
            config: self.config.consumer.clone(),
            decompression_limit: self.config.common.receive_message_max_bytes,
            state: FetchState::default(),
            fetcher: Fetcher::default(),
            consumed: Consumed::new(self.config.consumer.enable_auto_offset_store),
            eof_at: BTreeMap::new(),
            group: None,
            subscription: None,
            errors: VecDeque::new(),
            step: None,
            listener: self
                .listener
                .map(|l| Arc::new(tokio::sync::Mutex::new(l)) as SharedListener),
            last_commit: 0,
            polls: PollClock::new(),
            events: None,
            counting: (!self.config.common.statistics_interval.is_zero()).then(|| {
                statistics::Counting::new(Emitter::new(
                    self.config.common.statistics_interval,
                    &self.config.common.client_id,
                    "consumer",
                ))
            }),
        })
    }
}

/// A Kafka consumer: a member of a consumer group with [`Consumer::subscribe`], or a reader of
/// explicitly assigned partitions with [`Consumer::assign`].
///
/// ```no_run
/// # async fn group() -> Result<(), purekafka::Error> {
/// use purekafka::{ClientConfig, Consumer};
/// let config = ClientConfig::new().bootstrap_servers(["127.0.0.1:9092"]).group_id("readers");
/// let mut consumer = Consumer::builder(config).build().await?;
/// consumer.subscribe(&["test", "test-topic"])?;
/// let msg = consumer.recv().await?;
/// println!("Message on {msg}: {:?}", msg.value);
/// consumer.close().await?; // commits what was read (enable.auto.commit) and leaves the group
/// # Ok(()) }
/// ```
///
/// ```no_run
/// # async fn demo() -> Result<(), purekafka::Error> {
/// use purekafka::{ClientConfig, Consumer, Offset};
/// let config = ClientConfig::new().bootstrap_servers(["127.0.0.1:9092"]);
/// let mut consumer = Consumer::builder(config).build().await?;
/// let partitions = consumer.partitions("test").await?;
/// consumer.assign(partitions.iter().map(|&p| ("test", p)), Offset::Earliest).await?;
/// let msg = consumer.recv().await?;
/// println!("Message on {msg}: {:?}", msg.value);
/// # Ok(()) }
/// ```
pub struct Consumer {
    cluster: Cluster,
    config: ConsumerConfig,
    /// The most bytes one compressed batch may inflate to (`receive.message.max.bytes`).
    decompression_limit: usize,
    /// Positions, watermarks, paused partitions and fetched messages.
    state: FetchState,
    /// Fetch rounds and sessions.
    fetcher: Fetcher,
    /// Next offset after what was handed to the application: what commits store.
    consumed: Consumed,
    /// Group membership, after `subscribe`.
    group: Option<Membership>,
    /// What `subscribe` was given, resolved again as the cluster changes.
    subscription: Option<Subscription>,
    /// The cache's count of changes of shape, as a channel: seen when followed (see
    /// [`Consumer::follow_topology`]), and waking a `recv` that waits for records.
    topology: tokio::sync::watch::Receiver<u64>,
    /// Follow the cluster's shape at the next `recv`: the subscription changed, or a wait for
    /// records saw the shape change (and marked it seen).
    look_again: bool,
    /// Wakes a `recv` waiting for records when the membership needs it.
    attention: Attention,
    /// Errors to report from the next `recv`, before anything else (a subscribed topic that
    /// is not available).
    errors: VecDeque<Error>,
    /// The listener calls and commits of the last change to the partitions, in progress.
    step: Option<tokio::task::JoinHandle<Finished>>,
    /// The application's rebalance listener.
    listener: Option<SharedListener>,
    /// When the last commit began, on the poll clock.
    last_commit: u64,
    /// When the application last asked for records (`max.poll.interval.ms`).
    polls: PollClock,
    /// Where rebalance events go, once asked for.
    events: Option<mpsc::UnboundedSender<RebalanceEvent>>,
    /// With `enable.partition.eof`, the offset at which each partition's end was last
    /// reported, so that it is reported once per offset reached.
    eof_at: BTreeMap<TopicPartition, i64>,
    /// What the statistics count, when `statistics.interval.ms` is set.
    counting: Option<statistics::Counting>,
}

impl Consumer {
    /// A builder for a consumer with this configuration.
    pub fn builder(config: ClientConfig) -> ConsumerBuilder {
        ConsumerBuilder {
            config,
            listener: None,
        }
    }

    /// The partition ids of `topic`.
    ///
    /// Cancel-safe: it only reads (the metadata cache, asking the cluster when it must).
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>, Error> {
        self.cluster.partition_ids(topic).await
    }

    /// Assigns `partitions`, all starting at `start`, in place of what was assigned
    /// (librdkafka's and the Java client's `assign`): the partitions not listed are dropped,
    /// with what was fetched of them. Their topics are kept current from then on (see
    /// `topic.metadata.refresh.interval.ms`). For a consumer that has not subscribed;
    /// [`Consumer::incremental_assign`] adds partitions, each at its own offset.
    ///
    /// Cancel-safe: nothing is assigned unless this returns `Ok`.
    pub async fn assign<T: AsRef<str>>(
        &mut self,
        partitions: impl IntoIterator<Item = (T, i32)>,
        start: Offset,
    ) -> Result<(), Error> {
        let partitions: Vec<(T, i32, Offset)> =
            partitions.into_iter().map(|(t, p)| (t, p, start)).collect();
        self.replace_assignment(&partitions).await
    }

    /// The next offset each assigned partition is fetched from: ahead of
    /// [`Consumer::position`] by what was fetched and not handed out yet.
    pub fn positions(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.state
            .positions
            .iter()
            .map(|((t, p), o)| (&**t, *p, *o))
    }

    /// Reports every change to this member's partitions from now on: assigned, revoked, lost.
    /// Events are sent from within [`Consumer::recv`], where rebalances happen.
    pub fn rebalance_events(&mut self) -> RebalanceEvents {
        let (tx, rx) = mpsc::unbounded_channel();
        self.events = Some(tx);
        RebalanceEvents(rx)
    }

    fn event(&self, event: RebalanceEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    /// The client's events from now on: when every broker is down, and when one answers again
    /// (librdkafka's `ERR__ALL_BROKERS_DOWN`). The first event is the current state when all
    /// brokers are down already, as when the client was built before them.
    pub fn events(&self) -> ClientEvents {
        self.cluster.events()
    }

    /// The consumer's statistics, every `statistics.interval.ms`, from now on: librdkafka's
    /// statistics JSON (STATISTICS.md) as a [`Statistics`](crate::Statistics), for its
    /// `stats_cb`. As librdkafka serves `stats_cb` from the application's poll, they are made
    /// within [`Consumer::recv`] (and `poll`, and the stream): a consumer nobody reads from
    /// emits none. Ends at once when the interval is 0, the default.
    pub fn statistics(&self) -> StatisticsStream {
        match &self.counting {
            Some(counting) => counting.emitter.subscribe(),
            None => StatisticsStream::ended(),
        }
    }

    /// Where the commits that land are recorded for the statistics, when they are kept.
    fn commit_record(&self) -> Option<Arc<std::sync::Mutex<BTreeMap<TopicPartition, i64>>>> {
        self.counting.as_ref().map(statistics::Counting::committed)
    }

    /// The partitions currently assigned, sorted.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.state
            .positions
            .keys()
            .map(|(t, p)| (t.to_string(), *p))
            .collect()
    }

    /// The next message, fetching when none is buffered. Waits until one arrives. A group
    /// member rejoins here when the group rebalances, and commits on `auto.commit.interval.ms`.
    ///
    /// An `Err` that [`Error::is_retriable`] says passes (a broker down, a leader moving, a
    /// subscribed topic not there yet) leaves the consumer as it was: call `recv` again.
    ///
    /// Cancel-safe: a message is handed out only when this returns it; a fetch round, a join and
    /// a rebalance listener's call run as tasks of their own, and the next `recv` takes up the
    /// same ones.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        loop {
            let now = self.polls.polled();
            self.statistics_due();
            self.follow_topology();
            if let Some(error) = self.errors.pop_front() {
                return Err(error);
            }
            if self.group_may_change() {
                self.follow_group().await?;
            }
            let can_commit = match &self.group {
                // Not while a join holds the member; the next interval catches up.
                Some(group) => group.can_commit(),
                None => self.config.group_id.is_some(),
            };
            if self.config.enable_auto_commit
                && can_commit
                && now.saturating_sub(self.last_commit)
                    >= self.config.auto_commit_interval.as_millis() as u64
            {
                self.auto_commit().await?;
            }
            if let Some(msg) = self.state.buffered.pop_front() {
                self.consumed.note(&msg);
                if let Some(counting) = &mut self.counting {
                    counting.handed(&msg);
                }
                return Ok(msg);
            }
            if self.state.positions.is_empty() && self.group.is_none() {
                return Err(Error::NoAssignment);
            }
            // Wait for records, or for news the membership or the subscription must act on.
            let woken = wake(&self.attention, &mut self.topology);
            if self.state.positions.len() == self.state.paused.len() {
                // No partitions, or all paused: wait for a rebalance or a resume.
                tokio::select! {
                    () = tokio::time::sleep(self.config.fetch_wait_max) => {}
                    shape = woken => self.look_again |= shape,
                }
                continue;
            }
            let fetch = self.fetcher.fetch(
                &self.cluster,
                &self.config,
                self.decompression_limit,
                &mut self.state,
            );
            // Cancel-safe (see Fetcher::fetch): a round cut short goes on, and is taken up by
            // the next fetch.
            let fetched = tokio::select! {
                fetched = fetch => fetched,
                shape = woken => {
                    self.look_again |= shape;
                    Ok(())
                }
            };
            for (tp, diverging) in self.state.truncated.drain(..) {
                self.consumed.set(&tp, diverging);
            }
            fetched?;
            if self.config.enable_partition_eof {
                self.note_ends();
            }
        }
    }

    /// Queues [`Error::PartitionEof`] for each partition whose end the consumer has reached
    /// since it was last reported: everything fetched of it was handed out (a fetch round
    /// starts only then), and its position is the end its last fetch reported.
    fn note_ends(&mut self) {
        for (tp, &end) in &self.state.ends {
            let at_end = self.state.positions.get(tp) == Some(&end)
                && !self
                    .state
                    .buffered
                    .iter()
                    .any(|m| m.partition == tp.1 && m.topic == tp.0);
            if at_end && self.eof_at.get(tp) != Some(&end) {
                self.eof_at.insert(tp.clone(), end);
                self.errors.push_back(Error::PartitionEof {
                    topic: tp.0.to_string(),
                    partition: tp.1,
                    offset: end,
                });
            }
        }
    }

    /// The consumer as a [`Stream`](futures_core::Stream) of messages (each item is what
    /// [`Consumer::recv`] returns), borrowing it: between messages,
    /// [`MessageStream::consumer`] reaches it to commit while streaming, and once the stream
    /// is dropped (even while it waits, as under a timeout) the consumer is as it was.
    pub fn stream(&mut self) -> MessageStream<'_> {
        MessageStream::new(self)
    }

    /// Commits, for the group, the position after every message handed out so far (with
    /// `enable.auto.offset.store=false`, what the application stored instead).
    ///
    /// Cancel-safe: the commit runs as a task of its own and completes if this is dropped.
    pub async fn commit(&mut self) -> Result<(), Error> {
        self.commit_async()?.await
    }

    /// The group this consumer is in, as a transactional producer commits offsets for it
    /// ([`Producer::send_offsets_to_transaction`](crate::Producer::send_offsets_to_transaction)):
    /// `group.id`, the member id and generation (a KIP-848 group's member epoch) as they are
    /// now, and `group.instance.id`. A consumer that assigns its own partitions has no member
    /// id, and generation -1. `None` without `group.id`.
    ///
    /// Take it after reading the records whose offsets go into the transaction: if the group
    /// moves on before the transaction commits, the coordinator refuses the offsets, and the
    /// records of this member's transaction are aborted instead of committed twice.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        let group_id = self.config.group_id.clone()?;
        let mut metadata = ConsumerGroupMetadata::new(group_id);
        if let Some(group) = &self.group {
            let who = group.committer().identity();
            metadata.generation_id = who.generation;
            metadata.member_id = who.member_id;
            metadata.group_instance_id = self.config.group_instance_id.clone();
        }
        Some(metadata)
    }

    /// Commits explicit offsets for the group: for each `(topic, partition, offset)`, the offset
    /// of the next record to read. The partitions need not be assigned to this member.
    ///
    /// Dropped before it returns, the commit may or may not have been made (the request may be
    /// on the wire); nothing else changes.
    pub async fn commit_offsets<T: AsRef<str>>(
        &mut self,
        offsets: &[(T, i32, i64)],
    ) -> Result<(), Error> {
        let offsets: Vec<_> = offsets
            .iter()
            .map(|(t, p, o)| (Arc::from(t.as_ref()), *p, *o))
            .collect();
        let record = (offsets.clone(), self.commit_record());
        match &self.group {
            Some(group) => statistics::recorded(group.commit(offsets), record.0, record.1).await,
            None => {
                let commit = self.standalone_committer()?.commit(offsets);
                statistics::recorded(commit, record.0, record.1).await
            }
        }
    }

    /// Starts committing the position after every message handed out so far, and returns at
    /// once: the commit goes on in the background. Await the handle for its outcome, or drop
    /// it (the commit still happens).
    pub fn commit_async(&mut self) -> Result<CommitHandle, Error> {
        let offsets = self.consumed_offsets();
        let (kept, record) = (offsets.clone(), self.commit_record());
        let commit = match &self.group {
            Some(group) => tokio::spawn(statistics::recorded(group.commit(offsets), kept, record)),
            None => {
                // A consumer that assigned its partitions itself commits as no member.
                let commit = self.standalone_committer()?.commit(offsets);
                tokio::spawn(statistics::recorded(commit, kept, record))
            }
        };
        Ok(CommitHandle(commit))
    }

    /// The next offset after what was handed out, per partition: what a commit stores.
    fn consumed_offsets(&self) -> Vec<(Arc<str>, i32, i64)> {
        self.consumed.offsets()
    }

    /// Waits up to `timeout` for messages and returns all that are ready (empty when none came
    /// in time): the batch-at-a-time way of [`Consumer::recv`], and as cancel-safe.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<Message>, Error> {
        let first = match tokio::time::timeout(timeout, self.recv()).await {
            Ok(msg) => msg?,
            Err(_) => return Ok(Vec::new()),
        };
        let most = self.config.max_poll_records;
        let mut out = Vec::with_capacity((1 + self.state.buffered.len()).min(most));
        out.push(first);
        while out.len() < most {
            let Some(msg) = self.state.buffered.pop_front() else {
                break;
            };
            self.consumed.note(&msg);
            out.push(msg);
        }
        Ok(out)
    }

    /// Moves an assigned partition to `offset`: the next message from it is the one at `offset`.
    pub fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<(), Error> {
        let key = self.assigned(topic, partition)?;
        self.state.positions.insert(key.clone(), offset);
        // The epoch of the records below a position sought to is not known.
        self.state.epochs.remove(&key);
        self.state
            .buffered
            .retain(|m| (&m.topic, m.partition) != (&key.0, key.1));
        Ok(())
    }

    /// Stops fetching an assigned partition until [`Consumer::resume`]; messages already
    /// fetched from it are still handed out.
    pub fn pause(&mut self, topic: &str, partition: i32) -> Result<(), Error> {
        let key = self.assigned(topic, partition)?;
        self.state.paused.insert(key);
        Ok(())
    }

    /// Fetches a paused partition again.
    pub fn resume(&mut self, topic: &str, partition: i32) -> Result<(), Error> {
        let key = self.assigned(topic, partition)?;
        self.state.paused.remove(&key);
        Ok(())
    }

    /// The partition's high watermark (the offset after its last committed record) as of the
    /// last fetch, and the lag: how many records lie between the consumer's position and it.
    pub fn watermark_and_lag(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        let key = (Arc::from(topic), partition);
        let high = *self.state.high_watermarks.get(&key)?;
        // What was handed out counts as consumed; fetched but buffered messages do not.
        let position = match self.consumed.get(&key) {
            Some(next) => next,
            None => *self.state.positions.get(&key)?,
        };
        Some((high, (high - position).max(0)))
    }

    /// The replica `topic[partition]` is read from instead of its leader, when the leader named
    /// one for this consumer's `client.rack` (KIP-392); `None` while it is read from its
    /// leader. For diagnostics.
    pub fn read_replica(&self, topic: &str, partition: i32) -> Option<i32> {
        self.state
            .read_replicas
            .get(&(Arc::from(topic), partition))
            .copied()
    }

    /// The KIP-227 fetch session held with each broker fetched from, as (broker id, session
    /// id); 0 where the broker declined a session or speaks a Fetch version without them.
    /// For diagnostics.
    pub fn fetch_sessions(&self) -> Vec<(i32, i32)> {
        self.fetcher.session_ids()
    }

    fn assigned(&self, topic: &str, partition: i32) -> Result<(Arc<str>, i32), Error> {
        self.state
            .positions
            .keys()
            .find(|(t, p)| &**t == topic && *p == partition)
            .cloned()
            .ok_or_else(|| Error::NotAssigned {
                topic: topic.to_owned(),
                partition,
            })
    }

    /// The interval's commit. A group member whose generation the coordinator no longer takes
    /// (a rebalance began, or the member was dropped or fenced) is joining again already: that
    /// commit is given up with a warning, as the Java client's and librdkafka's automatic
    /// commits are, and the partitions' next owner reads on from the last commit that landed.
    /// Every other failure is returned.
    async fn auto_commit(&mut self) -> Result<(), Error> {
        match self.commit_consumed().await {
            Err(Error::Broker {
                api: "OffsetCommit",
                code,
                ..
            }) if self.group.is_some() && stale_commit(code.code()) => {
                tracing::warn!(
                    %code,
                    "automatic commit refused: the member's generation is over; joining again"
                );
                Ok(())
            }
            other => other,
        }
    }

    async fn commit_consumed(&mut self) -> Result<(), Error> {
        self.last_commit = self.polls.now_ms();
        let offsets = self.consumed_offsets();
        let (kept, record) = (offsets.clone(), self.commit_record());
        match self.group.as_ref() {
            Some(group) => statistics::recorded(group.commit(offsets), kept, record).await,
            // Assigned by the application, with a group.id: committed as no member.
            None if self.config.group_id.is_some() && !offsets.is_empty() => {
                let commit = self.standalone_committer()?.commit(offsets);
                statistics::recorded(commit, kept, record).await
            }
            None => Ok(()),
        }
    }

    /// Closes the consumer: commits what was consumed (with `enable.auto.commit`) and leaves the
    /// group, so its partitions move to the other members at once. A static member
    /// (`group.instance.id`) stays in the group for its session, so that coming back with the
    /// same instance id takes up the same partitions without a rebalance.
    ///
    /// A group member's partitions are revoked in good order first, as with
    /// [`Consumer::unsubscribe`]: the listener's `revoking` is called for them.
    ///
    /// Not cancel-safe, by its nature: it takes the consumer, and dropped half way it may have
    /// committed without leaving the group. The group then drops the member when its session times
    /// out, as it does for a consumer that stops; nothing else is left behind.
    pub async fn close(mut self) -> Result<(), Error> {
        if self.group.is_none() && self.config.enable_auto_commit {
            // Partitions it assigned itself, with a group.id: what was consumed is committed.
            return self.commit_consumed().await;
        }
        self.leave_group().await
    }
}

/// Resolves when the membership asks for attention (false) or the cluster's shape changed
/// (true: the change is marked seen here, so the caller must look at it).
async fn wake(attention: &Attention, topology: &mut tokio::sync::watch::Receiver<u64>) -> bool {
    tokio::select! {
        () = attention.notified() => false,
        changed = topology.changed() => {
            if changed.is_err() {
                // The cluster is gone; only the membership can still call.
                std::future::pending::<()>().await;
            }
            true
        }
    }
}
