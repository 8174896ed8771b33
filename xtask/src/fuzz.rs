//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs each cargo-fuzz target in `fuzz/` for N
//! seconds (default 60), one after another, and prints executions, coverage and findings.
//!
//! ```text
//!  seeds (fixtures/golden, purekafka's own encoders) ──► fuzz/corpus/<target>/seed-*
//!  cargo +nightly fuzz run <target> fuzz/corpus/<target> -- -max_total_time=N …
//!       │ stderr ──► fuzz/logs/<target>.log
//!       └──► execs, cov, findings (fuzz/artifacts/<target>/) ──► the summary table
//! ```
//!
//! It needs the nightly toolchain and cargo-fuzz, and takes minutes, so it is not part of
//! `cargo xtask test`; the hostile-input property tests (src/protocol/hostile_tests.rs) are.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use purekafka::protocol::api::api_name;
use purekafka::protocol::consumer_protocol::{encode_assignment, Subscription};
use purekafka::protocol::versions::OURS;

use crate::run::{check, root};

/// The targets, in the order they run.
const TARGETS: [&str; 5] = [
    "responses",
    "record_batches",
    "decompression",
    "consumer_protocol",
    "frames",
];

/// libFuzzer options for every run. A single allocation beyond 64 MiB is a finding: no decoder
/// should come near it with inputs of a few KiB (LZ4's 4 MiB blocks are the largest legitimate
/// one). An input that takes 10 s is a finding too.
const LIBFUZZER_OPTIONS: [&str; 4] = [
    "-malloc_limit_mb=64",
    "-rss_limit_mb=2048",
    "-timeout=10",
    "-print_final_stats=1",
];

/// What to fuzz, and for how long.
pub struct Options {
    seconds: u64,
    targets: Vec<&'static str>,
}

pub fn fuzz(Options { seconds, targets }: Options) -> Result<(), String> {
    let fuzz_dir = root().join("fuzz");
    let mut version = nightly(&["fuzz", "--version"]);
    version.stdout(Stdio::null()).stderr(Stdio::null());
    if !version.status().is_ok_and(|s| s.success()) {
        return Err(
            "cargo xtask fuzz needs the nightly toolchain and cargo-fuzz: \
                    `rustup toolchain install nightly` and `cargo install cargo-fuzz`"
                .into(),
        );
    }
    for target in &targets {
        write_seeds(target, &fuzz_dir.join("corpus").join(target))?;
    }
    check(nightly(&["fuzz", "build"]))?;

    let logs = fuzz_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let mut runs = Vec::new();
    for target in &targets {
        runs.push(run(target, seconds, &fuzz_dir)?);
    }

    println!(
        "\n{:<18} {:>7} {:>11} {:>8} {:>6} {:>6} {:>7}  findings",
        "target", "seconds", "execs", "execs/s", "cov", "ft", "corpus"
    );
    for r in &runs {
        println!(
            "{:<18} {:>7.0} {:>11} {:>8.0} {:>6} {:>6} {:>7}  {}",
            r.target,
            r.seconds,
            r.execs,
            r.execs as f64 / r.seconds.max(1e-3),
            r.cov,
            r.features,
            r.corpus,
            if r.findings.is_empty() {
                "none".to_owned()
            } else {
                r.findings.join("; ")
            }
        );
    }
    println!("(logs in fuzz/logs/, findings in fuzz/artifacts/)");
    let found: usize = runs.iter().map(|r| r.findings.len()).sum();
    if found > 0 {
        return Err(format!(
            "{found} finding(s); reproduce one with `cargo +nightly fuzz run TARGET ARTIFACT`"
        ));
    }
    Ok(())
}

pub fn parse(args: &[&str]) -> Result<Options, String> {
    let mut seconds = 60;
    let mut targets = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "--seconds" => {
                i += 1;
                let value = args.get(i).ok_or("--seconds needs a value")?;
                seconds =
                    value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("--seconds takes a positive number, got {value:?}")
                    })?;
            }
            name => {
                let target = TARGETS
                    .iter()
                    .find(|t| **t == name)
                    .ok_or_else(|| format!("unknown fuzz target {name:?}; targets: {TARGETS:?}"))?;
                targets.push(*target);
            }
        }
        i += 1;
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    Ok(Options { seconds, targets })
}

/// `cargo +nightly ARGS` in the workspace root, where cargo-fuzz finds `fuzz/`. Through rustup,
/// without the variables the stable cargo running xtask set.
fn nightly(args: &[&str]) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo"])
        .args(args)
        .current_dir(root())
        .env_remove("CARGO")
        .env_remove("RUSTUP_TOOLCHAIN")
        // Under RUST_BACKTRACE, anyhow would capture a backtrace for each of kafka-protocol's
        // decode errors, most inputs' fate: a fraction of the speed. Panics keep theirs.
        .env("RUST_LIB_BACKTRACE", "0");
    cmd
}

/// What one target's run gave.
struct Run {
    target: &'static str,
    seconds: f64,
    execs: u64,
    cov: u64,
    features: u64,
    corpus: u64,
    findings: Vec<String>,
}

