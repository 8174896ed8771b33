//! The share consumer (KIP-932, Kafka 4.2's "queues"): a member of a share group, where many
//! members read the same partitions, each record goes to one of them, and each member
//! acknowledges every record it was given.
//!
//! ```text
//!  subscribe ─► group/share_group.rs: ShareGroupHeartbeat ─► assignment (watch)
//!                                                               │
//!  poll / recv / stream ◄── exchange.rs ◄── driver.rs: per leader a share session
//!     │  (records, with their         (ShareFetch, ShareAcknowledge; session.rs),
//!     │   delivery count)              intake.rs: records matched to acquired ranges
//!     ▼
//!  acknowledge (explicit) or the next call (implicit) ─► exchange ─► the broker the record
//!  came from, on its next ShareFetch or in a ShareAcknowledge; commit waits for the answers
//!  close ─► last acknowledgements, sessions closed at epoch -1 (the broker releases what is
//!  left), the group left
//! ```
//!
//! The Java client's `KafkaShareConsumer` is the model: the same settings, the same two
//! acknowledgement modes, the same errors for a call the mode does not allow.

mod driver;
mod exchange;
mod intake;
mod session;
mod settings;
mod stream;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use crate::cluster::{ClientKind, Cluster, TopicPartition};
use crate::config::{ClientConfig, ShareAcknowledgementMode};
use crate::consumer::Message;
use crate::error::{ConfigError, Error};
use crate::group::poll_clock::PollClock;
use crate::group::share_group::ShareGroupMember;
use crate::protocol::share::{AckRuns, ACK_ACCEPT, ACK_REJECT, ACK_RELEASE};
use driver::Driver;
use exchange::Inner;
use settings::{check, Settings};
pub use stream::ShareMessageStream;

/// What the application says of a record a share group gave it (Java's `AcknowledgeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AcknowledgeType {
    /// Processed: the record is done with.
    Accept,
    /// Not processed this time: the record is delivered again, to this member or another,
    /// unless it has reached the group's delivery limit, when it is archived.
    Release,
    /// Unprocessable: the record is archived and never delivered again.
    Reject,
}

impl AcknowledgeType {
    fn wire(self) -> i8 {
        match self {
            AcknowledgeType::Accept => ACK_ACCEPT,
            AcknowledgeType::Release => ACK_RELEASE,
            AcknowledgeType::Reject => ACK_REJECT,
        }
    }
}

impl fmt::Display for AcknowledgeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AcknowledgeType::Accept => "accept",
            AcknowledgeType::Release => "release",
            AcknowledgeType::Reject => "reject",
        })
    }
}

/// How the broker took one partition's acknowledgements: what a commit returns and the
/// acknowledgement callback is given (Java's `AcknowledgementCommitCallback`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AcknowledgementCommit {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The offsets acknowledged, as inclusive ranges.
    pub offsets: Vec<(i64, i64)>,
    /// `Ok`, or why the broker did not take them. `INVALID_RECORD_STATE` means the records
    /// were no longer this member's (their acquisition lock ran out): they are delivered
    /// again.
    pub result: Result<(), Error>,
}

/// Called with each partition's acknowledgement results, on the consumer's background task:
/// keep it short.
type Callback = Arc<dyn Fn(&AcknowledgementCommit) + Send + Sync>;

/// Builds a [`ShareConsumer`].
pub struct ShareConsumerBuilder {
    config: ClientConfig,
    callback: Option<Callback>,
}

impl fmt::Debug for ShareConsumerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareConsumerBuilder")
            .field("config", &self.config)
            .field("callback", &self.callback.is_some())
            .finish()
    }
}

impl ShareConsumerBuilder {
    /// Calls `callback` with the broker's answer to every partition's acknowledgements, sent
    /// with a fetch, by a commit or at close (Java's `setAcknowledgementCommitCallback`). It
    /// runs on the consumer's background task: keep it short, and do not block in it.
    pub fn acknowledgement_commit_callback(
        mut self,
        callback: impl Fn(&AcknowledgementCommit) + Send + Sync + 'static,
    ) -> Self {
        self.callback = Some(Arc::new(callback));
        self
    }

