//! What one broker connection counts for the statistics: requests and bytes each way, errors,
//! requests waiting and in flight, and the windows of latencies. Kept per broker address
//! across reconnects, by the connection's writers and its reader, with relaxed atomics (each
//! figure stands alone) and a lock per window sample.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::time::Instant;

use super::{clock_us, BrokerStatistics, Window};
use crate::protocol::api::api_name;

/// API keys counted in `req` (Kafka's keys run below this).
const API_KEYS: usize = 96;

/// The µs windows' ceiling: a minute.
const MAX_LATENCY_US: u64 = 60_000_000;
/// The throttle window's ceiling, in ms: an hour.
const MAX_THROTTLE_MS: u64 = 3_600_000;

/// One broker's counters.
pub(crate) struct BrokerCounters {
    pub tx: AtomicU64,
    pub txbytes: AtomicU64,
    pub txerrs: AtomicU64,
    pub txretries: AtomicU64,
    pub req_timeouts: AtomicU64,
    pub rx: AtomicU64,
    pub rxbytes: AtomicU64,
    pub rxerrs: AtomicU64,
    pub rxcorriderrs: AtomicU64,
    pub connects: AtomicU64,
    pub disconnects: AtomicU64,
    /// SASL re-authentications completed (KIP-368).
    pub reauths: AtomicU64,
    /// Requests waiting for the socket (gauge).
    pub outbuf: AtomicI64,
    /// When the last write and read happened, on [`clock_us`]; 0: never.
    last_tx: AtomicI64,
    last_rx: AtomicI64,
    req: [AtomicU64; API_KEYS],
    pub int_latency: Window,
    pub outbuf_latency: Window,
    pub rtt: Window,
    pub throttle: Window,
    /// The current connection: its gauge of requests written and not yet answered (each
    /// connection has its own, so that what one leaves behind as it dies never counts against
    /// the next), and `UP`, `DOWN` or `INIT` since when.
    current: Mutex<Current>,
}

struct Current {
    inflight: Weak<AtomicI64>,
    state: &'static str,
    since: Instant,
}

impl BrokerCounters {
    pub fn new() -> BrokerCounters {
        BrokerCounters {
            tx: AtomicU64::new(0),
            txbytes: AtomicU64::new(0),
            txerrs: AtomicU64::new(0),
            txretries: AtomicU64::new(0),
            req_timeouts: AtomicU64::new(0),
            rx: AtomicU64::new(0),
            rxbytes: AtomicU64::new(0),
            rxerrs: AtomicU64::new(0),
            rxcorriderrs: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            reauths: AtomicU64::new(0),
            outbuf: AtomicI64::new(0),
            last_tx: AtomicI64::new(0),
            last_rx: AtomicI64::new(0),
            req: std::array::from_fn(|_| AtomicU64::new(0)),
            int_latency: Window::new(MAX_LATENCY_US),
            outbuf_latency: Window::new(MAX_LATENCY_US),
            rtt: Window::new(MAX_LATENCY_US),
            throttle: Window::new(MAX_THROTTLE_MS),
            current: Mutex::new(Current {
                inflight: Weak::new(),
                state: "INIT",
                since: Instant::now(),
            }),
        }
    }

    /// A new connection's gauge of requests in flight, which becomes the current one.
    pub fn attach(&self) -> Arc<AtomicI64> {
        let inflight = Arc::new(AtomicI64::new(0));
        self.current().inflight = Arc::downgrade(&inflight);
        inflight
    }

