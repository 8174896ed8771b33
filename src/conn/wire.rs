//! The socket of one broker connection, owned by two tasks.
//!
//! ```text
//!  Wire::call ──mpsc──► writer task ──(corr id, reply)──► reader task ──► reply oneshot
//!                          │ head + body bytes                ▲ frames
//!                          ▼                                  │
//!                        socket ───────────────────────────► socket
//! ```
//!
//! The writer numbers each request, tells the reader what to expect *before* it writes the bytes,
//! then writes them; the reader matches each response frame to the oldest pending request (Kafka
//! answers in order per connection) and checks the correlation id. Writing and reading run in
//! separate tasks so a large request never stops responses from being drained.
//!
//! When anything fails (I/O, a frame over the ceiling, a correlation id out of order, a timeout)
//! the wire is *poisoned*: the first error is kept, both tasks stop, and every request in flight
//! fails with that error, marked outcome-unknown.

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::error::Error;
use crate::protocol::frame::{self, Body, RequestHead};

/// Requests queued for the writer before senders wait.
const QUEUE: usize = 256;
/// Write buffer: small requests are coalesced; larger writes go straight to the socket.
const WRITE_BUFFER: usize = 64 * 1024;
/// Initial read buffer.
const READ_BUFFER: usize = 64 * 1024;

type Reply = oneshot::Sender<Bytes>;

/// One request for the writer.
struct Outgoing {
    /// The Kafka request head, or `None` for a raw SASL token (v0 handshake), sent without header.
    head: Option<RequestHead>,
    /// Response header version, when a response is expected.
    response_header_version: i16,
    body: Body,
    /// Where the response body goes; `None` when the broker sends no response (acks=0).
    reply: Option<Reply>,
    /// Told once the bytes are written, for requests without a response.
    written: Option<oneshot::Sender<()>>,
}

/// What the reader expects next.
struct Pending {
    correlation_id: Option<i32>,
    response_header_version: i16,
    reply: Reply,
}

/// A cloneable handle to the two tasks that own one broker socket.
#[derive(Clone)]
pub(crate) struct Wire {
    broker: Arc<str>,
    tx: mpsc::Sender<Outgoing>,
    poison: Arc<OnceLock<Error>>,
    tasks: Arc<Tasks>,
}

/// Aborts both tasks when the last handle goes.
struct Tasks([AbortHandle; 2]);

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.iter().for_each(AbortHandle::abort);
    }
}

