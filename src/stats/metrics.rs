//! The `metrics` feature: each statistics object also goes to the `metrics` facade, so that an
//! application exports the figures with the recorder it uses (Prometheus, StatsD, ...).
//!
//! Names are librdkafka's fields under a prefix for their level: `purekafka_tx` (top level),
//! `purekafka_broker_rtt`, `purekafka_topic_batchsize`, `purekafka_partition_consumer_lag`,
//! `purekafka_cgrp_rebalance_cnt`, `purekafka_eos_producer_id`. Labels: `client_id`, `name`
//! (`client.id#type-N`, unique in the process) and `type` everywhere, and `broker`, `topic`,
//! `partition` or `request` where the level has them. What librdkafka calls a counter is a
//! counter (set to its absolute value), a window is a histogram (each interval's samples, at
//! the histogram's two significant figures), anything else numeric a gauge (a bool as 0 or 1).

use metrics::{counter, gauge, histogram, Label};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Statistics, WindowStatistics};

/// The fields librdkafka's STATISTICS.md calls counters, per level.
const TOP_COUNTERS: &[&str] = &[
    "tx",
    "tx_bytes",
    "rx",
    "rx_bytes",
    "txmsgs",
    "txmsg_bytes",
    "rxmsgs",
    "rxmsg_bytes",
];
const BROKER_COUNTERS: &[&str] = &[
    "tx",
    "txbytes",
    "txerrs",
    "txretries",
    "req_timeouts",
    "rx",
    "rxbytes",
    "rxerrs",
    "rxcorriderrs",
    "rxpartial",
    "zbuf_grow",
    "buf_grow",
    "wakeups",
    "connects",
    "disconnects",
    "reauths",
];
const PARTITION_COUNTERS: &[&str] = &[
    "txmsgs",
    "txbytes",
    "rxmsgs",
    "rxbytes",
    "msgs",
    "rx_ver_drops",
    "acked_msgid",
];
/// Clocks, not figures.
const SKIPPED: &[&str] = &["ts", "time"];

/// Records `stats` with the installed recorder (none installed: nothing happens).
pub(super) fn record(stats: &Statistics) {
    let client = vec![
        Label::new("client_id", stats.client_id.clone()),
        Label::new("name", stats.name.clone()),
        Label::new("type", stats.client_type.clone()),
    ];
    scalars("purekafka", stats, &client, TOP_COUNTERS);
    for (name, broker) in &stats.brokers {
        let labels = with(&client, &[("broker", name)]);
        scalars("purekafka_broker", broker, &labels, BROKER_COUNTERS);
        for (window, w) in [
            ("int_latency", &broker.int_latency),
            ("outbuf_latency", &broker.outbuf_latency),
            ("rtt", &broker.rtt),
            ("throttle", &broker.throttle),
        ] {
            replay(&format!("purekafka_broker_{window}"), w, &labels);
        }
        for (request, &count) in &broker.req {
            let labels = with(&labels, &[("request", request)]);
            counter!("purekafka_broker_req", labels).absolute(count.max(0) as u64);
        }
    }
    for (name, topic) in &stats.topics {
        let labels = with(&client, &[("topic", name)]);
        scalars("purekafka_topic", topic, &labels, &[]);
        replay("purekafka_topic_batchsize", &topic.batchsize, &labels);
        replay("purekafka_topic_batchcnt", &topic.batchcnt, &labels);
        for (partition, p) in &topic.partitions {
            let labels = with(&labels, &[("partition", partition)]);
            scalars("purekafka_partition", p, &labels, PARTITION_COUNTERS);
        }
    }
    if let Some(cgrp) = &stats.cgrp {
        scalars("purekafka_cgrp", cgrp, &client, &["rebalance_cnt"]);
    }
    if let Some(eos) = &stats.eos {
        scalars("purekafka_eos", eos, &client, &["epoch_cnt"]);
    }
}

/// The numeric and boolean fields of `object`, as counters (those named in `counters`) or
/// gauges named `prefix_field`.
fn scalars(prefix: &str, object: &impl Serialize, labels: &[Label], counters: &[&str]) {
    let Ok(Value::Object(fields)) = serde_json::to_value(object) else {
        return;
    };
    for (field, value) in fields_of(&fields) {
        let name = format!("{prefix}_{field}");
        match value {
            Value::Number(n) => match (counters.contains(&field.as_str()), n.as_i64()) {
                (true, Some(n)) => counter!(name, labels.to_vec()).absolute(n.max(0) as u64),
                (_, n) => gauge!(name, labels.to_vec()).set(n.unwrap_or(0) as f64),
            },
            Value::Bool(b) => gauge!(name, labels.to_vec()).set(u8::from(*b)),
            _ => {}
        }
    }
}

fn fields_of(fields: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    fields
        .iter()
        .filter(|(k, _)| !SKIPPED.contains(&k.as_str()))
}

/// A window's samples, bucket by bucket, into histogram `name`.
fn replay(name: &str, window: &WindowStatistics, labels: &[Label]) {
    if window.buckets.is_empty() {
        return;
    }
    let h = histogram!(name.to_owned(), labels.to_vec());
    for &(value, count) in &window.buckets {
        h.record_many(value as f64, count as usize);
    }
}

/// `labels` and `more`.
fn with(labels: &[Label], more: &[(&'static str, &String)]) -> Vec<Label> {
    let mut all = labels.to_vec();
    all.extend(more.iter().map(|(k, v)| Label::new(*k, (*v).clone())));
    all
}
