//! The transactional producer: its state, the calls that move it, and what the sinks ask of it.
//!
//! ```text
//!  Uninitialized ─init_transactions─► Ready ─begin_transaction─► InTransaction ─┐
//!        (FindCoordinator, InitProducerId)  ▲                      │ records: their partitions
//!                                           │                      │ are added (AddPartitionsToTxn)
//!                                           │                      │ before a batch goes
//!                                           │                      │ send_offsets_to_transaction:
//!                                           │                      │ AddOffsetsToTxn, TxnOffsetCommit
//!                                           ├── commit: flush, EndTxn(commit) ◄─┤
//!                                           └── abort: purge, wait, EndTxn(abort)◄┤ (also from Abortable)
//!  a record fails, the group moved on, ...: Abortable ─► only abort_transaction goes on
//!  fenced, refused for good: Fatal ─► every call fails; close the producer
//! ```
//!
//! The calls that wait for the cluster (init, commit, abort, sending offsets) run as tasks of
//! their own. A call whose caller gives up (its timeout, or a `select!` that drops it) leaves
//! its task running; the next call of the same kind takes it up, as librdkafka's calls resume
//! after a retriable timeout. The tasks retry what is retriable (the coordinator moving or
//! loading, a transaction still completing) until it succeeds or fails for good.
//!
//! Transaction protocol v1 (AddPartitionsToTxn before a partition's first batch, the epoch kept
//! across transactions) serves every broker from 2.4 on; EndTxn, TxnOffsetCommit and Produce are
//! kept below their v2 versions (KIP-890), which would change what the broker does.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, GroupId,
    InitProducerIdRequest, ProducerId, TransactionalId, TxnOffsetCommitRequest,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::accumulator::Accumulator;
use super::sink::Pipeline;
use crate::cluster::{per_topic, topic_name, Cluster};
use crate::config::ProducerConfig;
use crate::error::{Error, TxnErrorKind};
use crate::group::coordinator::{s, Coordinator};
use crate::group::ConsumerGroupMetadata;
use crate::protocol::api::ApiRequest;
use crate::protocol::codes;

/// The last versions of transaction protocol v1: the next ones are v2's (KIP-890).
const PRODUCE_V1_MAX: i16 = 11;
const END_TXN_V1_MAX: i16 = 4;
const TXN_OFFSET_COMMIT_V1_MAX: i16 = 4;
/// The first InitProducerId version that bumps the epoch of a producer id (KIP-360).
const BUMPS_EPOCH: i16 = 3;
/// The first TxnOffsetCommit version that carries the member's generation (KIP-447).
const CARRIES_GENERATION: i16 = 3;
/// The pause before asking again while the previous transaction completes: short, as the
/// Java client's, since it is over in milliseconds.
const CONCURRENT_BACKOFF: Duration = Duration::from_millis(20);

/// The calls that run as tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Init,
    Commit,
    Abort,
    SendOffsets,
    /// Not run as a task: what a sink does for records (adding their partitions).
    Produce,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Init => "init_transactions",
            Call::Commit => "commit_transaction",
            Call::Abort => "abort_transaction",
            Call::SendOffsets => "send_offsets_to_transaction",
            Call::Produce => "produce",
        }
    }
}

#[derive(Debug, Clone)]
enum Phase {
    Uninitialized,
    Initializing,
    Ready,
    InTransaction,
    Committing,
    Aborting,
    /// The transaction cannot commit, for this reason: only an abort goes on.
    Abortable(Error),
    /// The producer cannot go on, for this reason.
    Fatal(Error),
}

impl Phase {
    /// For messages: where the producer stands.
    fn describe(&self) -> String {
        match self {
            Phase::Uninitialized => "init_transactions has not been called".into(),
            Phase::Initializing => "init_transactions has not completed".into(),
            Phase::Ready => "no transaction is open (call begin_transaction)".into(),
            Phase::InTransaction => "a transaction is open".into(),
            Phase::Committing => "the transaction is being committed".into(),
            Phase::Aborting => "the transaction is being aborted".into(),
            Phase::Abortable(e) => format!("the transaction must be aborted: {e}"),
            Phase::Fatal(e) => format!("the producer failed for good: {e}"),
        }
    }
}

