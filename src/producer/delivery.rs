//! A batch's outcome, as its records' delivery futures wait for it: set once by whoever settles
//! the batch (the connection's reader task, most often), read by every record of the batch.
//!
//! ```text
//!  open batch ── Settle (sets it once; Closed if dropped unset) ──► BatchInfo ◄── DeliveryFuture × records
//!                                                                    outcome, wakers
//! ```
//!
//! A record's future holds one reference to its batch's [`BatchInfo`] and its index in the
//! batch: queueing a record allocates nothing for its delivery, and a record awaited costs one
//! waker in the batch's list (the first inline).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use super::RecordMetadata;
use crate::error::Error;

/// What the broker said about a batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchAck {
    /// Offset of the batch's first record; `None` with acks=0.
    pub base_offset: Option<i64>,
    /// The broker's append time when the topic uses log-append time.
    pub log_append_time: Option<i64>,
}

impl BatchAck {
    /// Delivered, with no offset to tell (acks=0, or a duplicate the broker had already written).
    pub const UNKNOWN: BatchAck = BatchAck {
        base_offset: None,
        log_append_time: None,
    };
}

/// What the records of one batch share: where they go and the batch's outcome.
pub(crate) struct BatchInfo {
    pub topic: Arc<str>,
    pub partition: i32,
    outcome: OnceLock<Result<BatchAck, Error>>,
    wakers: Mutex<Wakers>,
}

/// The tasks waiting for a batch's outcome.
#[derive(Default)]
struct Wakers {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl BatchInfo {
    pub fn new(topic: Arc<str>, partition: i32) -> Arc<BatchInfo> {
        Arc::new(BatchInfo {
            topic,
            partition,
            outcome: OnceLock::new(),
            wakers: Mutex::default(),
        })
    }

    /// Sets the outcome, once (later calls change nothing), and wakes whoever waits for it.
    fn set(&self, outcome: Result<BatchAck, Error>) {
        if self.outcome.set(outcome).is_ok() {
            let wakers = std::mem::take(&mut *self.wakers.lock().expect("wakers lock"));
            wakers
                .first
                .into_iter()
                .chain(wakers.more)
                .for_each(Waker::wake);
        }
    }

    /// The outcome, or `Pending` with the task registered to be woken when it is set. `slot`
    /// is the caller's place in the list, kept between polls so that a future polled again
    /// takes no second place.
    fn poll_outcome(
        &self,
        cx: &mut Context<'_>,
        slot: &mut Option<usize>,
    ) -> Poll<&Result<BatchAck, Error>> {
        if let Some(outcome) = self.outcome.get() {
            return Poll::Ready(outcome);
        }
        let mut guard = self.wakers.lock().expect("wakers lock");
        // Set between the look above and the lock: `set` took the list before this lock.
        if let Some(outcome) = self.outcome.get() {
            return Poll::Ready(outcome);
        }
        let wakers = &mut *guard;
        let waker = cx.waker();
        if let Some(i) = *slot {
            let place = match i {
                0 => wakers.first.as_mut(),
                i => wakers.more.get_mut(i - 1),
            };
            if let Some(w) = place {
                if !w.will_wake(waker) {
                    w.clone_from(waker);
                }
                return Poll::Pending;
            }
        }
        if wakers.first.is_none() {
            wakers.first = Some(waker.clone());
            *slot = Some(0);
        } else {
            wakers.more.push(waker.clone());
            *slot = Some(wakers.more.len());
        }
        Poll::Pending
    }
}

/// The right to set a batch's outcome, held by the batch on its way through the producer.
/// Dropped unset (the producer's tasks are gone), it sets [`Error::Closed`], so no record's
/// future waits for ever.
pub(crate) struct Settle(Arc<BatchInfo>);

impl Settle {
    pub fn new(topic: Arc<str>, partition: i32) -> Settle {
        Settle(BatchInfo::new(topic, partition))
    }

    /// What the records' futures hold.
    pub fn info(&self) -> &Arc<BatchInfo> {
        &self.0
    }

    /// Reports `outcome` to every record of the batch.
    pub fn set(&self, outcome: Result<BatchAck, Error>) {
        self.0.set(outcome);
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        self.0.set(Err(Error::Closed));
    }
}

/// Resolves when the broker acknowledged (or finally refused) one record. `.await` it.
///
/// Cancel-safe, and it can be dropped: the record is delivered whether or not its future is
/// awaited.
pub struct DeliveryFuture {
    pub(crate) batch: Arc<BatchInfo>,
    pub(crate) index: i64,
    pub(crate) timestamp: i64,
    /// Our place in the batch's list of wakers, once we have one.
    slot: Option<usize>,
}

impl DeliveryFuture {
    pub(crate) fn new(batch: Arc<BatchInfo>, index: i64, timestamp: i64) -> Self {
        DeliveryFuture {
            batch,
            index,
            timestamp,
            slot: None,
        }
    }
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("topic", &self.batch.topic)
            .field("partition", &self.batch.partition)
            .field("index", &self.index)
            .finish()
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let batch = &this.batch;
        match batch.poll_outcome(cx, &mut this.slot) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(ack)) => Poll::Ready(Ok(RecordMetadata::of(
                &batch.topic,
                batch.partition,
                this.index,
                this.timestamp,
                ack,
            ))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(base: i64) -> Result<BatchAck, Error> {
        Ok(BatchAck {
            base_offset: Some(base),
            log_append_time: None,
        })
    }

    #[tokio::test]
    async fn every_record_of_a_batch_learns_its_offset() {
        let settle = Settle::new("t".into(), 3);
        let futures: Vec<_> = (0..3)
            .map(|i| tokio::spawn(DeliveryFuture::new(settle.info().clone(), i, 7)))
            .collect();
        tokio::task::yield_now().await;
        settle.set(ack(100));
        for (i, f) in futures.into_iter().enumerate() {
            let metadata = f.await.unwrap().unwrap();
            assert_eq!(metadata.to_string(), format!("t[3]@{}", 100 + i));
            assert_eq!(metadata.timestamp, 7);
        }
    }

    #[tokio::test]
    async fn an_outcome_is_set_once() {
        let settle = Settle::new("t".into(), 0);
        let info = settle.info().clone();
        settle.set(ack(5));
        settle.set(Err(Error::Closed));
        drop(settle);
        let metadata = DeliveryFuture::new(info, 1, 0).await.unwrap();
        assert_eq!(metadata.offset, Some(6));
    }

    #[tokio::test]
    async fn a_batch_dropped_unsettled_fails_its_records_as_closed() {
        let settle = Settle::new("t".into(), 0);
        let waiting = tokio::spawn(DeliveryFuture::new(settle.info().clone(), 0, 0));
        tokio::task::yield_now().await;
        drop(settle);
        assert!(matches!(waiting.await.unwrap(), Err(Error::Closed)));
    }

    #[test]
    fn a_future_polled_again_keeps_one_place() {
        let settle = Settle::new("t".into(), 0);
        let mut future = DeliveryFuture::new(settle.info().clone(), 0, 0);
        struct Nothing;
        impl std::task::Wake for Nothing {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Nothing));
        let mut cx = Context::from_waker(&waker);
        for _ in 0..3 {
            assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
        }
        let mut other = DeliveryFuture::new(settle.info().clone(), 1, 0);
        assert!(Pin::new(&mut other).poll(&mut cx).is_pending());
        let wakers = settle.info().wakers.lock().unwrap();
        assert!(wakers.first.is_some());
        assert_eq!(wakers.more.len(), 1);
    }
}
