//! The share consumer as a [`Stream`](futures_core::Stream).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::ShareConsumer;
use crate::consumer::Message;
use crate::error::Error;

type NextMessage<'a> =
    Pin<Box<dyn Future<Output = (&'a mut ShareConsumer, Result<Message, Error>)> + Send + 'a>>;

/// A [`ShareConsumer`] as a [`Stream`](futures_core::Stream) of records, each taken as by
/// [`ShareConsumer::recv`]; see [`ShareConsumer::stream`].
///
/// It borrows the consumer: between records, [`ShareMessageStream::consumer`] reaches it, to
/// acknowledge (explicit mode) or commit. Dropped while waiting for a record, it leaves the
/// consumer as it was, since `recv` is cancel-safe.
pub struct ShareMessageStream<'a> {
    consumer: Option<&'a mut ShareConsumer>,
    /// The `recv` in progress, which holds the consumer until it completes.
    next: Option<NextMessage<'a>>,
}

impl<'a> ShareMessageStream<'a> {
    pub(super) fn new(consumer: &'a mut ShareConsumer) -> Self {
        ShareMessageStream {
            consumer: Some(consumer),
            next: None,
        }
    }

    /// The consumer, between records (`None` while one is being waited for).
    ///
    /// ```no_run
    /// # async fn demo(mut consumer: purekafka::ShareConsumer) -> Result<(), purekafka::Error> {
    /// use futures_util::StreamExt;
    /// use purekafka::AcknowledgeType;
    /// let mut records = consumer.stream();
    /// while let Some(msg) = records.next().await {
    ///     let msg = msg?;
    ///     // explicit mode: say what became of it before the next one
    ///     records.consumer().expect("between records").acknowledge(&msg, AcknowledgeType::Accept)?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn consumer(&mut self) -> Option<&mut ShareConsumer> {
        self.consumer.as_deref_mut()
    }
}

impl futures_core::Stream for ShareMessageStream<'_> {
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
