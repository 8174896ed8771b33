//! The socket of one broker connection: written by whoever sends a request, read by one task.
//!
//! ```text
//!  Wire::call / submit ── lock the write half ── register (corr id, reply) ──► reader task
//!        │ writev: head + body runs, batches as they are                        ▲ frames
//!        ▼                                                                      │
//!      socket ─────────────────────────────────────────────────────────────► socket
//!                                          reply: a waiting caller, or a completion run here
//! ```
//!
//! A request is written by the task that sends it, under the write half's lock: it numbers the
//! request, tells the reader what to expect *before* it writes the bytes, then writes them with
//! one vectored write, the record batches of a Produce straight from where they were encoded.
//! The reader matches each response frame to the oldest pending request (Kafka answers in order
//! per connection) and checks the correlation id. Its reply goes to a caller waiting in
//! [`Wire::call`], or runs as a [`Completion`] on the reader task itself, which is how the
//! producer settles its batches without another task in between. Reading runs on its own task
//! so a large request never stops responses from being drained.
//!
//! A request submitted with a completion carries its deadline, and the reader gives up on an
//! answer overdue: it looks at the deadlines whenever it wakes, and at least every second, so
//! nothing wakes it per request. A caller waiting in [`Wire::call`] keeps its own time.
//!
//! When anything fails (I/O, a frame over the ceiling, a correlation id out of order, a
//! timeout, a request abandoned half written) the wire is *poisoned*: the first error is kept,
//! the reader stops, and every request in flight fails with that error, marked outcome-unknown.
//! Requests that never reached the socket fail with their outcome known.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Mutex, Notify, OwnedMutexGuard};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::error::Error;
use crate::protocol::api::api_name;
use crate::protocol::frame::{self, Body, RequestHead};
use crate::stats::BrokerCounters;
#[cfg(test)]
use read::closed_message;
use read::read_loop;

mod read;

/// Initial read buffer.
const READ_BUFFER: usize = 64 * 1024;
/// How often the reader looks at the deadlines of the requests in flight when none is due
/// sooner: a request written while it sleeps has its deadline seen within this. Nothing wakes
/// the reader per request, which at low rates would cost a wake-up per record.
const LOOK: Duration = Duration::from_secs(1);
/// On a socket without vectored writes (TLS may lack them), runs smaller than this are
/// gathered into one buffer before they are written, so that a request does not become a
/// write (and a TLS record) per field.
const GATHER: usize = 64 * 1024;

/// What to do with a response body.
enum Reply {
    /// Hand it to the caller waiting in [`Wire::call`].
    Caller(oneshot::Sender<Bytes>),
    /// Run this on the reader task.
    Run(Completion),
}

type OnReply = Box<dyn FnOnce(Result<Bytes, Error>) + Send>;

/// What runs when the answer to a request submitted with [`Wire::submit`] arrives: exactly once,
/// on the reader task, with the response body (its header stripped), or with the connection's
/// error when the connection fails first. It must not block: it runs where responses are read.
pub(crate) struct Completion {
    run: Option<OnReply>,
    broker: Arc<str>,
    poison: Arc<OnceLock<Error>>,
    /// Handed to the socket: if the connection fails now, the broker may have acted on it.
    written: bool,
}

impl Completion {
    fn finish(mut self, outcome: Result<Bytes, Error>) {
        if let Some(run) = self.run.take() {
            run(outcome);
        }
    }
}

impl Drop for Completion {
    /// Dropped unrun: the connection failed (the reader stopped, or never took it).
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            run(Err(failure(&self.broker, &self.poison, self.written)));
        }
    }
}

/// What the reader expects next.
struct Pending {
    correlation_id: Option<i32>,
    response_header_version: i16,
    reply: Reply,
    /// When the reader gives up on the answer, closing the connection; `None` where the caller
    /// keeps its own time ([`Wire::call`]).
    due: Option<Due>,
    /// When it was handed to the reader, just before its bytes went out: the round trip's
    /// start, for the statistics.
    sent: Instant,
}

