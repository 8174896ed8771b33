//! Version negotiation: which version of each API purekafka speaks, and the highest version it
//! shares with a broker, from that broker's ApiVersions answer.
//!
//! purekafka's range for an API is kafka-protocol's range, narrowed where a newer version changes
//! what the client must do (for example Produce v13 and Fetch v13 name topics by id only), so
//! every version in [`OURS`] is one the client code handles.

use std::collections::HashMap;

use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, DeleteTopicsRequest, FetchRequest, ListOffsetsRequest,
    MetadataRequest, ProduceRequest, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::VersionRange;

use super::api::ApiRequest;

/// The APIs purekafka uses and the versions it speaks: `(api key, min, max)`.
pub const OURS: &[(i16, i16, i16)] = &[
    // v13 replaces topic names with topic ids (KIP-516); names serve every broker we support.
    ours::<ProduceRequest>(Some(12)),
    // Same reason as Produce.
    ours::<FetchRequest>(Some(12)),
    ours::<ListOffsetsRequest>(None),
    ours::<MetadataRequest>(None),
    // The handshake sends v3 (see API_VERSIONS_FIRST); v4 only changes how brokers answer
    // unknown versions, which the v0 fallback already covers.
    ours::<ApiVersionsRequest>(Some(API_VERSIONS_FIRST)),
    ours::<SaslHandshakeRequest>(None),
    ours::<SaslAuthenticateRequest>(None),
    ours::<CreateTopicsRequest>(None),
    ours::<DeleteTopicsRequest>(None),
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

/// A broker's supported version ranges, keyed by API key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionTable {
    ranges: HashMap<i16, (i16, i16)>,
}

impl ApiVersionTable {
    /// Builds the table from the `(api key, min, max)` entries of an ApiVersions response.
    pub fn new(entries: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        ApiVersionTable {
            ranges: entries
                .into_iter()
                .map(|(k, lo, hi)| (k, (lo, hi)))
                .collect(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
