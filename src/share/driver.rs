//! The share consumer's driver: one task that keeps a share session with each leader of the
//! member's partitions, fetches records into the exchange, and sends acknowledgements to the
//! broker that handed the records out.
//!
//! ```text
//!  per broker, one request at a time (the session's epochs are a sequence):
//!    acknowledgements queued, and a commit waits, or no records are wanted, or some are for
//!      partitions the session does not fetch ─► ShareAcknowledge
//!    else records wanted (none of this broker's are waiting to be taken) ─► ShareFetch,
//!      carrying the acknowledgements (once the session is open)
//!  answers: records ─► intake.rs: deliveries() ─► the exchange (gaps acknowledged as GAP)
//!           per partition acknowledgement results ─► commits, the callback
//!           NOT_LEADER_OR_FOLLOWER & co ─► metadata asked again, partitions routed anew
//!           session errors ─► a new session; its acknowledgements queued again
//!           a lost connection ─► a new session; the broker released the member's records
//!  close ─► answers in flight awaited ─► ShareAcknowledge at epoch -1 to every open session
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::share_acknowledge_request::{AcknowledgePartition, AcknowledgeTopic};
use kafka_protocol::messages::share_fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{
    GroupId, ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest,
    ShareFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::exchange::{Inner, Numbers};
use super::session::{FetchPlan, ShareSession, FINAL_EPOCH};
use super::{AcknowledgementCommit, Callback};
use crate::cluster::{by_leader, ByLeader, Cluster, TopicPartition};
use crate::conn::Connection;
use crate::error::{Error, KafkaCode, Resource};
use crate::group::share_group::unavailable;
use crate::protocol::codes;
use crate::protocol::consumer_protocol::TopicPartitions;
use crate::protocol::share::{AckRuns, Acquired};

/// Settings of the driver's requests.
#[derive(Clone)]
pub(super) struct Params {
    pub group_id: String,
    pub member_id: String,
    pub max_wait: Duration,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub max_records: i32,
    pub check_crcs: bool,
    pub decompression_limit: usize,
    pub backoff: Duration,
}

impl Params {
    /// The group, as share requests name it.
    fn group(&self) -> GroupId {
        GroupId(StrBytes::from_string(self.group_id.clone()))
    }

    /// The member, as share requests name it.
    fn member(&self) -> StrBytes {
        StrBytes::from_string(self.member_id.clone())
    }
}

/// The driver's link with one broker.
#[derive(Default)]
struct Link {
    session: ShareSession,
    /// The connection the session lives on: a new connection is a new session.
    conn: Option<Connection>,
    busy: bool,
    /// No request before then (after a failure).
    idle_until: Option<Instant>,
}

/// What a request was.
enum Kind {
    Fetch(FetchPlan),
    Acknowledge { last: bool },
}

/// A request done.
struct Done {
    broker: i32,
    kind: Kind,
    conn: Option<Connection>,
    /// The acknowledgements it carried, and their numbers.
    carried: BTreeMap<TopicPartition, AckRuns>,
    numbers: Numbers,
    /// Topic names by id, for the answer.
    names: BTreeMap<u128, Arc<str>>,
    answer: Result<Answer, Error>,
}

enum Answer {
    Fetch(ShareFetchResponse),
    Acknowledge(ShareAcknowledgeResponse),
}

pub(super) struct Driver {
    pub cluster: Cluster,
    pub inner: Arc<Inner>,
    pub params: Params,
    pub assignment: watch::Receiver<TopicPartitions>,
    pub callback: Option<Callback>,
    links: BTreeMap<i32, Link>,
    /// The member's partitions by leader.
    routes: BTreeMap<i32, BTreeSet<TopicPartition>>,
    /// Route again at this time: a leader was not known, or moved.
    reroute_at: Option<Instant>,
    inflight: JoinSet<Done>,
    /// Share groups are unavailable: no more fetches.
    stopped: bool,
}

impl Driver {
    pub fn new(
        cluster: Cluster,
        inner: Arc<Inner>,
        params: Params,
        assignment: watch::Receiver<TopicPartitions>,
        callback: Option<Callback>,
    ) -> Self {
        Driver {
            cluster,
            inner,
            params,
            assignment,
            callback,
            links: BTreeMap::new(),
            routes: BTreeMap::new(),
            reroute_at: Some(Instant::now()),
            inflight: JoinSet::new(),
            stopped: false,
        }
    }

    /// Runs until the consumer closes (or is dropped, which aborts the task). However it
    /// ends, commits still waiting are answered with what came.
    pub async fn run(self) {
        struct Ended(Arc<Inner>);
        impl Drop for Ended {
            fn drop(&mut self) {
                self.0.state().end();
                self.0.app.notify_one();
            }
        }
        let _ended = Ended(self.inner.clone());
        self.drive().await;
    }

    async fn drive(mut self) {
        let mut member_gone = false;
        loop {
            if self.inner.state().closing {
                break;
            }
            if self.reroute_at.is_some_and(|at| at <= Instant::now()) {
                self.route().await;
            }
            self.start_requests();
            // Only a pause still to come: a link no longer asked anything keeps a past one.
            let now = Instant::now();
            let wake_at = self
                .links
                .values()
                .filter_map(|l| l.idle_until)
                .filter(|&t| t > now)
                .chain(self.reroute_at)
                .min();
            tokio::select! {
                Some(done) = self.inflight.join_next(), if !self.inflight.is_empty() => {
                    if let Ok(done) = done {
                        self.finish(done);
                    }
                }
                () = self.inner.driver.notified() => {}
                changed = self.assignment.changed(), if !member_gone => {
                    match changed {
                        Ok(()) => self.reroute_at = Some(Instant::now()),
                        Err(_) => member_gone = true,
                    }
                }
                () = sleep_until(wake_at), if wake_at.is_some() => {}
            }
        }
        self.close().await;
    }

    /// Groups the member's partitions by leader.
    async fn route(&mut self) {
        self.reroute_at = None;
        let assigned: Vec<TopicPartition> = self
            .assignment
            .borrow_and_update()
            .iter()
            .flat_map(|(t, ps)| {
                let topic: Arc<str> = Arc::from(t.as_str());
                ps.iter().map(move |&p| (topic.clone(), p))
            })
            .collect();
        let ByLeader {
            groups,
            unknown,
            failed,
        } = by_leader(&self.cluster, assigned).await;
        self.routes = groups
            .into_iter()
            .map(|(leader, tps)| (leader, tps.into_iter().map(|(tp, _)| tp).collect()))
            .collect();
        if !unknown.is_empty() {
            self.reroute_at = Some(Instant::now() + self.params.backoff);
        }
        if let Some((_, e)) = failed.into_iter().next() {
            self.report(e);
            self.reroute_at = Some(Instant::now() + self.params.backoff);
        }
    }

    fn report(&self, error: Error) {
        self.inner.state().errors.push_back(error);
        self.inner.app.notify_one();
    }

    /// Starts the next request to each broker that has something to do and none in flight.
    fn start_requests(&mut self) {
        let now = Instant::now();
        let mut brokers: BTreeSet<i32> = self.routes.keys().copied().collect();
        brokers.extend(self.inner.state().brokers_with_acks());
        for broker in brokers {
            let (wanted, topics, known) = self.wanted(broker);
            if known.len() < wanted.len() {
                self.reroute_at = Some(now + self.params.backoff);
            }
            let wanted = &wanted;
            let link = self.links.entry(broker).or_default();
            if link.busy || link.idle_until.is_some_and(|t| t > now) {
                continue;
            }
            link.idle_until = None;
            if link.conn.as_ref().is_some_and(Connection::is_closed) {
                // The session went with the connection, and the records with it.
                link.conn = None;
                link.session.reset();
            }
            let mut state = self.inner.state();
            let waiting = state.ready.iter().any(|c| c.broker == broker);
            let want_records = !self.stopped && !wanted.is_empty() && !waiting;
            if state.has_acks(broker) {
                let open = link.session.is_open();
                // Whether a fetch will open a session here, once this broker's records are
                // taken: the acknowledgements wait for it.
                let will_open = !self.stopped && !wanted.is_empty();
                if !open && !want_records && will_open {
                    continue;
                }
                if !open && !want_records {
                    // Nothing will open a session here: the acknowledgements cannot go out.
                    let (carried, numbers) = state.take(broker);
                    drop(state);
                    let error = Error::AcknowledgementsNotSent {
                        broker: broker.to_string(),
                        reason: "the share session with this broker ended, and with it the \
                                 member's hold on the records; they will be delivered again"
                            .into(),
                    };
                    self.fail(broker, carried, numbers, &error, "ShareAcknowledge");
                    continue;
                }
                let elsewhere = state
                    .pending
                    .get(&broker)
                    .is_some_and(|p| p.runs.keys().any(|tp| !wanted.contains(tp)));
                if open && (state.flush(broker) || !want_records || elsewhere) {
                    let (carried, numbers) = state.take(broker);
                    drop(state);
                    let epoch = link.session.epoch();
                    self.acknowledge(broker, epoch, carried, numbers, false);
                    continue;
                }
            }
            if !want_records || known.is_empty() {
                continue;
            }
            let (carried, numbers) = match link.session.is_open() {
                true => state.take(broker),
                false => (BTreeMap::new(), Numbers::default()),
            };
            drop(state);
            let plan = link.session.plan(&known, carried.keys());
            // The answer names every partition the session holds, not only those named now.
            self.fetch(broker, plan, carried, numbers, topics);
        }
    }

    /// The partitions to fetch from `broker`, their topics, and those of them whose topic id
    /// the metadata has (a topic without one yet is asked for again, and fetched once known).
    fn wanted(
        &self,
        broker: i32,
    ) -> (
        BTreeSet<TopicPartition>,
        BTreeSet<Arc<str>>,
        BTreeSet<TopicPartition>,
    ) {
        let wanted = self.routes.get(&broker).cloned().unwrap_or_default();
        let topics: BTreeSet<Arc<str>> = wanted.iter().map(|tp| tp.0.clone()).collect();
        let ids = self.names_and_ids(topics.iter().cloned());
        for topic in topics.iter().filter(|t| !ids.contains_key(*t)) {
            self.cluster.refresh_soon(topic);
        }
        let known = wanted
            .iter()
            .filter(|tp| ids.contains_key(&tp.0))
            .cloned()
            .collect();
        (wanted, topics, known)
    }

    fn names_and_ids(&self, tps: impl IntoIterator<Item = Arc<str>>) -> BTreeMap<Arc<str>, u128> {
        let topics: BTreeSet<Arc<str>> = tps.into_iter().collect();
        self.cluster.with_metadata(|m| {
            topics
                .into_iter()
                .filter_map(|t| {
                    let id = m
                        .topics
                        .get(&*t)
                        .map(|meta| meta.id)
                        .filter(|&id| id != 0)?;
                    Some((t, id))
                })
                .collect()
        })
    }

    fn fetch(
        &mut self,
        broker: i32,
        plan: FetchPlan,
        carried: BTreeMap<TopicPartition, AckRuns>,
        numbers: Numbers,
        topics: BTreeSet<Arc<str>>,
    ) {
        let ids = self.names_and_ids(
            plan.fetch
                .iter()
                .chain(&plan.forget)
                .chain(carried.keys())
                .map(|tp| tp.0.clone())
                .chain(topics),
        );
        let mut topics: BTreeMap<u128, Vec<FetchPartition>> = BTreeMap::new();
        for tp in &plan.fetch {
            let Some(&id) = ids.get(&tp.0) else {
                continue;
            };
            let batches = carried
                .get(tp)
                .map(AckRuns::fetch_batches)
                .unwrap_or_default();
            topics.entry(id).or_default().push(
                FetchPartition::default()
                    .with_partition_index(tp.1)
                    .with_acknowledgement_batches(batches),
            );
        }
        let mut forgotten: BTreeMap<u128, Vec<i32>> = BTreeMap::new();
        for tp in &plan.forget {
            if let Some(&id) = ids.get(&tp.0) {
                forgotten.entry(id).or_default().push(tp.1);
            }
        }
        let p = &self.params;
        let request = ShareFetchRequest::default()
            .with_group_id(Some(p.group()))
            .with_member_id(Some(p.member()))
            .with_share_session_epoch(plan.epoch)
            .with_max_wait_ms(millis(p.max_wait))
            .with_min_bytes(p.min_bytes)
            .with_max_bytes(p.max_bytes)
            .with_max_records(p.max_records)
            .with_batch_size(p.max_records)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(id, partitions)| {
                        FetchTopic::default()
                            .with_topic_id(uuid::Uuid::from_u128(id))
                            .with_partitions(partitions)
                    })
                    .collect(),
            )
            .with_forgotten_topics_data(
                forgotten
                    .into_iter()
                    .map(|(id, partitions)| {
                        ForgottenTopic::default()
                            .with_topic_id(uuid::Uuid::from_u128(id))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let names = ids.into_iter().map(|(t, id)| (id, t)).collect();
        let wait = p.max_wait;
        self.spawn(
            broker,
            Kind::Fetch(plan),
            carried,
            numbers,
            names,
            move |conn| {
                Box::pin(async move {
                    let version = conn.version_of::<ShareFetchRequest>()?;
                    let timeout = conn.socket_timeout() + wait;
                    conn.request_at(&request, version, timeout)
                        .await
                        .map(Answer::Fetch)
                })
            },
        );
    }

    fn acknowledge(
        &mut self,
        broker: i32,
        epoch: i32,
        carried: BTreeMap<TopicPartition, AckRuns>,
        numbers: Numbers,
        last: bool,
    ) {
        let ids = self.names_and_ids(carried.keys().map(|tp| tp.0.clone()));
        let mut topics: BTreeMap<u128, Vec<AcknowledgePartition>> = BTreeMap::new();
        for (tp, runs) in &carried {
            // A topic without an id is one deleted meanwhile: its acknowledgements fail below
            // as not answered.
            if let Some(&id) = ids.get(&tp.0) {
                topics.entry(id).or_default().push(
                    AcknowledgePartition::default()
                        .with_partition_index(tp.1)
                        .with_acknowledgement_batches(runs.acknowledge_batches()),
                );
            }
        }
        let p = &self.params;
        let request = ShareAcknowledgeRequest::default()
            .with_group_id(Some(p.group()))
            .with_member_id(Some(p.member()))
            .with_share_session_epoch(epoch)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(id, partitions)| {
                        AcknowledgeTopic::default()
                            .with_topic_id(uuid::Uuid::from_u128(id))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let names = ids.into_iter().map(|(t, id)| (id, t)).collect();
        self.spawn(
            broker,
            Kind::Acknowledge { last },
            carried,
            numbers,
            names,
            move |conn| {
                Box::pin(async move {
                    let (answer, _) = conn.request(&request).await?;
                    Ok(Answer::Acknowledge(answer))
                })
            },
        );
    }

    fn spawn(
        &mut self,
        broker: i32,
        kind: Kind,
        carried: BTreeMap<TopicPartition, AckRuns>,
        numbers: Numbers,
        names: BTreeMap<u128, Arc<str>>,
        send: impl FnOnce(
                Connection,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<Answer, Error>> + Send>,
            > + Send
            + 'static,
    ) {
        let link = self.links.entry(broker).or_default();
        link.busy = true;
        let conn = link.conn.clone();
        let cluster = self.cluster.clone();
        self.inflight.spawn(async move {
            let conn = match conn {
                Some(conn) => Ok(conn),
                None => cluster.broker(broker).await,
            };
            let (conn, answer) = match conn {
                Ok(conn) => {
                    let answer = send(conn.clone()).await;
                    (Some(conn), answer)
                }
                Err(e) => (None, Err(e)),
            };
            Done {
                broker,
                kind,
                conn,
                carried,
                numbers,
                names,
                answer,
            }
        });
    }

    /// Fails acknowledgements with `error`, for the commits and the callback.
    fn fail(
        &self,
        broker: i32,
        carried: BTreeMap<TopicPartition, AckRuns>,
        numbers: Numbers,
        error: &Error,
        _api: &'static str,
    ) {
        let results: Vec<AcknowledgementCommit> = carried
            .iter()
            .filter(|(_, runs)| !runs.acknowledged().is_empty())
            .map(|(tp, runs)| AcknowledgementCommit {
                topic: tp.0.clone(),
                partition: tp.1,
                offsets: runs.acknowledged(),
                result: Err(error.clone()),
            })
            .collect();
        self.settle(broker, numbers, results);
    }

    /// Hands the answers to acknowledgements to the commits waiting and to the callback.
    fn settle(&self, broker: i32, numbers: Numbers, results: Vec<AcknowledgementCommit>) {
        self.inner.state().answered(broker, numbers, &results);
        if let Some(callback) = &self.callback {
            for result in &results {
                // The application's code: its panic must not end the driver, and with it
                // every commit waiting.
                let called =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(result)));
                if called.is_err() {
                    tracing::error!("the acknowledgement commit callback panicked");
                }
            }
        }
    }

    fn finish(&mut self, done: Done) {
        let Done {
            broker,
            kind,
            conn,
            carried,
            numbers,
            names,
            answer,
        } = done;
        let link = self.links.entry(broker).or_default();
        link.busy = false;
        let api = match kind {
            Kind::Fetch(_) => "ShareFetch",
            Kind::Acknowledge { .. } => "ShareAcknowledge",
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                // The connection is gone or unusable: its session, and the member's hold on
                // the records it handed out, went with it.
                tracing::debug!(broker, error = %e, "{api} failed");
                link.session.reset();
                link.conn = None;
                link.idle_until = Some(Instant::now() + self.params.backoff);
                if let Error::UnsupportedApi { broker, .. } = &e {
                    self.stopped = true;
                    self.report(unavailable(broker, false));
                }
                self.fail(broker, carried, numbers, &e, api);
                return;
            }
        };
        link.conn = conn;
        let (code, message) = match &answer {
            Answer::Fetch(r) => (r.error_code, r.error_message.as_ref()),
            Answer::Acknowledge(r) => (r.error_code, r.error_message.as_ref()),
        };
        if code != 0 {
            let message = message.map(|m| m.to_string());
            link.session.reset();
            match code {
                codes::SHARE_SESSION_NOT_FOUND
                | codes::INVALID_SHARE_SESSION_EPOCH
                | codes::SHARE_SESSION_LIMIT_REACHED => {
                    // The records are still the member's: send the acknowledgements again
                    // once a new session is open.
                    tracing::debug!(broker, code, "share session ended; opening another");
                    if code == codes::SHARE_SESSION_LIMIT_REACHED {
                        link.idle_until = Some(Instant::now() + self.params.backoff);
                    }
                    self.inner.state().requeue(broker, carried, numbers);
                    self.inner.driver.notify_one();
                }
                _ => {
                    link.idle_until = Some(Instant::now() + self.params.backoff);
                    let error = match code {
                        codes::UNSUPPORTED_VERSION => {
                            self.stopped = true;
                            let addr = link
                                .conn
                                .as_ref()
                                .map_or_else(|| broker.to_string(), |c| c.broker().to_owned());
                            unavailable(&addr, true)
                        }
                        code => Error::Broker {
                            api,
                            resource: Resource::Group(self.params.group_id.clone()),
                            code: KafkaCode::from_code(code).expect("non-zero"),
                            message,
                        },
                    };
                    self.fail(broker, carried, numbers, &error, api);
                    self.report(error);
                }
            }
            return;
        }
        match &kind {
            Kind::Fetch(plan) => link.session.fetched(plan),
            Kind::Acknowledge { last: false } => link.session.acknowledged(),
            // The session is closed: the next request opens another.
            Kind::Acknowledge { last: true } => link.session.reset(),
        }
        let mut results = Vec::new();
        let mut answered: BTreeSet<TopicPartition> = BTreeSet::new();
        // A partition's answer to the acknowledgements the request carried for it, if any.
        let mut acked = |tp: &TopicPartition, code: i16, message: Option<&StrBytes>| {
            let Some(runs) = carried.get(tp) else {
                return false;
            };
            answered.insert(tp.clone());
            results.extend(ack_result(api, tp, runs, code, message));
            true
        };
        let mut reroute = false;
        match answer {
            Answer::Fetch(response) => {
                if response.acquisition_lock_timeout_ms > 0 {
                    self.inner.state().lock_timeout_ms = Some(response.acquisition_lock_timeout_ms);
                }
                for topic in response.responses {
                    let Some(name) = names.get(&topic.topic_id.as_u128()).cloned() else {
                        continue;
                    };
                    for p in topic.partitions {
                        let tp = (name.clone(), p.partition_index);
                        let message = p.acknowledge_error_message.as_ref();
                        acked(&tp, p.acknowledge_error_code, message);
                        if p.error_code != 0 {
                            reroute |= self.partition_error(
                                api,
                                &tp,
                                p.error_code,
                                p.error_message.as_ref(),
                            );
                            continue;
                        }
                        let acquired: Vec<Acquired> = p
                            .acquired_records
                            .iter()
                            .map(|a| Acquired {
                                first: a.first_offset,
                                last: a.last_offset,
                                delivery_count: a.delivery_count,
                            })
                            .collect();
                        if acquired.is_empty() {
                            continue;
                        }
                        let records = p.records.unwrap_or_default();
                        self.take_in(broker, tp, records, &acquired);
                    }
                }
            }
            Answer::Acknowledge(response) => {
                for topic in response.responses {
                    let Some(name) = names.get(&topic.topic_id.as_u128()).cloned() else {
                        continue;
                    };
                    for p in topic.partitions {
                        let tp = (name.clone(), p.partition_index);
                        let moved = matches!(
                            p.error_code,
                            codes::NOT_LEADER_OR_FOLLOWER
                                | codes::UNKNOWN_TOPIC_OR_PARTITION
                                | codes::FENCED_LEADER_EPOCH
                        );
                        if acked(&tp, p.error_code, p.error_message.as_ref()) && moved {
                            self.cluster.refresh_soon(&tp.0);
                            reroute = true;
                        }
                    }
                }
            }
        }
        // Partitions the broker left out of its answer took their acknowledgements; those
        // of a topic it could not be asked about (no id) did not.
        for (tp, runs) in &carried {
            if answered.contains(tp) || runs.acknowledged().is_empty() {
                continue;
            }
            let known = names.values().any(|n| *n == tp.0);
            results.push(AcknowledgementCommit {
                topic: tp.0.clone(),
                partition: tp.1,
                offsets: runs.acknowledged(),
                result: match known {
                    true => Ok(()),
                    false => Err(Error::unknown(&tp.0, Some(tp.1))),
                },
            });
        }
        self.settle(broker, numbers, results);
        if reroute {
            self.reroute_at = Some(Instant::now() + self.params.backoff);
        }
    }

    /// A partition's fetch error: a moved leader or a topic still being created is routed
    /// again (returns true); anything else goes to the application.
    fn partition_error(
        &self,
        api: &'static str,
        tp: &TopicPartition,
        code: i16,
        message: Option<&StrBytes>,
    ) -> bool {
        let kafka = KafkaCode::from_code(code).expect("non-zero");
        if kafka.is_retriable() {
            self.cluster.refresh_soon(&tp.0);
            return true;
        }
        self.report(Error::Broker {
            api,
            resource: Resource::partition(&tp.0[..], tp.1),
            code: kafka,
            message: message.map(|m| m.to_string()),
        });
        false
    }

    /// The consumer closes: waits for the requests in flight, then closes every open session
    /// with its last acknowledgements (the broker releases what the member still holds).
    async fn close(mut self) {
        while let Some(done) = self.inflight.join_next().await {
            if let Ok(done) = done {
                self.finish(done);
            }
        }
        let brokers: BTreeSet<i32> = self
            .links
            .keys()
            .copied()
            .chain(self.inner.state().brokers_with_acks())
            .collect();
        for broker in brokers {
            let (carried, numbers) = self.inner.state().take(broker);
            let link = self.links.entry(broker).or_default();
            let alive = link.conn.as_ref().is_some_and(|c| !c.is_closed());
            if link.session.is_open() && alive {
                link.session.reset();
                self.acknowledge(broker, FINAL_EPOCH, carried, numbers, true);
            } else if !carried.is_empty() {
                let error = Error::AcknowledgementsNotSent {
                    broker: broker.to_string(),
                    reason: "no share session was open with this broker at close; the broker \
                             released the records when its session ended"
                        .into(),
                };
                self.fail(broker, carried, numbers, &error, "ShareAcknowledge");
            }
        }
        while let Some(done) = self.inflight.join_next().await {
            if let Ok(done) = done {
                self.finish(done);
            }
        }
        self.inner.state().end();
        self.inner.app.notify_one();
    }
}

/// The result of a partition's acknowledgements (none for gaps alone).
fn ack_result(
    api: &'static str,
    tp: &TopicPartition,
    runs: &AckRuns,
    code: i16,
    message: Option<&StrBytes>,
) -> Option<AcknowledgementCommit> {
    let offsets = runs.acknowledged();
    if offsets.is_empty() {
        if code != 0 {
            tracing::debug!(topic = %tp.0, partition = tp.1, code, "gap acknowledgement failed");
        }
        return None;
    }
    let result = match KafkaCode::from_code(code) {
        None => Ok(()),
        Some(code) => Err(Error::Broker {
            api,
            resource: Resource::partition(&tp.0[..], tp.1),
            code,
            message: message.map(|m| m.to_string()),
        }),
    };
    Some(AcknowledgementCommit {
        topic: tp.0.clone(),
        partition: tp.1,
        offsets,
        result,
    })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}
