//! `pkcat perf -P|-C`: produce `-n` records of `-s` bytes to `-t`, or consume `-n` records from
//! it (fewer with `-e`: up to the end of its partitions), with a progress line on stderr each
//! second (rewritten in place on a terminal) and a summary on stdout.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use purekafka::ProducerRecord;

use crate::args::Command;
use crate::Failure;

pub async fn produce(c: Command) -> Result<(), Failure> {
    let topic = c.topic.clone().expect("checked by args");
    let (producer, mut reports) = crate::produce::with_reports(c.config.clone()).await?;
    let progress = Progress::start(c.quiet, "acknowledged", c.perf_size);
    let counter = progress.counter.clone();
    // Each report's latency, from its record's create time (ms) to now.
    let acks = tokio::spawn(async move {
        let (mut latencies, mut failed) = (Vec::new(), 0u64);
        while let Some(report) = reports.recv().await {
            match report.error {
                None => latencies.push(now_ms() - report.metadata.timestamp),
                Some(_) => failed += 1,
            }
            counter.fetch_add(1, Ordering::Relaxed);
        }
        (latencies, failed)
    });
    let value = Bytes::from(vec![b'x'; c.perf_size]);
    let started = Instant::now();
    for _ in 0..c.perf_records {
        let mut record = ProducerRecord::new(&topic).value(value.clone());
        if let Some(p) = c.partition {
            record = record.partition(p);
        }
        drop(producer.produce(record).await?);
    }
    producer.close().await;
    let elapsed = started.elapsed();
    let (mut latencies, failed) = acks.await.map_err(|e| Failure::Run(e.to_string()))?;
    progress.stop();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
    };
    writeln!(
        std::io::stdout(),
        "{} records of {} B produced to {topic} in {:.2} s: {}; ack latency p50 {} ms, p99 {} ms, max {} ms{}",
        latencies.len(),
        c.perf_size,
        elapsed.as_secs_f64(),
        rates(latencies.len() as u64, c.perf_size, elapsed),
        at(0.5).copied().unwrap_or(0),
        at(0.99).copied().unwrap_or(0),
        latencies.last().copied().unwrap_or(0),
        if failed > 0 { format!("; {failed} failed") } else { String::new() },
    )?;
    if failed > 0 {
        return Err(Failure::Run(format!("{failed} records were not delivered")));
    }
    Ok(())
}

pub async fn consume(c: Command) -> Result<(), Failure> {
    let topic = c.topic.clone().expect("checked by args");
    let mut consumer = crate::consume::build(&c).await?;
    let progress = Progress::start(c.quiet, "consumed", c.perf_size);
    let started = Instant::now();
    crate::consume::start(&mut consumer, &c).await?;
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < c.perf_records {
        for msg in consumer.poll(Duration::from_millis(100)).await? {
            records += 1;
            bytes += msg.value.as_ref().map_or(0, |v| v.len() as u64);
        }
        progress.counter.store(records, Ordering::Relaxed);
        if c.exit_at_end && crate::consume::at_end(&consumer) {
            break;
        }
    }
    let elapsed = started.elapsed();
    progress.stop();
    let size = bytes.checked_div(records).unwrap_or(0) as usize;
    writeln!(
        std::io::stdout(),
        "{records} records ({:.1} MB) consumed from {topic} in {:.2} s: {}",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        rates(records, size, elapsed)
    )?;
    Ok(())
}

fn rates(records: u64, size: usize, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    format!(
        "{:.0} msgs/s, {:.1} MB/s",
        records as f64 / secs,
        records as f64 * size as f64 / secs / 1e6
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The progress line: records so far and the rate of the last second, on stderr.
struct Progress {
    counter: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
    terminal: bool,
}

impl Progress {
    fn start(quiet: bool, what: &'static str, size: usize) -> Progress {
        let counter = Arc::new(AtomicU64::new(0));
        let terminal = std::io::stderr().is_terminal();
        let task = (!quiet).then(|| {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                let mut last = 0;
                loop {
                    tick.tick().await;
                    let now = counter.load(Ordering::Relaxed);
                    let line = format!(
                        "{now} records {what}, {}",
                        rates(now - last, size, Duration::from_secs(1))
                    );
                    match terminal {
                        true => eprint!("\r{line}   "),
                        false => eprintln!("{line}"),
                    }
                    last = now;
                }
            })
        });
        Progress {
            counter,
            task,
            terminal,
        }
    }

    fn stop(self) {
        if let Some(task) = self.task {
            task.abort();
            if self.terminal {
                eprintln!();
            }
        }
    }
}
