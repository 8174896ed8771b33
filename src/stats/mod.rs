//! Statistics in librdkafka's shape (its STATISTICS.md), so that dashboards and exporters made
//! for librdkafka's `stats_cb` JSON read purekafka's unchanged: every key librdkafka writes, of
//! the same type, with librdkafka's values for what purekafka has no counterpart of (-1001 for
//! an offset it has not, -1 for an unknown id, 0 for a counter of something it does not do).
//!
//! ```text
//!  conn: BrokerCounters (per broker, kept by the connection) ─┐
//!  producer: accumulator, identity, transaction ──────────────┼─► Statistics ─► watch ─► StatisticsStream
//!  consumer: positions, watermarks, group ────────────────────┘   every statistics.interval.ms
//! ```
//!
//! This module holds the model (`model.rs`), the windows and the counters, the emitter and the
//! stream, and imports no client: each client assembles its [`Statistics`] from its own state.
//! Nothing is counted, and no window kept, unless `statistics.interval.ms` is set.

mod broker;
#[cfg(feature = "metrics")]
mod metrics;
mod model;
mod window;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;

pub(crate) use broker::BrokerCounters;
pub use model::{
    BrokerStatistics, EosStatistics, GroupStatistics, PartitionStatistics, Statistics,
    TopicStatistics, TopparStatistics, WindowStatistics, OFFSET_INVALID,
};
pub(crate) use window::Window;

/// Each [`Statistics`] a client emits, every `statistics.interval.ms`, from when this was
/// made. A receiver that falls behind gets the newest object, not every one it missed.
///
/// ```no_run
/// # async fn demo() -> Result<(), purekafka::Error> {
/// use purekafka::{ClientConfig, Producer};
/// let config = ClientConfig::new()
///     .bootstrap_servers(["127.0.0.1:9092"])
///     .set("statistics.interval.ms", 5000)?;
/// let producer = Producer::builder(config).build().await?;
/// let mut statistics = producer.statistics();
/// tokio::spawn(async move {
///     while let Some(stats) = statistics.recv().await {
///         eprintln!("{}", stats.to_json()); // librdkafka's stats_cb JSON
///     }
/// });
/// # Ok(()) }
/// ```
pub struct StatisticsStream {
    rx: watch::Receiver<Option<Arc<Statistics>>>,
    next: Option<NextStatistics>,
}

/// What the stream waits on between polls.
type NextStatistics = Pin<Box<dyn std::future::Future<Output = Option<Arc<Statistics>>> + Send>>;

impl StatisticsStream {
    /// A stream with nothing to come, for a client that keeps no statistics.
    pub(crate) fn ended() -> StatisticsStream {
        // Its sender gone: `recv` returns None at once.
        let (_, rx) = watch::channel(None);
        StatisticsStream { rx, next: None }
    }

    /// The next statistics object; `None` once the client is closed, or when
    /// `statistics.interval.ms` is 0 (none is ever emitted).
    ///
    /// Cancel-safe: an object is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<Arc<Statistics>> {
        next(&mut self.rx).await
    }
}

async fn next(rx: &mut watch::Receiver<Option<Arc<Statistics>>>) -> Option<Arc<Statistics>> {
    loop {
        rx.changed().await.ok()?;
        if let Some(stats) = rx.borrow_and_update().clone() {
            return Some(stats);
        }
    }
}

impl futures_core::Stream for StatisticsStream {
    type Item = Arc<Statistics>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let future = this.next.get_or_insert_with(|| {
            let mut rx = this.rx.clone();
            Box::pin(async move { next(&mut rx).await })
        });
        let polled = future.as_mut().poll(cx);
        if let Poll::Ready(item) = &polled {
            // The clone it waited on saw this object: the stream's own receiver has too.
            if item.is_some() {
                this.rx.mark_unchanged();
            }
            this.next = None;
        }
        polled
    }
}

impl std::fmt::Debug for StatisticsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatisticsStream").finish_non_exhaustive()
    }
}