struct State {
    phase: Phase,
    /// The coordinator knows of the transaction: a partition or offsets were added to it, so
    /// it must be ended with EndTxn.
    started: bool,
    /// The epoch must be bumped when the transaction is aborted (KIP-360): a record's
    /// sequence is unknown, or the broker forgot the producer.
    bump: bool,
    /// The transaction's number: one more at each `begin_transaction`.
    serial: u64,
}

/// A call running as a task, and the transaction it is for.
struct Running {
    call: Call,
    serial: u64,
    task: JoinHandle<Result<(), Error>>,
}

/// A transactional producer's transaction state, shared by its handles and its sinks.
pub(crate) struct Transactions {
    id: String,
    timeout_ms: i32,
    retry_backoff: Duration,
    retry_backoff_max: Duration,
    coordinator: tokio::sync::Mutex<Coordinator>,
    state: Mutex<State>,
    /// True exactly while a transaction is open and records may be sent: `produce` looks here
    /// for every record, without the lock.
    open: AtomicBool,
    /// The call running as a task, if any.
    running: tokio::sync::Mutex<Option<Running>>,
    /// Held while partitions are being added, so that sinks add them once.
    adding: tokio::sync::Mutex<()>,
}

impl Transactions {
    /// The producer is dropped: a call still running in the background stops (its task holds
    /// the pipeline, and may retry for as long as the cluster is away).
    pub fn stop(&self) {
        if let Ok(running) = self.running.try_lock() {
            if let Some(running) = running.as_ref() {
                running.task.abort();
            }
        }
    }

