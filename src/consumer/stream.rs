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

type NextMessage = Pin<Box<dyn Future<Output = (Consumer, Result<Message, Error>)> + Send>>;

/// A [`Consumer`] as a [`Stream`](futures_core::Stream) of messages; see [`Consumer::stream`].
pub struct MessageStream {
    consumer: Option<Consumer>,
    /// The `recv` in progress, which owns the consumer until it completes.
    next: Option<NextMessage>,
}

impl MessageStream {
    pub(super) fn new(consumer: Consumer) -> Self {
        MessageStream {
            consumer: Some(consumer),
            next: None,
        }
    }

    /// The consumer back, once no message is being waited for (`None` while one is).
    pub fn into_inner(self) -> Option<Consumer> {
        self.consumer
    }
}

impl futures_core::Stream for MessageStream {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.next.is_none() {
            let Some(mut consumer) = self.consumer.take() else {
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
