//! An in-memory Kafka cluster for unit tests: brokers reached through tokio's `duplex` pipes
//! instead of sockets, answering ApiVersions, InitProducerId, the partitions' requests
//! (Metadata, Produce, Fetch, ListOffsets: [`log`]), a classic group's ([`group`]) and a
//! transaction coordinator's ([`txn`]) as a real cluster does, with the knobs a test needs (a broker that stalls, a leader that moves, a
//! partition that refuses). No broker process, no port: the tests run on paused time.
//!
//! ```text
//!  Connection::connect("mem-7-2:9092") ── dial() ──► duplex pipe ──► serve(cluster 7, broker 2)
//! ```
//!
//! The answers are kafka-protocol's own response types, encoded at the version asked, so what
//! the client reads is what a broker of that version sends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, ApiVersionsResponse,
    ConsumerGroupDescribeRequest, DescribeGroupsRequest, DescribeTransactionsRequest,
    EndTxnRequest, FetchRequest, HeartbeatRequest, InitProducerIdRequest, InitProducerIdResponse,
    JoinGroupRequest, LeaveGroupRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, ProduceRequest, ProducerId, ShareAcknowledgeRequest, ShareFetchRequest,
    ShareGroupHeartbeatRequest, SyncGroupRequest, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::protocol::frame;
use group::Asked;
use log::{fetch, list_offsets, metadata, produce};

mod group;
mod log;
mod share;
mod txn;
use crate::protocol::records::BatchDecoder;
use crate::protocol::versions::OURS;

/// The clusters alive, by id, for [`dial`].
static CLUSTERS: Mutex<Vec<(u64, Weak<Mutex<State>>)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Numbers each connection a broker serves.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A connection to `addr` when it names a broker of a live in-memory cluster
/// (`mem-<cluster>-<node>:9092`): the client's end of a pipe whose other end that broker serves.
pub(crate) fn dial(addr: &str) -> Option<DuplexStream> {
    let rest = addr.strip_prefix("mem-")?.strip_suffix(":9092")?;
    let (cluster, node) = rest.split_once('-')?;
    let (cluster, node): (u64, i32) = (cluster.parse().ok()?, node.parse().ok()?);
    let state = CLUSTERS
        .lock()
        .unwrap()
        .iter()
        .find(|(id, _)| *id == cluster)
        .and_then(|(_, state)| state.upgrade())?;
    let (client, server) = tokio::io::duplex(1 << 20);
    let mut guard = state.lock().unwrap();
    let broker = guard.brokers.get_mut(&node)?;
    broker.connections += 1;
    if !broker.down {
        tokio::spawn(serve(server, Arc::downgrade(&state), node));
    }
    Some(client)
}

/// One partition's log and how it answers.
#[derive(Default)]
struct Partition {
    leader: i32,
    leader_epoch: i32,
    /// The batches written, in offset order, with their base offsets.
    log: Vec<(i64, Bytes)>,
    next_offset: i64,
    /// Refuse Produce with this error code, this many more times.
    refuse: Option<(i16, usize)>,
    /// The replica the leader names to a consumer that sends its rack (KIP-392); it serves
    /// the partition's fetches as the leader does.
    read_replica: Option<i32>,
}

#[derive(Default)]
struct Broker {
    /// Produce requests are read but not answered while set.
    stalled: bool,
    /// Nothing is answered at all, not even the handshake.
    silent: bool,
    /// Connections are closed as soon as they are made: the broker is down.
    down: bool,
    /// SASL logins are refused (SaslAuthenticate answers SASL_AUTHENTICATION_FAILED).
    refuse_logins: bool,
    /// The lifetime of SASL sessions (KIP-368's `connections.max.reauth.ms`): a connection
    /// whose session expired is closed at its next request, as Kafka closes it.
    session_lifetime: Option<std::time::Duration>,
    /// Re-authentications completed on this broker's connections.
    reauthentications: usize,
    /// Connections closed because a request came after their session expired, or came
    /// between the messages of a re-authentication.
    sessions_broken: usize,
    connections: usize,
    produce_requests: usize,
    fetch_requests: usize,
}

