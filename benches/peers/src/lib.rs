//! What every peer binary shares: the command line, the clock, the checks on consumed records,
//! the pacing and percentiles of the latency workload, and the one JSON line each run prints.
//!
//! ```text
//! peer-<client> produce --topic T [--bootstrap 127.0.0.1:9092] [--messages N] [--size B]
//!     [--acks 0|1|all] [--idempotence true|false] [--linger-ms MS] [--batch-size BYTES]
//!     [--compression none|gzip|snappy|lz4|zstd] [--transaction-size N]
//! peer-<client> latency  (the produce flags) [--rate MSGS_PER_S] [--warmup N]
//! peer-<client> consume --topic T [--bootstrap …] [--messages N] [--size B] [--partitions P]
//!     [--fetch-min-bytes B] [--fetch-max-wait-ms MS] [--max-partition-fetch-bytes B]
//!     [--check-crcs true|false]
//! peer-<client> share-consume (the consume flags) --group G [--members M]
//! peer-<client> member --topic T --group G [--bootstrap …] [--seconds S]
//! ```
//!
//! - **produce** sends `--messages` keyless records of `--size` bytes of value to `--topic`,
//!   timed from the first send to the last acknowledgement. With `--transaction-size N`, the
//!   producer has a `transactional.id` and sends them in transactions of N records, each
//!   begun, filled and committed in turn; timed from the first send to the last commit.
//! - **latency** sends them at `--rate` records per second: record *i* at *start + i / rate*, the
//!   sending thread sleeping until then ([`Pacer`]). Each record's latency runs from just before
//!   its send call to its acknowledgement; the line carries p50, p99 and max ([`Latencies`]) of
//!   the records after the first `--warmup` (sent on the same schedule, their acks awaited too).
//! - **consume** reads `--messages` records from the beginning of partitions `0..P` of a topic
//!   that holds exactly that many, timed from just before the assignment to the Nth record;
//!   every record is checked ([`Tally`]). Before the clock starts, the client has connected and
//!   fetched the topic's metadata ([`Options::check_partitions`]), so that no client's time
//!   holds its way of learning where the partitions are.
//!
//! - **share-consume** reads `--messages` records of such a topic with `--members` members of
//!   share group `--group` (whose `share.auto.offset.reset` the harness set to `earliest`), in
//!   one process, each record accepted; timed from just before the members subscribe to the
//!   Nth record, as Kafka's `ShareConsumerPerformance` times it. Every record is checked
//!   ([`ShareTally`]): the right size, and none twice.
//!
//! - **member** joins group `--group` subscribed to `--topic`, with the cooperative-sticky
//!   assignor, and polls for `--seconds` (100 ms at a time, as applications do), then leaves:
//!   `perf rejoin` watches its rebalances on the wire (xtask/src/perf/rejoin.rs).
//!
//! Each prints one line, for instance:
//!
//! ```text
//! {"client":"purekafka","workload":"produce","messages":1000000,...,"msgs_per_s":512345,"mb_per_s":51.23}
//! ```
//!
//! A setting the client cannot honour (rskafka has no `acks=1`, for one) is not silently
//! replaced by another: the binary prints `{"client":…,"unsupported":"why"}` and exits with
//! [`UNSUPPORTED`], and the harness reports the cell as not run.

use std::fmt::Write as _;
use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

/// Exit code of a binary asked for a setting its client does not have.
pub const UNSUPPORTED: i32 = 3;

/// The workloads a peer binary can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Send `messages` records as fast as the client goes and wait for every acknowledgement.
    Produce,
    /// Send `messages` records at `rate` per second and time each one's acknowledgement.
    Latency,
    /// Read `messages` records from the beginning of every partition.
    Consume,
    /// Read them as members of one share group.
    ShareConsume,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Produce => "produce",
            Workload::Latency => "latency",
            Workload::Consume => "consume",
            Workload::ShareConsume => "share-consume",
        }
    }
}