/// The emitting side, in a client: when the next object is due, and where it goes.
pub(crate) struct Emitter {
    tx: watch::Sender<Option<Arc<Statistics>>>,
    /// `statistics.interval.ms`; zero: never.
    pub interval: Duration,
    /// The client's name, `client.id#type-N`.
    pub name: String,
    pub client_id: String,
    pub client_type: &'static str,
    /// When the client was built.
    pub built: Instant,
    next_due: std::sync::Mutex<Instant>,
    /// Each state reported (`eos.idemp_state`, `cgrp.state`, ...), and when an object first
    /// showed it: the states' ages count from there.
    states: std::sync::Mutex<BTreeMap<&'static str, (String, Instant)>>,
}

/// Clients made by this process, per type, for their names.
static CLIENTS: AtomicU64 = AtomicU64::new(0);

impl Emitter {
    pub fn new(interval: Duration, client_id: &str, client_type: &'static str) -> Emitter {
        let n = CLIENTS.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        Emitter {
            tx: watch::channel(None).0,
            interval,
            name: format!("{client_id}#{client_type}-{n}"),
            client_id: client_id.to_owned(),
            client_type,
            built: now,
            next_due: std::sync::Mutex::new(now + interval),
            states: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// ms since state `key` became `state`, as the objects emitted saw it: from the first
    /// that showed it (so within an interval of the change).
    pub fn state_age_ms(&self, key: &'static str, state: &str) -> i64 {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entry = states.entry(key).or_insert_with(|| (state.to_owned(), now));
        if entry.0 != state {
            *entry = (state.to_owned(), now);
        }
        now.saturating_duration_since(entry.1).as_millis() as i64
    }

    /// Whether statistics are kept at all.
    pub fn enabled(&self) -> bool {
        !self.interval.is_zero()
    }

    /// A receiver of what is emitted from now on; one that ends at once when nothing is.
    pub fn subscribe(&self) -> StatisticsStream {
        if !self.enabled() {
            return StatisticsStream::ended();
        }
        let mut rx = self.tx.subscribe();
        rx.mark_unchanged();
        StatisticsStream { rx, next: None }
    }

    /// True, once per interval, when the next object is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        let mut next = self.next_due.lock().unwrap_or_else(|p| p.into_inner());
        if !self.enabled() || now < *next {
            return false;
        }
        // The next one an interval after this one was due, or, after a look more than an
        // interval late, an interval from now: no burst to catch up.
        *next += self.interval;
        if *next <= now {
            *next = now + self.interval;
        }
        true
    }

    /// When the next object is due.
    pub fn next_due(&self) -> Instant {
        *self.next_due.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A top-level object with the clocks and names filled in, and nothing else.
    pub fn blank(&self) -> Statistics {
        let now = Instant::now();
        Statistics {
            name: self.name.clone(),
            client_id: self.client_id.clone(),
            client_type: self.client_type.to_owned(),
            ts: clock_us(now),
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            age: now.saturating_duration_since(self.built).as_micros() as i64,
            replyq: 0,
            msg_cnt: 0,
            msg_size: 0,
            msg_max: 0,
            msg_size_max: 0,
            simple_cnt: 0,
            metadata_cache_cnt: 0,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            cgrp: None,
            eos: None,
            tx: 0,
            tx_bytes: 0,
            rx: 0,
            rx_bytes: 0,
            txmsgs: 0,
            txmsg_bytes: 0,
            rxmsgs: 0,
            rxmsg_bytes: 0,
        }
    }

    /// Sends `stats`, its totals summed from its brokers and partitions, to every receiver.
    pub fn emit(&self, mut stats: Statistics) {
        stats.tx = stats.brokers.values().map(|b| b.tx).sum();
        stats.tx_bytes = stats.brokers.values().map(|b| b.txbytes).sum();
        stats.rx = stats.brokers.values().map(|b| b.rx).sum();
        stats.rx_bytes = stats.brokers.values().map(|b| b.rxbytes).sum();
        let partitions = || stats.topics.values().flat_map(|t| t.partitions.values());
        stats.txmsgs = partitions().map(|p| p.txmsgs).sum();
        stats.txmsg_bytes = partitions().map(|p| p.txbytes).sum();
        stats.rxmsgs = partitions().map(|p| p.rxmsgs).sum();
        stats.rxmsg_bytes = partitions().map(|p| p.rxbytes).sum();
        tracing::trace!(target: "purekafka::stats", name = %stats.name, "statistics");
        #[cfg(feature = "metrics")]
        metrics::record(&stats);
        self.tx.send_replace(Some(Arc::new(stats)));
    }
}

/// µs on a monotonic clock that starts with the process's first use of it.
pub(crate) fn clock_us(now: Instant) -> i64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    now.saturating_duration_since(start).as_micros() as i64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::Emitter;

    /// Due once per interval; a late look does not bring on a burst; a receiver gets the
    /// newest object, its totals summed, and ends when the emitter goes.
    #[tokio::test(start_paused = true)]
    async fn objects_are_due_once_per_interval_and_reach_the_receivers() {
        let emitter = Emitter::new(Duration::from_millis(100), "c", "producer");
        let start = Instant::now();
        assert!(!emitter.due(start));
        assert!(emitter.due(start + Duration::from_millis(100)));
        assert!(!emitter.due(start + Duration::from_millis(150)));
        // Half a second late: one object, the next an interval on.
        assert!(emitter.due(start + Duration::from_millis(700)));
        assert!(!emitter.due(start + Duration::from_millis(750)));
        assert!(emitter.due(start + Duration::from_millis(800)));

        let mut stream = emitter.subscribe();
        for ts in [1, 2] {
            let mut stats = emitter.blank();
            stats.ts = ts;
            emitter.emit(stats);
        }
        assert_eq!(stream.recv().await.unwrap().ts, 2);
        drop(emitter);
        assert!(stream.recv().await.is_none());
        assert!(Emitter::new(Duration::ZERO, "c", "consumer")
            .subscribe()
            .recv()
            .await
            .is_none());
    }

    /// With the `metrics` feature, an emitted object reaches the recorder: counters, gauges
    /// and a window's samples as a histogram, named after librdkafka's fields and labelled.
    #[cfg(feature = "metrics")]
    #[test]
    fn an_emitted_object_reaches_the_metrics_recorder() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};

