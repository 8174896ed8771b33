//! A fake broker on a loopback port that speaks real Kafka frames: it reads each request, builds
//! the answer a real single-broker cluster would give with kafka-protocol's own types, then lets
//! the test swap that answer for hostile bytes.
//!
//! ```text
//!  client ── request frame ──► serve(): split_frame, request header ─► genuine answer
//!                                                                          │
//!  client ◄── bytes ───────────── rule for this API key? (hostile bytes) ◄─┘
//! ```
//!
//! Shared by the hostile and metadata tests. The cluster it plays: broker 1 (itself), the
//! controller, leading the one partition of [`TOPIC`], whose log holds one batch of one record
//! at offset 0. It counts the connections it accepts and those the client closes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, FindCoordinatorResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, ResponseHeader,
    ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use purekafka::protocol::frame;
use purekafka::protocol::records::{BatchBuilder, ProducerFields};
use purekafka::protocol::versions::OURS;
use purekafka::Compression;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The one topic the fake cluster has: one partition, led by broker 1.
pub const TOPIC: &str = "hostile";
/// The fake broker's node id.
const NODE: i32 = 1;
/// UNKNOWN_TOPIC_OR_PARTITION, for topics other than [`TOPIC`].
const UNKNOWN_TOPIC: i16 = 3;

pub const PRODUCE: i16 = ApiKey::Produce as i16;
pub const FETCH: i16 = ApiKey::Fetch as i16;
pub const METADATA: i16 = ApiKey::Metadata as i16;
pub const SHARE_GROUP_HEARTBEAT: i16 = ApiKey::ShareGroupHeartbeat as i16;

/// One request as the fake broker read it.
pub struct Request {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    /// The request body, after the header.
    pub body: Bytes,
}

/// What the fake broker sends for one request.
pub enum Answer {
    /// These bytes (a frame, part of one, or several), then it reads the next request.
    Send(Vec<u8>),
    /// These bytes, then it closes the connection.
    SendAndClose(Vec<u8>),
    /// These bytes after a pause (a slow broker), then it reads the next request.
    SendAfter(Duration, Vec<u8>),
}

/// Turns a request and its genuine answer (a whole frame, size prefix included) into what is
/// sent instead.
type Misbehave = Box<dyn Fn(&Request, Vec<u8>) -> Answer + Send + Sync>;

struct Rule {
    api_key: i16,
    /// How many more requests it applies to; `None`: all of them.
    left: Option<usize>,
    misbehave: Misbehave,
}

struct Shared {
    port: u16,
    /// The `(api key, min, max)` entries of the ApiVersions answer.
    versions: Mutex<Vec<(i16, i16, i16)>>,
    rules: Mutex<Vec<Rule>>,
    /// When each connection was accepted, in order.
    accepted: Mutex<Vec<Instant>>,
    /// Connections the client closed (the broker read end-of-file).
    closed_by_client: AtomicUsize,
    open: Mutex<Vec<AbortHandle>>,
}

/// A running fake broker; it stops when dropped.
pub struct FakeBroker {
    pub addr: String,
    shared: Arc<Shared>,
    accepting: AbortHandle,
}