#[derive(Default)]
struct State {
    id: u64,
    brokers: BTreeMap<i32, Broker>,
    topics: BTreeMap<String, Vec<Partition>>,
    init_producer_id: usize,
    metadata_requests: usize,
    /// The groups broker 1 coordinates.
    groups: BTreeMap<String, group::Group>,
    /// The transactions broker 1 coordinates.
    txns: txn::Txns,
    /// The next OffsetFetch requests are answered with these error codes, in turn.
    offset_fetch_errors: std::collections::VecDeque<i16>,
    /// Whether each OffsetFetch asked for stable offsets (`require_stable`), in order.
    offset_fetch_stable: Vec<bool>,
    /// The KIP-848 groups broker 1 coordinates, with their member ids.
    kip848_groups: BTreeMap<String, Vec<String>>,
    /// The share groups, their records and their members' sessions.
    shares: share::Shares,
}

/// An in-memory cluster; its brokers stop answering when it is dropped.
pub(crate) struct MemCluster {
    state: Arc<Mutex<State>>,
}

impl MemCluster {
    /// A cluster of brokers `1..=brokers`.
    pub fn new(brokers: i32) -> MemCluster {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(Mutex::new(State {
            id,
            brokers: (1..=brokers).map(|n| (n, Broker::default())).collect(),
            ..State::default()
        }));
        let mut clusters = CLUSTERS.lock().unwrap();
        clusters.retain(|(_, s)| s.strong_count() > 0);
        clusters.push((id, Arc::downgrade(&state)));
        MemCluster { state }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// The address of broker `node`.
    pub fn addr(&self, node: i32) -> String {
        format!("mem-{}-{node}:9092", self.state().id)
    }

    /// Creates `topic` with one partition per entry of `leaders`, led by that broker.
    pub fn topic(&self, topic: &str, leaders: &[i32]) {
        let partitions = leaders
            .iter()
            .map(|&leader| Partition {
                leader,
                ..Partition::default()
            })
            .collect();
        self.state().topics.insert(topic.to_owned(), partitions);
    }

    /// Broker `node` takes Produce requests and does not answer them while `on`: neither them
    /// nor anything after them on the same connection (a broker answers in order). New
    /// connections answer again once it is off. The requests held are not written.
    pub fn stall(&self, node: i32, on: bool) {
        self.state().brokers.get_mut(&node).unwrap().stalled = on;
    }

    /// Broker `node` answers nothing at all, the handshake included.
    pub fn silence(&self, node: i32) {
        self.state().brokers.get_mut(&node).unwrap().silent = true;
    }

    /// Broker `node` is down while `on`: each connection to it ends at once.
    pub fn down(&self, node: i32, on: bool) {
        self.state().brokers.get_mut(&node).unwrap().down = on;
    }

    /// Makes `to` the leader of `topic[partition]`, with the next leader epoch.
    pub fn move_leader(&self, topic: &str, partition: usize, to: i32) {
        let mut state = self.state();
        let p = &mut state.topics.get_mut(topic).unwrap()[partition];
        p.leader = to;
        p.leader_epoch += 1;
    }

    /// The next `times` Produce requests for `topic[partition]` fail with error `code`.
    pub fn refuse(&self, topic: &str, partition: usize, code: i16, times: usize) {
        self.state().topics.get_mut(topic).unwrap()[partition].refuse = Some((code, times));
    }

    /// The records written to `topic[partition]`, as `(offset, value)` in log order.
    pub fn records(&self, topic: &str, partition: usize) -> Vec<(i64, Option<Bytes>)> {
        let state = self.state();
        let mut out = Vec::new();
        for (base, bytes) in &state.topics[topic][partition].log {
            for batch in BatchDecoder::new(bytes.clone(), true, usize::MAX) {
                let batch = batch.expect("the client's batches decode");
                // The client numbers a batch's records from 0; the log from `base`.
                for record in batch.records {
                    out.push((base + record.offset, record.value));
                }
            }
        }
        out
    }

    /// Names broker `replica` (or none) to consumers with a rack, as `topic[partition]`'s
    /// replica to read from (KIP-392).
    pub fn read_replica(&self, topic: &str, partition: usize, replica: Option<i32>) {
        self.state().topics.get_mut(topic).unwrap()[partition].read_replica = replica;
    }

    /// Fetch requests broker `node` has answered.
    pub fn fetch_requests(&self, node: i32) -> usize {
        self.state().brokers[&node].fetch_requests
    }

    /// Produce requests broker `node` has read.
    pub fn produce_requests(&self, node: i32) -> usize {
        self.state().brokers[&node].produce_requests
    }

    /// Connections made to broker `node`.
    pub fn connections(&self, node: i32) -> usize {
        self.state().brokers[&node].connections
    }

    /// InitProducerId requests the cluster has answered.
    pub fn init_producer_id_requests(&self) -> usize {
        self.state().init_producer_id
    }

    /// The next OffsetFetch requests fail with these error codes, in turn.
    pub fn refuse_offset_fetch(&self, codes: &[i16]) {
        self.state().offset_fetch_errors.extend(codes);
    }

    /// Whether each OffsetFetch the cluster read asked for stable offsets, in order.
    pub fn offset_fetch_stable(&self) -> Vec<bool> {
        self.state().offset_fetch_stable.clone()
    }

    /// Group `group`'s generation.
    pub fn generation(&self, group: &str) -> i32 {
        self.state().groups.get(group).map_or(0, |g| g.generation())
    }

    /// Broker `node` refuses every SASL login from now on (its open connections stay).
    pub fn refuse_logins(&self, node: i32) {
        if let Some(b) = self.state().brokers.get_mut(&node) {
            b.refuse_logins = true;
        }
    }

    /// Broker `node` gives SASL sessions this lifetime from now on (KIP-368).
    pub fn session_lifetime(&self, node: i32, lifetime: std::time::Duration) {
        if let Some(b) = self.state().brokers.get_mut(&node) {
            b.session_lifetime = Some(lifetime);
        }
    }

    /// Broker `node`'s re-authentications, and the connections it closed for an expired
    /// session or a request within a re-authentication.
    pub fn sessions(&self, node: i32) -> (usize, usize) {
        let state = self.state();
        let b = &state.brokers[&node];
        (b.reauthentications, b.sessions_broken)
    }

    /// A KIP-848 group of these members on broker 1 (described, not joined: it answers
    /// ConsumerGroupDescribe, and DescribeGroups as an empty Stable group).
    pub fn kip848_group(&self, group: &str, members: &[&str]) {
        let members = members.iter().map(|m| m.to_string()).collect();
        self.state().kip848_groups.insert(group.to_owned(), members);
    }

    /// The sessions of all of group `group`'s members expire now (see `Group::expire`).
    pub fn expire_members(&self, group: &str) {
        if let Some(g) = self.state().groups.get_mut(group) {
            g.expire();
        }
    }

    /// The cluster's `transaction.version` feature is `level` for the connections made from
    /// now on (0, the default: not named at all, as brokers before 4.0 have it).
    pub fn transaction_version(&self, level: i16) {
        self.state().txns.version = level;
    }

    /// The next `answers` DescribeTransactions say the last transaction is still completing.
    pub fn txn_completing(&self, answers: usize) {
        self.state().txns.completing = answers;
    }

    /// The transaction coordinator's requests, and transactional Produce requests, in the
    /// order the cluster read them (by API name).
    pub fn txn_asked(&self) -> Vec<&'static str> {
        self.state().txns.asked.clone()
    }

