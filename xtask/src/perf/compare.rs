//! `cargo xtask perf compare`: purekafka against its peers on the same broker, each client in a
//! process of its own.
//!
//! ```text
//! benches/peers (release build) ── peer-purekafka create-topic ──▶ one fresh 8-partition topic
//!                                                                   per workload
//!   consume only: peer-purekafka produce fills it (not measured); share-consume also: each
//!   run's share group set to start at the beginning (peer-purekafka share-group)
//! for each workload, R rounds of: purekafka, rdkafka, rskafka, krafka, java (A B C D E A B …)
//!     each run: one process ── wait4 ──▶ user+sys CPU, peak RSS
//!               its stdout ──────────▶ msgs/s timed inside it (produce: first send to last
//!                                      ack; consume: assignment to the Nth record), or each
//!                                      record's ack latency (p50, p99, max)
//! ──▶ Markdown tables of medians (throughput, latency), every run in target/perf-compare.jsonl
//! then (workload `size`) the size of the stripped static musl producer: perf/size.rs
//! ```
//!
//! The Rust peers are the binaries of `benches/peers`; the Java client is Kafka's own
//! `ProducerPerformance` and `ConsumerPerformance`, and a program of the peers' making for
//! transactions (perf/java.rs). What each workload sends and
//! with which settings is in perf/workload.rs.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::java;
use super::measure;
use super::report::{self, Reading, Sample, Tables};
use super::size;
use super::workload::{self, Kind, ProduceSettings, Workload, PARTITIONS, WORKLOADS};
use crate::kafka::{self, UpOptions, DEFAULT_VERSION};
use crate::run::{cargo, check, output_of, root, target_dir};

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

/// `cargo xtask perf compare` options.
struct Options {
    messages: u64,
    rounds: usize,
    clients: Vec<Client>,
    workloads: Vec<&'static Workload>,
    /// Also report the binary sizes (the pseudo-workload `size`).
    size: bool,
    produce: ProduceSettings,
    bootstrap: Option<String>,
    java_libs: Option<PathBuf>,
}

