//! The share consumer as a [`Stream`](futures_core::Stream): the consumer's
//! [`RecordStream`](crate::RecordStream).

use std::future::Future;
use std::pin::Pin;

use super::ShareConsumer;
use crate::consumer::{Message, RecordStream, Recv};
use crate::error::Error;

/// A [`ShareConsumer`] as a [`Stream`](futures_core::Stream) of records, each taken as by
/// [`ShareConsumer::recv`]; see [`ShareConsumer::stream`]. Between records,
/// [`RecordStream::consumer`] reaches the share consumer, to acknowledge (explicit mode) or
/// commit.
pub type ShareMessageStream<'a> = RecordStream<'a, ShareConsumer>;

impl Recv for ShareConsumer {
    fn next_record(&mut self) -> Pin<Box<dyn Future<Output = Result<Message, Error>> + Send + '_>> {
        Box::pin(self.recv())
    }
}
