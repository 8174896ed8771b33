//! The reading half of a [`Wire`](super::Wire): one task per connection that splits the
//! socket's bytes into response frames, hands each to the request it answers (in order, by
//! correlation id), gives up on answers past their deadline, and, when anything fails, fails
//! every request in flight and closes the socket.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, Mutex, Notify};
use tokio::time::Instant;

use super::{io_error, io_failure, Outstanding, Pending, Reply, Writer, LOOK, READ_BUFFER};
use crate::error::Error;
use crate::protocol::api::api_name;
use crate::protocol::frame;
use crate::stats::BrokerCounters;

/// Reads response frames and hands each to its request, until the socket fails, a frame is
/// wrong, or the wire is poisoned (`stop`). Then it fails every request in flight and closes the
/// socket, taking the write half from `writer` once no request is being written.
pub(super) async fn read_loop<R: AsyncRead + Unpin>(
    mut read: R,
    mut incoming: mpsc::UnboundedReceiver<Pending>,
    max_frame: usize,
    broker: Arc<str>,
    poison: Arc<OnceLock<Error>>,
    (stop, writer, outstanding): (Arc<Notify>, Arc<Mutex<Writer>>, Arc<Outstanding>),
    counters: Option<(Arc<BrokerCounters>, Arc<AtomicI64>)>,
) {
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    let mut answered = false;
    // The requests in flight, oldest first, as taken from `incoming`.
    let mut queue: VecDeque<Pending> = VecDeque::new();
    // When to look at the deadlines next: the earliest one, or [`LOOK`] from now. Re-armed only
    // when something earlier is due: a timer that fires early costs one look.
    let mut armed = Instant::now() + LOOK;
    let look = tokio::time::sleep_until(armed);
    tokio::pin!(look);
    let error = loop {
        match frame::split_frame(&mut buf, max_frame) {
            Ok(Some(mut frame)) => {
                queue.extend(std::iter::from_fn(|| incoming.try_recv().ok()));
                let Some(p) = queue.pop_front() else {
                    break Error::protocol(&*broker, "response received with no request in flight");
                };
                let size = frame.len() + 4;
                match answers(&mut frame, &p) {
                    Ok(()) => {
                        if let Some((c, inflight)) = &counters {
                            c.read(size, p.sent.elapsed());
                            inflight.fetch_sub(1, Ordering::Relaxed);
                        }
                        deliver(frame, p);
                        outstanding.settled();
                        answered = true;
                        continue;
                    }
                    Err(message) => {
                        // Failed after the poison is set, so that it carries the cause.
                        queue.push_front(p);
                        if let Some((c, _)) = &counters {
                            c.rxcorriderrs.fetch_add(1, Ordering::Relaxed);
                        }
                        break Error::protocol(&*broker, message);
                    }
                }
            }
            Ok(None) => {}
            Err(e @ frame::FrameError::TlsRecord(_)) => {
                break Error::Tls {
                    broker: broker.to_string(),
                    message: format!(
                        "{e}; security.protocol is PLAINTEXT or SASL_PLAINTEXT: use SSL or \
                         SASL_SSL with this listener, or a listener without TLS"
                    ),
                }
            }
            Err(e) => break Error::protocol(&*broker, e),
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(READ_BUFFER);
        }
        queue.extend(std::iter::from_fn(|| incoming.try_recv().ok()));
        let now = Instant::now();
        if let Some(due) = queue
            .iter()
            .filter_map(|p| p.due.as_ref())
            .find(|d| d.at <= now)
        {
            if let Some((c, _)) = &counters {
                c.req_timeouts.fetch_add(1, Ordering::Relaxed);
            }
            break Error::Timeout {
                what: format!(
                    "{} v{} to {}",
                    api_name(due.head.api_key),
                    due.head.api_version,
                    broker
                ),
                after_ms: due.after.as_millis() as u64,
                outcome_unknown: true,
            };
        }
        let next = queue
            .iter()
            .filter_map(|p| p.due.as_ref().map(|d| d.at))
            .min();
        let next = next.unwrap_or(now + LOOK);
        if next < armed || look.is_elapsed() {
            armed = next;
            look.as_mut().reset(armed);
        }
        let read = tokio::select! {
            read = read.read_buf(&mut buf) => read,
            // Poisoned: the error is set already.
            _ = stop.notified() => break io_error(&broker, "connection closed"),
            () = &mut look => continue,
        };
        match read {
            Ok(0) => break io_error(&broker, closed_message(&buf)),
            Ok(_) => {}
            Err(e) => {
                if let Some((c, _)) = &counters {
                    c.rxerrs.fetch_add(1, Ordering::Relaxed);
                }
                break io_failure(&broker, e, !answered);
            }
        }
    };
    let _ = poison.set(error);
    if let Some((c, inflight)) = &counters {
        // What was in flight fails with the connection, whose gauge goes with it.
        c.detach(inflight);
    }
    // Every waiting caller sees its reply channel close and reads the poison error, and every
    // completion runs with it.
    drop(queue);
    drop(incoming);
    outstanding.stopped();
    // The socket closes with its write half; a request being written still holds it, and ends
    // soon: its write fails, or its deadline drops it.
    let mut writer = writer.lock().await;
    writer.socket = Box::new(tokio::io::sink());
}

/// Why the broker's end-of-file ends the connection, naming a frame it cut short.
pub(super) fn closed_message(unread: &[u8]) -> String {
    match unread.len() {
        0 => "connection closed by the broker".to_owned(),
        n @ 1..=3 => {
            format!(
                "connection closed by the broker in the middle of a frame size ({n} of 4 bytes)"
            )
        }
        n => format!(
            "connection closed by the broker in the middle of a response frame ({} of {} bytes)",
            n - 4,
            i32::from_be_bytes([unread[0], unread[1], unread[2], unread[3]])
        ),
    }
}

/// Checks that `frame` answers `p` (its correlation id) and strips its response header.
fn answers(frame: &mut Bytes, p: &Pending) -> Result<(), String> {
    let Some(expected) = p.correlation_id else {
        return Ok(());
    };
    let Some(got) = frame::peek_correlation_id(frame) else {
        return Err(format!(
            "response frame of {} bytes is too short for a correlation id",
            frame.len()
        ));
    };
    if got != expected {
        return Err(format!(
            "correlation id mismatch: expected {expected}, got {got}"
        ));
    }
    frame::strip_response_header(frame, p.response_header_version)
}

/// Hands a response body to the request it answers.
fn deliver(body: Bytes, p: Pending) {
    match p.reply {
        // The caller may have given up (timeout); that is not the connection's problem.
        Reply::Caller(reply) => {
            let _ = reply.send(body);
        }
        Reply::Run(completion) => completion.finish(Ok(body)),
    }
}