fn parse(args: &[&str]) -> Result<Options, String> {
    let mut o = Options {
        messages: 1_000_000,
        rounds: 3,
        clients: CLIENTS.to_vec(),
        workloads: WORKLOADS.iter().collect(),
        size: true,
        produce: ProduceSettings {
            linger_ms: 5,
            batch_size: 512 * 1024,
        },
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
            "--linger-ms" => o.produce.linger_ms = value.parse().map_err(|_| "bad --linger-ms")?,
            "--batch-size" => o.produce.batch_size = number()? as usize,
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
                let ids: Vec<&str> = value.split(',').collect();
                o.size = ids.contains(&"size");
                o.workloads = ids
                    .into_iter()
                    .filter(|&id| id != "size")
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
    build_peers()?;
    let java_libs = match &o.java_libs {
        Some(dir) => dir.clone(),
        None if o.clients.contains(&Client::Java) => kafka::libs(DEFAULT_VERSION)?,
        None => PathBuf::new(),
    };
    if o.clients.contains(&Client::Java) && o.workloads.iter().any(|w| w.transaction > 0) {
        java::compile(&java_libs)?;
    }
    let setup = Setup {
        bootstrap,
        peers: peers_dir(),
        java_libs,
    };

    let mut header = format!(
        "machine: {}\nload average before: {}\nbroker: {broker} at {}\n{}\
         every workload: a fresh {PARTITIONS}-partition topic, {} round(s) run A B C … A B C …, \
         medians shown\n",
        report::machine(),
        report::load_average(),
        setup.bootstrap,
        workload::settings(o.produce),
        o.rounds
    );
    eprint!("{header}");

    let log_path = root().join("target/perf-compare.jsonl");
    let mut log = String::new();
    let mut tables = Tables::default();
    for w in &o.workloads {
        let topic = format!("perf-compare-{}-{}", w.id, std::process::id());
        let messages = w.messages(o.messages);
        topic_chore(&setup, "create-topic", &topic)?;
        if matches!(w.kind, Kind::Consume | Kind::ShareConsume) {
            fill(&setup, w, &topic, messages)?;
        }
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); o.clients.len()];
        let mut unsupported: Vec<Option<String>> = vec![None; o.clients.len()];
        for round in 1..=o.rounds {
            for (i, &client) in o.clients.iter().enumerate() {
                if unsupported[i].is_some() {
                    continue;
                }
                let what = w.describe(o.messages);
                eprintln!("[{what}] round {round}/{}: {} ...", o.rounds, client.name());
                let group = format!("{topic}-{round}-{}", client.name());
                match run_one(&setup, &o, w, &topic, &group, client)? {
                    Outcome::Ran(s) => {
                        eprintln!("    {}", s.progress(w.kind));
                        log.push_str(&s.log_line(w, client.name(), round, messages));
                        log.push('\n');
                        samples[i].push(s);
                    }
                    Outcome::Unsupported(why) => {
                        eprintln!("    not run: {why}");
                        unsupported[i] = Some(why);
                    }
                }
                // Let the broker finish with one client's work before the next starts.
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        topic_chore(&setup, "delete-topic", &topic)?;
        for (i, client) in o.clients.iter().enumerate() {
            let why = unsupported[i].as_deref();
            tables.add(w, o.messages, client.name(), &samples[i], why);
        }
    }
    std::fs::write(&log_path, log)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    let sizes = match o.size {
        true => size::table(&setup.peers)?,
        false => String::new(),
    };

    header.push_str(&format!("load average after: {}\n", report::load_average()));
    println!("{header}");
    print!("{}", tables.render());
    if !sizes.is_empty() {
        println!("\n{sizes}");
    }
    eprintln!("\nevery run: {}", log_path.display());
    Ok(())
}

/// `cargo build --release --manifest-path benches/peers/Cargo.toml`.
pub fn build_peers() -> Result<(), String> {
    check(cargo(&[
        "build",
        "--release",
        "--manifest-path",
        "benches/peers/Cargo.toml",
    ]))
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

/// Where [`build_peers`] puts the binaries.
pub fn peers_dir() -> PathBuf {
    target_dir(&root().join("benches/peers")).join("release")
}

/// `peer-purekafka create-topic|delete-topic --topic T`.
fn topic_chore(setup: &Setup, chore: &str, topic: &str) -> Result<(), String> {
    let mut cmd = Command::new(setup.peers.join("peer-purekafka"));
    cmd.args([chore, "--topic", topic, "--bootstrap", &setup.bootstrap]);
    if chore == "create-topic" {
        cmd.args(["--partitions", &PARTITIONS.to_string()]);
    }
    check(cmd)
}

/// Fills `topic` with the `messages` records of workload `w`, with peer-purekafka at acks=1.
fn fill(setup: &Setup, w: &Workload, topic: &str, messages: u64) -> Result<(), String> {
    let mut cmd = Command::new(setup.peers.join("peer-purekafka"));
    cmd.args(["produce", "--bootstrap", &setup.bootstrap, "--topic", topic])
        .args(["--messages", &messages.to_string()])
        .args(["--size", &w.size.to_string(), "--acks", "1"]);
    eprint!("    filled: {}", output_of(cmd)?);
    Ok(())
}

/// Runs `client` once on workload `w` and measures it; `group` is a consumer group for it alone.
fn run_one(
    setup: &Setup,
    o: &Options,
    w: &Workload,
    topic: &str,
    group: &str,
    client: Client,
) -> Result<Outcome, String> {
    let messages = w.messages(o.messages);
    if w.kind == Kind::ShareConsume {
        if !matches!(client, Client::Purekafka | Client::Java) {
            return Ok(Outcome::Unsupported(format!(
                "{} has no share consumer",
                client.name()
            )));
        }
        // A new share group starts at the end of each partition unless told otherwise.
        let mut cmd = Command::new(setup.peers.join("peer-purekafka"));
        cmd.args([
            "share-group",
            "--group",
            group,
            "--bootstrap",
            &setup.bootstrap,
        ]);
        check(cmd)?;
    }
    let cmd = match client {
        Client::Java => java::command(
            &setup.java_libs,
            &setup.bootstrap,
            w,
            o.produce,
            topic,
            o.messages,
            group,
        ),
        _ => {
            let mut cmd = Command::new(setup.peers.join(format!("peer-{}", client.name())));
            cmd.args(w.peer_args(o.produce, &setup.bootstrap, topic, o.messages));
            if w.kind == Kind::ShareConsume {
                cmd.args(["--group", group]);
            }
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
    let reading = match client {
        Client::Java if w.transaction == 0 => java::read(w.kind, &f.stdout),
        _ => peer_reading(&f.stdout),
    }
    .ok_or_else(|| failure("no result line"))?;
    if reading.count != messages {
        return Err(failure(&format!("{} of {messages} records", reading.count)));
    }
    if let Some(b) = reading.bytes_per_record {
        if (b - w.size as f64).abs() > w.size as f64 * 0.01 {
            return Err(failure(&format!("{b:.1} B per record, not {}", w.size)));
        }
    }
    Ok(Outcome::Ran(Sample::new(&f, &reading, messages, w.size)))
}

/// A peer's result line. The peers check every consumed record themselves and exit 1 when one
/// is wrong or a send failed.
fn peer_reading(stdout: &str) -> Option<Reading> {
    let number = |key: &str| json_field(stdout, key)?.parse::<f64>().ok();
    let count = match number("consumed") {
        Some(n) => n,
        None => number("messages")? - number("failed")?,
    };
    Some(Reading {
        count: count as u64,
        msgs_per_s: number("msgs_per_s")?,
        bytes_per_record: None,
        p50_ms: number("p50_ms").unwrap_or(0.0),
        p99_ms: number("p99_ms").unwrap_or(0.0),
        max_ms: number("max_ms").unwrap_or(0.0),
        late_sends: number("late_sends").map(|n| n as u64),
    })
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

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn reads_peer_result_lines() {
        let produce = "{\"messages\":10,\"failed\":0,\"msgs_per_s\":5}";
        let r = peer_reading(produce).unwrap();
        assert_eq!((r.count, r.msgs_per_s, r.late_sends), (10, 5.0, None));
        let consume = "{\"messages\":10,\"consumed\":9,\"wrong\":0,\"msgs_per_s\":5}";
        assert_eq!(peer_reading(consume).unwrap().count, 9);
        let latency = "{\"messages\":10,\"failed\":1,\"late_sends\":2,\"msgs_per_s\":5,\
                       \"p50_ms\":0.2,\"p99_ms\":1.5,\"max_ms\":3}";
        let r = peer_reading(latency).unwrap();
        assert_eq!((r.count, r.p50_ms, r.p99_ms, r.max_ms), (9, 0.2, 1.5, 3.0));
        assert_eq!(r.late_sends, Some(2));
        assert_eq!(peer_reading("no line"), None);
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
        assert!(o.size);
        assert!(parse(&["--clients", "kafka-python"]).is_err());
        assert!(parse(&["--rounds", "0"]).is_err());

        let o = parse(&["--workloads", "consume,latency"]).unwrap();
        let ids: Vec<&str> = o.workloads.iter().map(|w| w.id).collect();
        assert_eq!((ids, o.size), (vec!["consume", "latency"], false));
        let o = parse(&["--workloads", "size"]).unwrap();
        assert!(o.workloads.is_empty() && o.size);
        assert!(parse(&["--workloads", "fetch"]).is_err());
    }
}
