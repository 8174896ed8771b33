//! The workloads of `perf compare` and the settings every client gets for them: one place that
//! says what is run, so the Rust peers' flags, the Java tools' options and the printed header
//! cannot drift apart.

use std::fmt::Write as _;

/// What a workload measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Records as fast as the client sends them; msgs/s from the first send to the last ack.
    Produce,
    /// Records at [`LATENCY_RATE`] per second with `linger.ms=0`; each one's ack latency.
    Latency,
    /// A topic filled beforehand, read from the beginning of every partition.
    Consume,
    /// The same topic read by [`SHARE_MEMBERS`] members of one share group (KIP-932) in one
    /// process, each record accepted.
    ShareConsume,
}

/// One workload.
#[derive(Debug)]
pub struct Workload {
    pub id: &'static str,
    pub kind: Kind,
    /// Record value size in bytes (records have no key).
    pub size: usize,
    /// Records, as a fraction of `--messages` (the 1 KB workload sends a fifth).
    pub share: f64,
    /// For the produce kinds. The consume workload's topic is filled with acks=1.
    pub acks: &'static str,
    pub idempotence: bool,
    /// Produce: the application awaits each record's own outcome (purekafka's
    /// `DeliveryFuture`) instead of reading a stream of them; see the peers' `--each`.
    pub each: bool,
    /// Produce: records per transaction (a transactional producer commits each in turn); 0 for
    /// none.
    pub transaction: u64,
}

/// Partitions of every topic, all of them read by the consume workload.
pub const PARTITIONS: u32 = 8;

/// Members of the share group in the share-consume workload.
pub const SHARE_MEMBERS: u32 = 3;

/// Records per second of the latency workloads. Modest on purpose: the slowest client sends
/// 100 B records some 200 times faster, so no client queues behind its own backlog, and the
/// figure is the round trip of a lone small batch (linger 0) through client and broker. At
/// 500 µs apart most records go out in a produce request of their own. 1 % of `--messages`
/// (10,000 for the default million) makes a 5-second run: the p99 rests on the 100 slowest
/// records.
pub const LATENCY_RATE: u64 = 2_000;

/// The first tenth of a latency run (0.5 s at the default size) is a warm-up, sent on the same
/// schedule but left out of the percentiles for every client: it holds the connections and
/// metadata lookups of the first sends and, for Java, the JIT at work (Kafka's
/// `ProducerPerformance --warmup-records` does the same).
pub const LATENCY_WARMUP_SHARE: u64 = 10;

/// The fetch settings every consumer gets; they are the Java client's and librdkafka's
/// defaults, set explicitly. `fetch.max.bytes` (50 MiB for all) is left alone: 8 partitions of
/// `max.partition.fetch.bytes` never reach it.
pub const FETCH_MIN_BYTES: u32 = 1;
pub const FETCH_MAX_WAIT_MS: u32 = 500;
pub const MAX_PARTITION_FETCH_BYTES: u32 = 1 << 20;
/// Verify each batch's CRC32C while consuming (the Java client's default; krafka and rskafka
/// cannot turn it off). Kafka's `ConsumerPerformance` hard-codes `check.crcs=false`.
pub const CHECK_CRCS: bool = true;

pub const WORKLOADS: [Workload; 10] = [
    Workload {
        id: "acks1",
        kind: Kind::Produce,
        size: 100,
        share: 1.0,
        acks: "1",
        idempotence: false,
        each: false,
        transaction: 0,
    },
    // acks1 again, with every record's DeliveryFuture awaited by the application.
    Workload {
        id: "awaited",
        kind: Kind::Produce,
        size: 100,
        share: 1.0,
        acks: "1",
        idempotence: false,
        each: true,
        transaction: 0,
    },
    Workload {
        id: "idempotent",
        kind: Kind::Produce,
        size: 100,
        share: 1.0,
        acks: "all",
        idempotence: true,
        each: false,
        transaction: 0,
    },
    // Transactions of 1,000 records, committed one after the other (acks=all and idempotence,
    // as every transactional producer has them).
    Workload {
        id: "txn",
        kind: Kind::Produce,
        size: 100,
        share: 1.0,
        acks: "all",
        idempotence: true,
        each: false,
        transaction: 1_000,
    },
    Workload {
        id: "acks-all",
        kind: Kind::Produce,
        size: 100,
        share: 1.0,
        acks: "all",
        idempotence: false,
        each: false,
        transaction: 0,
    },
    Workload {
        id: "1kb",
        kind: Kind::Produce,
        size: 1024,
        share: 0.2,
        acks: "1",
        idempotence: false,
        each: false,
        transaction: 0,
    },
    Workload {
        id: "consume",
        kind: Kind::Consume,
        size: 100,
        share: 1.0,
        acks: "1",
        idempotence: false,
        each: false,
        transaction: 0,
    },
    // Kafka 4.2 and later: the share group starts at the beginning (its group config
    // share.auto.offset.reset=earliest, set before each run).
    Workload {
        id: "share-consume",
        kind: Kind::ShareConsume,
        size: 100,
        share: 1.0,
        acks: "1",
        idempotence: false,
        each: false,
        transaction: 0,
    },
    Workload {
        id: "latency",
        kind: Kind::Latency,
        size: 100,
        share: 0.01,
        acks: "1",
        idempotence: false,
        each: false,
        transaction: 0,
    },
    // The same with acks=all, so that rskafka (which has no acks=1) appears at all. On the one
    // local broker the leader is the whole ISR, so acks=all costs little more.
    Workload {
        id: "latency-all",
        kind: Kind::Latency,
        size: 100,
        share: 0.01,
        acks: "all",
        idempotence: false,
        each: false,
        transaction: 0,
    },
];

