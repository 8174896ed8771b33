//! A ShareFetch answer's records taken in: decoded (zero-copy), matched to the ranges the
//! member acquired, handed to the application through the exchange; acquired offsets with no
//! record acknowledged as GAP, and past a corrupt batch rejected, as the Java client does.

use std::collections::VecDeque;

use bytes::Bytes;

use super::driver::Driver;
use super::exchange::Chunk;
use crate::cluster::TopicPartition;
use crate::consumer::Message;
use crate::error::Error;
use crate::protocol::records::{BatchDecoder, DecodeError};
use crate::protocol::share::{deliveries, AckRuns, Acquired, ACK_GAP, ACK_REJECT};

impl Driver {
    /// Decodes a partition's records, hands the acquired ones to the application and
    /// acknowledges the gaps (and, past a corrupt batch, rejects what could not be read).
    pub(super) fn take_in(
        &self,
        broker: i32,
        tp: TopicPartition,
        records: Bytes,
        acquired: &[Acquired],
    ) {
        let decoder = BatchDecoder::new(
            records,
            self.params.check_crcs,
            self.params.decompression_limit,
        );
        let mut messages: Vec<Message> = Vec::new();
        let mut corrupt: Option<(i64, String)> = None;
        let mut read_up_to = i64::MIN;
        for batch in decoder {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    let reason = match e {
                        DecodeError::InflatesBeyond(_) => format!(
                            "a batch inflates beyond receive.message.max.bytes ({} bytes)",
                            self.params.decompression_limit
                        ),
                        e => e.to_string(),
                    };
                    corrupt = Some((read_up_to.saturating_add(1), reason));
                    break;
                }
            };
            read_up_to = batch.last_offset;
            messages.extend(Message::of_batch(&tp.0, tp.1, batch));
        }
        let mut delivered = vec![None; messages.len()];
        let gaps = deliveries(messages.iter().map(|m| m.offset), acquired, |i, count| {
            delivered[i] = Some(count)
        });
        let messages: VecDeque<Message> = messages
            .into_iter()
            .zip(delivered)
            .filter_map(|(mut m, count)| {
                m.delivery_count = Some(count?);
                Some(m)
            })
            .collect();
        let mut acks = AckRuns::default();
        for (first, last) in gaps {
            match &corrupt {
                // What could not be read is rejected, as the Java client does: delivered again
                // it would fail again, up to the delivery limit.
                Some((from, _)) if last >= *from => {
                    if first < *from {
                        acks.add(first, from - 1, ACK_GAP);
                    }
                    acks.add(first.max(*from), last, ACK_REJECT);
                }
                _ => acks.add(first, last, ACK_GAP),
            }
        }
        let mut state = self.inner.state();
        state.queue(broker, &tp, &acks);
        if !messages.is_empty() {
            state.ready.push_back(Chunk {
                broker,
                tp: tp.clone(),
                messages,
            });
        }
        if let Some((from, reason)) = corrupt {
            state.errors.push_back(Error::CorruptBatch {
                topic: tp.0.to_string(),
                partition: tp.1,
                reason: format!("from offset {from}: {reason}; its records were rejected"),
            });
        }
        drop(state);
        self.inner.app.notify_one();
    }
}