    /// Checks the configuration and connects to the cluster.
    ///
    /// Cancel-safe: dropped, nothing is kept (the group is joined at the first `poll` or
    /// `recv`).
    pub async fn build(self) -> Result<ShareConsumer, Error> {
        let config = &self.config.consumer;
        let group_id = check(config)?;
        let settings = Settings::of(&self.config, group_id);
        let cluster = Cluster::connect(&self.config, ClientKind::Consumer).await?;
        let app = Arc::new(Notify::new());
        Ok(ShareConsumer {
            cluster,
            inner: Arc::new(Inner::new(app)),
            settings,
            callback: self.callback,
            topics: None,
            running: None,
            handed: Vec::new(),
            polls: PollClock::new(),
            closed: false,
        })
    }
}

/// Records handed out and not acknowledged to the broker yet, by partition.
struct Handed {
    broker: i32,
    tp: TopicPartition,
    /// Offsets, ascending, with what the application said of each (explicit mode).
    offsets: Vec<i64>,
    acks: Vec<Option<i8>>,
}

/// The member and its driver, from the first `poll` or `recv` on.
struct Running {
    member: ShareGroupMember,
    driver: JoinHandle<()>,
}

/// A member of a share group (KIP-932; Kafka 4.2 and later): many members read the same
/// partitions, each record goes to one of them, and each record is acknowledged (accepted,
/// released for another delivery, or rejected). Java's `KafkaShareConsumer`.
///
/// ```no_run
/// # async fn demo() -> Result<(), purekafka::Error> {
/// use purekafka::{ClientConfig, ShareConsumer};
/// let config = ClientConfig::new()
///     .set("bootstrap.servers", "127.0.0.1:9092")?
///     .set("group.id", "workers")?;
/// let mut consumer = ShareConsumer::builder(config).build().await?;
/// consumer.subscribe(&["jobs"])?;
/// loop {
///     // Implicit mode: each poll accepts what the previous one returned.
///     for msg in consumer.poll(std::time::Duration::from_secs(1)).await? {
///         println!("{msg} (delivery {})", msg.delivery_count.unwrap_or(1));
///     }
/// }
/// # }
/// ```
///
/// A new share group starts at the end of each partition: set its group config
/// `share.auto.offset.reset` to `earliest` (with
/// [`Admin::incremental_alter_configs`](crate::Admin::incremental_alter_configs) on a
/// [`ConfigResource::Group`](crate::ConfigResource::Group)) to read what is there already.
pub struct ShareConsumer {
    cluster: Cluster,
    inner: Arc<Inner>,
    settings: Settings,
    callback: Option<Callback>,
    /// What `subscribe` was given last.
    topics: Option<Vec<String>>,
    running: Option<Running>,
    /// What the application was given and has not had acknowledged to the broker.
    handed: Vec<Handed>,
    polls: PollClock,
    closed: bool,
}

impl fmt::Debug for ShareConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareConsumer")
            .field("group_id", &self.settings.params.group_id)
            .field("topics", &self.topics)
            .field("mode", &self.settings.mode)
            .finish_non_exhaustive()
    }
}

impl Drop for ShareConsumer {
    fn drop(&mut self) {
        // Without close: the broker releases the records when the connections close, and the
        // group drops the member after its session timeout.
        if let Some(running) = &self.running {
            running.driver.abort();
        }
    }
}

const EXPLICIT_UNACKNOWLEDGED: &str =
    "All records must be acknowledged in explicit acknowledgement mode.";
const IMPLICIT_MODE: &str = "Implicit acknowledgement of delivery is being used.";
const NOT_ACKNOWLEDGEABLE: &str = "The record cannot be acknowledged.";
const NOT_SUBSCRIBED: &str = "Consumer is not subscribed to any topics.";