    pub fn new(cluster: Cluster, config: &ProducerConfig, id: String) -> Self {
        let timeout_ms = config.transaction_timeout.as_millis().min(i32::MAX as u128) as i32;
        // The coordinator of a new transactional id may take a while to be elected (the
        // transaction log is created on first use): wait as long as a transaction may last.
        let patience = config.transaction_timeout;
        Transactions {
            coordinator: tokio::sync::Mutex::new(Coordinator::transaction(
                cluster,
                id.clone(),
                patience,
                config.retry_backoff,
            )),
            id,
            timeout_ms,
            retry_backoff: config.retry_backoff,
            retry_backoff_max: config.retry_backoff_max.max(config.retry_backoff),
            state: Mutex::new(State {
                phase: Phase::Uninitialized,
                started: false,
                bump: false,
                serial: 0,
            }),
            open: AtomicBool::new(false),
            running: tokio::sync::Mutex::new(None),
            adding: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_phase(&self, phase: Phase) {
        let mut state = self.state();
        self.open
            .store(matches!(phase, Phase::InTransaction), Ordering::Release);
        state.phase = phase;
    }

    /// Whether a record may be sent now; the error to give it when not.
    pub fn check_produce(&self) -> Result<(), Error> {
        if self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(self.refusal("produce", &self.state().phase))
    }

    /// The error for a record `append` refused (see [`Accumulator::open_transaction`]): the
    /// phase's, or, in a transaction a record of which failed, that failure's, as abortable.
    pub fn refused_record(&self, acc: &Accumulator) -> Error {
        let phase = self.state().phase.clone();
        match (&phase, acc.txn_failure()) {
            (Phase::InTransaction, Some(failure)) => {
                txn_error("produce", TxnErrorKind::Abortable, failure)
            }
            _ => self.refusal("produce", &phase),
        }
    }

    /// The error for `call` made in `phase`, which does not allow it.
    fn refusal(&self, call: &'static str, phase: &Phase) -> Error {
        match phase {
            Phase::Abortable(e) => txn_error(call, TxnErrorKind::Abortable, e.clone()),
            Phase::Fatal(e) => txn_error(call, TxnErrorKind::Fatal, e.clone()),
            other => Error::TransactionState {
                call,
                state: other.describe(),
            },
        }
    }

    /// Opens a transaction.
    pub fn begin(&self, acc: &Accumulator) -> Result<(), Error> {
        let mut state = self.state();
        match state.phase {
            Phase::Ready => {
                state.phase = Phase::InTransaction;
                state.started = false;
                state.serial += 1;
                acc.open_transaction();
                self.open.store(true, Ordering::Release);
                Ok(())
            }
            ref other => Err(self.refusal("begin_transaction", other)),
        }
    }

    /// The Produce version to send a transaction's batches with: v1's last at most.
    pub fn produce_version(&self, negotiated: i16) -> i16 {
        negotiated.min(PRODUCE_V1_MAX)
    }

    /// Whether a Produce error code means the producer cannot go on.
    pub fn is_fatal_code(&self, code: i16) -> bool {
        kind_of_produce_code(code) == TxnErrorKind::Fatal
    }

    /// The producer cannot go on: every later call fails with `cause`, and the records not
    /// sent yet are purged ([`Error::Purged`]) rather than wait out `delivery.timeout.ms`.
    pub fn fatal(&self, acc: &Accumulator, call: &'static str, cause: Error) {
        tracing::warn!(transactional_id = %self.id, call, error = %cause, "transactional producer failed for good");
        self.set_phase(Phase::Fatal(cause));
        acc.close_transaction();
        acc.purge();
    }

    /// The open transaction cannot commit: it takes no more records, and those not sent yet
    /// are purged, as the Java client aborts its undrained batches, so that a commit under
    /// way ends at once rather than wait for records that cannot go. An abort that failed
    /// this way may be called again.
    fn abortable(&self, acc: &Accumulator, cause: Error) {
        {
            let mut state = self.state();
            if !matches!(
                state.phase,
                Phase::InTransaction | Phase::Committing | Phase::Aborting
            ) {
                // Failed for good already, or no transaction to fail.
                return;
            }
            if bumps_epoch(&cause) {
                state.bump = true;
            }
            self.open.store(false, Ordering::Release);
            state.phase = Phase::Abortable(cause);
        }
        acc.close_transaction();
        acc.purge();
    }

    /// Records `cause` as fatal or abortable, as its kind is, and returns the call's error:
    /// fatal when the producer has failed for good meanwhile, whatever `cause` is.
    fn failed(&self, acc: &Accumulator, call: Call, cause: Error) -> Error {
        match kind_of(&cause) {
            TxnErrorKind::Fatal => self.fatal(acc, call.name(), cause.clone()),
            _ => self.abortable(acc, cause.clone()),
        }
        match &self.state().phase {
            Phase::Fatal(fatal) => txn_error(call.name(), TxnErrorKind::Fatal, fatal.clone()),
            _ => txn_error(call.name(), TxnErrorKind::Abortable, cause),
        }
    }

    /// Runs `call`: takes up the same call left running by an earlier caller, or waits for
    /// another call still running, then starts it with `start`, which checks (and moves) the
    /// state and returns the task's work. Waits at most until `timeout`; past it, the call
    /// fails as retriable and its task goes on.
    pub async fn run<F>(
        &self,
        runtime: &tokio::runtime::Handle,
        call: Call,
        timeout: Duration,
        start: impl FnOnce() -> Result<F, Error>,
    ) -> Result<(), Error>
    where
        F: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let deadline = Instant::now() + timeout;
        let serial = self.state().serial;
        let mut start = Some(start);
        // Cancel-safe: the guard is dropped with the future, and the task stays for the next.
        let mut running = match tokio::time::timeout_at(deadline, self.running.lock()).await {
            Ok(guard) => guard,
            Err(_) => return Err(timed_out(call, timeout, "another transactional call")),
        };
        loop {
            let Some(current) = running.as_mut() else {
                let Some(start) = start.take() else {
                    return Ok(());
                };
                let work = start()?;
                *running = Some(Running {
                    call,
                    serial,
                    task: runtime.spawn(work),
                });
                continue;
            };
            let waited = tokio::time::timeout_at(deadline, &mut current.task).await;
            let other = current.call;
            let same = other == call && current.serial == serial;
            let outcome = match waited {
                Err(_) if same => return Err(timed_out(call, timeout, "the cluster's answer")),
                Err(_) => return Err(timed_out(call, timeout, other.name())),
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err(Error::Closed),
            };
            *running = None;
            // This call's task; or an earlier caller's call of the same kind for the same
            // transaction, which it gave up on: this one takes its outcome. (Offsets are the
            // exception: an earlier caller's were other offsets, and this call's are still to
            // be sent.)
            if same && (start.is_none() || call != Call::SendOffsets) {
                return outcome;
            }
            // Another call, or one for an earlier transaction, which its caller gave up on:
            // its outcome is in the state now.
        }
    }

    /// Starts `init_transactions`.
    pub fn start_init(
        &self,
        pipeline: &Arc<Pipeline>,
    ) -> Result<impl Future<Output = Result<(), Error>> + Send + 'static, Error> {
        {
            let mut state = self.state();
            match state.phase {
                Phase::Uninitialized => state.phase = Phase::Initializing,
                ref other => return Err(self.refusal("init_transactions", other)),
            }
        }
        let pipeline = pipeline.clone();
        Ok(async move {
            let txn = pipeline.txn.as_ref().expect("transactional");
            match txn.init_producer_id(&pipeline, None).await {
                Ok(()) => {
                    txn.set_phase(Phase::Ready);
                    Ok(())
                }
                Err(e) => {
                    // Nothing to abort yet: whatever stopped the first id stops the producer.
                    txn.fatal(&pipeline.acc, "init_transactions", e.clone());
                    Err(txn_error("init_transactions", TxnErrorKind::Fatal, e))
                }
            }
        })
    }

