//! The statistics object as librdkafka's STATISTICS.md shapes it: every key librdkafka writes,
//! of the same JSON type, in Rust types that serialize to it. The clients fill what they have
//! and leave the rest at librdkafka's empty values (`PartitionStatistics::new`).

use std::collections::BTreeMap;

use serde::Serialize;

/// librdkafka's "no offset" (`RD_KAFKA_OFFSET_INVALID`), for the offsets a client does not have.
pub const OFFSET_INVALID: i64 = -1001;

/// One statistics object of a client: librdkafka's top level. [`Statistics::to_json`] writes
/// it as librdkafka's `stats_cb` receives it.
///
/// What purekafka fills in, and what it leaves at librdkafka's empty value, is listed in
/// docs/PORTING.md ("Statistics").
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Statistics {
    /// `client.id#producer-N` or `client.id#consumer-N`, N counting the clients of the process.
    pub name: String,
    /// `client.id`.
    pub client_id: String,
    /// `producer` or `consumer`.
    #[serde(rename = "type")]
    pub client_type: String,
    /// A monotonic clock, in µs.
    pub ts: i64,
    /// Wall-clock time, in seconds since the Unix epoch.
    pub time: i64,
    /// µs since the client was built.
    pub age: i64,
    /// Events waiting for the application: delivery reports not yet taken (producer).
    pub replyq: i64,
    /// Records the producer holds: queued, and sent but not yet acknowledged.
    pub msg_cnt: i64,
    /// Their bytes.
    pub msg_size: i64,
    /// `queue.buffering.max.messages` (producer).
    pub msg_max: i64,
    /// `queue.buffering.max.kbytes`, in bytes (producer).
    pub msg_size_max: i64,
    /// Always 0 (librdkafka's legacy consumer).
    pub simple_cnt: i64,
    /// Topics in the metadata cache.
    pub metadata_cache_cnt: i64,
    /// Per broker, by `host:port/nodeid`.
    pub brokers: BTreeMap<String, BrokerStatistics>,
    /// Per topic the client produces to or reads.
    pub topics: BTreeMap<String, TopicStatistics>,
    /// The group, for a consumer with `group.id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgrp: Option<GroupStatistics>,
    /// The idempotent and transactional state, for an idempotent producer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eos: Option<EosStatistics>,
    /// Requests sent, all brokers.
    pub tx: i64,
    /// Bytes sent.
    pub tx_bytes: i64,
    /// Responses received.
    pub rx: i64,
    /// Bytes received.
    pub rx_bytes: i64,
    /// Records produced (acknowledged), all partitions.
    pub txmsgs: i64,
    /// Their bytes.
    pub txmsg_bytes: i64,
    /// Records consumed (handed to the application), all partitions.
    pub rxmsgs: i64,
    /// Their bytes.
    pub rxmsg_bytes: i64,
}

impl Statistics {
    /// The object as librdkafka's statistics JSON, on one line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("statistics serialize")
    }
}

/// One broker of [`Statistics::brokers`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BrokerStatistics {
    /// `host:port/nodeid` (`host:port/bootstrap` for a bootstrap server not yet known by id).
    pub name: String,
    /// Its node id; -1 for a bootstrap server.
    pub nodeid: i64,
    /// `host:port`.
    pub nodename: String,
    /// `learned` (from metadata) or `configured` (a bootstrap server).
    pub source: String,
    /// `UP` with a live connection, `DOWN` after one failed, `INIT` before the first.
    pub state: String,
    /// µs since the state changed.
    pub stateage: i64,
    /// Requests waiting to be written.
    pub outbuf_cnt: i64,
    /// Always 0: records in requests waiting to be written are not counted.
    pub outbuf_msg_cnt: i64,
    /// Requests written and waiting for their answer.
    pub waitresp_cnt: i64,
    /// Always 0: records in requests in flight are not counted.
    pub waitresp_msg_cnt: i64,
    /// Requests written.
    pub tx: i64,
    /// Bytes written.
    pub txbytes: i64,
    /// Failed writes.
    pub txerrs: i64,
    /// Produce requests sent again (records retried).
    pub txretries: i64,
    /// µs since the last write; -1 without a live connection.
    pub txidle: i64,
    /// Requests whose answer did not come in time.
    pub req_timeouts: i64,
    /// Responses read.
    pub rx: i64,
    /// Bytes read.
    pub rxbytes: i64,
    /// Failed reads (the connection failing while requests wait).
    pub rxerrs: i64,
    /// Responses whose correlation id was not the one expected.
    pub rxcorriderrs: i64,
    /// Always 0.
    pub rxpartial: i64,
    /// µs since the last read; -1 without a live connection.
    pub rxidle: i64,
    /// Always 0.
    pub zbuf_grow: i64,
    /// Always 0.
    pub buf_grow: i64,
    /// Always 0.
    pub wakeups: i64,
    /// Connection attempts.
    pub connects: i64,
    /// Connections lost.
    pub disconnects: i64,
    /// SASL re-authentications completed on the broker's connections (KIP-368). purekafka's
    /// own: librdkafka has no such field.
    pub reauths: i64,
    /// Producer: µs a batch's first record waited in the client before its request was
    /// written, one sample per batch.
    pub int_latency: WindowStatistics,
    /// µs a request waited to be written.
    pub outbuf_latency: WindowStatistics,
    /// Round-trip time, µs: from writing a request to reading its answer.
    pub rtt: WindowStatistics,
    /// Throttle time the broker asked for in Produce answers, ms.
    pub throttle: WindowStatistics,
    /// Requests written, by API name (librdkafka's names: `ApiVersion` for ApiVersions).
    pub req: BTreeMap<String, i64>,
    /// The partitions this client uses that the broker leads, by `topic-partition`.
    pub toppars: BTreeMap<String, TopparStatistics>,
}

