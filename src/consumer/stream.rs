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

type NextMessage<'a> =
    Pin<Box<dyn Future<Output = (&'a mut Consumer, Result<Message, Error>)> + Send + 'a>>;

/// A [`Consumer`] as a [`Stream`](futures_core::Stream) of messages; see [`Consumer::stream`].
///
/// It borrows the consumer: between messages, [`MessageStream::consumer`] reaches it, to
/// commit or store offsets while streaming; dropped, even while waiting for a message (a
/// timeout around `next()`), it leaves the consumer as it was, since `recv` is cancel-safe.
pub struct MessageStream<'a> {
    consumer: Option<&'a mut Consumer>,
    /// The `recv` in progress, which holds the consumer until it completes.
    next: Option<NextMessage<'a>>,
}

impl<'a> MessageStream<'a> {
    pub(super) fn new(consumer: &'a mut Consumer) -> Self {
        MessageStream {
            consumer: Some(consumer),
            next: None,
        }
    }

    /// The consumer, between messages (`None` while one is being waited for): to commit,
    /// store offsets or seek while streaming.
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
    pub fn consumer(&mut self) -> Option<&mut Consumer> {
        self.consumer.as_deref_mut()
    }
}

impl futures_core::Stream for MessageStream<'_> {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.next.is_none() {
            let Some(consumer) = self.consumer.take() else {
                return Poll::Ready(None);
            };
            self.next = Some(Box::pin(async move {
                let message = consumer.recv().await;
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
