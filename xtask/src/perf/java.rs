//! The Java client in `perf compare`: Kafka's own perf tools from the broker's jars, run with
//! `-Xmx512M` as `kafka-producer-perf-test.sh` and `kafka-consumer-perf-test.sh` run them.
//!
//! - produce: `ProducerPerformance --throughput -1`.
//! - ack latency: `ProducerPerformance --throughput RATE --warmup-records W`; its steady-state
//!   summary line has the 50th and 99th percentiles and the max, in whole milliseconds (it
//!   times with `System.currentTimeMillis`, from just before each `send` to its callback).
//! - share-consume: `ShareConsumerPerformance --threads 3`, a fresh share group per run set to
//!   start at the beginning; its `nMsg.sec` runs from before the members subscribe.
//! - consume: `ConsumerPerformance` with a fresh group per run (it has no manual assignment;
//!   `auto.offset.reset=earliest` is its default); its `fetch.nMsg.sec` leaves out the time
//!   the group join took. It hard-codes `check.crcs=false`.
//! - produce in transactions: `ProducerPerformance` commits by time, not every N records, so
//!   `benches/peers/java/TransactionalProducerPerformance.java` runs it instead. It takes the
//!   peers' flags and prints their result line; [`compile`] builds it with the JDK the brokers
//!   run on.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::report::Reading;
use super::workload::{
    Kind, ProduceSettings, Workload, FETCH_MAX_WAIT_MS, FETCH_MIN_BYTES, LATENCY_RATE,
    MAX_PARTITION_FETCH_BYTES, SHARE_MEMBERS,
};
use crate::kafka;
use crate::run::{check, root, target_dir};

/// The Java program of the transactional workload, in `benches/peers/java`.
const TRANSACTIONAL: &str = "TransactionalProducerPerformance";

/// Where [`compile`] puts the program's classes.
fn classes() -> PathBuf {
    target_dir(&root()).join("perf-java")
}

/// Compiles the transactional workload's program against the client jars in `libs`.
pub fn compile(libs: &Path) -> Result<(), String> {
    let source = root().join(format!("benches/peers/java/{TRANSACTIONAL}.java"));
    let mut cmd = Command::new(kafka::javac());
    cmd.arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .arg("-d")
        .arg(classes())
        .arg(source);
    check(cmd)
}

/// The Java tool's command line for workload `w` on `topic`; `group` names the consumer group.
pub fn command(
    libs: &Path,
    bootstrap: &str,
    w: &Workload,
    s: ProduceSettings,
    topic: &str,
    base: u64,
    group: &str,
) -> Command {
    let messages = w.messages(base);
    let mut cmd = Command::new(kafka::java());
    cmd.arg("-Xmx512M").arg("-cp");
    if w.transaction > 0 {
        cmd.arg(format!("{}:{}/*", classes().display(), libs.display()))
            .arg(TRANSACTIONAL)
            .args(w.peer_args(s, bootstrap, topic, base));
        return cmd;
    }
    cmd.arg(format!("{}/*", libs.display()));
    if w.kind == Kind::Consume {
        cmd.arg("org.apache.kafka.tools.ConsumerPerformance")
            .args(["--bootstrap-server", bootstrap])
            .args(["--topic", topic])
            .args(["--num-records", &messages.to_string()])
            .args(["--group", group])
            // The tool sets max.partition.fetch.bytes from --fetch-size, over any property.
            .args(["--fetch-size", &MAX_PARTITION_FETCH_BYTES.to_string()]);
        fetch_properties(&mut cmd);
        return cmd;
    }
    if w.kind == Kind::ShareConsume {
        cmd.arg("org.apache.kafka.tools.ShareConsumerPerformance")
            .args(["--bootstrap-server", bootstrap])
            .args(["--topic", topic])
            .args(["--num-records", &messages.to_string()])
            .args(["--group", group])
            .args(["--threads", &SHARE_MEMBERS.to_string()]);
        fetch_properties(&mut cmd);
        return cmd;
    }
    let throughput = match w.kind {
        Kind::Latency => LATENCY_RATE as i64,
        _ => -1,
    };
    cmd.arg("org.apache.kafka.tools.ProducerPerformance")
        .args(["--topic", topic])
        .args(["--num-records", &messages.to_string()])
        .args(["--record-size", &w.size.to_string()])
        .args(["--throughput", &throughput.to_string()]);
    let warmup = w.warmup(base);
    if warmup > 0 {
        cmd.args(["--warmup-records", &warmup.to_string()]);
    }
    // Its values run to the end of the command line.
    cmd.arg("--command-property")
        .arg(format!("bootstrap.servers={bootstrap}"))
        .arg(format!("acks={}", w.acks))
        .arg(format!("enable.idempotence={}", w.idempotence))
        .arg(format!("linger.ms={}", w.linger_ms(s)))
        .arg(format!("batch.size={}", s.batch_size))
        .arg("compression.type=none");
    cmd
}