impl Wire {
    /// Takes over a socket's two halves; `max_frame` is the largest response accepted.
    pub fn spawn<R, W>(
        (read, write): (R, W),
        broker: &str,
        client_id: &str,
        max_frame: usize,
    ) -> Wire
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let broker: Arc<str> = broker.into();
        let poison = Arc::new(OnceLock::new());
        let (tx, rx) = mpsc::channel(QUEUE);
        let (pending_tx, pending_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(
            read,
            pending_rx,
            max_frame,
            broker.clone(),
            poison.clone(),
        ));
        let writer = tokio::spawn(write_loop(
            write,
            rx,
            pending_tx,
            StrBytes::from_string(client_id.to_owned()),
            broker.clone(),
            poison.clone(),
        ));
        let handles = [reader.abort_handle(), writer.abort_handle()];
        let stop = handles.clone();
        // When either task ends, the other must not outlive it.
        tokio::spawn(async move {
            let (mut reader, mut writer) = (reader, writer);
            tokio::select! {
                _ = &mut reader => {}
                _ = &mut writer => {}
            }
            stop.iter().for_each(AbortHandle::abort);
        });
        Wire {
            broker,
            tx,
            poison,
            tasks: Arc::new(Tasks(handles)),
        }
    }

    /// The broker address, for errors.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// True once the connection has failed or closed.
    pub fn is_closed(&self) -> bool {
        self.poison.get().is_some() || self.tx.is_closed()
    }

    /// Poisons the connection with `error` and stops it: every request in flight fails.
    pub fn poison(&self, error: Error) {
        let _ = self.poison.set(error);
        self.tasks.0.iter().for_each(AbortHandle::abort);
    }

    /// Sends a request and returns the response frame with its header stripped.
    pub async fn call(
        &self,
        head: RequestHead,
        response_header_version: i16,
        body: Body,
    ) -> Result<Bytes, Error> {
        self.exchange(Some(head), response_header_version, body)
            .await
    }

    /// Sends a raw SASL token (v0 handshake) and returns the raw answer.
    pub async fn call_raw(&self, token: Bytes) -> Result<Bytes, Error> {
        self.exchange(None, 0, token.into()).await
    }

    async fn exchange(
        &self,
        head: Option<RequestHead>,
        response_header_version: i16,
        body: Body,
    ) -> Result<Bytes, Error> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(Outgoing {
            head,
            response_header_version,
            body,
            reply: Some(reply),
            written: None,
        })
        .await?;
        rx.await.map_err(|_| self.failure(true))
    }

    /// Sends a request the broker does not answer (Produce with acks=0); returns once written.
    pub async fn send(&self, head: RequestHead, body: Body) -> Result<(), Error> {
        let (written, rx) = oneshot::channel();
        self.enqueue(Outgoing {
            head: Some(head),
            response_header_version: 0,
            body,
            reply: None,
            written: Some(written),
        })
        .await?;
        rx.await.map_err(|_| self.failure(true))
    }

    async fn enqueue(&self, out: Outgoing) -> Result<(), Error> {
        if self.poison.get().is_some() {
            return Err(self.failure(false));
        }
        self.tx.send(out).await.map_err(|_| self.failure(false))
    }

    /// The error for a request that the failed connection did not answer: the connection's
    /// cause, with this request's own outcome (`written`: it may have reached the broker).
    fn failure(&self, written: bool) -> Error {
        let broker = self.broker.to_string();
        match self.poison.get() {
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

async fn write_loop<W: AsyncWrite + Unpin>(
    write: W,
    mut rx: mpsc::Receiver<Outgoing>,
    pending: mpsc::UnboundedSender<Pending>,
    client_id: StrBytes,
    broker: Arc<str>,
    poison: Arc<OnceLock<Error>>,
) {
    let mut socket = BufWriter::with_capacity(WRITE_BUFFER, write);
    let mut correlation_id: i32 = 0;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Write everything queued, then flush once.
        while let Some(out) = next {
            if let Err(e) =
                write_one(&mut socket, out, &mut correlation_id, &pending, &client_id).await
            {
                let _ = poison.set(e.into_error(&broker));
                return;
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = socket.flush().await {
            let _ = poison.set(io_failure(&broker, e, false));
            return;
        }
    }
}

enum WriteError {
    Io(std::io::Error),
    Encode(String),
    ReaderGone,
}

impl WriteError {
    fn into_error(self, broker: &str) -> Error {
        match self {
            WriteError::Io(e) => io_failure(broker, e, false),
            WriteError::Encode(e) => Error::protocol(broker, e),
            WriteError::ReaderGone => io_error(broker, "connection closed"),
        }
    }
}

async fn write_one<W: AsyncWrite + Unpin>(
    socket: &mut BufWriter<W>,
    out: Outgoing,
    correlation_id: &mut i32,
    pending: &mpsc::UnboundedSender<Pending>,
    client_id: &StrBytes,
) -> Result<(), WriteError> {
    let (prefix, corr) = match out.head {
        Some(head) => {
            *correlation_id = correlation_id.wrapping_add(1);
            let prefix =
                frame::encode_request_head(head, *correlation_id, client_id, out.body.len())
                    .map_err(WriteError::Encode)?;
            (prefix, Some(*correlation_id))
        }
        None => {
            let mut prefix = BytesMut::with_capacity(4);
            prefix.extend_from_slice(&(out.body.len() as i32).to_be_bytes());
            (prefix, None)
        }
    };
    if let Some(reply) = out.reply {
        pending
            .send(Pending {
                correlation_id: corr,
                response_header_version: out.response_header_version,
                reply,
            })
            .map_err(|_| WriteError::ReaderGone)?;
    }
    socket.write_all(&prefix).await.map_err(WriteError::Io)?;
    // Large runs (record batches) bypass the write buffer and go to the socket as they are;
    // small ones are gathered into it.
    for part in out.body.parts() {
        socket.write_all(part).await.map_err(WriteError::Io)?;
    }
    if let Some(written) = out.written {
        socket.flush().await.map_err(WriteError::Io)?;
        let _ = written.send(());
    }
    Ok(())
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut read: R,
    mut pending: mpsc::UnboundedReceiver<Pending>,
    max_frame: usize,
    broker: Arc<str>,
    poison: Arc<OnceLock<Error>>,
) {
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    let mut answered = false;
    let error = loop {
        match frame::split_frame(&mut buf, max_frame) {
            Ok(Some(frame)) => match deliver(frame, &mut pending) {
                Ok(()) => {
                    answered = true;
                    continue;
                }
                Err(message) => break Error::protocol(&*broker, message),
            },
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
        match read.read_buf(&mut buf).await {
            Ok(0) => break io_error(&broker, closed_message(&buf)),
            Ok(_) => {}
            Err(e) => break io_failure(&broker, e, !answered),
        }
    };
    let _ = poison.set(error);
    // Returning drops `pending`: every waiting caller sees its reply channel close and reads the
    // poison error.
}

/// Why the broker's end-of-file ends the connection, naming a frame it cut short.
fn closed_message(unread: &[u8]) -> String {
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

fn deliver(mut frame: Bytes, pending: &mut mpsc::UnboundedReceiver<Pending>) -> Result<(), String> {
    let Ok(p) = pending.try_recv() else {
        return Err("response received with no request in flight".to_owned());
    };
    if let Some(expected) = p.correlation_id {
        let Some(got) = frame::peek_correlation_id(&frame) else {
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
        frame::strip_response_header(&mut frame, p.response_header_version)?;
    }
    // The caller may have given up (timeout); that is not the connection's problem.
    let _ = p.reply.send(frame);
    Ok(())
}

#[cfg(test)]
mod tests;