fn run(target: &'static str, seconds: u64, fuzz_dir: &Path) -> Result<Run, String> {
    let corpus = format!("fuzz/corpus/{target}");
    let max_time = format!("-max_total_time={seconds}");
    let mut args = vec!["fuzz", "run", target, &corpus, "--", &max_time];
    args.extend(LIBFUZZER_OPTIONS);
    let mut cmd = nightly(&args);
    eprintln!("+ cargo +nightly {}", args.join(" "));
    let started = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let elapsed = started.elapsed().as_secs_f64();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log_path = fuzz_dir.join("logs").join(format!("{target}.log"));
    std::fs::write(&log_path, &log).map_err(|e| format!("{}: {e}", log_path.display()))?;

    let stat = |name: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .and_then(|v| v.trim().parse().ok())
    };
    // The last status line: `#N  DONE   cov: C ft: F corp: K/S …`.
    let last_status = log
        .lines()
        .rev()
        .find(|l| l.contains(" cov: "))
        .unwrap_or("");
    let field = |name: &str| {
        last_status
            .split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .and_then(|v| v.split('/').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut findings: Vec<String> = log
        .lines()
        .filter_map(|l| l.split("Test unit written to ").nth(1))
        .map(|path| describe_finding(target, path.trim(), &log))
        .collect();
    if !out.status.success() && findings.is_empty() {
        findings.push(format!(
            "the run failed ({}), see {}",
            out.status,
            log_path.display()
        ));
    }
    Ok(Run {
        target,
        seconds: elapsed,
        execs: stat("number_of_executed_units").unwrap_or(0),
        cov: field("cov:"),
        features: field("ft:"),
        corpus: field("corp:"),
        findings,
    })
}

/// A finding's kind (the panic message or libFuzzer's verdict), its API for the responses
/// target, and its file.
fn describe_finding(target: &str, path: &str, log: &str) -> String {
    let kind = log
        .lines()
        .find_map(|l| {
            l.split_once("panicked at ")
                .map(|(_, at)| format!("panic at {at}"))
                .or_else(|| {
                    l.split_once("ERROR: libFuzzer: ")
                        .map(|(_, what)| what.to_owned())
                })
                .or_else(|| {
                    l.split_once("ERROR: AddressSanitizer: ")
                        .map(|(_, what)| format!("AddressSanitizer: {what}"))
                })
        })
        .unwrap_or_else(|| "crash".to_owned());
    let file = root().join(path);
    let api = match (target, std::fs::read(&file)) {
        ("responses", Ok(bytes)) if bytes.len() >= 4 => {
            let key = i16::from_be_bytes([bytes[0], bytes[1]]);
            let version = i16::from_be_bytes([bytes[2], bytes[3]]);
            format!("{} v{version}: ", api_name(key))
        }
        _ => String::new(),
    };
    format!("{api}{kind} ({path})")
}

/// Writes the seeds of `target` into its corpus directory (`seed-*` files, rewritten each run).
fn write_seeds(target: &str, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let golden = |name: &str| {
        let path = root().join("fixtures/golden").join(name);
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let batches = ["none", "gzip", "snappy", "lz4", "zstd"];
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    match target {
        "responses" => {
            // The broker's ApiVersions answers (their files start with the correlation id).
            for (file, version) in [
                ("api-versions-v0-response.bin", 0i16),
                ("api-versions-v3-response.bin", 3),
                ("api-versions-v127-response.bin", 3),
            ] {
                let mut seed = [18i16.to_be_bytes(), version.to_be_bytes()].concat();
                seed.extend_from_slice(&golden(file)?[4..]);
                seeds.push((file.to_owned(), seed));
            }
            // Every API and version, with a body of zeros: empty arrays, null strings.
            for &(key, min, max) in OURS {
                for version in min..=max {
                    let mut seed = [key.to_be_bytes(), version.to_be_bytes()].concat();
                    seed.extend_from_slice(&[0; 16]);
                    seeds.push((format!("{}-v{version}", api_name(key)), seed));
                }
            }
        }
        "record_batches" => {
            let mut files: Vec<String> = batches
                .iter()
                .map(|c| format!("java-batch-{c}.bin"))
                .collect();
            files.push("java-txn-segment.bin".into());
            for file in files {
                let records = golden(&file)?;
                // CRC off and on with a 1 MiB budget, then with the aborted-producer bit too.
                for flags in [0x0c_u8, 0x0d, 0x1d] {
                    let seed = [&[flags][..], &records].concat();
                    seeds.push((format!("{file}-{flags:02x}"), seed));
                }
            }
        }
        "decompression" => {
            // The compressed records of the Java client's batches, after the 61-byte header.
            for (codec, name) in batches.iter().enumerate().skip(1) {
                let batch = golden(&format!("java-batch-{name}.bin"))?;
                let choice = (codec as u8 - 1) | (2 << 2);
                seeds.push((name.to_string(), [&[choice][..], &batch[61..]].concat()));
            }
        }
        "consumer_protocol" => {
            let subscription = Subscription {
                topics: vec!["orders".into(), "payments".into()],
                owned: vec![("orders".into(), vec![0, 2])],
                generation: Some(3),
            };
            seeds.push(("subscription".into(), subscription.encode()?.to_vec()));
            let assigned = vec![
                ("orders".to_string(), vec![0, 1]),
                ("x".to_string(), vec![]),
            ];
            seeds.push(("assignment".into(), encode_assignment(&assigned)?.to_vec()));
        }
        "frames" => {
            // Two response frames, the broker's ApiVersions answers, cut in the middle.
            let mut stream = vec![2, 128];
            for file in [
                "api-versions-v3-response.bin",
                "api-versions-v127-response.bin",
            ] {
                let frame = golden(file)?;
                stream.extend_from_slice(&(frame.len() as i32).to_be_bytes());
                stream.extend_from_slice(&frame);
            }
            seeds.push(("api-versions".into(), stream));
        }
        other => return Err(format!("no seeds for {other}")),
    }
    for (name, bytes) in seeds {
        let path = dir.join(format!("seed-{name}"));
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