/// Reads the tool's output for a workload of `kind`.
pub fn read(kind: Kind, stdout: &str) -> Option<Reading> {
    match kind {
        Kind::Consume => read_consumer(stdout),
        Kind::ShareConsume => read_share_consumer(stdout),
        Kind::Produce | Kind::Latency => read_producer(stdout),
    }
}

/// ProducerPerformance's summary line: `N records sent, R records/sec (…), A ms avg latency,
/// M ms max latency, P ms 50th, P ms 95th, P ms 99th, P ms 99.9th.` After a warm-up a second
/// one follows, `N steady state records sent, …`, whose latencies are the ones taken.
fn read_producer(stdout: &str) -> Option<Reading> {
    // Progress lines every few seconds have no percentiles.
    let mut summaries = stdout.lines().filter(|l| l.contains(" ms 50th"));
    let summary = summaries.next()?;
    let latencies = summaries
        .find(|l| l.contains(" steady state records sent,"))
        .unwrap_or(summary);
    Some(Reading {
        count: summary.split_whitespace().next()?.parse().ok()?,
        msgs_per_s: number_before(summary, " records/sec")?,
        bytes_per_record: None,
        p50_ms: number_before(latencies, " ms 50th")?,
        p99_ms: number_before(latencies, " ms 99th")?,
        max_ms: number_before(latencies, " ms max latency")?,
        late_sends: None,
    })
}

/// The number just before `suffix` in `line`.
fn number_before(line: &str, suffix: &str) -> Option<f64> {
    let (before, _) = line.split_once(suffix)?;
    before.split_whitespace().last()?.parse().ok()
}

/// ConsumerPerformance's CSV: a header line naming the columns, then one line of values.
fn read_consumer(stdout: &str) -> Option<Reading> {
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines
        .find(|l| l.contains("fetch.nMsg.sec"))?
        .split(',')
        .map(str::trim)
        .collect();
    let values: Vec<&str> = lines.next()?.split(',').map(str::trim).collect();
    let column = |name: &str| -> Option<f64> {
        let i = header.iter().position(|h| *h == name)?;
        values.get(i)?.parse().ok()
    };
    let count = column("data.consumed.in.nMsg")?;
    Some(Reading {
        count: count as u64,
        msgs_per_s: column("fetch.nMsg.sec")?,
        bytes_per_record: Some(column("data.consumed.in.MB")? * 1024.0 * 1024.0 / count),
        ..Reading::default()
    })
}

/// The fetch settings every consumer gets, as the perf tools take properties.
fn fetch_properties(cmd: &mut Command) {
    for property in [
        format!("fetch.min.bytes={FETCH_MIN_BYTES}"),
        format!("fetch.max.wait.ms={FETCH_MAX_WAIT_MS}"),
    ] {
        cmd.arg("--command-property").arg(property);
    }
}

