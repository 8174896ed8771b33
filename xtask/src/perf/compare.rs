//! `cargo xtask perf compare`: purekafka against its peers on the same broker, each client in a
//! process of its own.
//!
//! ```text
//! benches/peers (release build) ── peer-purekafka create-topic ──▶ one fresh 8-partition topic
//!                                                                   per workload
//! for each workload, R rounds of: purekafka, rdkafka, rskafka, krafka, java (A B C D E A B …)
//!     each run: one process ── wait4 ──▶ user+sys CPU, peak RSS
//!               its stdout ──────────▶ msgs/s, MB/s timed inside it (first send to last ack)
//! ──▶ a Markdown table of medians, and every run in target/perf-compare.jsonl
//! ```
//!
//! The Rust peers are the binaries of `benches/peers`; the Java client is
//! `org.apache.kafka.tools.ProducerPerformance` from the broker's own jars, run with `-Xmx512M`
//! as Kafka's `kafka-producer-perf-test.sh` runs it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::measure::{self, Finished};
use crate::kafka::{self, UpOptions, DEFAULT_VERSION};
use crate::run::{cargo, check, root};

/// The clients, in the order each round runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Purekafka,
    Rdkafka,
    Rskafka,
    Krafka,
    Java,
}

const CLIENTS: [Client; 5] = [
    Client::Purekafka,
    Client::Rdkafka,
    Client::Rskafka,
    Client::Krafka,
    Client::Java,
];

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Purekafka => "purekafka",
            Client::Rdkafka => "rdkafka",
            Client::Rskafka => "rskafka",
            Client::Krafka => "krafka",
            Client::Java => "java",
        }
    }
}

/// One line of the table: what is produced, and with which delivery guarantee.
#[derive(Debug)]
struct Workload {
    id: &'static str,
    /// Record value size in bytes (records have no key).
    size: usize,
    /// Records sent, as a fraction of `--messages` (the 1 KB workload sends a fifth).
    share: f64,
    acks: &'static str,
    idempotence: bool,
}

const WORKLOADS: [Workload; 4] = [
    Workload {
        id: "acks1",
        size: 100,
        share: 1.0,
        acks: "1",
        idempotence: false,
    },
    Workload {
        id: "idempotent",
        size: 100,
        share: 1.0,
        acks: "all",
        idempotence: true,
    },
    Workload {
        id: "acks-all",
        size: 100,
        share: 1.0,
        acks: "all",
        idempotence: false,
    },
    Workload {
        id: "1kb",
        size: 1024,
        share: 0.2,
        acks: "1",
        idempotence: false,
    },
];

impl Workload {
    fn messages(&self, base: u64) -> u64 {
        ((base as f64 * self.share) as u64).max(1)
    }

    fn describe(&self, base: u64) -> String {
        let idempotence = if self.idempotence { "on" } else { "off" };
        format!(
            "produce {} × {} B, acks={}, idempotence {idempotence}",
            thousands(self.messages(base)),
            self.size,
            self.acks
        )
    }
}

/// `cargo xtask perf compare` options.
struct Options {
    messages: u64,
    rounds: usize,
    clients: Vec<Client>,
    workloads: Vec<&'static Workload>,
    linger_ms: u64,
    batch_size: usize,
    bootstrap: Option<String>,
    java_libs: Option<PathBuf>,
}

