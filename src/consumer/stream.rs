//! The consumer as a [`Stream`](futures_core::Stream), and a commit going on in the
//! background.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Consumer, Message};
use crate::error::Error;

/// A commit going on in the background (see [`Consumer::commit_async`]); as a future, its
/// outcome.
#[derive(Debug)]
pub struct CommitHandle(pub(super) tokio::task::JoinHandle<Result<(), Error>>);

impl Future for CommitHandle {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.map_err(|e| Error::protocol("-", format!("commit task failed: {e}")))?
        })
    }
}

/// What hands out records one at a time, for [`RecordStream`]: the consumer and the share
/// consumer.
pub(crate) trait Recv: Send {
    fn next_record(&mut self) -> Pin<Box<dyn Future<Output = Result<Message, Error>> + Send + '_>>;
}

impl Recv for Consumer {
    fn next_record(&mut self) -> Pin<Box<dyn Future<Output = Result<Message, Error>> + Send + '_>> {
        Box::pin(self.recv())
    }
}

type NextRecord<'a, C> =
    Pin<Box<dyn Future<Output = (&'a mut C, Result<Message, Error>)> + Send + 'a>>;

/// A client as a [`Stream`](futures_core::Stream) of messages, each taken by its `recv`: a
/// [`Consumer`] ([`MessageStream`], see [`Consumer::stream`]) or a
/// [`ShareConsumer`](crate::ShareConsumer) ([`ShareMessageStream`](crate::ShareMessageStream)).
///
/// It borrows the client: between messages, [`RecordStream::consumer`] reaches it, to commit,
/// store offsets, seek or acknowledge while streaming; dropped, even while waiting for a
/// message (a timeout around `next()`), it leaves the client as it was, since `recv` is
/// cancel-safe.
pub struct RecordStream<'a, C> {
    consumer: Option<&'a mut C>,
    /// The `recv` in progress, which holds the client until it completes.
    next: Option<NextRecord<'a, C>>,
}

/// A [`Consumer`] as a [`Stream`](futures_core::Stream) of messages; see [`Consumer::stream`].
pub type MessageStream<'a> = RecordStream<'a, Consumer>;

impl<'a, C> RecordStream<'a, C> {
    pub(crate) fn new(consumer: &'a mut C) -> Self {
        RecordStream {
            consumer: Some(consumer),
            next: None,
        }
    }

    /// The client, between messages (`None` while one is being waited for): to commit, store
    /// offsets, seek or acknowledge while streaming.
    ///
    /// ```no_run
    /// # async fn demo(mut consumer: purekafka::Consumer) -> Result<(), purekafka::Error> {
    /// use futures_util::StreamExt;
    /// let mut messages = consumer.stream();
    /// while let Some(msg) = messages.next().await {
    ///     let msg = msg?;
    ///     // ... process it, then:
    ///     messages.consumer().expect("between messages").commit_message(&msg).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn consumer(&mut self) -> Option<&mut C> {
        self.consumer.as_deref_mut()
    }
}

#[allow(private_bounds)]
impl<'a, C: Recv + 'a> futures_core::Stream for RecordStream<'a, C> {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.next.is_none() {
            let Some(consumer) = self.consumer.take() else {
                return Poll::Ready(None);
            };
            self.next = Some(Box::pin(async move {
                let message = consumer.next_record().await;
                (consumer, message)
            }));
        }
        let next = self.next.as_mut().expect("set above");
        match next.as_mut().poll(cx) {
            Poll::Ready((consumer, message)) => {
                self.next = None;
                self.consumer = Some(consumer);
                Poll::Ready(Some(message))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
