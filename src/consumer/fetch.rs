//! The fetcher: one Fetch per leader covering every assigned partition it leads, with the next
//! round already on the wire while the application works through the current one, and records
//! decoded zero-copy from the answers.
//!
//! ```text
//!  recv ─► buffered? ─► else await the round in flight (or start one)
//!                          │  per leader: FetchSession plans the request (KIP-227)
//!                          ▼
//!              absorb (absorb.rs): answers for partitions still at the offset asked
//!                          │  ─► BatchDecoder (a seek, reset or rebalance meanwhile drops the
//!                          │  stale answer); positions whose leader moved on: validation.rs
//!                          ▼
//!              start the next round at the new positions ─► hand out messages
//! ```
//!
//! At most two rounds of records are held: the one being handed out and the one in flight.
//! Each partition is fetched at the leader epoch the metadata names (KIP-320), and a leader
//! that cannot be reached has its topics' metadata asked for again at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::task::JoinHandle;

use super::absorb::absorb;
use super::fetch_session::FetchPlan;
use super::validation::{self, apply_checks, Checked, Epochs};
use super::Message;
use crate::cluster::{by_leader, by_topic, topic_name, ByLeader, Cluster, TopicPartition};
use crate::config::ConsumerConfig;
use crate::conn::Connection;
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::codes;

/// What the consumer knows of its partitions between fetches.
#[derive(Default)]
pub(super) struct FetchState {
    /// Next offset to fetch, per assigned partition.
    pub positions: BTreeMap<TopicPartition, i64>,
    /// The high watermark each partition reported in its last fetch.
    pub high_watermarks: BTreeMap<TopicPartition, i64>,
    /// Where each partition ends for this consumer, as of its last fetch: the high watermark,
    /// or under `read_committed` the last stable offset (an open transaction's first offset).
    pub ends: BTreeMap<TopicPartition, i64>,
    /// Assigned partitions not fetched until resumed.
    pub paused: BTreeSet<TopicPartition>,
    /// The leader epochs each position hangs on (KIP-320); missing: unknown.
    pub epochs: BTreeMap<TopicPartition, Epochs>,
    /// Partitions whose log was found truncated under the position, and where it diverges:
    /// what was handed out beyond that is gone, and commits must not store it.
    pub truncated: Vec<(TopicPartition, i64)>,
    /// Fetched messages not yet handed out.
    pub buffered: VecDeque<Message>,
    /// The replica each partition is read from instead of its leader, as the leader named it
    /// for this consumer's `client.rack` (KIP-392). Dropped at the replica's first error.
    pub read_replicas: BTreeMap<TopicPartition, i32>,
}

/// Where one partition is fetched from: the offset, and the leader epoch the cluster named
/// for its leader (-1 where brokers send none). The leader answers FENCED_LEADER_EPOCH when
/// it has moved on and UNKNOWN_LEADER_EPOCH when it has not caught up yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FetchAt {
    pub offset: i64,
    pub leader_epoch: i32,
}

type FetchSession = super::fetch_session::FetchSession<FetchAt>;

impl FetchState {
    /// Forgets everything: a new assignment follows.
    pub fn clear(&mut self) {
        *self = FetchState::default();
    }

    /// Forgets one partition (revoked).
    pub fn remove(&mut self, tp: &TopicPartition) {
        self.positions.remove(tp);
        self.high_watermarks.remove(tp);
        self.ends.remove(tp);
        self.read_replicas.remove(tp);
        self.paused.remove(tp);
        self.epochs.remove(tp);
        self.buffered
            .retain(|m| (&m.topic, m.partition) != (&tp.0, tp.1));
    }

    /// The partitions to fetch, where, and the epochs their positions hang on: assigned and
    /// not paused.
    fn wanted(&self) -> BTreeMap<TopicPartition, (i64, Epochs)> {
        self.positions
            .iter()
            .filter(|(tp, _)| !self.paused.contains(*tp))
            .map(|(tp, o)| {
                let epochs = self.epochs.get(tp).copied().unwrap_or_default();
                (tp.clone(), (*o, epochs))
            })
            .collect()
    }
}