    /// Starts `commit_transaction`.
    pub fn start_commit(
        &self,
        pipeline: &Arc<Pipeline>,
    ) -> Result<impl Future<Output = Result<(), Error>> + Send + 'static, Error> {
        {
            let mut state = self.state();
            match state.phase {
                Phase::InTransaction => state.phase = Phase::Committing,
                ref other => return Err(self.refusal("commit_transaction", other)),
            }
            self.open.store(false, Ordering::Release);
        }
        pipeline.acc.close_transaction();
        let pipeline = pipeline.clone();
        Ok(async move {
            let txn = pipeline.txn.as_ref().expect("transactional");
            // Every record of the transaction is delivered, or has failed, first; and no
            // partition is still being added.
            flushed(&pipeline).await;
            let _adding = txn.adding.lock().await;
            let failure = match &txn.state().phase {
                Phase::Abortable(cause) => Some(cause.clone()),
                _ => None,
            };
            let failure = failure.or_else(|| pipeline.acc.txn_failure()).or_else(|| {
                let identity = pipeline.identity.as_ref()?;
                identity.sequence_was_broken().then(sequence_unknown)
            });
            if let Some(cause) = failure {
                return Err(txn.failed(&pipeline.acc, Call::Commit, cause));
            }
            if txn.state().started {
                if let Err(e) = txn.end(&pipeline, true).await {
                    return Err(txn.failed(&pipeline.acc, Call::Commit, e));
                }
            }
            txn.ended(&pipeline);
            Ok(())
        })
    }

    /// Starts `abort_transaction`.
    pub fn start_abort(
        &self,
        pipeline: &Arc<Pipeline>,
    ) -> Result<impl Future<Output = Result<(), Error>> + Send + 'static, Error> {
        {
            let mut state = self.state();
            match state.phase {
                Phase::InTransaction | Phase::Abortable(_) => state.phase = Phase::Aborting,
                ref other => return Err(self.refusal("abort_transaction", other)),
            }
            self.open.store(false, Ordering::Release);
        }
        pipeline.acc.close_transaction();
        let pipeline = pipeline.clone();
        Ok(async move {
            let txn = pipeline.txn.as_ref().expect("transactional");
            // Records not sent yet never will be; those in flight finish first, so that none
            // is written after the abort marker.
            pipeline.acc.purge();
            flushed(&pipeline).await;
            // A partition being added now is in the transaction at the coordinator: wait, so
            // that `started` says whether EndTxn is needed.
            let _adding = txn.adding.lock().await;
            let broken = pipeline
                .identity
                .as_ref()
                .is_some_and(|i| i.sequence_was_broken());
            let bump = broken || txn.state().bump;
            if txn.state().started {
                if let Err(e) = txn.end(&pipeline, false).await {
                    return Err(txn.failed(&pipeline.acc, Call::Abort, e));
                }
            }
            if bump {
                let current = pipeline.identity.as_ref().and_then(|i| i.current());
                if let Err(e) = txn.init_producer_id(&pipeline, current).await {
                    txn.fatal(&pipeline.acc, "abort_transaction", e.clone());
                    return Err(txn_error("abort_transaction", TxnErrorKind::Fatal, e));
                }
            }
            txn.ended(&pipeline);
            Ok(())
        })
    }

    /// Starts `send_offsets_to_transaction`.
    pub fn start_send_offsets(
        &self,
        pipeline: &Arc<Pipeline>,
        offsets: Vec<(Arc<str>, i32, i64)>,
        group: ConsumerGroupMetadata,
    ) -> Result<impl Future<Output = Result<(), Error>> + Send + 'static, Error> {
        {
            let state = self.state();
            if !matches!(state.phase, Phase::InTransaction) {
                return Err(self.refusal("send_offsets_to_transaction", &state.phase));
            }
        }
        let pipeline = pipeline.clone();
        Ok(async move {
            let txn = pipeline.txn.as_ref().expect("transactional");
            if offsets.is_empty() {
                return Ok(());
            }
            match txn.send_offsets(&pipeline, &offsets, &group).await {
                Ok(()) => Ok(()),
                Err(e) => Err(txn.failed(&pipeline.acc, Call::SendOffsets, e)),
            }
        })
    }

    /// The transaction is over: the next one starts afresh.
    fn ended(&self, pipeline: &Pipeline) {
        pipeline.acc.end_transaction();
        let mut state = self.state();
        state.started = false;
        state.bump = false;
        if !matches!(state.phase, Phase::Fatal(_)) {
            state.phase = Phase::Ready;
        }
    }

    /// The producer id and epoch from the coordinator: a new one, or (with `current`) the
    /// next epoch of the current one, after an abort that needs it (KIP-360).
    async fn init_producer_id(
        &self,
        pipeline: &Pipeline,
        current: Option<(i64, i16)>,
    ) -> Result<(), Error> {
        let (id, epoch) = current.unwrap_or((-1, -1));
        let response = self
            .ask(
                "InitProducerId",
                None,
                |version| {
                    if current.is_some() && version < BUMPS_EPOCH {
                        return Err(Error::TransactionState {
                            call: "abort_transaction",
                            state: "the transaction needs a new producer epoch, which the \
                                    cluster cannot give (InitProducerId v3, Kafka 2.5 or later)"
                                .into(),
                        });
                    }
                    Ok(InitProducerIdRequest::default()
                        .with_transactional_id(Some(TransactionalId(s(&self.id))))
                        .with_transaction_timeout_ms(self.timeout_ms)
                        .with_producer_id(ProducerId(id))
                        .with_producer_epoch(epoch))
                },
                |r| r.error_code,
            )
            .await?;
        let identity = pipeline.identity.as_ref().expect("transactional");
        identity.set(response.producer_id.0, response.producer_epoch);
        tracing::debug!(
            transactional_id = %self.id,
            producer_id = response.producer_id.0,
            epoch = response.producer_epoch,
            "transactional producer initialised"
        );
        Ok(())
    }

    /// EndTxn: commits or aborts the transaction at the coordinator.
    async fn end(&self, pipeline: &Pipeline, commit: bool) -> Result<(), Error> {
        let (id, epoch) = producer(pipeline)?;
        self.ask(
            "EndTxn",
            Some(END_TXN_V1_MAX),
            |_| {
                Ok(EndTxnRequest::default()
                    .with_transactional_id(TransactionalId(s(&self.id)))
                    .with_producer_id(ProducerId(id))
                    .with_producer_epoch(epoch)
                    .with_committed(commit))
            },
            |r| r.error_code,
        )
        .await?;
        Ok(())
    }

    /// Adds the partitions that have records in the transaction and are not in it yet, for
    /// every sink: AddPartitionsToTxn, retried while retriable. A sink calls this before it
    /// takes batches; their partitions' batches go once this returns.
    pub async fn add_partitions(&self, pipeline: &Pipeline) {
        let _adding = self.adding.lock().await;
        let partitions = pipeline.acc.partitions_to_add();
        if partitions.is_empty() {
            return;
        }
        let serial = {
            let state = self.state();
            if !matches!(state.phase, Phase::InTransaction | Phase::Committing) {
                // A failed transaction: its records wait for the abort, which purges them.
                return pipeline.acc.not_added(partitions);
            }
            state.serial
        };
        match self.add(pipeline, &partitions).await {
            Ok(()) => {
                let current = {
                    let mut state = self.state();
                    // The coordinator holds a transaction now, whatever happened here
                    // meanwhile: EndTxn must end it.
                    state.started = true;
                    state.serial == serial
                };
                if current {
                    pipeline.acc.added(&partitions);
                }
            }
            Err(e) => {
                tracing::debug!(transactional_id = %self.id, error = %e, "AddPartitionsToTxn failed");
                self.failed(&pipeline.acc, Call::Produce, e);
            }
        }
    }

    async fn add(&self, pipeline: &Pipeline, partitions: &[(Arc<str>, i32)]) -> Result<(), Error> {
        let (id, epoch) = producer(pipeline)?;
        let topics: Vec<AddPartitionsToTxnTopic> =
            per_topic(partitions.iter().map(|(t, p)| (&**t, *p, ())))
                .into_iter()
                .map(|(topic, partitions)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(partitions.into_iter().map(|(p, ())| p).collect())
                })
                .collect();
        self.ask(
            "AddPartitionsToTxn",
            None,
            |_| {
                Ok(AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(s(&self.id)))
                    .with_v3_and_below_producer_id(ProducerId(id))
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(topics.clone()))
            },
            // The errors are per partition; one retriable error (the previous transaction
            // completing) holds up all of them.
            |r| {
                let codes = r.results_by_topic_v3_and_below.iter().flat_map(|t| {
                    t.results_by_partition
                        .iter()
                        .map(|p| p.partition_error_code)
                });
                first_error(codes)
            },
        )
        .await?;
        Ok(())
    }

    /// AddOffsetsToTxn, then TxnOffsetCommit to the group's coordinator.
    async fn send_offsets(
        &self,
        pipeline: &Pipeline,
        offsets: &[(Arc<str>, i32, i64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<(), Error> {
        let (id, epoch) = producer(pipeline)?;
        self.ask(
            "AddOffsetsToTxn",
            None,
            |_| {
                Ok(AddOffsetsToTxnRequest::default()
                    .with_transactional_id(TransactionalId(s(&self.id)))
                    .with_producer_id(ProducerId(id))
                    .with_producer_epoch(epoch)
                    .with_group_id(GroupId(s(&group.group_id))))
            },
            |r| r.error_code,
        )
        .await?;
        self.state().started = true;
        let topics: Vec<TxnOffsetCommitRequestTopic> =
            per_topic(offsets.iter().map(|(t, p, o)| (&**t, *p, *o)))
                .into_iter()
                .map(|(topic, partitions)| {
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(partition, offset)| {
                                    TxnOffsetCommitRequestPartition::default()
                                        .with_partition_index(partition)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(-1)
                                })
                                .collect(),
                        )
                })
                .collect();
        let mut coordinator = Coordinator::new(
            pipeline.cluster.clone(),
            group.group_id.clone(),
            pipeline.config.transaction_timeout,
            self.retry_backoff,
        );
        let request = |version: i16| {
            let mut request = TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s(&self.id)))
                .with_group_id(GroupId(s(&group.group_id)))
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch)
                .with_topics(topics.clone());
            if version >= CARRIES_GENERATION {
                request = request
                    .with_generation_id(group.generation_id)
                    .with_member_id(s(&group.member_id))
                    .with_group_instance_id(group.group_instance_id.as_deref().map(s));
            }
            request
        };
        let code = |r: &<TxnOffsetCommitRequest as ApiRequest>::Response| {
            first_error(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            )
        };
        let mut attempt = 0;
        let give_up = self.give_up();
        loop {
            let outcome = async {
                let conn = coordinator.conn().await?;
                let version = conn
                    .version_of::<TxnOffsetCommitRequest>()?
                    .min(TXN_OFFSET_COMMIT_V1_MAX);
                conn.request_at(&request(version), version, conn.socket_timeout())
                    .await
            }
            .await;
            let retry = match outcome {
                Ok(response) => match code(&response) {
                    0 => return Ok(()),
                    c @ (codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE) => {
                        coordinator.lost();
                        coordinator.error("TxnOffsetCommit", c)
                    }
                    c @ (codes::COORDINATOR_LOAD_IN_PROGRESS | CONCURRENT_TRANSACTIONS) => {
                        coordinator.error("TxnOffsetCommit", c)
                    }
                    c if retriable(c) && Instant::now() < give_up => {
                        coordinator.error("TxnOffsetCommit", c)
                    }
                    c => return Err(coordinator.error("TxnOffsetCommit", c)),
                },
                Err(e) if e.is_retriable() => {
                    coordinator.lost();
                    e
                }
                Err(e) => return Err(e),
            };
            tracing::debug!(group = %group.group_id, error = %retry, "TxnOffsetCommit retried");
            tokio::time::sleep(self.backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Sends the request `make` builds for the negotiated version (at most `cap`) to the
    /// transaction coordinator until it is answered without a retriable error: the coordinator
    /// moving or loading, or the previous transaction still completing.
    async fn ask<R: ApiRequest>(
        &self,
        api: &'static str,
        cap: Option<i16>,
        make: impl Fn(i16) -> Result<R, Error>,
        code: impl Fn(&R::Response) -> i16,
    ) -> Result<R::Response, Error> {
        let mut attempt = 0;
        let give_up = self.give_up();
        loop {
            let mut coordinator = self.coordinator.lock().await;
            let outcome = async {
                let conn = coordinator.conn().await?;
                let version = conn.version_of::<R>()?;
                let version = cap.map_or(version, |cap| version.min(cap));
                conn.request_at(&make(version)?, version, conn.socket_timeout())
                    .await
            }
            .await;
            let (retry, pause) = match outcome {
                Ok(response) => match code(&response) {
                    0 => return Ok(response),
                    c @ (codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE) => {
                        coordinator.lost();
                        (coordinator.error(api, c), self.backoff(attempt))
                    }
                    c @ codes::COORDINATOR_LOAD_IN_PROGRESS => {
                        (coordinator.error(api, c), self.backoff(attempt))
                    }
                    c @ CONCURRENT_TRANSACTIONS => (coordinator.error(api, c), CONCURRENT_BACKOFF),
                    c if retriable(c) && Instant::now() < give_up => {
                        (coordinator.error(api, c), self.backoff(attempt))
                    }
                    c => return Err(coordinator.error(api, c)),
                },
                Err(e) if e.is_retriable() => {
                    coordinator.lost();
                    (e, self.backoff(attempt))
                }
                Err(e) => return Err(e),
            };
            drop(coordinator);
            tracing::debug!(transactional_id = %self.id, api, error = %retry, "retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// Until when retriable errors other than the coordinator's moving or loading (a topic
    /// the coordinator does not know yet, a timeout) are retried: a transaction's length.
    /// The coordinator itself, and a cluster out of reach, are waited for as long as the
    /// caller waits.
    fn give_up(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.timeout_ms as u64)
    }

    /// `retry.backoff.ms`, doubling per attempt up to `retry.backoff.max.ms`.
    fn backoff(&self, attempt: u32) -> Duration {
        self.retry_backoff
            .saturating_mul(1 << attempt.min(16))
            .min(self.retry_backoff_max)
    }
}

/// Waits until every record queued or in flight is delivered or failed, sending open batches
/// without waiting for `linger.ms` meanwhile.
async fn flushed(pipeline: &Pipeline) {
    let acc = &pipeline.acc;
    acc.flushing(true);
    loop {
        let drained = acc.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        if acc.pending() == 0 {
            break;
        }
        drained.await;
    }
    acc.flushing(false);
}

/// The producer id and epoch; an error before `init_transactions` completed.
fn producer(pipeline: &Pipeline) -> Result<(i64, i16), Error> {
    pipeline
        .identity
        .as_ref()
        .and_then(|i| i.current())
        .ok_or_else(|| Error::TransactionState {
            call: "transaction",
            state: Phase::Uninitialized.describe(),
        })
}

const CONCURRENT_TRANSACTIONS: i16 = 51;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const TRANSACTION_COORDINATOR_FENCED: i16 = 52;
const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

/// What an error code from the transaction or group coordinator means: as the Java client's
/// handlers take them, being fenced (an old epoch included) or refused for good is fatal.
fn kind_of_coordinator_code(code: i16) -> TxnErrorKind {
    match code {
        PRODUCER_FENCED
        | codes::INVALID_PRODUCER_EPOCH
        | TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        | INVALID_TXN_STATE
        | INVALID_PRODUCER_ID_MAPPING
        | INVALID_TRANSACTION_TIMEOUT
        | TRANSACTION_COORDINATOR_FENCED
        | UNSUPPORTED_FOR_MESSAGE_FORMAT
        | codes::UNSUPPORTED_VERSION
        | CLUSTER_AUTHORIZATION_FAILED => TxnErrorKind::Fatal,
        _ => TxnErrorKind::Abortable,
    }
}

/// What an error code of a record's Produce means, as the Java client takes it: fenced or
/// refused for good is fatal; anything else, an old epoch included (KIP-588: the abort then
/// tells whether the producer was fenced), only ends the transaction.
fn kind_of_produce_code(code: i16) -> TxnErrorKind {
    match code {
        PRODUCER_FENCED
        | TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        | INVALID_PRODUCER_ID_MAPPING
        | codes::UNSUPPORTED_VERSION
        | CLUSTER_AUTHORIZATION_FAILED => TxnErrorKind::Fatal,
        _ => TxnErrorKind::Abortable,
    }
}

/// Whether the protocol calls `code` retriable.
fn retriable(code: i16) -> bool {
    crate::error::KafkaCode::from_code(code).is_some_and(|c| c.is_retriable())
}

/// What an error that ended a transactional call means for the producer.
fn kind_of(error: &Error) -> TxnErrorKind {
    match error {
        Error::Transaction { kind, .. } => *kind,
        Error::Broker {
            api: "Produce",
            code,
            ..
        } => kind_of_produce_code(code.code()),
        Error::Broker { code, .. } => kind_of_coordinator_code(code.code()),
        // The cluster has no transactions, refuses our credentials, or the settings are wrong:
        // no abort helps.
        Error::UnsupportedApi { .. }
        | Error::Authentication { .. }
        | Error::Tls { .. }
        | Error::Config(_)
        | Error::TransactionState { .. }
        | Error::Closed => TxnErrorKind::Fatal,
        _ => TxnErrorKind::Abortable,
    }
}

/// The abortable error of a transaction a record of which failed with its sequence unknown.
pub(crate) fn sequence_unknown() -> Error {
    Error::Transaction {
        call: "produce",
        kind: TxnErrorKind::Abortable,
        cause: Arc::new(Error::TransactionState {
            call: "produce",
            state: "a record failed with its sequence number unknown; abort the transaction \
                    (the abort takes a new producer epoch)"
                .into(),
        }),
    }
}

/// Whether the abort after `error` must bump the epoch (KIP-360): the broker forgot the
/// producer, or a record's sequence is unknown.
fn bumps_epoch(error: &Error) -> bool {
    matches!(
        error.kafka_code().map(|c| c.code()),
        Some(
            codes::UNKNOWN_PRODUCER_ID
                | codes::OUT_OF_ORDER_SEQUENCE_NUMBER
                | codes::INVALID_PRODUCER_EPOCH
        )
    )
}

/// The first error among per-partition codes, a retriable one only when there is no other:
/// OPERATION_NOT_ATTEMPTED marks the partitions held up by another's error.
fn first_error(codes: impl Iterator<Item = i16>) -> i16 {
    const OPERATION_NOT_ATTEMPTED: i16 = 55;
    let mut first = 0;
    for code in codes {
        match code {
            0 | OPERATION_NOT_ATTEMPTED => {}
            CONCURRENT_TRANSACTIONS
            | codes::COORDINATOR_LOAD_IN_PROGRESS
            | codes::NOT_COORDINATOR
            | codes::COORDINATOR_NOT_AVAILABLE => {
                if first == 0 {
                    first = code
                }
            }
            code => return code,
        }
    }
    first
}

fn txn_error(call: &'static str, kind: TxnErrorKind, cause: Error) -> Error {
    match cause {
        // Already classified (a fatal error met again): not wrapped twice.
        Error::Transaction { cause, kind, .. } => Error::Transaction { call, kind, cause },
        cause => Error::Transaction {
            call,
            kind,
            cause: Arc::new(cause),
        },
    }
}

fn timed_out(call: Call, timeout: Duration, waiting_for: &str) -> Error {
    Error::Transaction {
        call: call.name(),
        kind: TxnErrorKind::Retriable,
        cause: Arc::new(Error::Timeout {
            what: format!(
                "{} waiting for {waiting_for}; call it again to go on",
                call.name()
            ),
            after_ms: timeout.as_millis() as u64,
            outcome_unknown: true,
        }),
    }
}

#[cfg(test)]
mod tests;