/// The settings of one run; every client gets the same.
#[derive(Debug, Clone)]
pub struct Options {
    pub workload: Workload,
    pub bootstrap: String,
    pub topic: String,
    pub messages: u64,
    pub size: usize,
    /// `0`, `1` or `all`.
    pub acks: String,
    pub idempotence: bool,
    pub linger_ms: u64,
    pub batch_size: usize,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub compression: String,
    /// Records per second of the latency workload.
    pub rate: u64,
    /// The first records of the latency workload, left out of its percentiles.
    pub warmup: u64,
    /// Partitions `0..partitions` are consumed.
    pub partitions: i32,
    pub fetch_min_bytes: usize,
    pub fetch_max_wait_ms: u64,
    pub max_partition_fetch_bytes: usize,
    pub check_crcs: bool,
    /// Produce: the application takes each record's outcome from that record's own handle
    /// (purekafka: its `DeliveryFuture`, awaited) rather than from a stream of them. The other
    /// clients take each record's outcome per record in every produce run already (callbacks,
    /// per-record futures), so for them this changes nothing.
    pub each: bool,
    /// Produce: records per transaction, each committed before the next begins; 0 sends
    /// without transactions.
    pub transaction_size: u64,
    /// Share-consume: the share group, and how many members read in it.
    pub group: String,
    pub members: usize,
}

