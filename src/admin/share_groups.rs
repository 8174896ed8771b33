//! Share groups (KIP-932): list and describe them, and read, set or delete where each reads
//! its partitions from (their start offsets). Deleting a share group is
//! [`Admin::delete_groups`], as for any group. Every request about a group goes to its
//! coordinator, as in `groups.rs`.

use kafka_protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic;
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, DeleteShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsRequest, GroupId, ListGroupsRequest, ShareGroupDescribeRequest,
};

use super::groups::per_partition;
use super::PartitionOutcome;
use super::{item_answer, item_error, missing_answer, Admin, GroupListing, Outcome};
use crate::cluster::{per_topic, topic_name};
use crate::error::{Error, Resource};
use crate::group::coordinator::s;
use crate::group::share_group::unavailable;
use crate::protocol::api::ApiRequest;
use crate::protocol::codes;
use crate::protocol::consumer_protocol::TopicPartitions;

/// A share group and its members, as [`Admin::describe_share_groups`] finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShareGroupDescription {
    /// The group id.
    pub group_id: String,
    /// `Empty`, `Stable` or `Dead`.
    pub state: String,
    /// The group's epoch: it moves on with each change of members or subscriptions.
    pub group_epoch: i32,
    /// The epoch of the assignment the coordinator computed last.
    pub assignment_epoch: i32,
    /// The coordinator's assignor (`simple`).
    pub assignor: String,
    /// The coordinator's broker id.
    pub coordinator: i32,
    /// The members and what each reads.
    pub members: Vec<ShareMemberDescription>,
}

/// One member of a [`ShareGroupDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShareMemberDescription {
    /// The member id (the client's own).
    pub member_id: String,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connects from, as the broker sees it.
    pub client_host: String,
    /// Its `client.rack`, if it said one.
    pub rack: Option<String>,
    /// Its epoch.
    pub member_epoch: i32,
    /// The topics it subscribes to.
    pub subscribed_topics: Vec<String>,
    /// Its partitions, per topic; other members may read the same ones.
    pub assignment: TopicPartitions,
}

/// Where a share group reads a partition from, as [`Admin::list_share_group_offsets`] finds
/// it: records before `start_offset` are done with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShareGroupOffset {
    /// The first offset not yet done with (acknowledged or archived).
    pub start_offset: i64,
    /// The leader epoch that offset was read under, where the broker knows it.
    pub leader_epoch: Option<i32>,
}

/// The group type ListGroups filters share groups by (KIP-848's `types_filter`).
const SHARE: &str = "Share";

