//! The requests purekafka sends, each tied to its API key and response type.
//!
//! kafka-protocol implements its own `Request` trait only when its `broker` feature is on (the
//! trait also asks for request decoding); a client needs just encode-the-request and
//! decode-the-response, so this trait asks for exactly that.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message};

use super::frame;

/// A request purekafka sends: encodable, versioned, with a decodable response.
pub trait ApiRequest: Message + Encodable + HeaderVersion {
    /// The API key.
    const KEY: i16;
    /// The API's name, e.g. `Produce`, for messages.
    const NAME: &'static str;
    /// The response to this request.
    type Response: Decodable + HeaderVersion;
}

macro_rules! api_requests {
    ($($request:ident => $response:ident, $key:ident;)*) => {
        $(
            impl ApiRequest for $request {
                const KEY: i16 = ApiKey::$key as i16;
                const NAME: &'static str = stringify!($key);
                type Response = $response;
            }
        )*

        /// The name of an API key, for messages and reports.
        pub fn api_name(key: i16) -> &'static str {
            $(
                if key == ApiKey::$key as i16 {
                    return stringify!($key);
                }
            )*
            "UnknownApi"
        }

        /// Decodes a body of the response to API `key` at `version` as a connection does, and
        /// drops it; `None` when purekafka does not use `key`. It lets the hostile-input tests
        /// and the fuzz targets feed the same bytes to every response decoder the client uses.
        pub fn decode_response(key: i16, version: i16, mut body: Bytes) -> Option<Result<(), String>> {
            $(
                if key == ApiKey::$key as i16 {
                    return Some(frame::decode_body::<$request>(&mut body, version).map(drop));
                }
            )*
            None
        }
    };
}

api_requests! {
    ProduceRequest => ProduceResponse, Produce;
    FetchRequest => FetchResponse, Fetch;
    ListOffsetsRequest => ListOffsetsResponse, ListOffsets;
    MetadataRequest => MetadataResponse, Metadata;
    ApiVersionsRequest => ApiVersionsResponse, ApiVersions;
    SaslHandshakeRequest => SaslHandshakeResponse, SaslHandshake;
    SaslAuthenticateRequest => SaslAuthenticateResponse, SaslAuthenticate;
    CreateTopicsRequest => CreateTopicsResponse, CreateTopics;
    DeleteTopicsRequest => DeleteTopicsResponse, DeleteTopics;
    InitProducerIdRequest => InitProducerIdResponse, InitProducerId;
    FindCoordinatorRequest => FindCoordinatorResponse, FindCoordinator;
    JoinGroupRequest => JoinGroupResponse, JoinGroup;
    SyncGroupRequest => SyncGroupResponse, SyncGroup;
    HeartbeatRequest => HeartbeatResponse, Heartbeat;
    LeaveGroupRequest => LeaveGroupResponse, LeaveGroup;
    OffsetFetchRequest => OffsetFetchResponse, OffsetFetch;
    OffsetCommitRequest => OffsetCommitResponse, OffsetCommit;
    ConsumerGroupHeartbeatRequest => ConsumerGroupHeartbeatResponse, ConsumerGroupHeartbeat;
    CreatePartitionsRequest => CreatePartitionsResponse, CreatePartitions;
    ListGroupsRequest => ListGroupsResponse, ListGroups;
    DescribeGroupsRequest => DescribeGroupsResponse, DescribeGroups;
    ConsumerGroupDescribeRequest => ConsumerGroupDescribeResponse, ConsumerGroupDescribe;
    DeleteGroupsRequest => DeleteGroupsResponse, DeleteGroups;
    OffsetForLeaderEpochRequest => OffsetForLeaderEpochResponse, OffsetForLeaderEpoch;
    OffsetDeleteRequest => OffsetDeleteResponse, OffsetDelete;
    AddPartitionsToTxnRequest => AddPartitionsToTxnResponse, AddPartitionsToTxn;
    AddOffsetsToTxnRequest => AddOffsetsToTxnResponse, AddOffsetsToTxn;
    EndTxnRequest => EndTxnResponse, EndTxn;
    TxnOffsetCommitRequest => TxnOffsetCommitResponse, TxnOffsetCommit;
    DescribeTransactionsRequest => DescribeTransactionsResponse, DescribeTransactions;
    DeleteRecordsRequest => DeleteRecordsResponse, DeleteRecords;
    DescribeConfigsRequest => DescribeConfigsResponse, DescribeConfigs;
    IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse, IncrementalAlterConfigs;
    DescribeLogDirsRequest => DescribeLogDirsResponse, DescribeLogDirs;
    CreateAclsRequest => CreateAclsResponse, CreateAcls;
    DescribeAclsRequest => DescribeAclsResponse, DescribeAcls;
    DeleteAclsRequest => DeleteAclsResponse, DeleteAcls;
    ShareGroupHeartbeatRequest => ShareGroupHeartbeatResponse, ShareGroupHeartbeat;
    ShareGroupDescribeRequest => ShareGroupDescribeResponse, ShareGroupDescribe;
    ShareFetchRequest => ShareFetchResponse, ShareFetch;
    ShareAcknowledgeRequest => ShareAcknowledgeResponse, ShareAcknowledge;
    DescribeShareGroupOffsetsRequest => DescribeShareGroupOffsetsResponse, DescribeShareGroupOffsets;
    AlterShareGroupOffsetsRequest => AlterShareGroupOffsetsResponse, AlterShareGroupOffsets;
    DeleteShareGroupOffsetsRequest => DeleteShareGroupOffsetsResponse, DeleteShareGroupOffsets;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_protocol() {
        assert_eq!(ProduceRequest::KEY, 0);
        assert_eq!(FetchRequest::KEY, 1);
        assert_eq!(ApiVersionsRequest::KEY, 18);
        assert_eq!(SaslAuthenticateRequest::KEY, 36);
        assert_eq!(api_name(3), "Metadata");
        assert_eq!(api_name(-9), "UnknownApi");
    }
}
