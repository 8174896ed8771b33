//! What the application has been handed, per partition: the offset after the last message
//! `recv` or `poll` returned, which commits store and lag is counted from.
//!
//! Messages come out in long runs of one partition (a fetched batch holds thousands), so the
//! partition of the run being handed out is written into the map once, when the run starts, and
//! its offset kept beside the map: a message costs a comparison, not a map update.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Message;
use crate::cluster::TopicPartition;

#[derive(Default)]
pub(super) struct Consumed {
    /// Next offset per partition; the run's partition holds the offset its run started with.
    map: BTreeMap<TopicPartition, i64>,
    /// The partition whose messages are being handed out, and its next offset.
    run: Option<(TopicPartition, i64)>,
}

impl Consumed {
    /// `msg` was handed to the application.
    pub fn note(&mut self, msg: &Message) {
        if let Some(((topic, partition), next)) = &mut self.run {
            if *partition == msg.partition
                && (Arc::ptr_eq(topic, &msg.topic) || **topic == *msg.topic)
            {
                *next = msg.offset + 1;
                return;
            }
        }
        self.end_run();
        let key = (msg.topic.clone(), msg.partition);
        self.map.insert(key.clone(), msg.offset + 1);
        self.run = Some((key, msg.offset + 1));
    }

    /// Writes the run's offset into the map.
    fn end_run(&mut self) {
        if let Some((key, next)) = self.run.take() {
            self.map.insert(key, next);
        }
    }

    /// The next offset of `tp`, if anything of it was handed out.
    pub fn get(&self, tp: &TopicPartition) -> Option<i64> {
        match &self.run {
            Some((key, next)) if key == tp => Some(*next),
            _ => self.map.get(tp).copied(),
        }
    }

    /// The next offset of every partition something was handed out of, in partition order.
    pub fn offsets(&self) -> Vec<(Arc<str>, i32, i64)> {
        self.map
            .iter()
            .map(|(tp, &next)| {
                let next = match &self.run {
                    Some((key, run_next)) if key == tp => *run_next,
                    _ => next,
                };
                (tp.0.clone(), tp.1, next)
            })
            .collect()
    }

    /// What was handed out of `tp` now ends at `next` (its log was truncated there): commits
    /// store that, not what was handed out beyond it.
    pub fn set(&mut self, tp: &TopicPartition, next: i64) {
        match &mut self.run {
            Some((key, run_next)) if key == tp => *run_next = next,
            _ => {
                self.map.insert(tp.clone(), next);
            }
        }
    }

    /// Forgets `tp` (revoked).
    pub fn remove(&mut self, tp: &TopicPartition) {
        if self.run.as_ref().is_some_and(|(key, _)| key == tp) {
            self.run = None;
        }
        self.map.remove(tp);
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.run = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &Arc<str>, partition: i32, offset: i64) -> Message {
        Message {
            topic: topic.clone(),
            partition,
            offset,
            timestamp: 0,
            timestamp_type: crate::consumer::TimestampType::CreateTime,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn runs_and_switches_keep_every_partition_right() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut c = Consumed::default();
        assert!(c.offsets().is_empty());
        for offset in 0..5 {
            c.note(&msg(&a, 0, offset));
        }
        assert_eq!(c.get(&(a.clone(), 0)), Some(5));
        assert_eq!(c.offsets(), vec![(a.clone(), 0, 5)]);
        c.note(&msg(&b, 1, 7));
        // The same topic name in another Arc (another fetch response) continues the run.
        c.note(&msg(&"b".into(), 1, 8));
        c.note(&msg(&a, 1, 3));
        assert_eq!(
            c.offsets(),
            vec![(a.clone(), 0, 5), (a.clone(), 1, 4), (b.clone(), 1, 9)]
        );
        c.note(&msg(&a, 0, 5));
        assert_eq!(c.get(&(a.clone(), 0)), Some(6));
        c.remove(&(a.clone(), 0));
        assert_eq!(c.get(&(a.clone(), 0)), None);
        assert_eq!(c.offsets(), vec![(a.clone(), 1, 4), (b.clone(), 1, 9)]);
        c.note(&msg(&a, 1, 4));
        assert_eq!(c.get(&(a.clone(), 1)), Some(5));
        // A truncated log: the run's partition, and another.
        c.set(&(a.clone(), 1), 2);
        c.set(&(b.clone(), 1), 6);
        assert_eq!(c.offsets(), vec![(a.clone(), 1, 2), (b.clone(), 1, 6)]);
        c.clear();
        assert!(c.offsets().is_empty());
        assert_eq!(c.get(&(b, 1)), None);
    }
}
