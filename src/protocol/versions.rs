//! Version negotiation: which version of each API purekafka speaks, and the highest version it
//! shares with a broker, from that broker's ApiVersions answer.
//!
//! purekafka's range for an API is kafka-protocol's range, narrowed where a newer version changes
//! what the client must do (for example Produce v13 and Fetch v13 name topics by id only), so
//! every version in [`OURS`] is one the client code handles.

use std::collections::HashMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiVersionsRequest, ApiVersionsResponse,
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, CreateAclsRequest,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteAclsRequest, DeleteGroupsRequest,
    DeleteRecordsRequest, DeleteTopicsRequest, DescribeAclsRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, DescribeLogDirsRequest, DescribeTransactionsRequest, EndTxnRequest,
    FetchRequest, FindCoordinatorRequest, HeartbeatRequest, IncrementalAlterConfigsRequest,
    InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest,
    ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest, SyncGroupRequest, TxnOffsetCommitRequest,
};
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, DeleteShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsRequest, ShareAcknowledgeRequest, ShareFetchRequest,
    ShareGroupDescribeRequest, ShareGroupHeartbeatRequest,
};
use kafka_protocol::protocol::{Decodable, VersionRange};

use super::api::ApiRequest;

/// The APIs purekafka uses and the versions it speaks: `(api key, min, max)`.
pub const OURS: &[(i16, i16, i16)] = &[
    // v13 replaces topic names with topic ids (KIP-516); names serve every broker we support.
    ours::<ProduceRequest>(Some(12)),
    // Same reason as Produce.
    ours::<FetchRequest>(Some(12)),
    ours::<ListOffsetsRequest>(None),
    ours::<MetadataRequest>(None),
    // The handshake always sends v3 (API_VERSIONS_FIRST), so the table says v3 too.
    ours::<ApiVersionsRequest>(Some(API_VERSIONS_FIRST)),
    ours::<SaslHandshakeRequest>(None),
    ours::<SaslAuthenticateRequest>(None),
    ours::<CreateTopicsRequest>(None),
    ours::<DeleteTopicsRequest>(None),
    ours::<InitProducerIdRequest>(None),
    // v4 asks for several coordinators at once; one key at a time serves a consumer.
    ours::<FindCoordinatorRequest>(Some(3)),
    ours::<JoinGroupRequest>(None),
    ours::<SyncGroupRequest>(None),
    ours::<HeartbeatRequest>(None),
    ours::<LeaveGroupRequest>(None),
    // v8 asks for several groups at once; v9 is for KIP-848 groups.
    ours::<OffsetFetchRequest>(Some(7)),
    // v9 carries a KIP-848 member epoch where v8 had the generation (the same field); v10
    // names topics by id.
    ours::<OffsetCommitRequest>(Some(9)),
    ours::<ConsumerGroupHeartbeatRequest>(None),
    // v3 (Kafka 2.3) and later take a consumer's replica id; earlier versions serve followers
    // only (the Java consumer asks for v3 too).
    ours::<OffsetForLeaderEpochRequest>(None),
    // Admin.
    ours::<CreatePartitionsRequest>(None),
    ours::<ListGroupsRequest>(None),
    ours::<DescribeGroupsRequest>(None),
    ours::<ConsumerGroupDescribeRequest>(None),
    ours::<DeleteGroupsRequest>(None),
    ours::<OffsetDeleteRequest>(None),
    // Transactions. AddPartitionsToTxn v4 and later are for brokers (batched, verify-only).
    ours::<AddPartitionsToTxnRequest>(Some(3)),
    ours::<AddOffsetsToTxnRequest>(None),
    // EndTxn v5 and TxnOffsetCommit v5 (and Produce v12 in a transaction) are transaction
    // protocol v2 (KIP-890), spoken only where the cluster has it on: see
    // `producer::transaction`.
    ours::<EndTxnRequest>(None),
    ours::<TxnOffsetCommitRequest>(None),
    // Whether the previous transaction has completed, before the next one's first batch.
    ours::<DescribeTransactionsRequest>(None),
    // Admin: records, configs, log dirs, ACLs.
    ours::<DeleteRecordsRequest>(None),
    ours::<DescribeConfigsRequest>(None),
    ours::<IncrementalAlterConfigsRequest>(None),
    ours::<DescribeLogDirsRequest>(None),
    ours::<CreateAclsRequest>(None),
    ours::<DescribeAclsRequest>(None),
    ours::<DeleteAclsRequest>(None),
    // Share groups (KIP-932). Version 0 of the first four was Kafka 4.0's early access, gone
    // since 4.1; v1 is what Kafka 4.1 and later (and librdkafka) speak. ShareFetch and
    // ShareAcknowledge v2 (4.2) add record_limit acquisition and RENEW, not used yet.
    ours::<ShareGroupHeartbeatRequest>(None),
    ours::<ShareGroupDescribeRequest>(None),
    ours::<ShareFetchRequest>(Some(1)),
    ours::<ShareAcknowledgeRequest>(Some(1)),
    ours::<DescribeShareGroupOffsetsRequest>(None),
    ours::<AlterShareGroupOffsetsRequest>(None),
    ours::<DeleteShareGroupOffsetsRequest>(None),
];

