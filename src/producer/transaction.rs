//! The transactional producer: its state, the calls that move it, and what the sinks ask of it.
//!
//! ```text
//!  Uninitialized ─init_transactions─► Ready ─begin_transaction─► InTransaction ─┐
//!        (FindCoordinator, InitProducerId)  ▲                      │ records: their partitions
//!                                           │                      │ are added before a batch goes
//!                                           │                      │ (v1: AddPartitionsToTxn)
//!                                           │                      │ send_offsets_to_transaction:
//!                                           │                      │ (v1: AddOffsetsToTxn), TxnOffsetCommit
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
//! What is asked of the coordinators, and retried, is in [`requests`]; what each error means
//! (fatal, abortable, retriable) in [`errors`].
//!
//! Transaction protocol v1 (AddPartitionsToTxn before a partition's first batch, the epoch kept
//! across transactions) serves every broker from 2.4 on; EndTxn, TxnOffsetCommit and Produce are
//! then kept below their v2 versions, which would change what the broker does. Where the
//! cluster's `transaction.version` is 2 or more (Kafka 4.0 and later, by default), protocol v2
//! (KIP-890) is spoken instead: partitions and offsets join the transaction through Produce v12
//! and TxnOffsetCommit v5 alone, and each EndTxn (v5) bumps the epoch, which also ends a
//! zombie's chance to write into the next transaction. The choice is made at each
//! InitProducerId ([`requests`]).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

pub(crate) use errors::sequence_unknown;
use errors::{bumps_epoch, kind_of, kind_of_produce_code, timed_out, txn_error};

use super::accumulator::Accumulator;
use super::sink::Pipeline;
use crate::cluster::{ClientEvent, Cluster};
use crate::config::ProducerConfig;
use crate::error::{Error, TxnErrorKind};
use crate::group::coordinator::Coordinator;
use crate::group::ConsumerGroupMetadata;

/// The last versions of transaction protocol v1: the next ones are v2's (KIP-890).
const PRODUCE_V1_MAX: i16 = 11;
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
    /// Transaction protocol v2 (KIP-890): the cluster has it on, as the coordinator said when
    /// it gave the producer id.
    v2: bool,
    /// When the last EndTxn was answered, until the next transaction's first request has
    /// looked whether that one completed.
    ended_at: Option<Instant>,
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
    /// The call running as a task, if any.
    running: tokio::sync::Mutex<Option<Running>>,
    /// Held while partitions are being added, so that sinks add them once.
    adding: tokio::sync::Mutex<()>,
    /// The cluster, to report a fatal error to the application's [`ClientEvent`]s.
    cluster: Cluster,
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
                cluster.clone(),
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
                v2: false,
                ended_at: None,
            }),
            running: tokio::sync::Mutex::new(None),
            adding: tokio::sync::Mutex::new(()),
            cluster,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// librdkafka's name for the transaction's state, and whether records may be sent now.
    pub fn statistics(&self) -> (&'static str, bool) {
        match self.state().phase {
            Phase::Uninitialized => ("Init", false),
            Phase::Initializing => ("WaitPID", false),
            Phase::Ready => ("Ready", false),
            Phase::InTransaction => ("InTransaction", true),
            Phase::Committing => ("CommittingTransaction", false),
            Phase::Aborting => ("AbortingTransaction", false),
            Phase::Abortable(_) => ("AbortableError", false),
            Phase::Fatal(_) => ("FatalError", false),
        }
    }

    fn set_phase(&self, phase: Phase) {
        self.state().phase = phase;
    }

    /// Whether a record may be sent now; the error to give it when not. Asked before a record
    /// waits for its topic's metadata, so that one sent outside a transaction is refused at
    /// once; the accumulator checks again under its own lock when it takes the record.
    pub fn check_produce(&self) -> Result<(), Error> {
        match &self.state().phase {
            Phase::InTransaction => Ok(()),
            other => Err(self.refusal("produce", other)),
        }
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
                Ok(())
            }
            ref other => Err(self.refusal("begin_transaction", other)),
        }
    }

    /// The Produce version to send a transaction's batches with to `broker`, given the one
    /// negotiated with it: v1's last at most, unless the producer speaks v2, where only v12 and
    /// later have the leader add the partition. Under v2 a leader without v12 (a cluster half
    /// upgraded) is refused: its batch would be written outside the transaction.
    pub fn produce_version(&self, broker: &str, negotiated: i16) -> Result<i16, Error> {
        match self.state().v2 {
            true if negotiated <= PRODUCE_V1_MAX => Err(Error::UnsupportedApi {
                broker: broker.to_owned(),
                api: "Produce",
                ours: format!(
                    "v{} and later (transaction protocol v2, which the transaction \
                     coordinator has on)",
                    PRODUCE_V1_MAX + 1
                ),
            }),
            true => Ok(negotiated),
            false => Ok(negotiated.min(PRODUCE_V1_MAX)),
        }
    }

    /// Whether a Produce error code means the producer cannot go on.
    pub fn is_fatal_code(&self, code: i16) -> bool {
        kind_of_produce_code(code) == TxnErrorKind::Fatal
    }

    /// The producer cannot go on: every later call fails with `cause`, and the records not
    /// sent yet are purged ([`Error::Purged`]) rather than wait out `delivery.timeout.ms`.
    pub fn fatal(&self, acc: &Accumulator, call: &'static str, cause: Error) {
        tracing::warn!(transactional_id = %self.id, call, error = %cause, "transactional producer failed for good");
        // Checked and set under one lock: several sinks may find the producer fenced at once,
        // and the application hears of it once.
        let first = {
            let mut state = self.state();
            let first = !matches!(state.phase, Phase::Fatal(_));
            state.phase = Phase::Fatal(cause.clone());
            first
        };
        if first {
            let error = txn_error(call, TxnErrorKind::Fatal, cause);
            self.cluster.report(ClientEvent::Fatal(error));
        }
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
        }
        pipeline.acc.close_transaction();
        let pipeline = pipeline.clone();
        Ok(async move {
            let txn = pipeline.txn.as_ref().expect("transactional");
            // Every record of the transaction is delivered, or has failed, first; and no
            // partition is still being added.
            pipeline.acc.wait_drained().await;
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
        }
        pipeline.acc.close_transaction();
        let pipeline = pipeline.clone();
        Ok(async move {
            let txn = pipeline.txn.as_ref().expect("transactional");
            // Records not sent yet never will be; those in flight finish first, so that none
            // is written after the abort marker.
            pipeline.acc.purge();
            pipeline.acc.wait_drained().await;
            // A partition being added now is in the transaction at the coordinator: wait, so
            // that `started` says whether EndTxn is needed.
            let _adding = txn.adding.lock().await;
            let broken = pipeline
                .identity
                .as_ref()
                .is_some_and(|i| i.sequence_was_broken());
            let (bump, started) = {
                let state = txn.state();
                (broken || state.bump, state.started)
            };
            let mut renewed = false;
            if started {
                match txn.end(&pipeline, false).await {
                    Ok(new_epoch) => renewed = new_epoch,
                    Err(e) => return Err(txn.failed(&pipeline.acc, Call::Abort, e)),
                }
            }
            // Under v2 the EndTxn that ended it gave the new epoch already.
            if bump && !renewed {
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
}

mod errors;
mod requests;
#[cfg(test)]
mod tests;