    /// The next answers of transaction API `api` (`AddPartitionsToTxn`, `EndTxn`, ...) are
    /// these error codes, in turn.
    pub fn script_txn(&self, api: &'static str, codes: &[i16]) {
        let mut state = self.state();
        state.txns.scripted.entry(api).or_default().extend(codes);
    }

    /// EndTxn requests are read and not answered while `on`.
    pub fn hold_end_txn(&self, on: bool) {
        self.state().txns.hold_end = on;
    }

    /// The transactions ended, in order: committed or not, and their partitions.
    pub fn txns_ended(&self) -> Vec<(bool, Vec<(String, i32)>)> {
        self.state().txns.ended.clone()
    }

    /// Share groups' members hold a record this long after they acquired it.
    pub fn share_lock(&self, lock: std::time::Duration) {
        self.state().shares.lock = lock;
    }

    /// Share groups archive a record released after `limit` deliveries.
    pub fn share_delivery_limit(&self, limit: i16) {
        self.state().shares.limit = limit;
    }

    /// Every share session ends, as a broker restart would end them (the records stay
    /// acquired by their members): the next request names a session the brokers do not have.
    pub fn forget_share_sessions(&self) {
        self.state().shares.forget_sessions();
    }

    /// The acknowledgements the brokers took: (topic, partition, first, last, type).
    pub fn share_acknowledged(&self) -> Vec<(String, i32, i64, i64, i8)> {
        self.state().shares.acknowledged.clone()
    }