    /// The connection of gauge `inflight` is gone: it counts as a disconnect, and the broker is
    /// DOWN unless another connection has taken its place meanwhile.
    pub fn detach(&self, inflight: &Arc<AtomicI64>) {
        self.disconnects.fetch_add(1, Ordering::Relaxed);
        let mut current = self.current();
        if std::ptr::eq(current.inflight.as_ptr(), Arc::as_ptr(inflight)) {
            current.set("DOWN");
        }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request of API `key`, `bytes` long, was written after waiting `waited` for the socket.
    pub fn written(&self, key: i16, bytes: usize, waited: std::time::Duration) {
        self.tx.fetch_add(1, Ordering::Relaxed);
        self.txbytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if let Some(count) = usize::try_from(key).ok().and_then(|k| self.req.get(k)) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.outbuf_latency.record(waited.as_micros() as i64);
        self.last_tx
            .store(clock_us(Instant::now()), Ordering::Relaxed);
    }

    /// An answer, `bytes` long, came `rtt` after its request was written.
    pub fn read(&self, bytes: usize, rtt: std::time::Duration) {
        self.rx.fetch_add(1, Ordering::Relaxed);
        self.rxbytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.rtt.record(rtt.as_micros() as i64);
        self.last_rx
            .store(clock_us(Instant::now()), Ordering::Relaxed);
    }

    /// A connection came up: its handshake and login are done.
    pub fn up(&self) {
        self.current().set("UP");
    }

    /// The broker's statistics object, its windows taken (they start afresh).
    pub fn take(&self, name: String, nodeid: i32, nodename: &str) -> BrokerStatistics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as i64;
        let (state, since, inflight) = {
            let current = self.current();
            let inflight = current.inflight.upgrade();
            (current.state, current.since, inflight)
        };
        let waitresp = match (state, inflight) {
            ("UP", Some(gauge)) => gauge.load(Ordering::Relaxed).max(0),
            _ => 0,
        };
        let now = Instant::now();
        let idle = |last: &AtomicI64| match (state, last.load(Ordering::Relaxed)) {
            ("UP", at) if at > 0 => clock_us(now) - at,
            _ => -1,
        };
        let req: BTreeMap<String, i64> = self
            .req
            .iter()
            .enumerate()
            .filter(|(_, c)| c.load(Ordering::Relaxed) > 0)
            .map(|(key, c)| (librdkafka_name(key as i16).to_owned(), get(c)))
            .collect();
        BrokerStatistics {
            name,
            nodeid: nodeid.into(),
            nodename: nodename.to_owned(),
            source: if nodeid >= 0 { "learned" } else { "configured" }.to_owned(),
            state: state.to_owned(),
            stateage: now.saturating_duration_since(since).as_micros() as i64,
            outbuf_cnt: self.outbuf.load(Ordering::Relaxed).max(0),
            outbuf_msg_cnt: 0,
            waitresp_cnt: waitresp,
            waitresp_msg_cnt: 0,
            tx: get(&self.tx),
            txbytes: get(&self.txbytes),
            txerrs: get(&self.txerrs),
            txretries: get(&self.txretries),
            txidle: idle(&self.last_tx),
            req_timeouts: get(&self.req_timeouts),
            rx: get(&self.rx),
            rxbytes: get(&self.rxbytes),
            rxerrs: get(&self.rxerrs),
            rxcorriderrs: get(&self.rxcorriderrs),
            rxpartial: 0,
            rxidle: idle(&self.last_rx),
            zbuf_grow: 0,
            buf_grow: 0,
            wakeups: 0,
            connects: get(&self.connects),
            disconnects: get(&self.disconnects),
            reauths: get(&self.reauths),
            int_latency: self.int_latency.take(),
            outbuf_latency: self.outbuf_latency.take(),
            rtt: self.rtt.take(),
            throttle: self.throttle.take(),
            req,
            toppars: BTreeMap::new(),
        }
    }
}

impl Current {
    fn set(&mut self, state: &'static str) {
        if self.state != state {
            self.state = state;
            self.since = Instant::now();
        }
    }
}

/// The name librdkafka gives API `key` in `req`: Kafka's, but `ApiVersion` for ApiVersions.
fn librdkafka_name(key: i16) -> &'static str {
    match api_name(key) {
        "ApiVersions" => "ApiVersion",
        name => name,
    }
}

impl std::fmt::Debug for BrokerCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerCounters").finish_non_exhaustive()
    }
}
