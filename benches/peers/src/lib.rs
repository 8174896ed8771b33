//! What every peer binary shares: the command line, the clock, and the one JSON line it prints.
//!
//! ```text
//! peer-<client> produce --topic T [--bootstrap 127.0.0.1:9092] [--messages N] [--size B]
//!     [--acks 0|1|all] [--idempotence true|false] [--linger-ms MS] [--batch-size BYTES]
//!     [--compression none|gzip|snappy|lz4|zstd]
//! ```
//!
//! Each binary sends `--messages` keyless records of `--size` bytes of value to `--topic`, times
//! them from the first send to the last acknowledgement, and prints one line:
//!
//! ```text
//! {"client":"purekafka","workload":"produce","messages":1000000,...,"msgs_per_s":512345,"mb_per_s":51.23}
//! ```
//!
//! A setting the client cannot honour (rskafka has no `acks=1`, for one) is not silently
//! replaced by another: the binary prints `{"client":…,"unsupported":"why"}` and exits with
//! [`UNSUPPORTED`], and the harness reports the cell as not run.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Exit code of a binary asked for a setting its client does not have.
pub const UNSUPPORTED: i32 = 3;

/// The workloads a peer binary can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Send `messages` records and wait for every acknowledgement.
    Produce,
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
}

impl Options {
    /// Parses `WORKLOAD --flag value …` (the arguments after the program name).
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let (workload, rest) = args.split_first().ok_or("no workload given")?;
        let workload = match workload.as_str() {
            "produce" => Workload::Produce,
            other => return Err(format!("unknown workload {other:?}; expected produce")),
        };
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
        };
        let mut it = rest.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag} takes a number, got {value:?}"))
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
                "--idempotence" => {
                    o.idempotence = value
                        .parse()
                        .map_err(|_| format!("--idempotence takes true or false, got {value:?}"))?
                }
                "--linger-ms" => o.linger_ms = number()?,
                "--batch-size" => o.batch_size = number()? as usize,
                "--compression" => o.compression = value.clone(),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if o.topic.is_empty() {
            return Err("--topic is required".into());
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

    /// `linger.ms` as a duration.
    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
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

/// The clock of one run: started just before the first send, read after the last ack.
pub struct Timer(Instant);

impl Timer {
    pub fn start() -> Timer {
        Timer(Instant::now())
    }

    /// Prints the result line for `client` and the run's options, `failed` records not acked.
    pub fn report(self, client: &str, o: &Options, failed: u64) {
        let elapsed = self.0.elapsed().as_secs_f64();
        let delivered = o.messages - failed;
        let mut line = String::new();
        let _ = write!(
            line,
            "{{\"client\":\"{client}\",\"workload\":\"produce\",\"messages\":{},\"size\":{},\
             \"acks\":\"{}\",\"idempotence\":{},\"linger_ms\":{},\"batch_size\":{},\
             \"compression\":\"{}\",\"failed\":{failed},\"elapsed_s\":{elapsed:.3},\
             \"msgs_per_s\":{:.0},\"mb_per_s\":{:.2}}}",
            o.messages,
            o.size,
            o.acks,
            o.idempotence,
            o.linger_ms,
            o.batch_size,
            o.compression,
            delivered as f64 / elapsed,
            (delivered as usize * o.size) as f64 / elapsed / 1e6,
        );
        println!("{line}");
        if failed > 0 {
            eprintln!("{client}: {failed} of {} records failed", o.messages);
            std::process::exit(1);
        }
    }
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
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(Options::parse(&args("produce")).is_err(), "no topic");
        assert!(Options::parse(&args("consume --topic t")).is_err());
        assert!(Options::parse(&args("produce --topic t --acks 2")).is_err());
        assert!(Options::parse(&args("produce --topic t --size")).is_err());
    }
}