/// One partition of [`BrokerStatistics::toppars`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TopparStatistics {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i64,
}

/// The samples of one window, since the previous statistics: librdkafka's rolling averages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WindowStatistics {
    /// The smallest sample.
    pub min: i64,
    /// The largest.
    pub max: i64,
    /// Their mean.
    pub avg: i64,
    /// Their sum.
    pub sum: i64,
    /// Their standard deviation.
    pub stddev: i64,
    /// 50th percentile.
    pub p50: i64,
    /// 75th percentile.
    pub p75: i64,
    /// 90th percentile.
    pub p90: i64,
    /// 95th percentile.
    pub p95: i64,
    /// 99th percentile.
    pub p99: i64,
    /// 99.99th percentile.
    pub p99_99: i64,
    /// Samples beyond the histogram's range, left out of it.
    pub outofrange: i64,
    /// The histogram's memory, in bytes.
    pub hdrsize: i64,
    /// The number of samples.
    pub cnt: i64,
    /// The histogram's non-empty buckets, `(value, count)`, for the `metrics` facade.
    #[cfg(feature = "metrics")]
    #[serde(skip)]
    pub(crate) buckets: Vec<(u64, u64)>,
}

/// One topic of [`Statistics::topics`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TopicStatistics {
    /// The topic.
    pub topic: String,
    /// ms since the client first used it.
    pub age: i64,
    /// ms since its metadata was last fetched.
    pub metadata_age: i64,
    /// Producer: bytes of the record batches sent.
    pub batchsize: WindowStatistics,
    /// Producer: records per batch sent.
    pub batchcnt: WindowStatistics,
    /// Per partition, by its number.
    pub partitions: BTreeMap<String, PartitionStatistics>,
}

/// One partition of [`TopicStatistics::partitions`]. Producers fill the producer's keys and
/// consumers the consumer's; the others keep librdkafka's empty values.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PartitionStatistics {
    /// The partition.
    pub partition: i64,
    /// The broker the client sends to or fetches from for it; -1 if none.
    pub broker: i64,
    /// Its leader; -1 if unknown.
    pub leader: i64,
    /// Consumer: whether it is assigned.
    pub desired: bool,
    /// Whether the metadata lacks it.
    pub unknown: bool,
    /// Producer: records queued, not yet sent.
    pub msgq_cnt: i64,
    /// Their bytes.
    pub msgq_bytes: i64,
    /// Always 0 (librdkafka's too).
    pub xmit_msgq_cnt: i64,
    /// Always 0 (librdkafka's too).
    pub xmit_msgq_bytes: i64,
    /// Consumer: records fetched, not yet handed to the application.
    pub fetchq_cnt: i64,
    /// Their bytes.
    pub fetchq_size: i64,
    /// Consumer: `active` while fetched, `stopped` while paused, `none` otherwise.
    pub fetch_state: String,
    /// Always -1001: purekafka keeps no offset lookup state.
    pub query_offset: i64,
    /// Consumer: the next offset to fetch.
    pub next_offset: i64,
    /// Consumer: the offset after the last record handed to the application.
    pub app_offset: i64,
    /// Consumer: the offset stored for the next commit.
    pub stored_offset: i64,
    /// The leader epoch of the stored offset; -1 if unknown.
    pub stored_leader_epoch: i64,
    /// librdkafka's misspelt copy of `committed_offset`, kept for the readers that use it.
    pub commited_offset: i64,
    /// Consumer: the group's committed offset, as last read or written.
    pub committed_offset: i64,
    /// Its leader epoch; -1 if unknown.
    pub committed_leader_epoch: i64,
    /// Consumer: where the partition's end was last reported (`enable.partition.eof`).
    pub eof_offset: i64,
    /// Consumer: the log start, where known.
    pub lo_offset: i64,
    /// Consumer: the high watermark, as of the last fetch.
    pub hi_offset: i64,
    /// Consumer: the last stable offset, as of the last fetch.
    pub ls_offset: i64,
    /// Consumer: the end (high watermark, or last stable offset under `read_committed`) less
    /// the committed offset; -1 if unknown.
    pub consumer_lag: i64,
    /// The same, less the stored offset.
    pub consumer_lag_stored: i64,
    /// The leader epoch; -1 if unknown.
    pub leader_epoch: i64,
    /// Producer: records acknowledged.
    pub txmsgs: i64,
    /// Their bytes.
    pub txbytes: i64,
    /// Consumer: records handed to the application.
    pub rxmsgs: i64,
    /// Their bytes.
    pub rxbytes: i64,
    /// Producer: records appended; consumer: records handed to the application.
    pub msgs: i64,
    /// Always 0.
    pub rx_ver_drops: i64,
    /// Producer: records in the request in flight.
    pub msgs_inflight: i64,
    /// Always 0: sequences are not exposed.
    pub next_ack_seq: i64,
    /// Always 0.
    pub next_err_seq: i64,
    /// Always 0.
    pub acked_msgid: i64,
}