impl Options {
    /// Parses `WORKLOAD --flag value …` (the arguments after the program name).
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let (workload, rest) = args.split_first().ok_or("no workload given")?;
        let workload = [
            Workload::Produce,
            Workload::Latency,
            Workload::Consume,
            Workload::ShareConsume,
        ]
        .into_iter()
        .find(|w| w.name() == workload)
        .ok_or_else(|| {
            format!(
                "unknown workload {workload:?}; expected produce, latency, consume or share-consume"
            )
        })?;
        let mut o = Options {
            workload,
            bootstrap: "127.0.0.1:9092".into(),
            topic: String::new(),
            messages: 1_000_000,
            size: 100,
            acks: "1".into(),
            idempotence: false,
            linger_ms: 5,
            batch_size: 512 * 1024,
            compression: "none".into(),
            rate: 2_000,
            warmup: 0,
            partitions: 8,
            fetch_min_bytes: 1,
            fetch_max_wait_ms: 500,
            max_partition_fetch_bytes: 1 << 20,
            check_crcs: true,
            each: false,
            transaction_size: 0,
            group: String::new(),
            members: 3,
        };
        let mut it = rest.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag} takes a number, got {value:?}"))
            };
            let boolean = || {
                value
                    .parse::<bool>()
                    .map_err(|_| format!("{flag} takes true or false, got {value:?}"))
            };
            match flag.as_str() {
                "--bootstrap" => o.bootstrap = value.clone(),
                "--topic" => o.topic = value.clone(),
                "--messages" => o.messages = number()?,
                "--size" => o.size = number()? as usize,
                "--acks" => {
                    o.acks = match value.as_str() {
                        "0" | "1" => value.clone(),
                        "all" | "-1" => "all".into(),
                        _ => return Err(format!("--acks takes 0, 1 or all, got {value:?}")),
                    }
                }
                "--idempotence" => o.idempotence = boolean()?,
                "--linger-ms" => o.linger_ms = number()?,
                "--batch-size" => o.batch_size = number()? as usize,
                "--compression" => o.compression = value.clone(),
                "--rate" => o.rate = number()?.max(1),
                "--warmup" => o.warmup = number()?,
                "--partitions" => o.partitions = number()? as i32,
                "--fetch-min-bytes" => o.fetch_min_bytes = number()? as usize,
                "--fetch-max-wait-ms" => o.fetch_max_wait_ms = number()?,
                "--max-partition-fetch-bytes" => o.max_partition_fetch_bytes = number()? as usize,
                "--check-crcs" => o.check_crcs = boolean()?,
                "--each" => o.each = boolean()?,
                "--transaction-size" => o.transaction_size = number()?,
                "--group" => o.group = value.clone(),
                "--members" => o.members = number()?.max(1) as usize,
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if o.topic.is_empty() {
            return Err("--topic is required".into());
        }
        if o.workload == Workload::ShareConsume && o.group.is_empty() {
            return Err("share-consume needs --group".into());
        }
        Ok(o)
    }

    /// The options from this process's command line; prints the error and exits 2 on a bad one.
    pub fn from_env() -> Options {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Options::parse(&args).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        })
    }

    /// The record value: `size` bytes, the same for every record (compression is off, so the
    /// content does not matter).
    pub fn value(&self) -> Vec<u8> {
        vec![b'x'; self.size]
    }

    /// The `transactional.id` of a transactional run by `client`: one per process, so that no
    /// run fences another.
    pub fn transactional_id(&self, client: &str) -> String {
        format!("peer-{client}-{}", std::process::id())
    }

    /// The sizes of the transactions of a transactional run, in turn: `transaction_size`
    /// records each, the last one what is left. None without `--transaction-size`.
    pub fn transactions(&self) -> impl Iterator<Item = u64> {
        let (total, size) = (self.messages, self.transaction_size.max(1));
        let count = match self.transaction_size {
            0 => 0,
            _ => total.div_ceil(size),
        };
        (0..count).map(move |i| size.min(total - i * size))
    }

    /// `linger.ms` as a duration.
    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }

    /// `fetch.max.wait.ms` as a duration.
    pub fn fetch_max_wait(&self) -> Duration {
        Duration::from_millis(self.fetch_max_wait_ms)
    }

    /// Checks the partition count the client's metadata shows for the topic, fetched before the
    /// consume clock starts.
    pub fn check_partitions(&self, found: usize) -> Result<(), String> {
        if found == self.partitions as usize {
            Ok(())
        } else {
            Err(format!(
                "topic {} has {found} partitions, not {}",
                self.topic, self.partitions
            ))
        }
    }

    /// The start of every result line: the client, the workload and the settings it ran with.
    fn result_head(&self, client: &str) -> String {
        let mut head = format!(
            "{{\"client\":\"{client}\",\"workload\":\"{}\",\"messages\":{},\"size\":{}",
            self.workload.name(),
            self.messages,
            self.size
        );
        let _ = match self.workload {
            Workload::Produce | Workload::Latency => write!(
                head,
                ",\"acks\":\"{}\",\"idempotence\":{},\"linger_ms\":{},\"batch_size\":{},\
                 \"compression\":\"{}\"",
                self.acks, self.idempotence, self.linger_ms, self.batch_size, self.compression
            ),
            Workload::Consume => write!(
                head,
                ",\"partitions\":{},\"fetch_min_bytes\":{},\"fetch_max_wait_ms\":{},\
                 \"max_partition_fetch_bytes\":{},\"check_crcs\":{}",
                self.partitions,
                self.fetch_min_bytes,
                self.fetch_max_wait_ms,
                self.max_partition_fetch_bytes,
                self.check_crcs
            ),
            Workload::ShareConsume => write!(
                head,
                ",\"partitions\":{},\"fetch_min_bytes\":{},\"fetch_max_wait_ms\":{},\
                 \"check_crcs\":{},\"members\":{}",
                self.partitions,
                self.fetch_min_bytes,
                self.fetch_max_wait_ms,
                self.check_crcs,
                self.members
            ),
        };
        if self.workload == Workload::Latency {
            let _ = write!(head, ",\"rate\":{},\"warmup\":{}", self.rate, self.warmup);
        }
        if self.transaction_size > 0 {
            let _ = write!(head, ",\"transaction_size\":{}", self.transaction_size);
        }
        head
    }
}

/// Prints the `unsupported` line for `client` and exits with [`UNSUPPORTED`].
pub fn unsupported(client: &str, why: &str) -> ! {
    println!(
        "{{\"client\":\"{client}\",\"unsupported\":\"{}\"}}",
        why.replace('"', "'")
    );
    std::process::exit(UNSUPPORTED)
}

/// Prints `line`, and when `failed` is not zero says so and exits 1.
fn finish(client: &str, line: String, failed: u64, what: &str) {
    println!("{line}");
    if failed > 0 {
        eprintln!("{client}: {failed} {what}");
        std::process::exit(1);
    }
}

/// The clock of one run: started just before the first send (or the assignment), read after the
/// last ack (or the Nth record).
pub struct Timer(Instant);

impl Timer {
    pub fn start() -> Timer {
        Timer(Instant::now())
    }

