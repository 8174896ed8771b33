//! The producer's statistics: a task that, every `statistics.interval.ms`, assembles
//! librdkafka's statistics object from the accumulator (queues, counts, batch windows), the
//! cluster (brokers, metadata) and the idempotent identity and transaction, and emits it.

use std::sync::{Arc, Weak};

use tokio::time::Instant;

use super::sink::Pipeline;
use crate::stats::{Emitter, EosStatistics, PartitionStatistics, Statistics, TopicStatistics};

/// Emits the statistics of `pipeline` while it lives.
pub(super) async fn run(pipeline: Weak<Pipeline>, emitter: Arc<Emitter>) {
    loop {
        tokio::time::sleep_until(emitter.next_due()).await;
        let Some(pipeline) = pipeline.upgrade() else {
            return;
        };
        if emitter.due(Instant::now()) {
            emitter.emit(assemble(&pipeline, &emitter));
        }
    }
}

/// The producer's statistics object now.
fn assemble(pipeline: &Pipeline, emitter: &Emitter) -> Statistics {
    let mut stats = emitter.blank();
    let acc = pipeline.acc.statistics();
    stats.msg_cnt = acc.messages as i64;
    stats.msg_size = acc.bytes as i64;
    stats.msg_max = pipeline.config.queue_max_messages as i64;
    stats.msg_size_max = pipeline.config.queue_max_bytes as i64;
    let cluster = &pipeline.cluster;
    stats.metadata_cache_cnt = cluster.metadata_cache_cnt() as i64;
    let mut used = Vec::new();
    for topic in acc.topics {
        let ids = topic.partitions.iter().map(|p| p.partition);
        let (metadata_age, places) = cluster.topic_places(&topic.name, ids);
        let mut out = TopicStatistics {
            topic: topic.name.to_string(),
            age: topic.created.elapsed().as_millis() as i64,
            metadata_age,
            batchsize: topic.batchsize,
            batchcnt: topic.batchcnt,
            partitions: Default::default(),
        };
        for (p, (_, place)) in topic.partitions.iter().zip(places) {
            used.push((topic.name.clone(), p.partition));
            let mut s = PartitionStatistics::new(p.partition);
            s.broker = p.sink.into();
            s.leader = place.leader.into();
            s.leader_epoch = place.leader_epoch.into();
            s.unknown = place.unknown;
            s.msgq_cnt = p.queued as i64;
            s.msgq_bytes = p.queued_bytes as i64;
            s.msgs = p.counts.appended as i64;
            s.msgs_inflight = p.counts.in_flight as i64;
            s.txmsgs = p.counts.acked as i64;
            s.txbytes = p.counts.acked_bytes as i64;
            out.partitions.insert(p.partition.to_string(), s);
        }
        stats.topics.insert(out.topic.clone(), out);
    }
    stats.brokers = cluster.broker_statistics(&used);
    if let Some(identity) = &pipeline.identity {
        let (current, taken, reset) = identity.statistics();
        let idemp_state = match (current, reset) {
            (_, true) => "DrainBump",
            (Some(_), false) => "Assigned",
            (None, false) => "RequestPID",
        };
        let (txn_state, txn_may_enq) = match &pipeline.txn {
            Some(txn) => txn.statistics(),
            None => ("Init", false),
        };
        stats.eos = Some(EosStatistics {
            idemp_state: idemp_state.to_owned(),
            idemp_stateage: emitter.state_age_ms("idemp_state", idemp_state),
            txn_state: txn_state.to_owned(),
            txn_stateage: emitter.state_age_ms("txn_state", txn_state),
            txn_may_enq,
            producer_id: current.map_or(-1, |(id, _)| id),
            producer_epoch: current.map_or(-1, |(_, epoch)| epoch.into()),
            epoch_cnt: taken as i64,
        });
    }
    stats
}