impl Admin {
    /// Every share group of the cluster (ListGroups v5, Kafka 3.8 and later, filtered by
    /// type). Sorted by id. A cluster without share groups answers with none, or, where its
    /// brokers cannot filter by type, [`Error::ShareGroupsUnavailable`].
    ///
    /// Cancel-safe: it only reads.
    pub async fn list_share_groups(&self) -> Result<Vec<GroupListing>, Error> {
        let mut groups = Vec::new();
        for broker in self.describe_cluster().await?.brokers {
            let conn = self.cluster.broker(broker.id).await?;
            if conn.version_of::<ListGroupsRequest>()? < 5 {
                return Err(unavailable(conn.broker(), false));
            }
            let request = ListGroupsRequest::default().with_types_filter(vec![s(SHARE)]);
            let (response, _) = conn.request(&request).await?;
            let item = Resource::Broker(format!("broker {}", broker.id));
            item_answer("ListGroups", &item, Some((response.error_code, None)))?;
            groups.extend(response.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: Some(g.group_state.to_string()),
                group_type: Some(g.group_type.to_string()),
            }));
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(groups)
    }

    /// Each of `groups` with its state, epochs and members (ShareGroupDescribe). One outcome
    /// per group: a group that is not a share group is GROUP_ID_NOT_FOUND.
    ///
    /// Cancel-safe: it only reads.
    pub async fn describe_share_groups(
        &self,
        groups: &[&str],
    ) -> Result<Vec<Outcome<ShareGroupDescription>>, Error> {
        let mut outcomes = Vec::with_capacity(groups.len());
        for &group in groups {
            let request =
                ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]);
            let result = self
                .on_share_coordinator(group, &request, |r| r.groups.first().map(|g| g.error_code))
                .await
                .and_then(|(response, coordinator)| {
                    let item = Resource::Group(group.to_owned());
                    let g = response
                        .groups
                        .into_iter()
                        .find(|g| g.group_id.0 == *group)
                        .ok_or_else(|| missing_answer("ShareGroupDescribe", &item))?;
                    item_answer(
                        "ShareGroupDescribe",
                        &item,
                        Some((g.error_code, g.error_message.as_ref())),
                    )?;
                    Ok(ShareGroupDescription {
                        group_id: g.group_id.0.to_string(),
                        state: g.group_state.to_string(),
                        group_epoch: g.group_epoch,
                        assignment_epoch: g.assignment_epoch,
                        assignor: g.assignor_name.to_string(),
                        coordinator,
                        members: g
                            .members
                            .into_iter()
                            .map(|m| ShareMemberDescription {
                                member_id: m.member_id.to_string(),
                                client_id: m.client_id.to_string(),
                                client_host: m.client_host.to_string(),
                                rack: m.rack_id.map(|r| r.to_string()),
                                member_epoch: m.member_epoch,
                                subscribed_topics: m
                                    .subscribed_topic_names
                                    .into_iter()
                                    .map(|t| t.0.to_string())
                                    .collect(),
                                assignment: m
                                    .assignment
                                    .topic_partitions
                                    .into_iter()
                                    .map(|tp| (tp.topic_name.0.to_string(), tp.partitions))
                                    .collect(),
                            })
                            .collect(),
                    })
                });
            outcomes.push((group.to_owned(), result));
        }
        Ok(outcomes)
    }

    /// Where `group` reads each partition it has read (DescribeShareGroupOffsets), sorted.
    ///
    /// Cancel-safe: it only reads.
    pub async fn list_share_group_offsets(
        &self,
        group: &str,
    ) -> Result<Vec<PartitionOutcome<ShareGroupOffset>>, Error> {
        // No topics: every partition the group has a start offset for.
        let request = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
            DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(None),
        ]);
        let code = |r: &kafka_protocol::messages::DescribeShareGroupOffsetsResponse| {
            r.groups.first().map(|g| g.error_code)
        };
        let (response, _) = self.on_share_coordinator(group, &request, code).await?;
        let item = Resource::Group(group.to_owned());
        let g = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0 == *group)
            .ok_or_else(|| missing_answer("DescribeShareGroupOffsets", &item))?;
        item_answer(
            "DescribeShareGroupOffsets",
            &item,
            Some((g.error_code, g.error_message.as_ref())),
        )?;
        let mut offsets = Vec::new();
        for t in g.topics {
            let topic = t.topic_name.0.to_string();
            for p in t.partitions {
                let item = Resource::partition(&topic, p.partition_index);
                let result = match item_error(
                    "DescribeShareGroupOffsets",
                    &item,
                    p.error_code,
                    p.error_message.as_ref(),
                ) {
                    Some(e) => Err(e),
                    // Not initialized yet: the group has not read the partition.
                    None if p.start_offset < 0 => continue,
                    None => Ok(ShareGroupOffset {
                        start_offset: p.start_offset,
                        leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                    }),
                };
                offsets.push(((topic.clone(), p.partition_index), result));
            }
        }
        offsets.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(offsets)
    }

    /// Sets where `group` reads each partition from (`(topic, partition, start offset)`), as
    /// `kafka-share-groups --reset-offsets` does (AlterShareGroupOffsets). The group must
    /// have no members (NON_EMPTY_GROUP otherwise); one that does not exist yet is created.
    /// One outcome per partition.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn alter_share_group_offsets(
        &self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<Vec<PartitionOutcome>, Error> {
        let topics = per_topic(offsets.iter().map(|&(t, p, o)| (t, p, o)))
            .into_iter()
            .map(|(topic, partitions)| {
                AlterShareGroupOffsetsRequestTopic::default()
                    .with_topic_name(topic_name(topic))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(p, o)| {
                                AlterShareGroupOffsetsRequestPartition::default()
                                    .with_partition_index(p)
                                    .with_start_offset(o)
                            })
                            .collect(),
                    )
            })
            .collect();
        let request = AlterShareGroupOffsetsRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(topics);
        let (response, _) = self
            .on_share_coordinator(group, &request, |r| Some(r.error_code))
            .await?;
        item_answer(
            "AlterShareGroupOffsets",
            &Resource::Group(group.to_owned()),
            Some((response.error_code, response.error_message.as_ref())),
        )?;
        Ok(per_partition(
            "AlterShareGroupOffsets",
            offsets.iter().map(|&(t, p, _)| (t, p)),
            response.responses.iter().flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.topic_name.0.as_str(), p.partition_index, p.error_code))
            }),
        ))
    }

    /// Makes `group` forget where it reads `topics` (DeleteShareGroupOffsets): a member that
    /// reads them again starts where `share.auto.offset.reset` says. The group must have no
    /// members. One outcome per topic.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn delete_share_group_offsets(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Vec<Outcome>, Error> {
        let request = DeleteShareGroupOffsetsRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        DeleteShareGroupOffsetsRequestTopic::default()
                            .with_topic_name(topic_name(t))
                    })
                    .collect(),
            );
        let (response, _) = self
            .on_share_coordinator(group, &request, |r| Some(r.error_code))
            .await?;
        item_answer(
            "DeleteShareGroupOffsets",
            &Resource::Group(group.to_owned()),
            Some((response.error_code, response.error_message.as_ref())),
        )?;
        Ok(topics
            .iter()
            .map(|&topic| {
                let item = Resource::Topic(topic.to_owned());
                let answer = response
                    .responses
                    .iter()
                    .find(|r| r.topic_name.0.as_str() == topic)
                    .map(|r| (r.error_code, r.error_message.as_ref()));
                (
                    topic.to_owned(),
                    item_answer("DeleteShareGroupOffsets", &item, answer),
                )
            })
            .collect())
    }

    /// [`Admin::on_coordinator`] for a share group request: a coordinator without the API,
    /// or with share groups turned off, is [`Error::ShareGroupsUnavailable`].
    async fn on_share_coordinator<R: ApiRequest>(
        &self,
        group: &str,
        request: &R,
        code: impl Fn(&R::Response) -> Option<i16>,
    ) -> Result<(R::Response, i32), Error> {
        match self.on_coordinator(group, request, &code).await {
            Ok((response, conn, coordinator)) => match code(&response) {
                Some(codes::UNSUPPORTED_VERSION) => Err(unavailable(conn.broker(), true)),
                _ => Ok((response, coordinator)),
            },
            Err(Error::UnsupportedApi { broker, .. }) => Err(unavailable(&broker, false)),
            Err(e) => Err(e),
        }
    }
}