/// The produce settings of one `perf compare` run (the latency kind forces `linger.ms=0`).
#[derive(Debug, Clone, Copy)]
pub struct ProduceSettings {
    pub linger_ms: u64,
    pub batch_size: usize,
}

impl Workload {
    pub fn messages(&self, base: u64) -> u64 {
        ((base as f64 * self.share) as u64).max(1)
    }

    /// Records of the latency warm-up (none for the other kinds).
    pub fn warmup(&self, base: u64) -> u64 {
        match self.kind {
            Kind::Latency => self.messages(base) / LATENCY_WARMUP_SHARE,
            _ => 0,
        }
    }

    /// `linger.ms` for this workload.
    pub fn linger_ms(&self, s: ProduceSettings) -> u64 {
        match self.kind {
            Kind::Latency => 0,
            _ => s.linger_ms,
        }
    }

    pub fn describe(&self, base: u64) -> String {
        let n = thousands(self.messages(base));
        match self.kind {
            Kind::Produce => format!(
                "produce {n} × {} B, acks={}, idempotence {}{}",
                self.size,
                self.acks,
                if self.idempotence { "on" } else { "off" },
                match (self.each, self.transaction) {
                    (true, _) => ", each record awaited".to_owned(),
                    (false, 0) => String::new(),
                    (false, t) => format!(", transactions of {}", thousands(t)),
                }
            ),
            Kind::Consume => format!("consume {n} × {} B, {PARTITIONS} partitions", self.size),
            Kind::ShareConsume => format!(
                "share-consume {n} × {} B, {PARTITIONS} partitions, {SHARE_MEMBERS} members",
                self.size
            ),
            Kind::Latency => format!(
                "ack latency, {n} × {} B at {} msgs/s, linger.ms=0, acks={}",
                self.size,
                thousands(LATENCY_RATE),
                self.acks
            ),
        }
    }

    /// The arguments of a `benches/peers` binary for this workload.
    pub fn peer_args(
        &self,
        s: ProduceSettings,
        bootstrap: &str,
        topic: &str,
        base: u64,
    ) -> Vec<String> {
        let kind = match self.kind {
            Kind::Produce => "produce",
            Kind::Latency => "latency",
            Kind::Consume => "consume",
            Kind::ShareConsume => "share-consume",
        };
        let mut args = format!(
            "{kind} --bootstrap {bootstrap} --topic {topic} --messages {} --size {}",
            self.messages(base),
            self.size
        );
        let _ = match self.kind {
            Kind::Produce | Kind::Latency => write!(
                args,
                " --acks {} --idempotence {} --linger-ms {} --batch-size {} --compression none",
                self.acks,
                self.idempotence,
                self.linger_ms(s),
                s.batch_size
            ),
            Kind::Consume => write!(
                args,
                " --partitions {PARTITIONS} --fetch-min-bytes {FETCH_MIN_BYTES} \
                 --fetch-max-wait-ms {FETCH_MAX_WAIT_MS} \
                 --max-partition-fetch-bytes {MAX_PARTITION_FETCH_BYTES} --check-crcs {CHECK_CRCS}"
            ),
            Kind::ShareConsume => write!(
                args,
                " --partitions {PARTITIONS} --fetch-min-bytes {FETCH_MIN_BYTES} \
                 --fetch-max-wait-ms {FETCH_MAX_WAIT_MS} --check-crcs {CHECK_CRCS} \
                 --members {SHARE_MEMBERS}"
            ),
        };
        if self.each {
            args.push_str(" --each true");
        }
        if self.transaction > 0 {
            let _ = write!(args, " --transaction-size {}", self.transaction);
        }
        if self.kind == Kind::Latency {
            let _ = write!(
                args,
                " --rate {LATENCY_RATE} --warmup {}",
                self.warmup(base)
            );
        }
        args.split(' ').map(str::to_owned).collect()
    }
}