    /// Prints the produce result line for `client`, `failed` records not acked.
    pub fn report(self, client: &str, o: &Options, failed: u64) {
        let elapsed = self.0.elapsed().as_secs_f64();
        let delivered = o.messages - failed;
        let line = format!(
            "{},\"failed\":{failed},\"elapsed_s\":{elapsed:.3},\"msgs_per_s\":{:.0},\
             \"mb_per_s\":{:.2}}}",
            o.result_head(client),
            delivered as f64 / elapsed,
            (delivered as usize * o.size) as f64 / elapsed / 1e6,
        );
        finish(
            client,
            line,
            failed,
            &format!("of {} records failed", o.messages),
        );
    }
}

/// Counts consumed records and checks each one cheaply: its value has `--size` bytes, and it is
/// the next offset of its partition, counting from 0 (the topic is fresh). N records that pass
/// are then exactly the topic's N records: none skipped, none twice.
pub struct Tally {
    size: usize,
    next: Vec<i64>,
    pub count: u64,
    wrong: u64,
}

impl Tally {
    pub fn new(o: &Options) -> Tally {
        Tally {
            size: o.size,
            next: vec![0; o.partitions.max(0) as usize],
            count: 0,
            wrong: 0,
        }
    }

    /// Notes one record (`value_len` is `None` for a null value).
    pub fn note(&mut self, partition: i32, offset: i64, value_len: Option<usize>) {
        self.count += 1;
        let next = self.next.get_mut(partition as usize);
        let in_order = next.is_some_and(|n| {
            let ok = *n == offset;
            *n = offset + 1;
            ok
        });
        if !in_order || value_len != Some(self.size) {
            if self.wrong == 0 {
                eprintln!(
                    "unexpected record: partition {partition} offset {offset}, value of {value_len:?} bytes"
                );
            }
            self.wrong += 1;
        }
    }

    /// Prints the consume result line for `client`; exits 1 if any record was not as expected.
    pub fn report(&self, timer: Timer, client: &str, o: &Options) {
        let elapsed = timer.0.elapsed().as_secs_f64();
        let line = format!(
            "{},\"consumed\":{},\"wrong\":{},\"elapsed_s\":{elapsed:.3},\"msgs_per_s\":{:.0},\
             \"mb_per_s\":{:.2}}}",
            o.result_head(client),
            self.count,
            self.wrong,
            self.count as f64 / elapsed,
            (self.count as usize * o.size) as f64 / elapsed / 1e6,
        );
        let what = "records out of order or of the wrong size";
        finish(client, line, self.wrong, what);
    }
}

/// Counts records of the share-consume workload, which come in no order, and checks each:
/// its value has `--size` bytes, and no offset of a partition comes twice. N records that pass
/// are then exactly the topic's N records.
pub struct ShareTally {
    size: usize,
    /// Per partition, a bit per offset seen.
    seen: Vec<Vec<u64>>,
    pub count: u64,
    wrong: u64,
}

impl ShareTally {
    pub fn new(o: &Options) -> ShareTally {
        ShareTally {
            size: o.size,
            seen: vec![Vec::new(); o.partitions.max(0) as usize],
            count: 0,
            wrong: 0,
        }
    }

    /// Notes one record (`value_len` is `None` for a null value).
    pub fn note(&mut self, partition: i32, offset: i64, value_len: Option<usize>) {
        self.count += 1;
        let first = match (self.seen.get_mut(partition as usize), u64::try_from(offset)) {
            (Some(bits), Ok(offset)) => {
                let (word, bit) = ((offset / 64) as usize, offset % 64);
                if bits.len() <= word {
                    bits.resize(word + 1, 0);
                }
                let first = bits[word] & (1 << bit) == 0;
                bits[word] |= 1 << bit;
                first
            }
            _ => false,
        };
        if !first || value_len != Some(self.size) {
            if self.wrong == 0 {
                eprintln!(
                    "unexpected record: partition {partition} offset {offset} (seen before: {}), \
                     value of {value_len:?} bytes",
                    !first
                );
            }
            self.wrong += 1;
        }
    }

