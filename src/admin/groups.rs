//! Consumer groups: list, describe and delete them, and list, alter or delete their committed
//! offsets. Every request about a group goes to that group's coordinator, found afresh, and is
//! tried again while the coordinator moves or loads, up to the admin client's timeout.

use std::time::{Duration, Instant};

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as Kip848Group;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
};

use super::{item_answer, item_error, missing_answer, Admin, Outcome, RETRY};
use crate::cluster::{per_topic, topic_name};
use crate::conn::Connection;
use crate::error::{Error, Resource};
use crate::group::coordinator::{commit_topics, s, Coordinator};
use crate::protocol::api::ApiRequest;
use crate::protocol::codes;
use crate::protocol::consumer_protocol::{decode_assignment, TopicPartitions};

/// What became of one partition of a group's offsets: `(topic, partition)`, and its result.
pub type PartitionOutcome<T = ()> = ((String, i32), Result<T, Error>);

/// A group, as [`Admin::list_groups`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// `consumer` for consumer groups (classic and KIP-848 alike), `connect`, … or empty.
    pub protocol_type: String,
    /// Its state (`Stable`, `Empty`, …), where the broker tells it (Kafka 2.6 and later).
    pub state: Option<String>,
    /// `classic` or `consumer` (KIP-848), where the broker tells it (Kafka 3.8 and later).
    pub group_type: Option<String>,
}

/// A group and its members, as [`Admin::describe_groups`] finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty`, `Dead` (classic), or
    /// `Assigning`, `Reconciling`, … (KIP-848).
    pub state: String,
    /// `consumer` for consumer groups.
    pub protocol_type: String,
    /// The assignor in use (`range`, `cooperative-sticky`, `uniform`, …); empty while none is.
    pub assignor: String,
    /// The coordinator's broker id.
    pub coordinator: i32,
    /// The members and what each is assigned.
    pub members: Vec<MemberDescription>,
}

/// One member of a [`GroupDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberDescription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id` (static membership), if any.
    pub group_instance_id: Option<String>,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connects from, as the broker sees it.
    pub client_host: String,
    /// Its partitions, per topic (empty for a group whose protocol is not `consumer`).
    pub assignment: TopicPartitions,
}

/// A committed offset, as [`Admin::list_group_offsets`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommittedOffset {
    /// The next offset the group reads.
    pub offset: i64,
    /// The leader epoch of the record before it, where the committer knew it.
    pub leader_epoch: Option<i32>,
    /// The metadata committed with it.
    pub metadata: Option<String>,
}

/// Errors that say the group's coordinator moved or is not ready yet: find it and ask again.
fn coordinator_moving(code: i16) -> bool {
    matches!(
        code,
        codes::NOT_COORDINATOR
            | codes::COORDINATOR_NOT_AVAILABLE
            | codes::COORDINATOR_LOAD_IN_PROGRESS
    )
}