/// What every client is given, for the header of the output.
pub fn settings(s: ProduceSettings) -> String {
    format!(
        "produce: linger.ms={} batch.size={} compression.type=none, keyless records\n\
         ack latency: linger.ms=0 batch.size={} compression.type=none, {} msgs/s, each record \
         timed from just before its send call to its ack, the first {}% left out as warm-up\n\
         consume: fetch.min.bytes={FETCH_MIN_BYTES} fetch.max.wait.ms={FETCH_MAX_WAIT_MS} \
         max.partition.fetch.bytes={MAX_PARTITION_FETCH_BYTES} check.crcs={CHECK_CRCS} \
         (java: false, hard-coded in ConsumerPerformance), from the beginning of all \
         {PARTITIONS} partitions of a topic filled beforehand by peer-purekafka\n\
         share-consume: the same, {SHARE_MEMBERS} members of a new share group in one process \
         (java: ShareConsumerPerformance --threads {SHARE_MEMBERS}), max.poll.records=500, \
         implicit acknowledgement, timed from the subscription to the Nth record\n",
        s.linger_ms,
        s.batch_size,
        s.batch_size,
        thousands(LATENCY_RATE),
        100 / LATENCY_WARMUP_SHARE
    )
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ProduceSettings = ProduceSettings {
        linger_ms: 5,
        batch_size: 1000,
    };

    fn by_id(id: &str) -> &'static Workload {
        WORKLOADS.iter().find(|w| w.id == id).unwrap()
    }

    #[test]
    fn scales_and_describes() {
        assert_eq!(by_id("1kb").messages(1_000_000), 200_000);
        assert_eq!(by_id("latency").messages(1_000_000), 10_000);
        assert_eq!(by_id("latency").messages(10), 1);
        assert_eq!(
            by_id("latency-all").describe(1_000_000),
            "ack latency, 10,000 × 100 B at 2,000 msgs/s, linger.ms=0, acks=all"
        );
        assert_eq!(
            by_id("consume").describe(100_000),
            "consume 100,000 × 100 B, 8 partitions"
        );
        assert_eq!(
            by_id("share-consume").describe(1_000_000),
            "share-consume 1,000,000 × 100 B, 8 partitions, 3 members"
        );
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn peer_arguments() {
        let args = by_id("latency")
            .peer_args(S, "h:1", "t", 1_000_000)
            .join(" ");
        assert_eq!(
            args,
            "latency --bootstrap h:1 --topic t --messages 10000 --size 100 --acks 1 \
             --idempotence false --linger-ms 0 --batch-size 1000 --compression none --rate 2000 \
             --warmup 1000"
        );
        let args = by_id("consume").peer_args(S, "h:1", "t", 100).join(" ");
        assert!(args.starts_with("consume --bootstrap h:1 --topic t --messages 100 --size 100 "));
        assert!(args.ends_with(
            "--partitions 8 --fetch-min-bytes 1 --fetch-max-wait-ms 500 \
             --max-partition-fetch-bytes 1048576 --check-crcs true"
        ));
        let args = by_id("share-consume")
            .peer_args(S, "h:1", "t", 100)
            .join(" ");
        assert!(args.starts_with("share-consume --bootstrap h:1 --topic t --messages 100 "));
        assert!(args.ends_with("--check-crcs true --members 3"));
        let args = by_id("acks1").peer_args(S, "h:1", "t", 100);
        assert!(args.join(" ").contains("--linger-ms 5 --batch-size 1000"));
        let args = by_id("txn").peer_args(S, "h:1", "t", 1_000_000).join(" ");
        assert!(args.starts_with("produce --bootstrap h:1 --topic t --messages 1000000 "));
        assert!(args.ends_with(
            "--acks all --idempotence true --linger-ms 5 --batch-size 1000 \
             --compression none --transaction-size 1000"
        ));
        assert_eq!(
            by_id("txn").describe(1_000_000),
            "produce 1,000,000 × 100 B, acks=all, idempotence on, transactions of 1,000"
        );
    }
}
