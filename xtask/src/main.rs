//! Project tasks: `cargo xtask <command>` (alias in .cargo/config.toml).

mod demo;
mod fuzz;
mod kafka;
mod matrix;
mod perf;
mod publish;
mod run;
mod test;

use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo                  start the local Kafka if needed and run the CKafka guide's
                        producer and consumer examples with fixtures/ckafka.json
  test                  start the local Kafka if needed and run every gate: fmt,
                        clippy, docs, rust-version, cargo package, all tests,
                        static musl examples
  package               the publishing gates alone, no Kafka needed: the library
                        built with the toolchain of Cargo.toml's rust-version,
                        then cargo package --workspace
  test --faults         the fault scenarios (proto-tests/faults) on a fresh
                        three-broker cluster; figures in target/faults-report.jsonl
  test --matrix         the proto-tests against Kafka 2.4.1, 2.8, 3.2.3 (ZooKeeper),
                        3.9 and the newest 4.x in turn; writes COMPATIBILITY.md (API versions
                        negotiated, tests passed) and leaves the default cluster up
  fuzz [--seconds N] [TARGET...]
                        run each cargo-fuzz target in fuzz/ for N seconds (default
                        60), one at a time, and print execs, coverage and findings;
                        needs nightly and cargo-fuzz (fuzz/README.md)
  perf produce [--messages N] [--size B] [--acks 0|1|all] [--compression C]
               [--partitions P] [--linger-ms MS]
                        produce to the local Kafka with a release build and print
                        one JSON line: msgs_per_s, mb_per_s, client_cpu_s, p50/p99_ack_ms
  perf consume [same options]
                        fill a topic, then time a group member reading it all
  perf compare [--messages N] [--rounds R] [--workloads W,..] [--clients C,..]
               [--linger-ms MS] [--batch-size B] [--bootstrap ADDR] [--java-libs DIR]
                        purekafka against rdkafka, rskafka, krafka and the Java
                        client (benches/peers), each in its own process, A B A B
                        over R rounds (default 3); prints tables of medians:
                        msgs/s, MB/s, CPU s per 1M messages, peak RSS; ack latency
                        p50/p99/max. workloads (default all): acks1, idempotent,
                        acks-all, 1kb (N/5 × 1 KB), consume (N from 8 partitions),
                        latency, latency-all (N/100 at 2,000/s, linger 0, acks=1
                        or all), size (as perf size)
  perf size             the stripped size of the static musl producer example
                        (and of two peer binaries, for contrast)
  kafka up [--brokers 1|3] [--version X.Y.Z] [--timeout SECS]
                        start the local Kafka cluster (no-op when already up);
                        versions 4.x (default 4.4.0), 3.9.x (KRaft), 3.0-3.8
                        and 2.4-2.8 (ZooKeeper);
                        waits up to SECS (default 90) for the brokers
  kafka down            stop it (jars stay cached under target/kafka/dist)
  kafka status          print each listener: plaintext=HOST:PORT,..., sasl_plaintext=...
                        (exit 1 when no broker is up)
  kafka kill BROKER_ID  SIGKILL one broker (fault injection)
  kafka stop BROKER_ID  stop one broker cleanly (SIGTERM, controlled shutdown)
  kafka start BROKER_ID restart a stopped broker, keeping its data";

/// A failure to report: bad arguments (exit 2) or a task error (exit 1).
enum Failure {
    Usage(String),
    Task(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["kafka", rest @ ..] => kafka_cmd(rest),
        ["demo"] => demo::demo().map_err(Failure::Task),
        ["test"] => test::test().map_err(Failure::Task),
        ["test", "--faults"] => test::faults().map_err(Failure::Task),
        ["test", "--matrix"] => matrix::matrix().map_err(Failure::Task),
        ["package"] => publish::msrv()
            .and_then(|()| publish::package())
            .map_err(Failure::Task),
        ["perf", rest @ ..] => perf::perf(rest).map_err(Failure::Task),
        ["fuzz", rest @ ..] => fuzz::parse(rest)
            .map_err(Failure::Usage)
            .and_then(|opts| fuzz::fuzz(opts).map_err(Failure::Task)),
        ["help" | "-h" | "--help"] => {
            println!("{USAGE}");
            Ok(())
        }
        [] => Err(Failure::Usage("no command given".into())),
        [cmd, ..] => Err(Failure::Usage(format!("unknown command {cmd:?}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Task(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}

fn kafka_cmd(args: &[&str]) -> Result<(), Failure> {
    match args {
        ["up", opts @ ..] => {
            let opts = parse_up(opts)?;
            let cluster = kafka::ensure_up(&opts).map_err(Failure::Task)?;
            println!("{}", cluster.status_lines());
            Ok(())
        }
        ["down"] => {
            if !kafka::down().map_err(Failure::Task)? {
                eprintln!("no Kafka cluster was running");
            }
            Ok(())
        }
        ["status"] => match kafka::status() {
            Some(cluster) => {
                println!("{}", cluster.status_lines());
                Ok(())
            }
            None => Err(Failure::Task("no Kafka broker is up".into())),
        },
        ["kill", id] => kafka::kill_broker(parse_id(id)?).map_err(Failure::Task),
        ["stop", id] => kafka::stop_broker(parse_id(id)?).map_err(Failure::Task),
        ["start", id] => {
            let timeout = kafka::UpOptions::default().timeout;
            let cluster = kafka::start_broker(parse_id(id)?, timeout).map_err(Failure::Task)?;
            eprintln!("broker(s) up: {}", cluster.plaintext_bootstrap());
            Ok(())
        }
        _ => Err(Failure::Usage(format!("bad kafka arguments: {args:?}"))),
    }
}

fn parse_id(s: &str) -> Result<u8, Failure> {
    s.parse()
        .map_err(|_| Failure::Usage(format!("BROKER_ID must be a number, got {s:?}")))
}

fn parse_up(args: &[&str]) -> Result<kafka::UpOptions, Failure> {
    let mut opts = kafka::UpOptions::default();
    let mut i = 0;
    while i < args.len() {
        let (flag, inline) = match args[i].split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (args[i], None),
        };
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                *args
                    .get(i)
                    .ok_or_else(|| Failure::Usage(format!("{flag} needs a value")))?
            }
        };
        match flag {
            "--brokers" => {
                opts.brokers = value.parse().map_err(|_| {
                    Failure::Usage(format!("--brokers must be 1 or 3, got {value:?}"))
                })?;
                if opts.brokers != 1 && opts.brokers != 3 {
                    return Err(Failure::Usage(format!(
                        "--brokers must be 1 or 3, got {value:?}"
                    )));
                }
            }
            "--version" => opts.version = value.to_string(),
            "--timeout" => {
                let secs: u64 = value.parse().map_err(|_| {
                    Failure::Usage(format!("--timeout takes seconds, got {value:?}"))
                })?;
                opts.timeout = Duration::from_secs(secs);
            }
            _ => {
                return Err(Failure::Usage(format!(
                    "unknown option {flag:?} for kafka up"
                )))
            }
        }
        i += 1;
    }
    Ok(opts)
}