impl Admin {
    /// Every group of the cluster: each broker lists the groups it coordinates. Sorted by id.
    ///
    /// Cancel-safe: it only reads.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, Error> {
        let mut groups = Vec::new();
        for broker in self.describe_cluster().await?.brokers {
            let conn = self.cluster.broker(broker.id).await?;
            let (response, version) = conn.request(&ListGroupsRequest::default()).await?;
            let answer = Some((response.error_code, None));
            item_answer(
                "ListGroups",
                &Resource::Broker(format!("broker {}", broker.id)),
                answer,
            )?;
            groups.extend(response.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: (version >= 4).then(|| g.group_state.to_string()),
                group_type: (version >= 5).then(|| g.group_type.to_string()),
            }));
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(groups)
    }

    /// Each of `groups` with its state, assignor and members, classic and KIP-848 groups alike.
    /// One outcome per group: a group the coordinator does not know is GROUP_ID_NOT_FOUND on
    /// brokers that say so, and state `Dead` on older ones.
    ///
    /// Cancel-safe: it only reads.
    pub async fn describe_groups(
        &self,
        groups: &[&str],
    ) -> Result<Vec<Outcome<GroupDescription>>, Error> {
        let mut outcomes = Vec::with_capacity(groups.len());
        for &group in groups {
            outcomes.push((group.to_owned(), self.describe_group(group).await));
        }
        Ok(outcomes)
    }

    /// One group's description. A KIP-848 group shows in ConsumerGroupDescribe only, a
    /// classic one in DescribeGroups only, and what DescribeGroups says of a KIP-848 group
    /// differs between implementations (Kafka answers GROUP_ID_NOT_FOUND, another answered an
    /// empty Stable group). So, as the Java client does, ConsumerGroupDescribe comes first where
    /// the coordinator has it; a group it does not know as a KIP-848 group is then asked of
    /// DescribeGroups.
    pub(super) async fn describe_group(&self, group: &str) -> Result<GroupDescription, Error> {
        match self.describe_kip848_group(group).await {
            Ok(description) => return Ok(description),
            // Not a KIP-848 group (Kafka: "not a consumer group"), or no KIP-848 groups here.
            Err(Error::UnsupportedApi { .. }) => {}
            Err(Error::Broker { code, .. })
                if matches!(
                    code.code(),
                    codes::GROUP_ID_NOT_FOUND | codes::UNSUPPORTED_VERSION
                ) => {}
            Err(e) => return Err(e),
        }
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
        let (response, _, coordinator) = self
            .on_coordinator(group, &request, |r| r.groups.first().map(|g| g.error_code))
            .await?;
        let answer = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0 == *group)
            .ok_or_else(|| missing_answer("DescribeGroups", &Resource::Group(group.to_owned())))?;
        let code = (answer.error_code, answer.error_message.as_ref());
        item_answer(
            "DescribeGroups",
            &Resource::Group(group.to_owned()),
            Some(code),
        )?;
        Ok(classic_description(answer, coordinator))
    }

    /// ConsumerGroupDescribe, for a KIP-848 group (Kafka 4), which DescribeGroups does not show.
    /// Without the API on the coordinator, [`Error::UnsupportedApi`].
    async fn describe_kip848_group(&self, group: &str) -> Result<GroupDescription, Error> {
        let request =
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]);
        let (response, _, coordinator) = self
            .on_coordinator(group, &request, |r| r.groups.first().map(|g| g.error_code))
            .await?;
        let answer = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0 == *group)
            .ok_or_else(|| {
                missing_answer("ConsumerGroupDescribe", &Resource::Group(group.to_owned()))
            })?;
        let code = (answer.error_code, answer.error_message.as_ref());
        item_answer(
            "ConsumerGroupDescribe",
            &Resource::Group(group.to_owned()),
            Some(code),
        )?;
        Ok(kip848_description(answer, coordinator))
    }

    /// Deletes each of `groups`, with its committed offsets: consumer and share groups alike
    /// (a share group with its start offsets). One outcome per group: a group with members is
    /// NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<Vec<Outcome>, Error> {
        let mut outcomes = Vec::with_capacity(groups.len());
        for &group in groups {
            let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]);
            let result = self
                .on_coordinator(group, &request, |r| r.results.first().map(|g| g.error_code))
                .await
                .and_then(|(response, _, _)| {
                    let answer = response.results.iter().find(|r| r.group_id.0 == *group);
                    item_answer(
                        "DeleteGroups",
                        &Resource::Group(group.to_string()),
                        answer.map(|r| (r.error_code, None)),
                    )
                });
            outcomes.push((group.to_owned(), result));
        }
        Ok(outcomes)
    }

    /// Every offset `group` has committed, per partition, sorted.
    ///
    /// Cancel-safe: it only reads.
    pub async fn list_group_offsets(
        &self,
        group: &str,
    ) -> Result<Vec<PartitionOutcome<CommittedOffset>>, Error> {
        // No topics: every partition the group committed (OffsetFetch v2 and later).
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(None);
        let response = self.group_answer(group, &request, |r| r.error_code).await?;
        let mut offsets: Vec<PartitionOutcome<CommittedOffset>> = Vec::new();
        for t in response.topics {
            let topic = t.name.0.to_string();
            for p in t.partitions {
                let item = Resource::partition(&topic, p.partition_index);
                let result = match item_error("OffsetFetch", &item, p.error_code, None) {
                    Some(e) => Err(e),
                    None if p.committed_offset < 0 => continue,
                    None => Ok(CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: (p.committed_leader_epoch >= 0)
                            .then_some(p.committed_leader_epoch),
                        metadata: p.metadata.map(|m| m.to_string()).filter(|m| !m.is_empty()),
                    }),
                };
                offsets.push(((topic.clone(), p.partition_index), result));
            }
        }
        offsets.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(offsets)
    }

    /// Sets `group`'s committed offsets (`(topic, partition, next offset to read)`), as
    /// `kafka-consumer-groups --reset-offsets` does. The group must have no members: an active
    /// one answers UNKNOWN_MEMBER_ID per partition. One outcome per partition.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<Vec<PartitionOutcome>, Error> {
        // Generation -1 and no member id: a commit from outside the group.
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_retention_time_ms(-1)
            .with_topics(commit_topics(offsets));
        let first_code = |r: &kafka_protocol::messages::OffsetCommitResponse| {
            r.topics
                .first()
                .and_then(|t| t.partitions.first())
                .map(|p| p.error_code)
        };
        let (response, _, _) = self.on_coordinator(group, &request, first_code).await?;
        Ok(per_partition(
            "OffsetCommit",
            offsets.iter().map(|&(t, p, _)| (t, p)),
            response.topics.iter().flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.name.0.as_str(), p.partition_index, p.error_code))
            }),
        ))
    }

    /// Deletes `group`'s committed offsets of `partitions`. A group with members subscribed to
    /// a topic answers GROUP_SUBSCRIBED_TO_TOPIC for its partitions. One outcome per partition.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[(&str, i32)],
    ) -> Result<Vec<PartitionOutcome>, Error> {
        let topics = per_topic(
            partitions
                .iter()
                .map(|&(topic, partition)| (topic, partition, ())),
        )
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetDeleteRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(p, ())| {
                            OffsetDeleteRequestPartition::default().with_partition_index(p)
                        })
                        .collect(),
                )
        })
        .collect();
        let request = OffsetDeleteRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(topics);
        let response = self.group_answer(group, &request, |r| r.error_code).await?;
        Ok(per_partition(
            "OffsetDelete",
            partitions.iter().copied(),
            response.topics.iter().flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.name.0.as_str(), p.partition_index, p.error_code))
            }),
        ))
    }

    /// The offset `group` has committed for each partition of `topic` (`None` where it has
    /// none): where a member would start reading.
    ///
    /// Cancel-safe: it only reads.
    pub async fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<(i32, Option<i64>)>, Error> {
        let partitions = self.cluster.partition_ids(topic).await?;
        let mut coordinator =
            Coordinator::new(self.cluster.clone(), group.to_owned(), self.timeout, RETRY);
        let committed = coordinator
            .committed(&vec![(topic.to_owned(), partitions.clone())])
            .await?;
        Ok(partitions
            .into_iter()
            .map(|p| (p, committed.get(&(topic.to_owned(), p)).copied().flatten()))
            .collect())
    }

    /// [`Admin::on_coordinator`] for a request whose answer carries one error `code` for the
    /// whole group: that error is the call's.
    async fn group_answer<R: ApiRequest>(
        &self,
        group: &str,
        request: &R,
        code: impl Fn(&R::Response) -> i16,
    ) -> Result<R::Response, Error> {
        let (response, _, _) = self
            .on_coordinator(group, request, |r| Some(code(r)))
            .await?;
        let answer = Some((code(&response), None));
        item_answer(R::NAME, &Resource::Group(group.to_owned()), answer)?;
        Ok(response)
    }

    /// Sends `request` to `group`'s coordinator and returns the answer with the connection it
    /// came on and the coordinator's broker id. While `code` finds the coordinator moving or loading in the answer, or the
    /// connection fails, it finds the coordinator again and asks again, up to the timeout.
    pub(super) async fn on_coordinator<R: ApiRequest>(
        &self,
        group: &str,
        request: &R,
        code: impl Fn(&R::Response) -> Option<i16>,
    ) -> Result<(R::Response, Connection, i32), Error> {
        // No patience of its own: this loop retries a coordinator being elected too, within
        // the one deadline.
        let coordinator = Coordinator::new(
            self.cluster.clone(),
            group.to_owned(),
            Duration::ZERO,
            RETRY,
        );
        let deadline = Instant::now() + self.timeout;
        loop {
            let attempt = async {
                let (node, conn) = coordinator.shared().await?;
                let (response, _) = conn.request(request).await?;
                Ok::<_, Error>((response, conn, node))
            };
            let retry = match attempt.await {
                Ok((response, conn, node)) => match code(&response) {
                    Some(c) if coordinator_moving(c) => coordinator.error(R::NAME, c),
                    _ => return Ok((response, conn, node)),
                },
                Err(e) if e.is_retriable() => e,
                Err(e) => return Err(e),
            };
            if Instant::now() + RETRY > deadline {
                return Err(retry);
            }
            tracing::debug!(group, error = %retry, "asking the group coordinator again");
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// One outcome per partition asked, in order, from the `(topic, partition, error code)`s of an
/// answer.
pub(super) fn per_partition<'a>(
    api: &'static str,
    asked: impl Iterator<Item = (&'a str, i32)>,
    answered: impl Iterator<Item = (&'a str, i32, i16)> + Clone,
) -> Vec<PartitionOutcome> {
    asked
        .map(|(topic, partition)| {
            let item = Resource::partition(topic, partition);
            let answer = answered
                .clone()
                .find(|&(t, p, _)| t == topic && p == partition)
                .map(|(_, _, code)| (code, None));
            let result = item_answer(api, &item, answer);
            ((topic.to_owned(), partition), result)
        })
        .collect()
}

fn classic_description(g: DescribedGroup, coordinator: i32) -> GroupDescription {
    let consumer = g.protocol_type.as_str() == "consumer";
    GroupDescription {
        group_id: g.group_id.0.to_string(),
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        assignor: g.protocol_data.to_string(),
        coordinator,
        members: g
            .members
            .into_iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                // A member between assignments has none; one whose bytes do not decode is
                // shown without, rather than failing the whole description.
                assignment: match consumer && !m.member_assignment.is_empty() {
                    true => decode_assignment(m.member_assignment).unwrap_or_default(),
                    false => Vec::new(),
                },
            })
            .collect(),
    }
}

fn kip848_description(g: Kip848Group, coordinator: i32) -> GroupDescription {
    GroupDescription {
        group_id: g.group_id.0.to_string(),
        state: g.group_state.to_string(),
        protocol_type: "consumer".to_owned(),
        assignor: g.assignor_name.to_string(),
        coordinator,
        members: g
            .members
            .into_iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: m
                    .assignment
                    .topic_partitions
                    .into_iter()
                    .map(|tp| (tp.topic_name.0.to_string(), tp.partitions))
                    .collect(),
            })
            .collect(),
    }
}