/// Settings of every Fetch request.
#[derive(Clone)]
struct FetchParams {
    max_wait: Duration,
    min_bytes: i32,
    max_bytes: i32,
    partition_max_bytes: i32,
    isolation_level: i8,
    /// `client.rack`, sent in Fetch v11 and later (KIP-392).
    rack: Option<Arc<str>>,
    /// Which partition leads a full fetch: a turn each, so that one partition with more than
    /// fetch.max.bytes waiting does not keep the others from ever being answered.
    rotation: usize,
}

/// One leader's answer, with where it was asked to fetch from and the connection it came on.
pub(super) struct Reply {
    /// The broker that answered: the leader, or a replica it named (KIP-392).
    pub broker: i32,
    pub asked: BTreeMap<TopicPartition, FetchAt>,
    pub response: FetchResponse,
    pub conn: Connection,
}

/// What a round brings back: the answers, the positions checked against new leaders, the
/// sessions it carried, and its first failure.
struct Round {
    sessions: BTreeMap<i32, FetchSession>,
    replies: Vec<Reply>,
    checked: Vec<Checked>,
    /// Partitions read from a replica whose fetch failed: read from the leader again.
    from_leader: Vec<TopicPartition>,
    /// A session was lost or a leader moved: fetch again, after a pause if nothing came.
    retriable: bool,
    error: Option<Error>,
}

/// One request of a round, done.
enum Done {
    Fetched(
        i32,
        FetchSession,
        Result<Option<(Connection, FetchResponse)>, Error>,
        BTreeMap<TopicPartition, FetchAt>,
    ),
    Checked(Result<Vec<Checked>, Error>),
}

/// Runs fetch rounds, one at a time, each in a task of its own so the next is in flight while
/// the application handles the last.
#[derive(Default)]
pub(super) struct Fetcher {
    /// Each leader's fetch session; taken by the round in flight and given back with it.
    sessions: BTreeMap<i32, FetchSession>,
    round: Option<JoinHandle<Round>>,
    /// The session ids as the last round left them (the sessions themselves travel with the
    /// round in flight).
    session_ids: Vec<(i32, i32)>,
    /// Rounds started, for the rotation of full fetches.
    rounds: usize,
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        if let Some(round) = self.round.take() {
            round.abort();
        }
    }
}