        let emitter = Emitter::new(Duration::from_millis(100), "m", "producer");
        let counters = super::BrokerCounters::new();
        counters.written(0, 100, Duration::from_micros(5));
        for us in [100, 200, 300] {
            counters.read(10, Duration::from_micros(us));
        }
        let mut stats = emitter.blank();
        let broker = counters.take("b:9092/1".into(), 1, "b:9092");
        stats.brokers.insert(broker.name.clone(), broker);
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || emitter.emit(stats));

        let recorded = snapshotter.snapshot().into_vec();
        let find = |name: &str| {
            recorded
                .iter()
                .find(|(key, ..)| key.key().name() == name)
                .map(|(key, _, _, value)| (key.key().labels().count(), value))
                .unwrap_or_else(|| panic!("{name} not recorded"))
        };
        assert_eq!(find("purekafka_tx"), (3, &DebugValue::Counter(1)));
        assert_eq!(find("purekafka_broker_rx"), (4, &DebugValue::Counter(3)));
        assert_eq!(find("purekafka_broker_req").0, 5);
        match find("purekafka_broker_rtt").1 {
            DebugValue::Histogram(samples) => {
                let mut samples: Vec<f64> = samples.iter().map(|s| s.into_inner()).collect();
                samples.sort_by(f64::total_cmp);
                // At the histogram's two significant figures.
                let near = |a: f64, b: f64| (a - b).abs() <= b / 100.0;
                assert!(samples.len() == 3, "{samples:?}");
                for (got, want) in samples.iter().zip([100.0, 200.0, 300.0]) {
                    assert!(near(*got, want), "{samples:?}");
                }
            }
            other => panic!("rtt: {other:?}"),
        }
        assert!(matches!(
            find("purekafka_broker_waitresp_cnt").1,
            DebugValue::Gauge(_)
        ));
    }
}