impl PartitionStatistics {
    /// Partition `partition` with librdkafka's empty values everywhere.
    pub(crate) fn new(partition: i32) -> PartitionStatistics {
        PartitionStatistics {
            partition: partition.into(),
            broker: -1,
            leader: -1,
            desired: false,
            unknown: false,
            msgq_cnt: 0,
            msgq_bytes: 0,
            xmit_msgq_cnt: 0,
            xmit_msgq_bytes: 0,
            fetchq_cnt: 0,
            fetchq_size: 0,
            fetch_state: "none".into(),
            query_offset: OFFSET_INVALID,
            next_offset: 0,
            app_offset: OFFSET_INVALID,
            stored_offset: OFFSET_INVALID,
            stored_leader_epoch: -1,
            commited_offset: OFFSET_INVALID,
            committed_offset: OFFSET_INVALID,
            committed_leader_epoch: -1,
            eof_offset: OFFSET_INVALID,
            lo_offset: OFFSET_INVALID,
            hi_offset: OFFSET_INVALID,
            ls_offset: OFFSET_INVALID,
            consumer_lag: -1,
            consumer_lag_stored: -1,
            leader_epoch: -1,
            txmsgs: 0,
            txbytes: 0,
            rxmsgs: 0,
            rxbytes: 0,
            msgs: 0,
            rx_ver_drops: 0,
            msgs_inflight: 0,
            next_ack_seq: 0,
            next_err_seq: 0,
            acked_msgid: 0,
        }
    }
}

/// [`Statistics::cgrp`]: the consumer's group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GroupStatistics {
    /// `up` with a coordinator, `wait-coord` while looking for one, `init` before.
    pub state: String,
    /// ms since `state` changed.
    pub stateage: i64,
    /// `steady` when a member with an assignment, `wait-join` while joining, `init` before.
    pub join_state: String,
    /// ms since the last rebalance; 0 before the first.
    pub rebalance_age: i64,
    /// Rebalances (assignments and revocations) so far.
    pub rebalance_cnt: i64,
    /// Why the last rebalance happened; empty if none.
    pub rebalance_reason: String,
    /// Partitions assigned.
    pub assignment_size: i64,
}

/// [`Statistics::eos`]: an idempotent producer's identity and its transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EosStatistics {
    /// `Assigned` with a producer id, `RequestPID` before, `FatalError` after a fatal error.
    pub idemp_state: String,
    /// ms since `idemp_state` changed.
    pub idemp_stateage: i64,
    /// librdkafka's transaction states: `Init` (not transactional, or before
    /// `init_transactions`), `Ready`, `InTransaction`, `CommittingTransaction`,
    /// `AbortingTransaction`, `AbortableError`, `FatalError`.
    pub txn_state: String,
    /// ms since `txn_state` changed.
    pub txn_stateage: i64,
    /// Whether records may be sent now.
    pub txn_may_enq: bool,
    /// The producer id; -1 if none.
    pub producer_id: i64,
    /// Its epoch; -1 if none.
    pub producer_epoch: i64,
    /// Producer ids and epochs taken so far.
    pub epoch_cnt: i64,
}