impl FakeBroker {
    /// A fake broker on a free loopback port, offering every API version purekafka speaks.
    pub async fn start() -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            port: addr.port(),
            versions: Mutex::new(our_versions()),
            rules: Mutex::new(Vec::new()),
            accepted: Mutex::new(Vec::new()),
            closed_by_client: AtomicUsize::new(0),
            open: Mutex::new(Vec::new()),
        });
        let accepting = {
            let shared = shared.clone();
            tokio::spawn(async move {
                while let Ok((sock, _)) = listener.accept().await {
                    shared.accepted.lock().unwrap().push(Instant::now());
                    let task = tokio::spawn(serve(sock, shared.clone()));
                    shared.open.lock().unwrap().push(task.abort_handle());
                }
            })
            .abort_handle()
        };
        FakeBroker {
            addr: addr.to_string(),
            shared,
            accepting,
        }
    }

    /// Answers the next request of `api_key` with what `misbehave` makes of the genuine answer.
    pub fn next(
        &self,
        api_key: i16,
        misbehave: impl Fn(&Request, Vec<u8>) -> Answer + Send + Sync + 'static,
    ) {
        self.rule(api_key, Some(1), Box::new(misbehave));
    }

    /// Answers every request of `api_key` with what `misbehave` makes of the genuine answer,
    /// until [`FakeBroker::behave`].
    pub fn always(
        &self,
        api_key: i16,
        misbehave: impl Fn(&Request, Vec<u8>) -> Answer + Send + Sync + 'static,
    ) {
        self.rule(api_key, None, Box::new(misbehave));
    }

    /// Genuine answers again for `api_key`; other rules and the versions offered stay.
    pub fn genuine(&self, api_key: i16) {
        let mut rules = self.shared.rules.lock().unwrap();
        rules.retain(|r| r.api_key != api_key);
    }

    /// A new rule for `api_key` replaces any earlier one.
    fn rule(&self, api_key: i16, left: Option<usize>, misbehave: Misbehave) {
        self.genuine(api_key);
        self.shared.rules.lock().unwrap().push(Rule {
            api_key,
            left,
            misbehave,
        });
    }

    /// Back to genuine answers only, with every version purekafka speaks.
    pub fn behave(&self) {
        self.shared.rules.lock().unwrap().clear();
        *self.shared.versions.lock().unwrap() = our_versions();
    }

    /// The `(api key, min, max)` entries the ApiVersions answer lists from now on.
    pub fn offer_versions(&self, versions: Vec<(i16, i16, i16)>) {
        *self.shared.versions.lock().unwrap() = versions;
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.accepted.lock().unwrap().len()
    }

    /// When each connection was accepted.
    pub fn accepted_at(&self) -> Vec<Instant> {
        self.shared.accepted.lock().unwrap().clone()
    }

    /// Connections the client has closed.
    pub fn closed_by_client(&self) -> usize {
        self.shared.closed_by_client.load(Ordering::SeqCst)
    }

    /// Waits up to 5 s until the client has closed `n` connections in all.
    pub async fn until_closed_by_client(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.closed_by_client() < n {
            assert!(
                Instant::now() < deadline,
                "the client closed {} connections, not {n}",
                self.closed_by_client()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Drops every open connection, as a broker restart would.
    pub fn cut(&self) {
        for task in self.shared.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

/// Every API purekafka uses, at every version it speaks: a broker of the same vintage.
pub fn our_versions() -> Vec<(i16, i16, i16)> {
    OURS.to_vec()
}

/// One connection: read a request, answer it, until either side closes.
async fn serve(mut sock: TcpStream, shared: Arc<Shared>) {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let frame = loop {
            match frame::split_frame(&mut buf, 1 << 20) {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(e) => panic!("the fake broker read a bad request frame: {e}"),
            }
            match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => {
                    shared.closed_by_client.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok(_) => {}
            }
        };
        let request = read_request(frame);
        let Some(genuine) = shared.genuine(&request).await else {
            eprintln!("fake broker: no answer for API {}", request.api_key);
            return;
        };
        let answer = {
            let mut rules = shared.rules.lock().unwrap();
            match rules.iter().position(|r| r.api_key == request.api_key) {
                Some(i) => {
                    let answer = (rules[i].misbehave)(&request, genuine);
                    if let Some(left) = &mut rules[i].left {
                        *left -= 1;
                        if *left == 0 {
                            rules.remove(i);
                        }
                    }
                    answer
                }
                None => Answer::Send(genuine),
            }
        };
        match answer {
            Answer::SendAfter(pause, bytes) => {
                tokio::time::sleep(pause).await;
                if sock.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Answer::Send(bytes) => {
                if sock.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Answer::SendAndClose(bytes) => {
                let _ = sock.write_all(&bytes).await;
                // A clean close (FIN, not RST): stop writing, then read what the client still
                // sends until it closes too.
                let _ = sock.shutdown().await;
                let mut sink = [0u8; 1024];
                let drain = async { while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {} };
                let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
                return;
            }
        }
    }
}

fn read_request(mut frame: Bytes) -> Request {
    let header = kafka_protocol::protocol::decode_request_header_from_buffer(&mut frame)
        .expect("a request header");
    Request {
        api_key: header.request_api_key,
        api_version: header.request_api_version,
        correlation_id: header.correlation_id,
        body: frame,
    }
}

/// The response frame to `request`: size, response header, then `body` at the request's version.
pub fn respond<M: Encodable + HeaderVersion>(request: &Request, body: &M) -> Vec<u8> {
    let version = request.api_version;
    let header_version = M::header_version(version);
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(request.correlation_id)
        .encode(&mut buf, header_version)
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

/// The topic's log: one batch at offset 0 holding one record, key `k`, value `v`.
pub fn log_batch() -> Bytes {
    let mut batch = BatchBuilder::with_capacity(64);
    batch.push(1_700_000_000_000, Some(b"k"), Some(b"v"), &[]);
    batch
        .finish(ProducerFields::NONE, Compression::None)
        .unwrap()
}

impl Shared {
    /// What a real broker leading [`TOPIC`] would answer, or `None` for an API it does not play.
    async fn genuine(&self, request: &Request) -> Option<Vec<u8>> {
        let version = request.api_version;
        let mut body = request.body.clone();
        Some(match ApiKey::try_from(request.api_key).ok()? {
            ApiKey::ApiVersions => {
                let api_keys = self
                    .versions
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|&(key, min, max)| {
                        ApiVersion::default()
                            .with_api_key(key)
                            .with_min_version(min)
                            .with_max_version(max)
                    })
                    .collect();
                respond(
                    request,
                    &ApiVersionsResponse::default().with_api_keys(api_keys),
                )
            }
            ApiKey::Metadata => {
                let asked = MetadataRequest::decode(&mut body, version).unwrap();
                let names: Vec<String> = match asked.topics {
                    None => vec![TOPIC.to_owned()],
                    Some(topics) => topics
                        .iter()
                        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                        .collect(),
                };
                respond(request, &self.metadata(names))
            }
            ApiKey::Fetch => {
                let asked = FetchRequest::decode(&mut body, version).unwrap();
                let (response, has_data) = fetch(&asked);
                if !has_data {
                    // A real broker holds a fetch with nothing new for up to max_wait_ms.
                    let wait = asked.max_wait_ms.clamp(0, 200) as u64;
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                respond(request, &response)
            }
            ApiKey::Produce => {
                let asked = ProduceRequest::decode(&mut body, version).unwrap();
                respond(request, &produce(&asked))
            }
            // It coordinates every group.
            ApiKey::FindCoordinator => respond(
                request,
                &FindCoordinatorResponse::default()
                    .with_node_id(BrokerId(NODE))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(self.port as i32),
            ),
            // A share group of one member that has nothing assigned.
            ApiKey::ShareGroupHeartbeat => {
                let asked = ShareGroupHeartbeatRequest::decode(&mut body, version).unwrap();
                respond(
                    request,
                    &ShareGroupHeartbeatResponse::default()
                        .with_member_id(Some(asked.member_id))
                        .with_member_epoch(asked.member_epoch.max(0) + 1)
                        .with_heartbeat_interval_ms(500),
                )
            }
            _ => return None,
        })
    }

    fn metadata(&self, names: Vec<String>) -> MetadataResponse {
        let topics = names
            .into_iter()
            .map(|name| {
                let topic = MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(name.clone()))));
                if name != TOPIC {
                    return topic.with_error_code(UNKNOWN_TOPIC);
                }
                topic.with_partitions(vec![MetadataResponsePartition::default()
                    .with_partition_index(0)
                    .with_leader_id(BrokerId(NODE))
                    .with_leader_epoch(0)
                    .with_replica_nodes(vec![BrokerId(NODE)])
                    .with_isr_nodes(vec![BrokerId(NODE)])])
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(NODE))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(self.port as i32)])
            .with_cluster_id(Some(StrBytes::from_static_str("hostile-cluster")))
            .with_controller_id(BrokerId(NODE))
            .with_topics(topics)
    }
}

/// The answer to a Fetch, and whether it carries records.
fn fetch(asked: &FetchRequest) -> (FetchResponse, bool) {
    let mut has_data = false;
    let responses = asked
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let ours = t.topic.0.as_str() == TOPIC && p.partition == 0;
                    let answer = PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_preferred_read_replica(BrokerId(-1));
                    if !ours {
                        return answer.with_error_code(UNKNOWN_TOPIC);
                    }
                    let records = if p.fetch_offset == 0 {
                        has_data = true;
                        log_batch()
                    } else {
                        Bytes::new()
                    };
                    answer
                        .with_high_watermark(1)
                        .with_last_stable_offset(1)
                        .with_log_start_offset(0)
                        .with_records(Some(records))
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    (FetchResponse::default().with_responses(responses), has_data)
}

/// The answer to a Produce: every batch written at offset 0.
fn produce(asked: &ProduceRequest) -> ProduceResponse {
    let responses = asked
        .topic_data
        .iter()
        .map(|t| {
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(
                    t.partition_data
                        .iter()
                        .map(|p| {
                            PartitionProduceResponse::default()
                                .with_index(p.index)
                                .with_base_offset(0)
                                .with_log_append_time_ms(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}