impl Fetcher {
    /// Waits for the round in flight (starting one if none is), adds what it brought to
    /// `state.buffered`, advancing positions, and starts the next round.
    pub async fn fetch(
        &mut self,
        cluster: &Cluster,
        config: &ConsumerConfig,
        decompression_limit: usize,
        state: &mut FetchState,
    ) -> Result<(), Error> {
        if self.round.is_none() {
            self.start(cluster, config, decompression_limit, state, Duration::ZERO);
        }
        let Some(round) = self.round.as_mut() else {
            return Ok(());
        };
        let round = round
            .await
            .map_err(|e| Error::protocol("-", format!("fetch task failed: {e}")));
        self.round = None;
        let round = round?;
        for tp in &round.from_leader {
            state.read_replicas.remove(tp);
        }
        self.sessions = round.sessions;
        self.session_ids = self.sessions.iter().map(|(&b, s)| (b, s.id())).collect();
        let checked = apply_checks(cluster, config, state, round.checked).await;
        let absorbed = match checked {
            Ok(recheck) => absorb(cluster, config, decompression_limit, state, round.replies)
                .await
                .map(|retriable| retriable || recheck),
            Err(e) => Err(e),
        };
        let retriable = round.retriable || matches!(absorbed, Ok(true));
        // Pipelining: the next round goes out now, while the application handles these
        // messages; after an error, only once the pause is over.
        let pause = if round.error.is_some() || absorbed.is_err() || retriable {
            config.fetch_error_backoff
        } else {
            Duration::ZERO
        };
        self.start(cluster, config, decompression_limit, state, pause);
        absorbed?;
        match round.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The fetch session id with each leader (0 where there is none).
    pub fn session_ids(&self) -> Vec<(i32, i32)> {
        self.session_ids.clone()
    }

    fn start(
        &mut self,
        cluster: &Cluster,
        config: &ConsumerConfig,
        decompression_limit: usize,
        state: &FetchState,
        pause: Duration,
    ) {
        let wanted = state.wanted();
        if wanted.is_empty() {
            return;
        }
        let params = FetchParams {
            max_wait: config.fetch_wait_max,
            min_bytes: config.fetch_min_bytes,
            // A response must fit in receive.message.max.bytes (which also bounds the
            // decompression of one round), with room for its headers.
            max_bytes: config
                .fetch_max_bytes
                .min(decompression_limit.saturating_sub(512) as i32),
            partition_max_bytes: config.max_partition_fetch_bytes,
            isolation_level: config.isolation_level.as_i8(),
            rack: config.client_rack.as_deref().map(Arc::from),
            rotation: self.rounds,
        };
        self.rounds = self.rounds.wrapping_add(1);
        let sessions = std::mem::take(&mut self.sessions);
        self.round = Some(tokio::spawn(round(
            cluster.clone(),
            params,
            wanted,
            state.read_replicas.clone(),
            sessions,
            pause,
        )));
    }
}

/// One Fetch to each leader of `wanted`, all at once; positions whose leader moved on since
/// they were fetched are checked with it instead (see [`validation`]), and fetched next round.
async fn round(
    cluster: Cluster,
    params: FetchParams,
    wanted: BTreeMap<TopicPartition, (i64, Epochs)>,
    replicas: BTreeMap<TopicPartition, i32>,
    mut sessions: BTreeMap<i32, FetchSession>,
    pause: Duration,
) -> Round {
    if !pause.is_zero() {
        // Not a zero sleep: tokio's timer would still hold it to its next millisecond, a
        // millisecond on every round.
        tokio::time::sleep(pause).await;
    }
    let mut out = Round {
        sessions: BTreeMap::new(),
        replies: Vec::new(),
        checked: Vec::new(),
        from_leader: Vec::new(),
        retriable: false,
        error: None,
    };
    // A partition whose leader is not known for now (being elected, say) waits for the next
    // round; the others are fetched.
    let ByLeader {
        groups,
        unknown,
        failed,
    } = by_leader(&cluster, wanted.keys().cloned()).await;
    if let Some((_, e)) = failed.into_iter().next() {
        out.sessions = sessions;
        out.error = Some(e);
        return out;
    }
    if let Some((_, e)) = unknown.into_iter().next() {
        out.error = Some(e);
    }
    let mut requests = tokio::task::JoinSet::new();
    // Each leader's partitions, and the partitions its leader sends to a replica to read.
    let mut asks: BTreeMap<i32, BTreeMap<TopicPartition, FetchAt>> = BTreeMap::new();
    for (leader, tps) in groups {
        let mut checks = Vec::new();
        for (tp, leader_epoch) in tps {
            let (offset, epochs) = wanted[&tp];
            if epochs.needs_check(leader_epoch) {
                checks.push((tp, offset, epochs.record, leader_epoch));
            } else {
                let from = replicas.get(&tp).copied().unwrap_or(leader);
                let at = FetchAt {
                    offset,
                    leader_epoch,
                };
                asks.entry(from).or_default().insert(tp, at);
            }
        }
        if !checks.is_empty() {
            let cluster = cluster.clone();
            requests.spawn(async move {
                let topics: Vec<Arc<str>> = checks.iter().map(|c| c.0 .0.clone()).collect();
                let checked = validation::check(&cluster, leader, checks).await;
                if checked.as_ref().is_err_and(Error::is_retriable) {
                    // The leader is gone, or moved: ask where the partitions are now.
                    topics.iter().for_each(|t| cluster.refresh_soon(t));
                }
                Done::Checked(checked)
            });
        }
    }
    for (broker, asked) in asks {
        let session = sessions.remove(&broker).unwrap_or_default();
        let (cluster, params) = (cluster.clone(), params.clone());
        requests.spawn(async move {
            let (session, answer) = fetch_from(&cluster, broker, &params, &asked, session).await;
            if answer.as_ref().is_err_and(Error::is_retriable) {
                // The broker is gone, or leads no more: ask where the partitions are now.
                asked.keys().for_each(|(t, _)| cluster.refresh_soon(t));
            }
            Done::Fetched(broker, session, answer, asked)
        });
    }
    // Sessions with leaders that lead nothing wanted now stay for later.
    out.sessions = sessions;
    while let Some(joined) = requests.join_next().await {
        let done = match joined {
            Ok(done) => done,
            Err(e) => {
                out.error = Some(Error::protocol("-", format!("fetch task failed: {e}")));
                continue;
            }
        };
        match done {
            Done::Fetched(broker, session, answer, asked) => {
                out.sessions.insert(broker, session);
                match answer {
                    Ok(Some((conn, response))) => out.replies.push(Reply {
                        broker,
                        asked,
                        response,
                        conn,
                    }),
                    Ok(None) => out.retriable = true,
                    Err(e) => {
                        // Those read from a replica go back to their leader.
                        let read_here =
                            asked.keys().filter(|tp| replicas.get(*tp) == Some(&broker));
                        out.from_leader.extend(read_here.cloned());
                        out.error.get_or_insert(e);
                    }
                }
            }
            Done::Checked(Ok(checked)) => out.checked.extend(checked),
            Done::Checked(Err(e)) => {
                out.error.get_or_insert(e);
            }
        }
    }
    out
}

/// One Fetch to `leader`, through its session, and the connection it went on. `Ok(None)`: the
/// session was lost; fetch again.
async fn fetch_from(
    cluster: &Cluster,
    leader: i32,
    params: &FetchParams,
    asked: &BTreeMap<TopicPartition, FetchAt>,
    mut session: FetchSession,
) -> (
    FetchSession,
    Result<Option<(Connection, FetchResponse)>, Error>,
) {
    let conn = match cluster.broker(leader).await {
        Ok(conn) => conn,
        Err(e) => return (session, Err(e)),
    };
    let version = match conn.version_of::<FetchRequest>() {
        Ok(version) => version,
        Err(e) => return (session, Err(e)),
    };
    let plan = session.plan(asked, version);
    let request = fetch_request(params, plan);
    let timeout = conn.socket_timeout() + params.max_wait;
    let answer = match conn.request_at(&request, version, timeout).await {
        Ok(response) => match response.error_code {
            0 => {
                session.answered(response.session_id);
                Ok(Some((conn, response)))
            }
            codes::FETCH_SESSION_ID_NOT_FOUND | codes::INVALID_FETCH_SESSION_EPOCH => {
                tracing::debug!(leader, code = response.error_code, "fetch session lost");
                session.reset();
                Ok(None)
            }
            code => {
                session.reset();
                Err(Error::Broker {
                    api: "Fetch",
                    resource: Resource::Broker(format!("broker {leader} (its fetch session)")),
                    code: KafkaCode::from_code(code).expect("non-zero"),
                    message: None,
                })
            }
        },
        Err(e) => {
            session.reset();
            Err(e)
        }
    };
    (session, answer)
}

fn fetch_request(params: &FetchParams, mut plan: FetchPlan<FetchAt>) -> FetchRequest {
    if plan.session_id == 0 && !plan.partitions.is_empty() {
        // A full fetch: the broker answers partitions in request order until fetch.max.bytes
        // is reached. (In a session the broker keeps its own fair order.)
        let turn = params.rotation % plan.partitions.len();
        plan.partitions.rotate_left(turn);
    }
    let topics = by_topic(plan.partitions.iter().map(|(tp, at)| (tp, *at)))
        .into_iter()
        .map(|(topic, ps)| {
            FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(
                    ps.iter()
                        .map(|&(p, at)| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_current_leader_epoch(at.leader_epoch)
                                .with_fetch_offset(at.offset)
                                .with_log_start_offset(-1)
                                .with_partition_max_bytes(params.partition_max_bytes)
                        })
                        .collect(),
                )
        })
        .collect();
    let forgotten = by_topic(plan.forgotten.iter().map(|tp| (tp, ())))
        .into_iter()
        .map(|(topic, ps)| {
            ForgottenTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(ps.into_iter().map(|(p, ())| p).collect())
        })
        .collect();
    FetchRequest::default()
        .with_rack_id(
            params
                .rack
                .as_deref()
                .map_or_else(StrBytes::default, |rack| {
                    StrBytes::from_string(rack.to_owned())
                }),
        )
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(params.max_wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(params.min_bytes)
        .with_max_bytes(params.max_bytes)
        .with_isolation_level(params.isolation_level)
        .with_session_id(plan.session_id)
        .with_session_epoch(plan.epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
}