const fn ours<R: ApiRequest>(cap: Option<i16>) -> (i16, i16, i16) {
    let VersionRange { min, max } = R::VERSIONS;
    let max = match cap {
        Some(cap) if cap < max => cap,
        _ => max,
    };
    (R::KEY, min, max)
}

/// The range purekafka speaks for `api_key`, if it uses that API.
pub fn our_range(api_key: i16) -> Option<VersionRange> {
    OURS.iter()
        .find(|(k, _, _)| *k == api_key)
        .map(|&(_, min, max)| VersionRange { min, max })
}

/// A broker's supported version ranges, keyed by API key, and the cluster's finalized
/// feature levels as that broker knows them (KIP-584; Kafka 2.7 and later say them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionTable {
    ranges: HashMap<i16, (i16, i16)>,
    features: HashMap<String, i16>,
}

impl ApiVersionTable {
    /// Builds the table from the `(api key, min, max)` entries of an ApiVersions response.
    pub fn new(entries: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        ApiVersionTable {
            ranges: entries
                .into_iter()
                .map(|(k, lo, hi)| (k, (lo, hi)))
                .collect(),
            features: HashMap::new(),
        }
    }

    /// The same table, with the finalized feature levels `(name, level)`.
    pub fn with_features(mut self, features: impl IntoIterator<Item = (String, i16)>) -> Self {
        self.features = features.into_iter().collect();
        self
    }

    /// The finalized level of cluster feature `name` (`transaction.version`, ...): `None` when
    /// the broker names no level for it, which for every feature means level 0.
    pub fn feature(&self, name: &str) -> Option<i16> {
        self.features.get(name).copied()
    }

    /// The broker's range for `api_key`.
    pub fn broker_range(&self, api_key: i16) -> Option<VersionRange> {
        self.ranges
            .get(&api_key)
            .map(|&(min, max)| VersionRange { min, max })
    }

    /// The highest version of `R` both sides speak.
    pub fn negotiate<R: ApiRequest>(&self) -> Option<i16> {
        self.negotiate_key(R::KEY)
    }

    /// The highest version of `api_key` both sides speak.
    pub fn negotiate_key(&self, api_key: i16) -> Option<i16> {
        let shared = our_range(api_key)?.intersect(&self.broker_range(api_key)?);
        (!shared.is_empty()).then_some(shared.max)
    }

    /// Every API purekafka uses, with the version negotiated (or `None` where none is shared),
    /// sorted by API key: for logs and compatibility reports.
    pub fn negotiated(&self) -> Vec<(&'static str, Option<i16>)> {
        OURS.iter()
            .map(|&(key, _, _)| (super::api::api_name(key), self.negotiate_key(key)))
            .collect()
    }
}

/// The ApiVersions request version tried first: v3 is the first flexible one and carries the
/// client's name (KIP-511); brokers that lack it answer UNSUPPORTED_VERSION in the v0 format.
pub const API_VERSIONS_FIRST: i16 = 3;

/// What an ApiVersions response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiVersionsAnswer {
    /// The broker's version table.
    Table(ApiVersionTable),
    /// The broker does not speak the version asked and listed nothing: ask again at v0.
    RetryAtV0,
    /// The broker answered with this error code.
    Error(i16),
}