/// When a request's answer is due, for the reader to give up on it.
struct Due {
    at: Instant,
    head: RequestHead,
    /// How long it was given, for the error.
    after: Duration,
}

/// The write half and what goes with writing: the next correlation id, the reader's queue.
struct Writer {
    socket: Box<dyn AsyncWrite + Send + Unpin>,
    correlation_id: i32,
    pending: mpsc::UnboundedSender<Pending>,
    client_id: StrBytes,
    /// Gathers small runs on a socket without vectored writes.
    gather: Vec<u8>,
}

/// A cloneable handle to one broker socket: its write half, and the task that reads it.
#[derive(Clone)]
pub(crate) struct Wire {
    broker: Arc<str>,
    writer: Arc<Mutex<Writer>>,
    /// The reader's queue, outside the lock, to see whether the reader is still there.
    reader: mpsc::UnboundedSender<Pending>,
    poison: Arc<OnceLock<Error>>,
    tasks: Arc<Tasks>,
    /// The runtime the reader runs on, where [`Wire::try_submit`] finishes a write it began
    /// (its caller may be polled by another executor).
    runtime: tokio::runtime::Handle,
    /// The broker's statistics counters, when statistics are kept, and this connection's
    /// gauge of requests in flight among them.
    counters: Option<(Arc<BrokerCounters>, Arc<AtomicI64>)>,
    outstanding: Arc<Outstanding>,
}

/// How many requests written on the wire await their answers, and a signal when none does:
/// a re-authentication waits for the answers ahead of it before its own requests' time starts.
#[derive(Default)]
pub(super) struct Outstanding {
    count: std::sync::atomic::AtomicUsize,
    idle: Notify,
}

impl Outstanding {
    /// A request with an answer to come is handed to the reader.
    fn sent(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// It was not handed over after all, or its answer came.
    pub(super) fn settled(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// The wire stopped: nothing more will be answered.
    pub(super) fn stopped(&self) {
        self.idle.notify_waiters();
    }
}

/// The reader task: told to stop when the wire is poisoned (it then fails what is in flight
/// and closes the socket), aborted when the last handle goes.
struct Tasks {
    reader: AbortHandle,
    stop: Arc<Notify>,
    /// The task that re-authenticates the connection before its session expires, if any.
    reauth: OnceLock<AbortHandle>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(reauth) = self.reauth.get() {
            reauth.abort();
        }
    }
}

/// A [`Wire`] that does not keep the connection open: the last [`Wire`] dropped closes it,
/// and stops the task that holds this. Only the tasks, whose end closes the socket, are held
/// weakly.
#[derive(Clone)]
pub(crate) struct WeakWire {
    broker: Arc<str>,
    writer: Arc<Mutex<Writer>>,
    reader: mpsc::UnboundedSender<Pending>,
    poison: Arc<OnceLock<Error>>,
    tasks: Weak<Tasks>,
    runtime: tokio::runtime::Handle,
    counters: Option<(Arc<BrokerCounters>, Arc<AtomicI64>)>,
    outstanding: Arc<Outstanding>,
}

impl WeakWire {
    /// The wire, while a handle to it is still held somewhere.
    pub fn upgrade(&self) -> Option<Wire> {
        Some(Wire {
            broker: self.broker.clone(),
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            poison: self.poison.clone(),
            tasks: self.tasks.upgrade()?,
            runtime: self.runtime.clone(),
            counters: self.counters.clone(),
            outstanding: self.outstanding.clone(),
        })
    }
}

/// The write half held for one exchange that no other request may come between
/// (re-authentication, KIP-368): requests sent meanwhile wait their turn, in order, and those
/// already in flight are answered first, as the broker answers in order. Dropped before
/// [`Exclusive::finish`], the exchange was abandoned part way and the connection is closed: the
/// broker would take the next request for a part of it.
pub(crate) struct Exclusive {
    wire: Wire,
    writer: OwnedMutexGuard<Writer>,
    finished: bool,
}

impl Exclusive {
    /// Sends a request and waits for its answer until `deadline`, as [`Wire::call`].
    pub async fn call(
        &mut self,
        head: RequestHead,
        response_header_version: i16,
        body: Body,
        deadline: Instant,
    ) -> Result<Bytes, Error> {
        self.wire
            .call_on(
                Some(&mut self.writer),
                head,
                response_header_version,
                body,
                Some(deadline),
            )
            .await
    }