/// ShareConsumerPerformance's summary: under its header `start.time, end.time,
/// data.consumed.in.MB, MB.sec, nMsg.sec, data.consumed.in.nMsg, fetch.time.ms`, the group's
/// line, its rate taken over the whole run from before the members subscribed.
fn read_share_consumer(stdout: &str) -> Option<Reading> {
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines
        .find(|l| l.starts_with("start.time") && l.contains("nMsg.sec"))?
        .split(',')
        .map(str::trim)
        .collect();
    // The summary is the last line with as many fields (a warning may come first).
    let values: Vec<&str> = lines
        .rfind(|l| l.split(',').count() == header.len())?
        .split(',')
        .map(str::trim)
        .collect();
    let column = |name: &str| -> Option<f64> {
        let i = header.iter().position(|h| *h == name)?;
        values.get(i)?.parse().ok()
    };
    let count = column("data.consumed.in.nMsg")?;
    Some(Reading {
        count: count as u64,
        msgs_per_s: column("nMsg.sec")?,
        bytes_per_record: Some(column("data.consumed.in.MB")? * 1024.0 * 1024.0 / count),
        ..Reading::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::workload::WORKLOADS;
    use super::*;

    #[test]
    fn reads_the_producer_summary_line() {
        let out = "1 records sent, 5.0 records/sec\n\
                   200000 records sent, 126023.944549 records/sec (12.02 MB/sec), 15.48 ms avg \
                   latency, 597.00 ms max latency, 13 ms 50th, 37 ms 95th, 42 ms 99th, 72 ms 99.9th.\n";
        let r = read(Kind::Produce, out).unwrap();
        assert_eq!((r.count, r.msgs_per_s), (200_000, 126023.944549));
        assert_eq!((r.p50_ms, r.p99_ms, r.max_ms), (13.0, 42.0, 597.0));
        assert_eq!(read(Kind::Latency, "nothing"), None);

        let out = "Warmup first 1000 records. Steady state results will print after the complete \
                   test summary.\n\
                   4000 records sent, 1980.19 records/sec (0.19 MB/sec), 24.41 ms avg latency, \
                   736.00 ms max latency, 8 ms 50th, 88 ms 95th, 100 ms 99th, 111 ms 99.9th.\n\
                   3000 steady state records sent, 2300.61 records/sec (0.22 MB/sec), 10.25 ms \
                   avg latency, 46.00 ms max latency, 2 ms 50th, 45 ms 95th, 46 ms 99th, 46 ms \
                   99.9th.\n";
        let r = read(Kind::Latency, out).unwrap();
        assert_eq!((r.count, r.msgs_per_s), (4000, 1980.19));
        assert_eq!((r.p50_ms, r.p99_ms, r.max_ms), (2.0, 46.0, 46.0));
    }

    #[test]
    fn command_lines() {
        let line = |id: &str| {
            let w = WORKLOADS.iter().find(|w| w.id == id).unwrap();
            let s = ProduceSettings {
                linger_ms: 5,
                batch_size: 1000,
            };
            let cmd = command(Path::new("/l"), "h:1", w, s, "t", 100_000, "g");
            let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into()).collect();
            args.join(" ")
        };
        assert_eq!(
            line("latency"),
            "-Xmx512M -cp /l/* org.apache.kafka.tools.ProducerPerformance --topic t \
             --num-records 1000 --record-size 100 --throughput 2000 --warmup-records 100 \
             --command-property bootstrap.servers=h:1 acks=1 enable.idempotence=false \
             linger.ms=0 batch.size=1000 compression.type=none"
        );
        assert!(line("acks1").contains(" --throughput -1 --command-property "));
        let txn = line("txn");
        assert!(
            txn.contains(
                "/perf-java:/l/* TransactionalProducerPerformance produce --bootstrap h:1 \
             --topic t --messages 100000 --size 100 --acks all --idempotence true"
            ),
            "{txn}"
        );
        assert!(txn.ends_with(" --transaction-size 1000"), "{txn}");
        assert_eq!(
            line("consume"),
            "-Xmx512M -cp /l/* org.apache.kafka.tools.ConsumerPerformance --bootstrap-server \
             h:1 --topic t --num-records 100000 --group g --fetch-size 1048576 \
             --command-property fetch.min.bytes=1 --command-property fetch.max.wait.ms=500"
        );
        assert_eq!(
            line("share-consume"),
            "-Xmx512M -cp /l/* org.apache.kafka.tools.ShareConsumerPerformance \
             --bootstrap-server h:1 --topic t --num-records 100000 --group g --threads 3 \
             --command-property fetch.min.bytes=1 --command-property fetch.max.wait.ms=500"
        );
    }

    /// ShareConsumerPerformance 4.4.0's output, as it printed it here: one run that read its
    /// 10,000 records, one that ran out of time.
    #[test]
    fn reads_the_share_consumer_summary() {
        let out = "start.time, end.time, data.consumed.in.MB, MB.sec, nMsg.sec, \
                   data.consumed.in.nMsg, fetch.time.ms\n\
                   2026-12-04 10:19:21:171, 2026-12-04 10:19:22:733, 0.9537, 0.6105, 6402.0487, \
                   10000, 1562\n";
        let r = read(Kind::ShareConsume, out).unwrap();
        assert_eq!((r.count, r.msgs_per_s), (10_000, 6402.0487));
        assert!((r.bytes_per_record.unwrap() - 100.0).abs() < 0.01);
        let timed_out = "start.time, end.time, data.consumed.in.MB, MB.sec, nMsg.sec, \
                         data.consumed.in.nMsg, fetch.time.ms\n\
                         WARNING: Exiting before consuming the expected number of records: \
                         timeout (10000 ms) exceeded. You can use the --timeout option to \
                         increase the timeout.\n\
                         2026-12-04 10:18:02:913, 2026-12-04 10:18:13:202, 0.0000, 0.0000, \
                         0.0000, 0, 10289\n";
        let r = read(Kind::ShareConsume, timed_out).unwrap();
        assert_eq!(r.count, 0);
    }

    #[test]
    fn reads_the_consumer_csv() {
        let out = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, \
                   nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n\
                   2026-01-01 10:00:00:000, 2026-01-01 10:00:03:000, 9.5367, 3.1789, 100000, \
                   33333.3333, 1000, 2000, 4.7684, 50000.0000\n";
        let r = read(Kind::Consume, out).unwrap();
        assert_eq!((r.count, r.msgs_per_s), (100_000, 50_000.0));
        assert!((r.bytes_per_record.unwrap() - 100.0).abs() < 0.01);
        assert_eq!(
            read(Kind::Consume, "WARNING: Exiting before consuming"),
            None
        );
    }
}