    /// The share session epochs of ShareFetch and ShareAcknowledge requests, in order.
    pub fn share_epochs(&self) -> Vec<(&'static str, i32)> {
        self.state().shares.epochs.clone()
    }

    /// The offsets `group` has committed through transactions.
    pub fn txn_offsets(&self, group: &str) -> BTreeMap<(String, i32), i64> {
        self.state()
            .txns
            .committed
            .get(group)
            .cloned()
            .unwrap_or_default()
    }
}

/// Broker `node` of the cluster behind `state`, on one connection: reads each request and
/// answers it, in order, until the client closes or the cluster is gone.
async fn serve(pipe: DuplexStream, state: Weak<Mutex<State>>, node: i32) {
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    serve_conn(pipe, &state, node, conn).await;
    // The share sessions on the connection end with it (their records are released).
    if let Some(state) = state.upgrade() {
        state.lock().unwrap().shares.disconnected(conn);
    }
}

async fn serve_conn(mut pipe: DuplexStream, state: &Weak<Mutex<State>>, node: i32, conn: u64) {
    let mut buf = BytesMut::with_capacity(4096);
    // Set once this connection stops answering: a broker answers in order, so after one
    // request it holds, it answers none.
    let mut holding = false;
    let mut session = Session::default();
    loop {
        let frame = loop {
            match frame::split_frame(&mut buf, 64 << 20) {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(e) => panic!("the in-memory broker read a bad request frame: {e}"),
            }
            match pipe.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        {
            let Some(shared) = state.upgrade() else {
                return;
            };
            let mut shared = shared.lock().unwrap();
            let broker = shared.brokers.get_mut(&node).unwrap();
            let reauthenticating = session.reauthenticating;
            let admitted = session.admits(&frame, broker.session_lifetime);
            if reauthenticating && !session.reauthenticating && admitted {
                broker.reauthentications += 1;
            }
            if !admitted {
                broker.sessions_broken += 1;
                return;
            }
        }
        // A fetch with nothing to return waits for records, up to its max_wait_ms, as a
        // broker does.
        // A JoinGroup or SyncGroup waits for the other members.
        let asked = tokio::time::Instant::now();
        let waits_until = fetch_wait(&frame).map(|wait| asked + wait);
        let mut again = false;
        let answer = loop {
            let Some(state) = state.upgrade() else { return };
            let (answer, ready) = take(&state, node, &frame, &mut holding, again, conn);
            if ready || waits_until.is_some_and(|at| tokio::time::Instant::now() >= at) {
                break answer;
            }
            assert!(
                asked.elapsed() < std::time::Duration::from_secs(3600),
                "the in-memory broker waited an hour to answer"
            );
            again = true;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        if let Some(answer) = answer {
            if pipe.write_all(&answer).await.is_err() {
                return;
            }
        }
    }
}

/// One connection's SASL session, as Kafka keeps it (KIP-368).
#[derive(Default)]
struct Session {
    authenticated: bool,
    /// Between a SaslHandshake on an authenticated connection and the SaslAuthenticate that
    /// completes it.
    reauthenticating: bool,
    expires: Option<tokio::time::Instant>,
}

impl Session {
    /// Whether the broker takes `frame` on this connection, updating the session: a request
    /// other than SASL's after the session expired, or within a re-authentication, closes the
    /// connection. (A SaslAuthenticate completes the exchange here: the mechanism is PLAIN.)
    fn admits(&mut self, frame: &Bytes, lifetime: Option<std::time::Duration>) -> bool {
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let now = tokio::time::Instant::now();
        if key == ApiKey::SaslHandshake as i16 {
            self.reauthenticating = self.authenticated;
            return true;
        }
        if key == ApiKey::SaslAuthenticate as i16 {
            self.authenticated = true;
            self.reauthenticating = false;
            self.expires = lifetime.map(|l| now + l);
            return true;
        }
        !self.reauthenticating && self.expires.is_none_or(|at| now < at)
    }
}

/// Broker `node`'s answer to `frame` (see [`answer`]), or none while it holds the connection's
/// requests (silent, or stalled on a Produce: `holding` is then set for good).
fn take(
    state: &Mutex<State>,
    node: i32,
    frame: &Bytes,
    holding: &mut bool,
    again: bool,
    conn: u64,
) -> (Option<Vec<u8>>, bool) {
    let mut state = state.lock().unwrap();
    let broker = state.brokers.get_mut(&node).unwrap();
    let produce = i16::from_be_bytes([frame[0], frame[1]]) == ApiKey::Produce as i16;
    if broker.silent || (broker.stalled && produce) {
        if produce {
            broker.produce_requests += 1;
        }
        *holding = true;
    }
    match *holding {
        true => (None, true),
        false => answer(&mut state, node, frame.clone(), again, conn),
    }
}

/// How long a Fetch in `frame` may wait for records; `None` for any other request.
fn fetch_wait(frame: &Bytes) -> Option<std::time::Duration> {
    let mut frame = frame.clone();
    let header = kafka_protocol::protocol::decode_request_header_from_buffer(&mut frame).ok()?;
    let version = header.request_api_version;
    let wait = match ApiKey::try_from(header.request_api_key).ok()? {
        ApiKey::Fetch => FetchRequest::decode(&mut frame, version).ok()?.max_wait_ms,
        ApiKey::ShareFetch => {
            ShareFetchRequest::decode(&mut frame, version)
                .ok()?
                .max_wait_ms
        }
        _ => return None,
    };
    Some(std::time::Duration::from_millis(wait.max(0) as u64))
}

/// The response frame to one request, or `None` when none is sent (Produce with acks=0); and
/// whether it is ready to go (false for a Fetch that found no records, which may wait, and for
/// a group's request waiting for the other members). `again`: the same request asked again.
fn answer(
    state: &mut State,
    node: i32,
    frame: Bytes,
    again: bool,
    conn: u64,
) -> (Option<Vec<u8>>, bool) {
    if i16::from_be_bytes([frame[0], frame[1]]) == ApiKey::ShareFetch as i16 {
        return share_fetch(state, node, frame, again, conn);
    }
    let empty_fetch = i16::from_be_bytes([frame[0], frame[1]]) == ApiKey::Fetch as i16
        && !has_records(state, node, &frame);
    match respond_to(state, node, frame, again) {
        Asked::Now(answer) => (answer, !empty_fetch),
        Asked::Wait => (None, false),
    }
}

/// A ShareFetch's answer, and whether it is ready (see [`share::fetch`]).
fn share_fetch(
    state: &mut State,
    node: i32,
    mut frame: Bytes,
    again: bool,
    conn: u64,
) -> (Option<Vec<u8>>, bool) {
    let header = kafka_protocol::protocol::decode_request_header_from_buffer(&mut frame)
        .expect("a request header");
    let version = header.request_api_version;
    let asked = ShareFetchRequest::decode(&mut frame, version).unwrap();
    let (response, ready) = share::fetch(state, node, &asked, again, conn);
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    buf.put_i32(header.correlation_id);
    encode_with_header(&response, version, &mut buf);
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    (Some(buf.to_vec()), ready)
}

/// Whether a Fetch in `frame` finds any records (or an error), as broker `node` answers it.
fn has_records(state: &mut State, node: i32, frame: &Bytes) -> bool {
    let mut frame = frame.clone();
    let Ok(header) = kafka_protocol::protocol::decode_request_header_from_buffer(&mut frame) else {
        return true;
    };
    let Ok(asked) = FetchRequest::decode(&mut frame, header.request_api_version) else {
        return true;
    };
    let answer = fetch(state, node, &asked);
    answer
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| p.error_code != 0 || p.records.as_ref().is_some_and(|r| !r.is_empty()))
}

/// The response frame to one request, or `None` when none is sent (Produce with acks=0).
fn respond_to(
    state: &mut State,
    node: i32,
    mut frame: Bytes,
    again: bool,
) -> Asked<Option<Vec<u8>>> {
    let header = kafka_protocol::protocol::decode_request_header_from_buffer(&mut frame)
        .expect("a request header");
    let (key, version) = (header.request_api_key, header.request_api_version);
    let respond = |body: &dyn Fn(&mut BytesMut)| {
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        buf.put_i32(header.correlation_id);
        body(&mut buf);
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        buf.to_vec()
    };
    /// Decodes the request body as `$request`.
    macro_rules! decode {
        ($request:ty) => {
            <$request>::decode(&mut frame, version).unwrap()
        };
    }
    let encode = |response: &dyn Fn(&mut BytesMut)| Some(respond(response));
    Asked::Now(
        match ApiKey::try_from(key).expect("a known API") {
            ApiKey::FindCoordinator => {
                let response = group::find_coordinator(format!("mem-{}-1", state.id));
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::JoinGroup => {
                let asked = decode!(JoinGroupRequest);
                return match group::join(&mut state.groups, &asked, version, again) {
                    Asked::Now(r) => {
                        Asked::Now(encode(&|buf| encode_with_header(&r, version, buf)))
                    }
                    Asked::Wait => Asked::Wait,
                };
            }
            ApiKey::SyncGroup => {
                let asked = decode!(SyncGroupRequest);
                return match group::sync(&mut state.groups, &asked) {
                    Asked::Now(r) => {
                        Asked::Now(encode(&|buf| encode_with_header(&r, version, buf)))
                    }
                    Asked::Wait => Asked::Wait,
                };
            }
            // SASL/PLAIN: any login, unless the broker refuses them all.
            ApiKey::SaslHandshake => {
                let response = kafka_protocol::messages::SaslHandshakeResponse::default()
                    .with_mechanisms(vec![StrBytes::from_static_str("PLAIN")]);
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::SaslAuthenticate => {
                let broker = state.brokers.get_mut(&node).unwrap();
                let refused = broker.refuse_logins;
                let lifetime_ms = broker.session_lifetime.map_or(0, |l| l.as_millis() as i64);
                let response = match refused {
                    // SASL_AUTHENTICATION_FAILED.
                    true => kafka_protocol::messages::SaslAuthenticateResponse::default()
                        .with_error_code(58)
                        .with_error_message(Some(StrBytes::from_static_str(
                            "Authentication failed: Invalid username or password",
                        ))),
                    false => kafka_protocol::messages::SaslAuthenticateResponse::default()
                        .with_session_lifetime_ms(lifetime_ms),
                };
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::DescribeGroups => {
                let asked = decode!(DescribeGroupsRequest);
                let response = group::describe(&state.groups, &state.kip848_groups, &asked);
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::ConsumerGroupDescribe => {
                let asked = decode!(ConsumerGroupDescribeRequest);
                let response = group::consumer_group_describe(&state.kip848_groups, &asked);
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::Heartbeat => {
                let response = group::heartbeat(&mut state.groups, &decode!(HeartbeatRequest));
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::LeaveGroup => {
                let response = group::leave(&mut state.groups, &decode!(LeaveGroupRequest));
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::OffsetCommit => {
                let response = group::commit(&mut state.groups, &decode!(OffsetCommitRequest));
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::OffsetFetch => {
                let asked = decode!(OffsetFetchRequest);
                state.offset_fetch_stable.push(asked.require_stable);
                let response = match state.offset_fetch_errors.pop_front() {
                    Some(code) => kafka_protocol::messages::OffsetFetchResponse::default()
                        .with_error_code(code),
                    None => group::fetch_offsets(&mut state.groups, &asked),
                };
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::ApiVersions => {
                let keys = OURS
                    .iter()
                    .map(|&(key, min, max)| {
                        ApiVersion::default()
                            .with_api_key(key)
                            .with_min_version(min)
                            .with_max_version(max)
                    })
                    .collect();
                let mut response = ApiVersionsResponse::default().with_api_keys(keys);
                if state.txns.version > 0 {
                    response = response
                        .with_finalized_features_epoch(1)
                        .with_finalized_features(vec![FinalizedFeatureKey::default()
                            .with_name(StrBytes::from_static_str("transaction.version"))
                            .with_min_version_level(state.txns.version)
                            .with_max_version_level(state.txns.version)]);
                }
                // ApiVersions answers with the v0 response header whatever its version.
                respond(&|buf| response.encode(buf, version).unwrap())
            }
            ApiKey::Metadata => {
                state.metadata_requests += 1;
                let asked = MetadataRequest::decode(&mut frame, version).unwrap();
                let response = metadata(state, asked);
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::InitProducerId => {
                let asked = decode!(InitProducerIdRequest);
                if asked.transactional_id.is_some() {
                    let response = state.txns.init(&asked);
                    return Asked::Now(encode(&|buf| encode_with_header(&response, version, buf)));
                }
                state.init_producer_id += 1;
                let response = InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(1000 + state.init_producer_id as i64))
                    .with_producer_epoch(0);
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::Fetch => {
                let asked = FetchRequest::decode(&mut frame, version).unwrap();
                let response = fetch(state, node, &asked);
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::ListOffsets => {
                let asked = ListOffsetsRequest::decode(&mut frame, version).unwrap();
                let response = list_offsets(state, &asked);
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::Produce => {
                state.brokers.get_mut(&node).unwrap().produce_requests += 1;
                let asked = ProduceRequest::decode(&mut frame, version).unwrap();
                let response = produce(state, node, &asked, version);
                if asked.acks == 0 {
                    return Asked::Now(None);
                }
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::AddPartitionsToTxn => {
                let response = state
                    .txns
                    .add_partitions(&decode!(AddPartitionsToTxnRequest));
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::AddOffsetsToTxn => {
                let response = state.txns.add_offsets(&decode!(AddOffsetsToTxnRequest));
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::TxnOffsetCommit => {
                let response = state.txns.commit_offsets(&decode!(TxnOffsetCommitRequest));
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::DescribeTransactions => {
                let response = state.txns.describe(&decode!(DescribeTransactionsRequest));
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::EndTxn => {
                return match state.txns.end(&decode!(EndTxnRequest), version, again) {
                    Some(r) => Asked::Now(encode(&|buf| encode_with_header(&r, version, buf))),
                    None => Asked::Wait,
                };
            }
            ApiKey::ShareGroupHeartbeat => {
                let response = share::heartbeat(state, &decode!(ShareGroupHeartbeatRequest));
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            ApiKey::ShareAcknowledge => {
                let asked = decode!(ShareAcknowledgeRequest);
                let response = share::acknowledge_request(state, node, &asked);
                respond(&|buf| encode_with_header(&response, version, buf))
            }
            other => panic!("the in-memory broker does not play {other:?}"),
        }
        .into(),
    )
}

/// Writes the rest of the response header (after the correlation id) and the body.
fn encode_with_header<M: Encodable + HeaderVersion>(body: &M, version: i16, buf: &mut BytesMut) {
    if M::header_version(version) >= 1 {
        buf.put_u8(0); // no tagged fields
    }
    body.encode(buf, version).unwrap();
}