    /// Waits until every request written before the write half was taken is answered (or the
    /// connection fails): the broker answers in order, so the exchange's first answer would
    /// wait behind theirs, which a JoinGroup or a long-poll Fetch may hold for minutes. (It
    /// takes `&mut self` for `Send`: the held write half is not `Sync`.)
    pub async fn drained(&mut self) {
        let outstanding = &self.wire.outstanding;
        loop {
            let idle = outstanding.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if outstanding.count.load(Ordering::Acquire) == 0 || self.wire.is_closed() {
                return;
            }
            idle.await;
        }
    }

    /// The exchange is complete: other requests may go again.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        if !self.finished {
            self.wire.poison(io_error(
                &self.wire.broker,
                "re-authentication was abandoned part way",
            ));
        }
    }
}

/// Poisons the wire when a write is abandoned part way: the broker has part of a frame, and
/// nothing more can be written after it.
struct WriteGuard<'a> {
    wire: &'a Wire,
    armed: bool,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.wire.poison(io_error(
                &self.wire.broker,
                "a request was abandoned while it was being written",
            ));
        }
    }
}

impl Wire {
    /// Takes over a socket's two halves; `max_frame` is the largest response accepted.
    pub fn spawn<R, W>(
        (read, write): (R, W),
        broker: &str,
        client_id: &str,
        max_frame: usize,
        counters: Option<Arc<BrokerCounters>>,
    ) -> Wire
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let broker: Arc<str> = broker.into();
        let poison = Arc::new(OnceLock::new());
        let (pending_tx, pending_rx) = mpsc::unbounded_channel();
        let writer = Arc::new(Mutex::new(Writer {
            socket: Box::new(write),
            correlation_id: 0,
            pending: pending_tx.clone(),
            client_id: StrBytes::from_string(client_id.to_owned()),
            gather: Vec::new(),
        }));
        let stop = Arc::new(Notify::new());
        let counters = counters.map(|c| {
            let inflight = c.attach();
            (c, inflight)
        });
        let outstanding = Arc::new(Outstanding::default());
        let reader = tokio::spawn(read_loop(
            read,
            pending_rx,
            max_frame,
            broker.clone(),
            poison.clone(),
            (stop.clone(), writer.clone(), outstanding.clone()),
            counters.clone(),
        ));
        Wire {
            broker,
            writer,
            reader: pending_tx,
            poison,
            tasks: Arc::new(Tasks {
                reader: reader.abort_handle(),
                stop,
                reauth: OnceLock::new(),
            }),
            runtime: tokio::runtime::Handle::current(),
            counters,
            outstanding,
        }
    }

    /// The broker address, for errors.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// True once the connection has failed or closed.
    pub fn is_closed(&self) -> bool {
        self.poison.get().is_some() || self.reader.is_closed()
    }

    /// Poisons the connection with `error` and stops it: every request in flight fails.
    pub fn poison(&self, error: Error) {
        let _ = self.poison.set(error);
        self.tasks.stop.notify_one();
    }

    /// Sends a request and returns the response frame with its header stripped, waiting until
    /// `deadline` at most. On expiry the broker may still answer, so the connection cannot be
    /// trusted to stay in step: it is closed, as the Java client does, and the requests in
    /// flight on it fail. The timeout's outcome is unknown only if the request was written.
    ///
    /// Cancel-safe in the sense that matters: dropped before its bytes go out, nothing is sent;
    /// dropped while they are going out, the connection is closed (half a frame cannot be taken
    /// back); dropped after, the answer is read and dropped.
    pub async fn call(
        &self,
        head: RequestHead,
        response_header_version: i16,
        body: Body,
        deadline: Option<Instant>,
    ) -> Result<Bytes, Error> {
        self.call_on(None, head, response_header_version, body, deadline)
            .await
    }

    /// As [`Wire::call`], on the write half `held` when the caller holds it already
    /// ([`Exclusive`]).
    async fn call_on(
        &self,
        held: Option<&mut Writer>,
        head: RequestHead,
        response_header_version: i16,
        body: Body,
        deadline: Option<Instant>,
    ) -> Result<Bytes, Error> {
        let (reply, rx) = oneshot::channel();
        let now = Instant::now();
        let pending = Pending {
            correlation_id: None,
            response_header_version,
            reply: Reply::Caller(reply),
            due: None,
            sent: now,
        };
        let started = AtomicBool::new(false);
        let given = deadline.map(|d| d.saturating_duration_since(now));
        let exchange = async {
            match held {
                Some(w) => {
                    self.write_locked(
                        w,
                        Duration::ZERO,
                        Some(head),
                        &body,
                        Some(pending),
                        &started,
                    )
                    .await?
                }
                None => {
                    self.write(Some(head), &body, Some(pending), &started)
                        .await?
                }
            }
            rx.await.map_err(|_| self.failure(true))
        };
        match deadline {
            None => exchange.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, exchange).await {
                Ok(result) => result,
                Err(_) => {
                    let given = given.unwrap_or_default();
                    Err(self.timed_out(head, given, started.load(Ordering::Relaxed)))
                }
            },
        }
    }

    /// Holds the write half for an exchange nothing may come between (see [`Exclusive`]),
    /// once the request being written, if any, is out.
    pub async fn exclusive(&self) -> Exclusive {
        Exclusive {
            wire: self.clone(),
            writer: self.writer.clone().lock_owned().await,
            finished: false,
        }
    }

    /// A handle that does not keep the connection open.
    pub fn downgrade(&self) -> WeakWire {
        WeakWire {
            broker: self.broker.clone(),
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            poison: self.poison.clone(),
            tasks: Arc::downgrade(&self.tasks),
            runtime: self.runtime.clone(),
            counters: self.counters.clone(),
            outstanding: self.outstanding.clone(),
        }
    }

    /// Counts a re-authentication in the broker's statistics, when they are kept.
    pub fn reauthenticated(&self) {
        if let Some((c, _)) = &self.counters {
            c.reauths.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands the re-authentication task to the connection, to be stopped when the connection
    /// is dropped.
    pub fn adopt_reauth(&self, task: AbortHandle) {
        if let Err(task) = self.tasks.reauth.set(task) {
            task.abort();
        }
    }

    /// Sends a raw SASL token (v0 handshake) and returns the raw answer.
    pub async fn call_raw(&self, token: Bytes) -> Result<Bytes, Error> {
        let (reply, rx) = oneshot::channel();
        let pending = Pending {
            correlation_id: None,
            response_header_version: 0,
            reply: Reply::Caller(reply),
            due: None,
            sent: Instant::now(),
        };
        let started = AtomicBool::new(false);
        self.write(None, &token.into(), Some(pending), &started)
            .await?;
        rx.await.map_err(|_| self.failure(true))
    }

    /// Sends a request the broker does not answer (Produce with acks=0); returns once written,
    /// or fails at `deadline` (closing the connection, as [`Wire::call`] does).
    pub async fn send(
        &self,
        head: RequestHead,
        body: Body,
        deadline: Instant,
    ) -> Result<(), Error> {
        let started = AtomicBool::new(false);
        let given = deadline.saturating_duration_since(Instant::now());
        let write = self.write(Some(head), &body, None, &started);
        match tokio::time::timeout_at(deadline, write).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out(head, given, started.load(Ordering::Relaxed))),
        }
    }

    /// Writes a request whose answer `on_reply` takes, on the reader task (see [`Completion`]).
    /// `on_reply` runs exactly once, also when the request cannot be written. The answer is
    /// due by `deadline`: the reader gives up on it then, closing the connection, and so does
    /// a write still going on.
    ///
    /// Not for `select!`: dropped while its bytes go out, the connection is closed.
    pub async fn submit(
        &self,
        head: RequestHead,
        response_header_version: i16,
        body: Body,
        deadline: Instant,
        on_reply: impl FnOnce(Result<Bytes, Error>) + Send + 'static,
    ) {
        let given = deadline.saturating_duration_since(Instant::now());
        let pending = self.expecting(head, response_header_version, deadline, on_reply);
        let started = AtomicBool::new(false);
        // A failure reaches `on_reply` through the pending entry, dropped unrun: after the
        // poison is set, so that it carries the cause.
        let write = self.write(Some(head), &body, Some(pending), &started);
        tokio::pin!(write);
        tokio::select! {
            _ = &mut write => {}
            _ = tokio::time::sleep_until(deadline) => {
                self.timed_out(head, given, started.load(Ordering::Relaxed));
            }
        }
    }

    /// As [`Wire::submit`], without waiting: when no other request is being written this
    /// moment, the request is registered and written as far as the socket takes it now, and a
    /// task of its own writes the rest, if any (the socket's buffer was full). When another
    /// request is being written, `on_reply` comes back untouched, to be submitted the waiting
    /// way. A caller that must not await (or be cancelled half way) sends with this.
    pub fn try_submit<F>(
        &self,
        head: RequestHead,
        response_header_version: i16,
        body: &Body,
        deadline: Instant,
        on_reply: F,
    ) -> Result<(), F>
    where
        F: FnOnce(Result<Bytes, Error>) + Send + 'static,
    {
        let Ok(mut w) = self.writer.clone().try_lock_owned() else {
            return Err(on_reply);
        };
        let mut pending = self.expecting(head, response_header_version, deadline, on_reply);
        if self.poison.get().is_some() {
            refuse(Some(pending), self.failure(false));
            return Ok(());
        }
        let id = w.correlation_id.wrapping_add(1);
        let prefix = match frame::encode_request_head(head, id, &w.client_id, body.len()) {
            Ok(prefix) => prefix,
            Err(e) => {
                refuse(Some(pending), Error::protocol(&*self.broker, e));
                return Ok(());
            }
        };
        w.correlation_id = id;
        note_correlation_id(id);
        pending.correlation_id = Some(id);
        if self.counters.is_some() {
            pending.sent = Instant::now();
        }
        if let Reply::Run(completion) = &mut pending.reply {
            completion.written = true;
        }
        let waiting = self
            .counters
            .as_ref()
            .map(|(_, inflight)| Gauge::up(inflight));
        self.outstanding.sent();
        if let Err(mpsc::error::SendError(refused)) = w.pending.send(pending) {
            self.outstanding.settled();
            refuse(Some(refused), self.failure(false));
            return Ok(());
        }
        std::mem::forget(waiting);
        if let Some((c, _)) = &self.counters {
            c.written(head.api_key, prefix.len() + body.len(), Duration::ZERO);
        }
        let mut runs: VecDeque<Bytes> = VecDeque::with_capacity(body.parts().len() + 1);
        runs.push_back(prefix.freeze());
        runs.extend(body.parts().iter().cloned());
        if !w.socket.is_write_vectored() {
            // One buffer, not a write (and a TLS record) per run.
            let whole: BytesMut = runs.drain(..).fold(BytesMut::new(), |mut all, run| {
                all.extend_from_slice(&run);
                all
            });
            runs.push_back(whole.freeze());
        }
        match write_now(&mut *w.socket, &mut runs) {
            Err(e) => self.poison(io_failure(&self.broker, e, false)),
            Ok(true) => {}
            Ok(false) => {
                // The socket took part of it: the rest goes from a task that holds the write
                // half meanwhile, so nothing can come between.
                let wire = self.clone();
                self.runtime.spawn(async move {
                    let mut guard = WriteGuard {
                        wire: &wire,
                        armed: true,
                    };
                    let Writer { socket, gather, .. } = &mut *w;
                    let rest: Vec<Bytes> = runs.into();
                    let finish = async {
                        write_runs(socket, gather, &[], &rest).await?;
                        socket.flush().await
                    };
                    match tokio::time::timeout_at(deadline, finish).await {
                        Ok(Ok(())) => guard.armed = false,
                        Ok(Err(e)) => {
                            guard.armed = false;
                            wire.poison(io_failure(&wire.broker, e, false));
                        }
                        // The guard closes the connection.
                        Err(_) => {}
                    }
                });
            }
        }
        Ok(())
    }

    /// The reader's entry for a request whose answer `on_reply` takes, due by `deadline`.
    fn expecting(
        &self,
        head: RequestHead,
        response_header_version: i16,
        deadline: Instant,
        on_reply: impl FnOnce(Result<Bytes, Error>) + Send + 'static,
    ) -> Pending {
        let completion = Completion {
            run: Some(Box::new(on_reply)),
            broker: self.broker.clone(),
            poison: self.poison.clone(),
            written: false,
        };
        let now = Instant::now();
        Pending {
            correlation_id: None,
            response_header_version,
            reply: Reply::Run(completion),
            due: Some(Due {
                at: deadline,
                head,
                after: deadline.saturating_duration_since(now),
            }),
            sent: now,
        }
    }

    /// The error for a request given up on after the time it was `given`, which closes the
    /// connection.
    fn timed_out(&self, head: RequestHead, given: Duration, written: bool) -> Error {
        let error = Error::Timeout {
            what: format!(
                "{} v{} to {}",
                api_name(head.api_key),
                head.api_version,
                self.broker
            ),
            // To the nearest millisecond: `given` was measured just after the deadline was set.
            after_ms: (given.as_micros() as u64 + 500) / 1000,
            outcome_unknown: written,
        };
        if let Some((c, _)) = &self.counters {
            c.req_timeouts.fetch_add(1, Ordering::Relaxed);
        }
        self.poison(error.clone());
        error
    }

    /// Writes one request; `pending` (for requests with an answer) is registered with the
    /// reader before the first byte goes out. `started` is set when the bytes start to go.
    async fn write(
        &self,
        head: Option<RequestHead>,
        body: &Body,
        pending: Option<Pending>,
        started: &AtomicBool,
    ) -> Result<(), Error> {
        let (mut w, waited) = match &self.counters {
            None => (self.writer.lock().await, Duration::ZERO),
            Some((c, _)) => {
                let queued = Instant::now();
                // Dropped while waiting, the gauge comes down all the same.
                let _waiting = Gauge::up(&c.outbuf);
                (self.writer.lock().await, queued.elapsed())
            }
        };
        self.write_locked(&mut w, waited, head, body, pending, started)
            .await
    }

    /// As [`Wire::write`], on the write half `w` the caller holds, after waiting `waited` for
    /// it.
    async fn write_locked(
        &self,
        w: &mut Writer,
        waited: Duration,
        head: Option<RequestHead>,
        body: &Body,
        pending: Option<Pending>,
        started: &AtomicBool,
    ) -> Result<(), Error> {
        if self.poison.get().is_some() {
            return Err(refuse(pending, self.failure(false)));
        }
        let (prefix, correlation_id) = match head {
            Some(head) => {
                let id = w.correlation_id.wrapping_add(1);
                let prefix = match frame::encode_request_head(head, id, &w.client_id, body.len()) {
                    Ok(prefix) => prefix,
                    Err(e) => return Err(refuse(pending, Error::protocol(&*self.broker, e))),
                };
                w.correlation_id = id;
                note_correlation_id(id);
                (prefix, Some(id))
            }
            None => {
                let mut prefix = BytesMut::with_capacity(4);
                prefix.extend_from_slice(&(body.len() as i32).to_be_bytes());
                (prefix, None)
            }
        };
        if let Some(mut pending) = pending {
            pending.correlation_id = correlation_id;
            if self.counters.is_some() {
                pending.sent = Instant::now();
            }
            if let Reply::Run(completion) = &mut pending.reply {
                completion.written = true;
            }
            // Counted before the reader can see it, and so before it can count the answer.
            let waiting = self
                .counters
                .as_ref()
                .map(|(_, inflight)| Gauge::up(inflight));
            self.outstanding.sent();
            if let Err(mpsc::error::SendError(refused)) = w.pending.send(pending) {
                // The reader stopped: the connection failed, and this request never went.
                self.outstanding.settled();
                return Err(refuse(Some(refused), self.failure(false)));
            }
            // The reader brings it down with the answer, or with the connection.
            std::mem::forget(waiting);
        }
        started.store(true, Ordering::Relaxed);
        let mut guard = WriteGuard {
            wire: self,
            armed: true,
        };
        let Writer { socket, gather, .. } = w;
        let written = write_runs(socket, gather, &prefix, body.parts()).await;
        let written = match written {
            Ok(()) => socket.flush().await,
            Err(e) => Err(e),
        };
        guard.armed = false;
        if let Some((c, _)) = &self.counters {
            match &written {
                Ok(()) => {
                    let key = head.map_or(-1, |h| h.api_key);
                    c.written(key, prefix.len() + body.len(), waited);
                }
                Err(_) => {
                    c.txerrs.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        written.map_err(|e| {
            let error = io_failure(&self.broker, e, false);
            self.poison(error.clone());
            self.failure(true)
        })
    }

    /// The error for a request that the failed connection did not answer: the connection's
    /// cause, with this request's own outcome (`written`: it may have reached the broker).
    fn failure(&self, written: bool) -> Error {
        failure(&self.broker, &self.poison, written)
    }
}

/// A request that was not written fails with `error`: its completion, if it has one, runs with
/// it now. Returns the error, for the caller.
fn refuse(pending: Option<Pending>, error: Error) -> Error {
    if let Some(Pending {
        reply: Reply::Run(completion),
        ..
    }) = pending
    {
        completion.finish(Err(error.clone()));
    }
    error
}

/// The error of a request on a connection that failed with `poison` (if it did); `written`:
/// the request may have reached the broker.
fn failure(broker: &str, poison: &OnceLock<Error>, written: bool) -> Error {
    let broker = broker.to_owned();
    match poison.get() {
        // The TLS session failed (a refused certificate, an alert, a TLS listener): every
        // request on it fails as the connection did; none reached the broker's Kafka layer.
        Some(tls @ Error::Tls { .. }) => tls.clone(),
        Some(Error::Io { message, .. }) => Error::Io {
            broker,
            message: message.clone(),
            outcome_unknown: written,
        },
        Some(cause) => Error::Disconnected {
            broker,
            cause: Arc::new(cause.clone()),
            outcome_unknown: written,
        },
        None => Error::Io {
            broker,
            message: "connection closed".to_owned(),
            outcome_unknown: written,
        },
    }
}

/// Writes `prefix`, then `runs`, all of them: with vectored writes where the socket has them,
/// so record batches go from where they were encoded to the kernel; otherwise runs smaller than
/// [`GATHER`] are gathered into `gather` first.
async fn write_runs(
    socket: &mut (dyn AsyncWrite + Send + Unpin),
    gather: &mut Vec<u8>,
    prefix: &[u8],
    runs: &[Bytes],
) -> std::io::Result<()> {
    if socket.is_write_vectored() {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(runs.len() + 1);
        slices.push(IoSlice::new(prefix));
        slices.extend(runs.iter().map(|run| IoSlice::new(run)));
        let mut left = &mut slices[..];
        while !left.is_empty() {
            let n = socket.write_vectored(left).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut left, n);
        }
        return Ok(());
    }
    gather.clear();
    gather.extend_from_slice(prefix);
    for run in runs {
        if run.len() >= GATHER {
            socket.write_all(gather).await?;
            gather.clear();
            socket.write_all(run).await?;
        } else {
            if gather.len() + run.len() > GATHER {
                socket.write_all(gather).await?;
                gather.clear();
            }
            gather.extend_from_slice(run);
        }
    }
    socket.write_all(gather).await?;
    gather.clear();
    Ok(())
}

/// Writes what `socket` takes of `runs` without waiting, dropping what was written from
/// `runs`, flushing when all went; true when all went and was flushed.
fn write_now(
    socket: &mut (dyn AsyncWrite + Send + Unpin),
    runs: &mut VecDeque<Bytes>,
) -> std::io::Result<bool> {
    let mut cx = Context::from_waker(nothing_to_wake());
    while !runs.is_empty() {
        let written = {
            let slices: Vec<IoSlice<'_>> = runs.iter().map(|run| IoSlice::new(run)).collect();
            Pin::new(&mut *socket).poll_write_vectored(&mut cx, &slices)
        };
        let mut n = match written {
            Poll::Ready(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok(false),
        };
        while n > 0 {
            let front = runs.front_mut().expect("written from these runs");
            if front.len() <= n {
                n -= front.len();
                runs.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
    match Pin::new(socket).poll_flush(&mut cx) {
        Poll::Ready(Ok(())) => Ok(true),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Ok(false),
    }
}

/// The waker of a poll made once, not to be woken: [`write_now`] does not wait, and whoever
/// writes next polls with its own.
fn nothing_to_wake() -> &'static Waker {
    struct Nothing;
    impl Wake for Nothing {
        fn wake(self: Arc<Self>) {}
    }
    static NOTHING: OnceLock<Waker> = OnceLock::new();
    NOTHING.get_or_init(|| Waker::from(Arc::new(Nothing)))
}

/// The error for the socket's I/O failure; `first` says the broker had answered nothing yet on
/// this connection. On TLS, a certificate or alert failure is told apart (`tls::tls_error`).
#[cfg_attr(not(feature = "tls"), allow(unused_variables))]
fn io_failure(broker: &str, error: std::io::Error, first: bool) -> Error {
    #[cfg(feature = "tls")]
    if let Some(tls) = super::tls::tls_error(broker, &error, first) {
        return tls;
    }
    io_error(broker, error)
}

fn io_error(broker: &str, message: impl std::fmt::Display) -> Error {
    Error::Io {
        broker: broker.to_owned(),
        message: message.to_string(),
        outcome_unknown: true,
    }
}

#[cfg(test)]
mod tests;

/// Names the correlation id in the request's span (`Connection::span`), when that span is the
/// current one: disabled, the current span is the caller's, which may have a field of the same
/// name that is none of ours.
fn note_correlation_id(id: i32) {
    let span = tracing::Span::current();
    if span
        .metadata()
        .is_some_and(|m| m.target() == super::REQUEST_SPAN_TARGET)
    {
        span.record("correlation_id", id);
    }
}

/// A gauge held up while this lives.
struct Gauge<'a>(&'a AtomicI64);

impl<'a> Gauge<'a> {
    fn up(gauge: &'a AtomicI64) -> Gauge<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        Gauge(gauge)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