impl ShareConsumer {
    /// A builder for a share consumer with this configuration: `group.id` names the share
    /// group; `share.acknowledgement.mode` (`implicit` or `explicit`) and `max.poll.records`
    /// (500) shape what `poll` does.
    pub fn builder(config: ClientConfig) -> ShareConsumerBuilder {
        ShareConsumerBuilder {
            config,
            callback: None,
        }
    }

    /// Subscribes to `topics` (names, not patterns), in place of any before; an empty list
    /// leaves the member in the group with nothing to read. The group is joined at the next
    /// `poll` or `recv`.
    pub fn subscribe<T: AsRef<str>>(&mut self, topics: &[T]) -> Result<(), Error> {
        self.open("subscribe")?;
        let mut names: Vec<String> = Vec::with_capacity(topics.len());
        for t in topics {
            let t = t.as_ref();
            if t.trim().is_empty() {
                return Err(Error::Config(ConfigError::InvalidValue {
                    key: "topics".into(),
                    value: format!("{t:?}"),
                    reason: "a topic name cannot be empty".into(),
                }));
            }
            if !names.iter().any(|n| n == t) {
                names.push(t.to_owned());
            }
        }
        self.cluster.subscribe(&names, false);
        if let Some(running) = &self.running {
            running.member.subscribe(names.clone());
        }
        self.topics = Some(names);
        Ok(())
    }

    /// The topics subscribed to.
    pub fn subscription(&self) -> Vec<String> {
        self.topics.clone().unwrap_or_default()
    }

    /// The acquisition lock's duration the broker gave with the last records: how long the
    /// member may hold a record before it is delivered elsewhere (Java's
    /// `acquisitionLockTimeoutMs`).
    pub fn acquisition_lock_timeout(&self) -> Option<Duration> {
        self.inner
            .state()
            .lock_timeout_ms
            .map(|ms| Duration::from_millis(ms.max(0) as u64))
    }

    /// The records fetched, up to `max.poll.records`, waiting up to `timeout` for the first;
    /// an empty list when none came. In implicit mode it first accepts every record the
    /// previous calls handed out; in explicit mode it is refused while one of them is
    /// unacknowledged (with Java's words), and they stay acknowledgeable.
    ///
    /// Cancel-safe: records are taken from the fetched ones only once the call returns them,
    /// and acknowledgements, once queued, go out whatever happens to the call.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<Message>, Error> {
        self.prepare("poll")?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.check_errors()?;
            let taken = self.take(self.settings.max_poll_records);
            if !taken.is_empty() {
                return Ok(taken);
            }
            let woken = tokio::time::timeout_at(deadline, self.inner.app.notified()).await;
            if woken.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    /// The next record, waiting as long as it takes. Each call acts as a poll of one record:
    /// in implicit mode it accepts what was handed out before; in explicit mode the record
    /// before must be acknowledged first.
    ///
    /// Cancel-safe, as [`ShareConsumer::poll`].
    pub async fn recv(&mut self) -> Result<Message, Error> {
        self.prepare("recv")?;
        loop {
            self.check_errors()?;
            if let Some(msg) = self.take(1).pop() {
                return Ok(msg);
            }
            self.inner.app.notified().await;
        }
    }