    /// Prints the result line for `client`; exits 1 if any record was not as expected.
    pub fn report(&self, timer: &Timer, client: &str, o: &Options) {
        let elapsed = timer.0.elapsed().as_secs_f64();
        let line = format!(
            "{},\"consumed\":{},\"wrong\":{},\"elapsed_s\":{elapsed:.3},\"msgs_per_s\":{:.0},\
             \"mb_per_s\":{:.2}}}",
            o.result_head(client),
            self.count,
            self.wrong,
            self.count as f64 / elapsed,
            (self.count as usize * o.size) as f64 / elapsed / 1e6,
        );
        finish(
            client,
            line,
            self.wrong,
            "records delivered twice or of the wrong size",
        );
    }
}

/// The send schedule of the latency workload: record `i` is due `i / rate` after the first.
pub struct Pacer {
    start: Option<Instant>,
    /// The last send.
    last: Option<Instant>,
    interval: Duration,
    /// Sends that started more than [`Pacer::LATE`] after they were due.
    late: u64,
}

impl Pacer {
    /// A send this far behind its schedule counts as late: its client (or the machine) could not
    /// keep the rate, and the latencies measured from the actual send understate the wait.
    pub const LATE: Duration = Duration::from_millis(1);

    pub fn new(o: &Options) -> Pacer {
        Pacer {
            start: None,
            last: None,
            interval: Duration::from_secs(1) / o.rate as u32,
            late: 0,
        }
    }

    /// Blocks this thread until record `i` is due and returns the instant of its send. A thread
    /// sleep, not a runtime timer: tokio's timers tick in whole milliseconds, coarser than the
    /// interval. In the async peers this is the `#[tokio::main]` thread, which runs no worker:
    /// the client's own tasks go on meanwhile.
    pub fn wait(&mut self, i: u64) -> Instant {
        let start = *self.start.get_or_insert_with(Instant::now);
        let due = start + self.interval * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > Self::LATE {
            self.late += 1;
        }
        *self.last.insert(Instant::now())
    }