fn parse(args: &[&str]) -> Result<Options, String> {
    let mut o = Options {
        messages: 1_000_000,
        rounds: 3,
        clients: CLIENTS.to_vec(),
        workloads: WORKLOADS.iter().collect(),
        linger_ms: 5,
        batch_size: 512 * 1024,
        bootstrap: None,
        java_libs: None,
    };
    let mut it = args.iter();
    while let Some(&flag) = it.next() {
        let value = *it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{flag} takes a positive number, got {value:?}"))
        };
        match flag {
            "--messages" => o.messages = number()?,
            "--rounds" => o.rounds = number()? as usize,
            "--linger-ms" => o.linger_ms = value.parse().map_err(|_| "bad --linger-ms")?,
            "--batch-size" => o.batch_size = number()? as usize,
            "--bootstrap" => o.bootstrap = Some(value.to_owned()),
            "--java-libs" => o.java_libs = Some(PathBuf::from(value)),
            "--clients" => {
                o.clients = value
                    .split(',')
                    .map(|name| {
                        CLIENTS
                            .into_iter()
                            .find(|c| c.name() == name)
                            .ok_or_else(|| format!("unknown client {name:?}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--workloads" => {
                o.workloads = value
                    .split(',')
                    .map(|id| {
                        WORKLOADS
                            .iter()
                            .find(|w| w.id == id)
                            .ok_or_else(|| format!("unknown workload {id:?}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(format!("unknown option {flag} for perf compare")),
        }
    }
    Ok(o)
}

/// One run's figures.
#[derive(Debug, Clone, Copy)]
struct Sample {
    msgs_per_s: f64,
    mb_per_s: f64,
    cpu_s_per_million: f64,
    max_rss_mib: f64,
}

/// What became of one run.
enum Outcome {
    Ran(Sample),
    /// The client cannot be given these settings; why.
    Unsupported(String),
}

/// Where the clients are and what they talk to.
struct Setup {
    bootstrap: String,
    peers: PathBuf,
    java_libs: PathBuf,
}

pub fn compare(args: &[&str]) -> Result<(), String> {
    let o = parse(args)?;
    let (bootstrap, broker) = broker(&o)?;
    check(cargo(&[
        "build",
        "--release",
        "--manifest-path",
        "benches/peers/Cargo.toml",
    ]))?;
    let java_libs = match &o.java_libs {
        Some(dir) => dir.clone(),
        None if o.clients.contains(&Client::Java) => kafka::libs(DEFAULT_VERSION)?,
        None => PathBuf::new(),
    };
    let setup = Setup {
        bootstrap,
        peers: peers_dir(),
        java_libs,
    };

    let mut header = String::new();
    let _ = writeln!(header, "machine: {}", machine());
    let _ = writeln!(header, "load average before: {}", load_average());
    let _ = writeln!(header, "broker: {broker} at {}", setup.bootstrap);
    let _ = writeln!(
        header,
        "every client: linger.ms={} batch.size={} compression.type=none, keyless records, \
         a fresh 8-partition topic per workload, {} round(s) run A B C … A B C …, medians shown",
        o.linger_ms, o.batch_size, o.rounds
    );
    eprint!("{header}");

    let log_path = root().join("target/perf-compare.jsonl");
    let mut log = String::new();
    let mut table = String::from(
        "| workload | client | msgs/s | MB/s | CPU s / 1M msgs | peak RSS MiB |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    let mut notes = Vec::new();
    for w in &o.workloads {
        let topic = format!("perf-compare-{}-{}", w.id, std::process::id());
        topic_chore(&setup, "create-topic", &topic)?;
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); o.clients.len()];
        let mut unsupported: Vec<Option<String>> = vec![None; o.clients.len()];
        for round in 1..=o.rounds {
            for (i, &client) in o.clients.iter().enumerate() {
                if unsupported[i].is_some() {
                    continue;
                }
                eprintln!(
                    "[{}] round {round}/{}: {} ...",
                    w.describe(o.messages),
                    o.rounds,
                    client.name()
                );
                match run_one(&setup, &o, w, &topic, client)? {
                    Outcome::Ran(s) => {
                        eprintln!(
                            "    {:.0} msgs/s, {:.2} MB/s, {:.2} CPU s/1M msgs, {:.0} MiB peak RSS",
                            s.msgs_per_s, s.mb_per_s, s.cpu_s_per_million, s.max_rss_mib
                        );
                        let _ = writeln!(
                            log,
                            "{{\"workload\":\"{}\",\"client\":\"{}\",\"round\":{round},\
                             \"messages\":{},\"size\":{},\"msgs_per_s\":{:.0},\"mb_per_s\":{:.3},\
                             \"cpu_s_per_million\":{:.3},\"max_rss_mib\":{:.1}}}",
                            w.id,
                            client.name(),
                            w.messages(o.messages),
                            w.size,
                            s.msgs_per_s,
                            s.mb_per_s,
                            s.cpu_s_per_million,
                            s.max_rss_mib
                        );
                        samples[i].push(s);
                    }
                    Outcome::Unsupported(why) => {
                        eprintln!("    not run: {why}");
                        unsupported[i] = Some(why);
                    }
                }
                // Let the broker finish with one client's writes before the next starts.
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        topic_chore(&setup, "delete-topic", &topic)?;
        for (i, client) in o.clients.iter().enumerate() {
            let name = client.name();
            let what = w.describe(o.messages);
            match (&unsupported[i], median_of(&samples[i])) {
                (Some(why), _) => notes.push(format!("{what}: {name} not run: {why}")),
                (None, Some(m)) => {
                    let _ = writeln!(
                        table,
                        "| {what} | {name} | {} | {:.1} | {:.2} | {:.0} |",
                        thousands(m.msgs_per_s.round() as u64),
                        m.mb_per_s,
                        m.cpu_s_per_million,
                        m.max_rss_mib
                    );
                }
                (None, None) => notes.push(format!("{what}: {name}: no run finished")),
            }
        }
    }
    std::fs::write(&log_path, log)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;

    let _ = writeln!(header, "load average after: {}", load_average());
    println!("{header}");
    print!("{table}");
    if !notes.is_empty() {
        println!();
    }
    for note in notes {
        println!("- {note}");
    }
    eprintln!("\nevery run: {}", log_path.display());
    Ok(())
}

/// The broker to measure against, and a description of it. Without `--bootstrap`, the local
/// Kafka this checkout manages (started when none is up); when another checkout's broker holds
/// the ports, that one is used as it is.
fn broker(o: &Options) -> Result<(String, String), String> {
    if let Some(b) = &o.bootstrap {
        return Ok((b.clone(), "the broker given with --bootstrap".into()));
    }
    match kafka::ensure_up(&UpOptions::default()) {
        Ok(cluster) => Ok((
            cluster.plaintext_bootstrap(),
            format!("Apache Kafka {} (KRaft, 1 broker)", cluster.version),
        )),
        Err(e) if kafka::answers("127.0.0.1:9092") => {
            eprintln!("note: {e}\nnote: measuring the broker that answers on 127.0.0.1:9092");
            Ok((
                "127.0.0.1:9092".into(),
                "a local Kafka another checkout started".into(),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Where `cargo build --manifest-path benches/peers/Cargo.toml --release` puts the binaries.
fn peers_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("benches/peers/target"));
    target.join("release")
}

/// `peer-purekafka create-topic|delete-topic --topic T`.
fn topic_chore(setup: &Setup, chore: &str, topic: &str) -> Result<(), String> {
    let mut cmd = Command::new(setup.peers.join("peer-purekafka"));
    cmd.args([chore, "--topic", topic, "--bootstrap", &setup.bootstrap]);
    if chore == "create-topic" {
        cmd.args(["--partitions", "8"]);
    }
    check(cmd)
}

/// Runs `client` once on workload `w` and measures it.
fn run_one(
    setup: &Setup,
    o: &Options,
    w: &Workload,
    topic: &str,
    client: Client,
) -> Result<Outcome, String> {
    let messages = w.messages(o.messages);
    let cmd = match client {
        Client::Java => java_command(setup, o, w, topic, messages),
        _ => {
            let mut cmd = Command::new(setup.peers.join(format!("peer-{}", client.name())));
            cmd.arg("produce").args([
                "--bootstrap",
                &setup.bootstrap,
                "--topic",
                topic,
                "--messages",
                &messages.to_string(),
                "--size",
                &w.size.to_string(),
                "--acks",
                w.acks,
                "--idempotence",
                &w.idempotence.to_string(),
                "--linger-ms",
                &o.linger_ms.to_string(),
                "--batch-size",
                &o.batch_size.to_string(),
                "--compression",
                "none",
            ]);
            cmd
        }
    };
    let limit = Duration::from_secs(60 + messages / 5_000);
    let f = measure::run(cmd, limit)?;
    let failure = |what: &str| {
        format!(
            "{} failed ({what}, exit {:?}):\n{}\n{}",
            client.name(),
            f.code,
            f.stdout.trim(),
            tail(&f.stderr, 20)
        )
    };
    if f.code == Some(3) && f.stdout.contains("\"unsupported\"") {
        let why = json_field(&f.stdout, "unsupported").unwrap_or_default();
        return Ok(Outcome::Unsupported(why));
    }
    if f.code != Some(0) {
        return Err(failure("non-zero exit"));
    }
    let msgs_per_s = match client {
        Client::Java => java_msgs_per_s(&f.stdout),
        _ => json_field(&f.stdout, "msgs_per_s").and_then(|v| v.parse().ok()),
    }
    .ok_or_else(|| failure("no result line"))?;
    Ok(Outcome::Ran(sample(&f, messages, w.size, msgs_per_s)))
}

fn sample(f: &Finished, messages: u64, size: usize, msgs_per_s: f64) -> Sample {
    Sample {
        msgs_per_s,
        // Value bytes only, in 10^6 bytes, the same for every client (Java prints MiB/s).
        mb_per_s: msgs_per_s * size as f64 / 1e6,
        cpu_s_per_million: f.cpu_s / messages as f64 * 1e6,
        max_rss_mib: f.max_rss_kib as f64 / 1024.0,
    }
}

/// `java -Xmx512M -cp 'libs/*' org.apache.kafka.tools.ProducerPerformance …`.
fn java_command(setup: &Setup, o: &Options, w: &Workload, topic: &str, messages: u64) -> Command {
    let mut cmd = Command::new(kafka::java());
    cmd.arg("-Xmx512M")
        .arg("-cp")
        .arg(classpath(&setup.java_libs))
        .arg("org.apache.kafka.tools.ProducerPerformance")
        .args(["--topic", topic])
        .args(["--num-records", &messages.to_string()])
        .args(["--record-size", &w.size.to_string()])
        .args(["--throughput", "-1"])
        .arg("--command-property")
        .arg(format!("bootstrap.servers={}", setup.bootstrap))
        .arg(format!("acks={}", w.acks))
        .arg(format!("enable.idempotence={}", w.idempotence))
        .arg(format!("linger.ms={}", o.linger_ms))
        .arg(format!("batch.size={}", o.batch_size))
        .arg("compression.type=none");
    cmd
}

fn classpath(libs: &Path) -> String {
    format!("{}/*", libs.display())
}

/// Records/sec from ProducerPerformance's summary line: `N records sent, R records/sec (…`.
fn java_msgs_per_s(stdout: &str) -> Option<f64> {
    let line = stdout.lines().rev().find(|l| l.contains("records sent,"))?;
    let (_, after) = line.split_once("records sent, ")?;
    after.split_whitespace().next()?.parse().ok()
}

/// The value of `"key":` in a one-line JSON object: a number, or a string without escapes.
fn json_field(text: &str, key: &str) -> Option<String> {
    let line = text.lines().rev().find(|l| l.starts_with('{'))?;
    let (_, rest) = line.split_once(&format!("\"{key}\":"))?;
    let value = match rest.strip_prefix('"') {
        Some(s) => s.split('"').next()?,
        None => rest.split([',', '}']).next()?,
    };
    Some(value.trim().to_owned())
}

/// The median of each column on its own.
fn median_of(samples: &[Sample]) -> Option<Sample> {
    if samples.is_empty() {
        return None;
    }
    let median = |f: fn(&Sample) -> f64| {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    Some(Sample {
        msgs_per_s: median(|s| s.msgs_per_s),
        mb_per_s: median(|s| s.mb_per_s),
        cpu_s_per_million: median(|s| s.cpu_s_per_million),
        max_rss_mib: median(|s| s.max_rss_mib),
    })
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
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

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The 1, 5 and 15 minute load averages: others' work on a shared machine shows here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Cores, CPU model and memory, from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cores} cores, {model}, {mem_gib:.1} GiB memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_java_summary_line() {
        let out = "1 records sent, 5.0 records/sec\n\
                   200000 records sent, 126023.944549 records/sec (12.02 MB/sec), 15.48 ms avg \
                   latency, 597.00 ms max latency, 13 ms 50th, 37 ms 95th, 42 ms 99th, 72 ms 99.9th.\n";
        assert_eq!(java_msgs_per_s(out), Some(126023.944549));
        assert_eq!(java_msgs_per_s("nothing"), None);
    }

    #[test]
    fn reads_json_fields() {
        let line = "noise\n{\"client\":\"x\",\"msgs_per_s\":512,\"unsupported\":\"no acks=1\"}\n";
        assert_eq!(json_field(line, "msgs_per_s").as_deref(), Some("512"));
        assert_eq!(
            json_field(line, "unsupported").as_deref(),
            Some("no acks=1")
        );
        assert_eq!(json_field(line, "mb_per_s"), None);
    }

    #[test]
    fn medians_and_numbers() {
        let s = |x: f64| Sample {
            msgs_per_s: x,
            mb_per_s: x,
            cpu_s_per_million: 10.0 - x,
            max_rss_mib: x,
        };
        let m = median_of(&[s(3.0), s(1.0), s(2.0)]).unwrap();
        assert_eq!((m.msgs_per_s, m.cpu_s_per_million), (2.0, 8.0));
        assert_eq!(median_of(&[s(1.0), s(2.0)]).unwrap().msgs_per_s, 1.5);
        assert!(median_of(&[]).is_none());
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn parses_options() {
        let o = parse(&[
            "--messages",
            "200000",
            "--rounds",
            "1",
            "--clients",
            "purekafka,java",
        ])
        .unwrap();
        assert_eq!((o.messages, o.rounds), (200_000, 1));
        assert_eq!(o.clients, [Client::Purekafka, Client::Java]);
        assert_eq!(o.workloads.len(), WORKLOADS.len());
        assert!(parse(&["--clients", "kafka-python"]).is_err());
        assert!(parse(&["--rounds", "0"]).is_err());
        assert_eq!(WORKLOADS[3].messages(1_000_000), 200_000);
    }
}