    /// The consumer as a [`Stream`](futures_core::Stream) of records, each taken as by
    /// [`ShareConsumer::recv`].
    pub fn stream(&mut self) -> ShareMessageStream<'_> {
        ShareMessageStream::new(self)
    }

    /// Says what became of `msg`, a record this consumer handed out and has not had
    /// acknowledged yet (explicit mode only). It goes to the broker with the next fetch, or
    /// at the next commit or close; a later call for the same record before then wins.
    pub fn acknowledge(&mut self, msg: &Message, kind: AcknowledgeType) -> Result<(), Error> {
        self.open("acknowledge")?;
        if self.settings.mode == ShareAcknowledgementMode::Implicit {
            return Err(state("acknowledge", IMPLICIT_MODE));
        }
        // The partition's records from each broker that handed some out (two, when its
        // leader moved between polls).
        for handed in self
            .handed
            .iter_mut()
            .filter(|h| *h.tp.0 == *msg.topic && h.tp.1 == msg.partition)
        {
            if let Ok(at) = handed.offsets.binary_search(&msg.offset) {
                handed.acks[at] = Some(kind.wire());
                return Ok(());
            }
        }
        Err(state("acknowledge", NOT_ACKNOWLEDGEABLE))
    }

    /// Sends the acknowledgements made so far (in implicit mode, first accepts what was
    /// handed out) and returns once the brokers answered, with each partition's result.
    /// Records not acknowledged yet in explicit mode stay so.
    ///
    /// Cancel-safe: dropped, the acknowledgements still go out (their results then reach
    /// only the callback).
    pub async fn commit_sync(&mut self) -> Result<Vec<AcknowledgementCommit>, Error> {
        self.commit_async()?.await
    }

    /// As [`ShareConsumer::commit_sync`], without waiting: the handle is a future of the
    /// results, and dropping it leaves the commit going on (results to the callback).
    pub fn commit_async(&mut self) -> Result<ShareCommitHandle, Error> {
        self.open("commit")?;
        self.settle(false);
        let (done, results) = oneshot::channel();
        self.inner.state().commit(done);
        self.inner.driver.notify_one();
        Ok(ShareCommitHandle(results))
    }

    /// Leaves the share group. Acknowledgements made go to the brokers; records handed out
    /// and not acknowledged (in implicit mode: those of the last call, as in the Java
    /// client — commit first to accept them) and records fetched but not handed out are
    /// released by closing the share sessions, and delivered again. Waits for the brokers up
    /// to `request.timeout.ms`.
    ///
    /// Not cancel-safe in part: dropped halfway, the consumer is gone all the same, and the
    /// brokers release its records when its connections close.
    pub async fn close(mut self) -> Result<(), Error> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if self.settings.mode == ShareAcknowledgementMode::Explicit {
            self.settle(false);
        }
        self.handed.clear();
        let Some(mut running) = self.running.take() else {
            return Ok(());
        };
        self.inner.state().closing = true;
        self.inner.driver.notify_one();
        let deadline = self.settings.close_timeout;
        let ended = tokio::time::timeout(deadline, &mut running.driver).await;
        if ended.is_err() {
            running.driver.abort();
        }
        let left = tokio::time::timeout(deadline, running.member.leave()).await;
        match (ended, left) {
            (Err(_), _) | (_, Err(_)) => Err(Error::Timeout {
                after_ms: deadline.as_millis() as u64,
                what: "closing the share consumer".into(),
                outcome_unknown: true,
            }),
            (_, Ok(left)) => left,
        }
    }

    fn open(&self, _call: &'static str) -> Result<(), Error> {
        match self.closed {
            true => Err(Error::Closed),
            false => Ok(()),
        }
    }

    /// What every call for records does first: settle what was handed out, join the group at
    /// the first call, tell the member the application is reading.
    fn prepare(&mut self, call: &'static str) -> Result<(), Error> {
        self.open(call)?;
        if self.settings.mode == ShareAcknowledgementMode::Explicit
            && self
                .handed
                .iter()
                .any(|h| h.acks.iter().any(Option::is_none))
        {
            return Err(state(call, EXPLICIT_UNACKNOWLEDGED));
        }
        if self.topics.is_none() {
            return Err(state(call, NOT_SUBSCRIBED));
        }
        self.settle(true);
        self.polls.polled();
        if self.running.is_none() {
            self.start();
        }
        Ok(())
    }

    fn start(&mut self) {
        let topics = self.topics.clone().unwrap_or_default();
        let member = ShareGroupMember::new(
            self.cluster.clone(),
            self.settings.member.clone(),
            topics,
            self.polls.clone(),
            self.inner.app.clone(),
        );
        let mut params = self.settings.params.clone();
        params.member_id = member.member_id().to_owned();
        let driver = Driver::new(
            self.cluster.clone(),
            self.inner.clone(),
            params,
            member.assignment(),
            self.callback.clone(),
        );
        let driver = tokio::spawn(driver.run());
        self.running = Some(Running { member, driver });
    }

    /// Queues the acknowledgements of what was handed out: all of it in implicit mode
    /// (accepted), what the application acknowledged in explicit mode. `all` in explicit
    /// mode: everything is acknowledged (checked before).
    fn settle(&mut self, all: bool) {
        if self.handed.is_empty() {
            return;
        }
        let implicit = self.settings.mode == ShareAcknowledgementMode::Implicit;
        let mut state = self.inner.state();
        let mut kept = Vec::new();
        for mut handed in self.handed.drain(..) {
            let mut runs = AckRuns::default();
            let mut left_offsets = Vec::new();
            let mut left_acks = Vec::new();
            for (&offset, &ack) in handed.offsets.iter().zip(&handed.acks) {
                match (ack, implicit) {
                    (Some(kind), _) => runs.add(offset, offset, kind),
                    (None, true) => runs.add(offset, offset, ACK_ACCEPT),
                    (None, false) => {
                        left_offsets.push(offset);
                        left_acks.push(None);
                    }
                }
            }
            state.queue(handed.broker, &handed.tp, &runs);
            if !left_offsets.is_empty() {
                debug_assert!(!all);
                handed.offsets = left_offsets;
                handed.acks = left_acks;
                kept.push(handed);
            }
        }
        drop(state);
        self.handed = kept;
        self.inner.driver.notify_one();
    }

    /// The first error waiting for the application: the driver's, or the member's.
    fn check_errors(&mut self) -> Result<(), Error> {
        if let Some(e) = self.inner.state().errors.pop_front() {
            return Err(e);
        }
        if let Some(e) = self.running.as_ref().and_then(|r| r.member.failed()) {
            return Err(e);
        }
        Ok(())
    }

    /// Takes up to `n` fetched records, noting them as handed out.
    fn take(&mut self, n: usize) -> Vec<Message> {
        let mut out: Vec<Message> = Vec::new();
        let mut emptied = false;
        {
            let mut state = self.inner.state();
            while out.len() < n {
                let Some(chunk) = state.ready.front_mut() else {
                    break;
                };
                let want = (n - out.len()).min(chunk.messages.len());
                let broker = chunk.broker;
                let tp = chunk.tp.clone();
                let handed = match self
                    .handed
                    .iter_mut()
                    .position(|h| h.broker == broker && h.tp == tp)
                {
                    Some(i) => &mut self.handed[i],
                    None => {
                        self.handed.push(Handed {
                            broker,
                            tp,
                            offsets: Vec::new(),
                            acks: Vec::new(),
                        });
                        self.handed.last_mut().expect("pushed")
                    }
                };
                for msg in chunk.messages.drain(..want) {
                    insert_sorted(handed, msg.offset);
                    out.push(msg);
                }
                if chunk.messages.is_empty() {
                    state.ready.pop_front();
                    emptied = true;
                }
            }
        }
        if emptied {
            // The broker these came from may be asked for more.
            self.inner.driver.notify_one();
        }
        out
    }
}

/// Notes `offset` as handed out, keeping the offsets ascending (a record delivered again may
/// come below those already handed out).
fn insert_sorted(handed: &mut Handed, offset: i64) {
    match handed.offsets.last() {
        Some(&last) if last >= offset => {
            if let Err(at) = handed.offsets.binary_search(&offset) {
                handed.offsets.insert(at, offset);
                handed.acks.insert(at, None);
            }
        }
        _ => {
            handed.offsets.push(offset);
            handed.acks.push(None);
        }
    }
}

fn state(call: &'static str, why: &str) -> Error {
    Error::State {
        call,
        state: why.to_owned(),
    }
}

/// A commit of acknowledgements going on (see [`ShareConsumer::commit_async`]); as a future,
/// each partition's result.
#[derive(Debug)]
pub struct ShareCommitHandle(oneshot::Receiver<Vec<AcknowledgementCommit>>);

impl Future for ShareCommitHandle {
    type Output = Result<Vec<AcknowledgementCommit>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.map_err(|_| Error::Closed))
    }
}

#[cfg(test)]
mod tests;