/// Reads an ApiVersions response body (header already stripped) to a request sent at
/// `version`. A broker that does not speak `version` answers UNSUPPORTED_VERSION in the v0
/// layout, with its own list: that list is used as is.
pub fn parse_api_versions(body: &Bytes, version: i16) -> Result<ApiVersionsAnswer, String> {
    // The error code leads every version of the response.
    let error_code = body
        .clone()
        .try_get_i16()
        .map_err(|_| "empty ApiVersions response".to_owned())?;
    let unsupported = error_code == super::codes::UNSUPPORTED_VERSION;
    let layout = if unsupported { 0 } else { version };
    let response = ApiVersionsResponse::decode(&mut body.clone(), layout)
        .map_err(|e| format!("cannot decode ApiVersions v{layout} response: {e}"))?;
    let table = || {
        ApiVersionTable::new(
            response
                .api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version)),
        )
        .with_features(
            response
                .finalized_features
                .iter()
                .map(|f| (f.name.to_string(), f.max_version_level)),
        )
    };
    Ok(match error_code {
        0 => ApiVersionsAnswer::Table(table()),
        _ if unsupported && !response.api_keys.is_empty() => ApiVersionsAnswer::Table(table()),
        _ if unsupported && version > 0 => ApiVersionsAnswer::RetryAtV0,
        code => ApiVersionsAnswer::Error(code),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response frame captured from Apache Kafka 4.4.0, without its correlation id (the
    /// ApiVersions response header is always v0).
    fn golden(name: &str) -> Bytes {
        let path = format!("{}/fixtures/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        Bytes::from(std::fs::read(&path).unwrap()).slice(4..)
    }

    #[test]
    fn reads_the_brokers_v3_and_v0_answers() {
        for (file, version) in [
            ("api-versions-v3-response.bin", 3),
            ("api-versions-v0-response.bin", 0),
        ] {
            let ApiVersionsAnswer::Table(table) =
                parse_api_versions(&golden(file), version).unwrap()
            else {
                panic!("{file}: no table");
            };
            assert_eq!(
                table.broker_range(0),
                Some(VersionRange { min: 0, max: 13 }),
                "{file}"
            );
            assert_eq!(
                table.broker_range(1),
                Some(VersionRange { min: 4, max: 18 }),
                "{file}"
            );
            assert_eq!(table.negotiate::<ProduceRequest>(), Some(12));
            assert_eq!(table.negotiate::<ApiVersionsRequest>(), Some(3));
        }
        // Only v3 and later carry the finalized features: a fresh Kafka 4.4 cluster has
        // transaction protocol v2 on (KIP-890).
        let ApiVersionsAnswer::Table(table) =
            parse_api_versions(&golden("api-versions-v3-response.bin"), 3).unwrap()
        else {
            panic!("no table");
        };
        assert_eq!(table.feature("transaction.version"), Some(2));
        assert_eq!(table.feature("no.such.feature"), None);
    }

    #[test]
    fn unsupported_version_answer_falls_back_to_its_list() {
        // Kafka 4.4.0's answer to ApiVersions v127: error 35 in the v0 layout, listing only
        // ApiVersions 0..5.
        let answer = parse_api_versions(&golden("api-versions-v127-response.bin"), 127).unwrap();
        assert_eq!(
            answer,
            ApiVersionsAnswer::Table(ApiVersionTable::new([(18, 0, 5)]))
        );
        // With no list, ask again at v0; at v0 the error stands.
        let empty = Bytes::from_static(&[0, 35, 0, 0, 0, 0]);
        assert_eq!(
            parse_api_versions(&empty, 3),
            Ok(ApiVersionsAnswer::RetryAtV0)
        );
        assert_eq!(
            parse_api_versions(&empty, 0),
            Ok(ApiVersionsAnswer::Error(35))
        );
        assert!(parse_api_versions(&Bytes::new(), 3).is_err());
        assert!(parse_api_versions(&Bytes::from_static(&[0, 0, 0, 0, 0, 9]), 0).is_err());
    }

    #[test]
    fn negotiates_highest_shared_version() {
        // A CKafka 2.8-like broker: Produce 0..9, Fetch 0..12, no SaslAuthenticate v2.
        let table = ApiVersionTable::new([(0, 0, 9), (1, 0, 12), (36, 0, 2), (18, 0, 3)]);
        assert_eq!(table.negotiate::<ProduceRequest>(), Some(9));
        assert_eq!(table.negotiate::<FetchRequest>(), Some(12));
        assert_eq!(table.negotiate::<ApiVersionsRequest>(), Some(3));
        assert_eq!(table.negotiate::<MetadataRequest>(), None);
    }

    #[test]
    fn no_overlap_means_none() {
        // A broker whose Produce range lies wholly below ours.
        let table = ApiVersionTable::new([(0, 0, 2)]);
        assert_eq!(table.negotiate::<ProduceRequest>(), None);
    }

    #[test]
    fn caps_hold() {
        assert_eq!(our_range(0).unwrap().max, 12);
        assert_eq!(our_range(1).unwrap().max, 12);
    }
}
