//! What the consumer hands out: a record, with where it was and what its timestamp is.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::protocol::records::{Batch, Header};

/// A consumed record. Its `Display` is the seed's `test[0]@628`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// What the timestamp is: the producer's create time, or the broker's log-append time
    /// (the topic's `message.timestamp.type`).
    pub timestamp_type: TimestampType,
    /// The key, or `None`.
    pub key: Option<Bytes>,
    /// The value, or `None`.
    pub value: Option<Bytes>,
    /// The headers.
    pub headers: Vec<Header>,
    /// How many times a share group delivered the record, this time included (Java's
    /// `ConsumerRecord.deliveryCount()`); `None` outside share groups.
    pub delivery_count: Option<i16>,
}

impl Message {
    /// The data records of a decoded batch of `topic[partition]` as messages (none for a
    /// control batch), without a copy of their bytes.
    pub(crate) fn of_batch(
        topic: &Arc<str>,
        partition: i32,
        batch: Batch,
    ) -> impl Iterator<Item = Message> + '_ {
        let timestamp_type = match batch.is_log_append_time() {
            true => TimestampType::LogAppendTime,
            false => TimestampType::CreateTime,
        };
        let records = match batch.is_control() {
            true => Vec::new(),
            false => batch.records,
        };
        records.into_iter().map(move |r| Message {
            topic: topic.clone(),
            partition,
            offset: r.offset,
            timestamp: r.timestamp,
            timestamp_type,
            key: r.key,
            value: r.value,
            headers: r.headers,
            delivery_count: None,
        })
    }
}

/// What a record's timestamp is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// When the producer created the record (`CreateTime`).
    CreateTime,
    /// When the broker appended it to the log (`LogAppendTime`).
    LogAppendTime,
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]@{}", self.topic, self.partition, self.offset)
    }
}
