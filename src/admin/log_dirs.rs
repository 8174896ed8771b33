//! Where brokers keep their partitions: DescribeLogDirs, asked of each broker about itself
//! (`kafka-log-dirs --describe`).

use kafka_protocol::messages::DescribeLogDirsRequest;

use super::{item_answer, Admin};
use crate::error::{Error, KafkaCode, Resource};

/// One log directory of a broker, as [`Admin::describe_log_dirs`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogDir {
    /// Its path on the broker.
    pub path: String,
    /// Why it cannot be used (KAFKA_STORAGE_ERROR for a failed disk), if it cannot.
    pub error: Option<KafkaCode>,
    /// The size of its volume, in bytes (Kafka 3.3 and later).
    pub total_bytes: Option<i64>,
    /// The bytes still free on its volume (Kafka 3.3 and later).
    pub usable_bytes: Option<i64>,
    /// The partition replicas it holds, sorted by topic and partition.
    pub replicas: Vec<ReplicaInfo>,
}

/// One partition replica in a [`LogDir`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaInfo {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The size of its log, in bytes.
    pub size: i64,
    /// How far it is behind the leader's high watermark, in offsets (0 on the leader).
    pub offset_lag: i64,
    /// Whether it is the future replica of a move between directories, not yet the current one.
    pub is_future: bool,
}

impl Admin {
    /// The log directories of each broker, with the replicas in them and their sizes. One
    /// outcome per broker, in the order asked.
    ///
    /// Cancel-safe: it only reads.
    pub async fn describe_log_dirs(
        &self,
        brokers: &[i32],
    ) -> Result<Vec<(i32, Result<Vec<LogDir>, Error>)>, Error> {
        let mut outcomes = Vec::with_capacity(brokers.len());
        for &broker in brokers {
            outcomes.push((broker, self.log_dirs_of(broker).await));
        }
        Ok(outcomes)
    }

    async fn log_dirs_of(&self, broker: i32) -> Result<Vec<LogDir>, Error> {
        // No topics named: every replica the broker has.
        let request = DescribeLogDirsRequest::default().with_topics(None);
        let conn = self.cluster.broker(broker).await?;
        let (response, version) = conn.request(&request).await?;
        let resource = Resource::Broker(format!("broker {broker}"));
        item_answer(
            "DescribeLogDirs",
            &resource,
            Some((response.error_code, None)),
        )?;
        let mut dirs: Vec<LogDir> = response
            .results
            .into_iter()
            .map(|d| {
                let mut replicas: Vec<ReplicaInfo> = d
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let topic = t.name.0.to_string();
                        t.partitions.into_iter().map(move |p| ReplicaInfo {
                            topic: topic.clone(),
                            partition: p.partition_index,
                            size: p.partition_size,
                            offset_lag: p.offset_lag,
                            is_future: p.is_future_key,
                        })
                    })
                    .collect();
                replicas.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
                // v4 adds the volume's sizes; -1 where the broker cannot tell.
                let bytes = |n: i64| (version >= 4 && n >= 0).then_some(n);
                LogDir {
                    path: d.log_dir.to_string(),
                    error: KafkaCode::from_code(d.error_code),
                    total_bytes: bytes(d.total_bytes),
                    usable_bytes: bytes(d.usable_bytes),
                    replicas,
                }
            })
            .collect();
        dirs.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(dirs)
    }
}