    /// Records per second sent so far: the rate the schedule kept.
    pub fn rate_kept(&self, sent: u64) -> f64 {
        match (self.start, self.last) {
            (Some(first), Some(last)) if last > first => {
                (sent - 1) as f64 / (last - first).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// Each record's time from its send call to its acknowledgement, after the warm-up.
#[derive(Default)]
pub struct Latencies {
    warmup: u64,
    samples: Vec<Duration>,
    acked: u64,
    failed: u64,
}

impl Latencies {
    pub fn new(o: &Options) -> Latencies {
        Latencies {
            warmup: o.warmup,
            ..Latencies::default()
        }
    }

    /// Notes the outcome of record `i`: its latency, or a failed delivery.
    pub fn note<E: std::fmt::Display>(&mut self, i: u64, outcome: Result<Duration, E>) {
        match outcome {
            Ok(latency) => {
                self.acked += 1;
                if i >= self.warmup {
                    self.samples.push(latency);
                }
            }
            Err(e) => {
                if self.failed == 0 {
                    eprintln!("delivery failed: {e}");
                }
                self.failed += 1;
            }
        }
    }

    /// Prints the latency result line for `client`, `pacer` telling how many sends were late.
    pub fn report(mut self, pacer: &Pacer, client: &str, o: &Options) {
        self.samples.sort();
        let ms = |p: f64| percentile(&self.samples, p).as_secs_f64() * 1e3;
        // Failed deliveries, and any record whose outcome never came.
        let failed = o.messages.saturating_sub(self.acked);
        let line = format!(
            "{},\"failed\":{failed},\"late_sends\":{},\"msgs_per_s\":{:.0},\
             \"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
            o.result_head(client),
            pacer.late,
            pacer.rate_kept(o.messages),
            ms(0.50),
            ms(0.99),
            ms(1.0),
        );
        finish(
            client,
            line,
            failed,
            &format!("of {} records failed", o.messages),
        );
    }
}

/// Delivery futures awaited at once, at most `limit` of them, as the produce workload of a client
/// whose sends return a future per record keeps them; counts the failures.
pub struct InFlight<F> {
    client: &'static str,
    limit: usize,
    pending: FuturesUnordered<F>,
    failed: u64,
}

impl<F, T, E> InFlight<F>
where
    F: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    pub fn new(client: &'static str, limit: usize) -> Self {
        InFlight {
            client,
            limit,
            pending: FuturesUnordered::new(),
            failed: 0,
        }
    }

    /// Adds `delivery`; at the limit, first waits for one of those pending to finish.
    pub async fn push(&mut self, delivery: F) {
        self.pending.push(delivery);
        if self.pending.len() >= self.limit {
            if let Some(r) = self.pending.next().await {
                self.note(r);
            }
        }
    }

    /// Waits for every pending delivery; returns how many failed in all.
    pub async fn finish(mut self) -> u64 {
        while let Some(r) = self.pending.next().await {
            self.note(r);
        }
        self.failed
    }

    fn note(&mut self, r: Result<T, E>) {
        if let Err(e) = r {
            if self.failed == 0 {
                eprintln!("{}: delivery failed: {e}", self.client);
            }
            self.failed += 1;
        }
    }
}

/// The latency workload on a tokio runtime. For each record in turn: waits until it is due,
/// calls `send`, which queues the record and gives back what becomes the future of its
/// acknowledgement, and awaits that on a task of its own, so that each ack is timed when it
/// comes, in whatever order the acks come. Then prints the result line.
pub async fn run_latency<S, Q, A, T, E>(client: &str, o: &Options, mut send: S)
where
    S: FnMut() -> Q,
    Q: Future<Output = Result<A, E>>,
    A: IntoFuture<Output = Result<T, E>>,
    A::IntoFuture: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let mut pacer = Pacer::new(o);
    let mut latencies = Latencies::new(o);
    let mut acks = Vec::with_capacity(o.messages as usize);
    for i in 0..o.messages {
        let sent = pacer.wait(i);
        match send().await {
            Ok(ack) => {
                let ack = ack.into_future();
                let timed =
                    async move { ack.await.map(|_| sent.elapsed()).map_err(|e| e.to_string()) };
                acks.push((i, tokio::spawn(timed)));
            }
            Err(e) => latencies.note(i, Err(e)),
        }
    }
    for (i, ack) in acks {
        latencies.note(i, ack.await.map_err(|e| e.to_string()).and_then(|r| r));
    }
    latencies.report(&pacer, client, o);
}

/// The sample at fraction `p` of `sorted`: index ⌊p·n⌋, the last for p = 1, as Kafka's
/// `ProducerPerformance` picks its percentiles.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let n = sorted.len();
    if n == 0 {
        return Duration::ZERO;
    }
    sorted[((p * n as f64) as usize).min(n - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_every_flag() {
        let o = Options::parse(&args(
            "produce --topic t --messages 10 --size 7 --acks -1 --idempotence true \
             --linger-ms 0 --batch-size 16384 --compression lz4 --bootstrap h:1",
        ))
        .unwrap();
        assert_eq!(o.workload, Workload::Produce);
        assert_eq!((o.messages, o.size, o.acks.as_str()), (10, 7, "all"));
        assert!(o.idempotence);
        assert_eq!((o.linger_ms, o.batch_size), (0, 16384));
        assert_eq!(
            (o.compression.as_str(), o.bootstrap.as_str()),
            ("lz4", "h:1")
        );
        assert_eq!(o.transactions().count(), 0, "no transactions asked for");

        let o = Options::parse(&args(
            "produce --topic t --messages 2500 --transaction-size 1000",
        ));
        let sizes: Vec<u64> = o.unwrap().transactions().collect();
        assert_eq!(sizes, [1000, 1000, 500]);

        let o = Options::parse(&args(
            "consume --topic t --partitions 3 --fetch-min-bytes 2 --fetch-max-wait-ms 100 \
             --max-partition-fetch-bytes 4096 --check-crcs false",
        ))
        .unwrap();
        assert_eq!(o.workload, Workload::Consume);
        assert_eq!((o.partitions, o.fetch_min_bytes), (3, 2));
        assert_eq!(o.fetch_max_wait(), Duration::from_millis(100));
        assert_eq!((o.max_partition_fetch_bytes, o.check_crcs), (4096, false));
        assert!(o.result_head("c").contains("\"check_crcs\":false"));
        assert!(o.check_partitions(3).is_ok());
        assert!(o.check_partitions(1).is_err());

        let o = Options::parse(&args("latency --topic t --rate 500 --warmup 9")).unwrap();
        assert_eq!((o.workload, o.rate, o.warmup), (Workload::Latency, 500, 9));
        assert!(o.result_head("c").ends_with("\"rate\":500,\"warmup\":9"));
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(Options::parse(&args("produce")).is_err(), "no topic");
        assert!(Options::parse(&args("fetch --topic t")).is_err());
        assert!(Options::parse(&args("produce --topic t --acks 2")).is_err());
        assert!(Options::parse(&args("produce --topic t --size")).is_err());
        assert!(Options::parse(&args("consume --topic t --check-crcs yes")).is_err());
    }

    #[test]
    fn tally_finds_gaps_repeats_and_wrong_sizes() {
        let o = Options::parse(&args("consume --topic t --partitions 2 --size 3")).unwrap();
        let mut t = Tally::new(&o);
        for (p, off) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            t.note(p, off, Some(3));
        }
        assert_eq!((t.count, t.wrong), (4, 0));
        t.note(0, 1, Some(3)); // twice
        t.note(1, 3, Some(3)); // a gap
        t.note(2, 0, Some(3)); // no such partition
        t.note(0, 2, Some(4)); // wrong size
        t.note(0, 3, None); // null value
        assert_eq!((t.count, t.wrong), (9, 5));
    }

    #[test]
    fn latencies_leave_out_the_warmup() {
        let o = Options::parse(&args("latency --topic t --warmup 2")).unwrap();
        let mut l = Latencies::new(&o);
        for i in 0..5 {
            l.note(i, Ok::<_, String>(Duration::from_millis(10 - i)));
        }
        l.note(5, Err("refused"));
        l.note(1, Err("refused"));
        assert_eq!((l.acked, l.failed), (5, 2));
        let kept: Vec<u64> = l.samples.iter().map(|d| d.as_millis() as u64).collect();
        assert_eq!(kept, [8, 7, 6]);
    }

    #[test]
    fn percentiles_as_kafka_picks_them() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&ms, 0.99), Duration::from_millis(100));
        assert_eq!(percentile(&ms, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&ms[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn pacer_keeps_the_schedule() {
        let o = Options::parse(&args("latency --topic t --rate 1000")).unwrap();
        let mut pacer = Pacer::new(&o);
        let first = pacer.wait(0);
        let fifth = pacer.wait(5);
        assert!(fifth - first >= Duration::from_millis(5));
        assert_eq!(pacer.late, 0);
        let rate = pacer.rate_kept(6);
        assert!(rate > 900.0 && rate <= 1000.0, "{rate}");
        std::thread::sleep(Duration::from_millis(20));
        pacer.wait(6);
        assert_eq!(pacer.late, 1);
    }
}

/// The options of the `member` workload.
#[derive(Debug, Clone)]
pub struct MemberOptions {
    pub bootstrap: String,
    pub topic: String,
    pub group: String,
    pub seconds: u64,
}

impl MemberOptions {
    /// From the arguments after `member`; prints the error and exits 2 on a bad one.
    pub fn from_args(args: &[String]) -> MemberOptions {
        let parsed = (|| {
            let (mut bootstrap, mut topic, mut group, mut seconds) =
                ("127.0.0.1:9092".to_owned(), None, None, 20);
            let mut it = args.iter();
            while let Some(flag) = it.next() {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "--bootstrap" => bootstrap = value.clone(),
                    "--topic" => topic = Some(value.clone()),
                    "--group" => group = Some(value.clone()),
                    "--seconds" => seconds = value.parse().map_err(|_| "bad --seconds")?,
                    _ => return Err(format!("unknown option {flag}")),
                }
            }
            Ok::<_, String>(MemberOptions {
                bootstrap,
                topic: topic.ok_or("--topic is required")?,
                group: group.ok_or("--group is required")?,
                seconds,
            })
        })();
        parsed.unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        })
    }

    /// The line a member run prints.
    pub fn report(&self, client: &str, records: u64) {
        println!(
            "{{\"client\":\"{client}\",\"workload\":\"member\",\"group\":\"{}\",\"records\":{records}}}",
            self.group
        );
    }
}
