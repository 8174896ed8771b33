//! What the application has been handed, per partition: the offset after the last message
//! `recv` or `poll` returned, which lag and the position are counted from, and which commits
//! store, unless the application stores offsets itself (`enable.auto.offset.store=false`).
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
    /// With `enable.auto.offset.store=false`, what the application stored: what commits store.
    stored: Option<BTreeMap<TopicPartition, i64>>,
}

impl Consumed {
    /// Offsets stored by the application only (`enable.auto.offset.store=false`), or as
    /// messages are handed out.
    pub fn new(auto_store: bool) -> Consumed {
        Consumed {
            stored: (!auto_store).then(BTreeMap::new),
            ..Consumed::default()
        }
    }

    /// The application stores `next` for `tp`, for the next commit. With the automatic store,
    /// this is the position of `tp` as far as commits go, until the next message of it.
    pub fn store(&mut self, tp: &TopicPartition, next: i64) {
        match &mut self.stored {
            Some(stored) => {
                stored.insert(tp.clone(), next);
            }
            None => self.set(tp, next),
        }
    }

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

    /// The offset a commit would store for `tp`: the next one handed out, or with
    /// `enable.auto.offset.store=false` the one the application stored.
    pub fn stored(&self, tp: &TopicPartition) -> Option<i64> {
        match &self.stored {
            Some(stored) => stored.get(tp).copied(),
            None => self.get(tp),
        }
    }

    /// What a commit stores: the next offset of every partition something was handed out of
    /// (or, with `enable.auto.offset.store=false`, stored by the application), in partition
    /// order.
    pub fn offsets(&self) -> Vec<(Arc<str>, i32, i64)> {
        if let Some(stored) = &self.stored {
            return stored
                .iter()
                .map(|(tp, &next)| (tp.0.clone(), tp.1, next))
                .collect();
        }
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
        if let Some(stored) = self.stored.as_mut().and_then(|s| s.get_mut(tp)) {
            *stored = (*stored).min(next);
        }
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
        if let Some(stored) = &mut self.stored {
            stored.remove(tp);
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.run = None;
        if let Some(stored) = &mut self.stored {
            stored.clear();
        }
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
            delivery_count: None,
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

    #[test]
    fn stored_by_the_application_only_when_asked() {
        let a: Arc<str> = "a".into();
        let mut c = Consumed::new(false);
        c.note(&msg(&a, 0, 0));
        c.note(&msg(&a, 0, 1));
        // Handed out, so that is the position, but nothing is stored for commits.
        assert_eq!(c.get(&(a.clone(), 0)), Some(2));
        assert!(c.offsets().is_empty());
        c.store(&(a.clone(), 0), 1);
        assert_eq!(c.offsets(), vec![(a.clone(), 0, 1)]);
        // A truncated log caps what was stored.
        c.store(&(a.clone(), 1), 9);
        c.set(&(a.clone(), 1), 4);
        assert_eq!(c.offsets(), vec![(a.clone(), 0, 1), (a.clone(), 1, 4)]);
        c.remove(&(a.clone(), 0));
        assert_eq!(c.offsets(), vec![(a.clone(), 1, 4)]);
        // With the automatic store, storing moves what commits store.
        let mut auto = Consumed::new(true);
        auto.note(&msg(&a, 0, 5));
        auto.store(&(a.clone(), 0), 3);
        assert_eq!(auto.offsets(), vec![(a.clone(), 0, 3)]);
    }
}
