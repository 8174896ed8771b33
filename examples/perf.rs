//! Load generator behind `cargo xtask perf produce|consume`: produces to (or consumes from) the
//! local Kafka and prints one JSON line with throughput, this process's CPU time and, for
//! produce, ack latency.
//!
//! ```text
//! cargo run --release --example perf -- produce [--bootstrap 127.0.0.1:9092] [--messages N]
//!     [--size B] [--acks 0|1|all] [--compression none|gzip|snappy|lz4|zstd] [--partitions P]
//!     [--linger-ms MS] [--batch-size BYTES] [--idempotence true|false] [--keyed true|false]
//!     [--deliveries futures|reports]
//! cargo run --release --example perf -- consume [same options] [--topic T]
//! cargo run --release --example perf -- fill --topic T [same options]
//! ```
//!
//! `--deliveries futures` (the default) awaits each record's delivery future in a second task;
//! `reports` drops the futures and counts the delivery report stream instead, as the peer harness
//! (`benches/peers`) does. `--keyed false --deliveries reports --batch-size 524288` is the peer
//! harness's produce workload.
//!
//! `consume` first fills a fresh topic (untimed), then times a group member reading it all;
//! `consume --topic T` reads `--messages` records of an existing topic instead (and leaves it),
//! so that a profiler sees the consumer alone.

use std::time::{Duration, Instant};

use bytes::Bytes;
use purekafka::{Admin, ClientConfig, Producer, ProducerRecord};

struct Options {
    bootstrap: String,
    messages: usize,
    size: usize,
    acks: String,
    compression: String,
    partitions: i32,
    linger_ms: u64,
    batch_size: Option<u64>,
    idempotence: Option<bool>,
    keyed: bool,
    reports: bool,
    topic: Option<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        bootstrap: "127.0.0.1:9092".into(),
        messages: 1_000_000,
        size: 100,
        acks: "1".into(),
        compression: "none".into(),
        partitions: 8,
        linger_ms: 5,
        batch_size: None,
        idempotence: None,
        keyed: true,
        reports: false,
        topic: None,
    };
    let mut it = args.iter();
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
            "--messages" => o.messages = number()? as usize,
            "--size" => o.size = number()? as usize,
            "--acks" => o.acks = value.clone(),
            "--compression" => o.compression = value.clone(),
            "--partitions" => o.partitions = number()? as i32,
            "--linger-ms" => o.linger_ms = number()?,
            "--batch-size" => o.batch_size = Some(number()?),
            "--idempotence" => o.idempotence = Some(boolean()?),
            "--keyed" => o.keyed = boolean()?,
            "--topic" => o.topic = Some(value.clone()),
            "--deliveries" => {
                o.reports = match value.as_str() {
                    "futures" => false,
                    "reports" => true,
                    _ => {
                        return Err(format!(
                            "--deliveries takes futures or reports, got {value:?}"
                        ))
                    }
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

/// User plus system CPU seconds of this process so far (Linux: /proc/self/stat, in clock ticks
/// of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn produce(o: Options) -> Result<(), Box<dyn std::error::Error>> {
    let base = ClientConfig::new().bootstrap_servers([o.bootstrap.as_str()]);
    let topic = format!("perf-{}", std::process::id());
    let admin = Admin::builder(base.clone()).build().await?;
    admin.create_topic(&topic, o.partitions, 1).await?;

    let mut config = base
        .set("acks", &o.acks)?
        .set("compression.type", &o.compression)?
        .set("linger.ms", o.linger_ms)?;
    if let Some(batch_size) = o.batch_size {
        config = config.set("batch.size", batch_size)?;
    }
    if let Some(idempotence) = o.idempotence {
        config = config.set("enable.idempotence", idempotence)?;
    }
    let builder = Producer::builder(config);
    let builder = if o.reports {
        builder.delivery_reports()
    } else {
        builder
    };
    let producer = builder.build().await?;
    let value = Bytes::from(vec![b'x'; o.size]);
    let record = |i: usize| {
        let record = ProducerRecord::new(topic.as_str()).value(value.clone());
        match o.keyed {
            true => record.key(Bytes::from((i as u64).to_be_bytes().to_vec())),
            false => record,
        }
    };

    let cpu_start = cpu_seconds();
    let started = Instant::now();
    let mut latencies = if o.reports {
        // The delivery futures are dropped: the report stream carries every outcome.
        let mut reports = producer.delivery_reports().ok_or("no report stream")?;
        let messages = o.messages;
        let counter = tokio::spawn(async move {
            for _ in 0..messages {
                match reports.recv().await {
                    Some(report) => {
                        if let Some(e) = report.error {
                            return Err(e);
                        }
                    }
                    None => return Err(purekafka::Error::Closed),
                }
            }
            Ok(Vec::new())
        });
        for i in 0..o.messages {
            drop(producer.produce(record(i)).await?);
        }
        counter.await??
    } else {
        // Deliveries are awaited in a second task, which notes each record's ack latency.
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<(Instant, purekafka::DeliveryFuture)>(100_000);
        let waiter = tokio::spawn(async move {
            let mut latencies = Vec::new();
            while let Some((queued, delivery)) = rx.recv().await {
                delivery.await?;
                latencies.push(queued.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, purekafka::Error>(latencies)
        });
        for i in 0..o.messages {
            let delivery = producer.produce(record(i)).await?;
            tx.send((Instant::now(), delivery)).await?;
        }
        drop(tx);
        producer.flush(Duration::from_secs(120)).await?;
        waiter.await??
    };
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    producer.close().await;
    admin.delete_topic(&topic).await?;

    latencies.sort_by(f64::total_cmp);
    let bytes = (o.messages * (o.size + if o.keyed { 8 } else { 0 })) as f64;
    println!(
        "{{\"workload\":\"produce\",\"messages\":{},\"size\":{},\"acks\":\"{}\",\"compression\":\"{}\",\"partitions\":{},\"linger_ms\":{},\"msgs_per_s\":{:.0},\"mb_per_s\":{:.2},\"client_cpu_s\":{:.2},\"p50_ack_ms\":{:.2},\"p99_ack_ms\":{:.2}}}",
        o.messages,
        o.size,
        o.acks,
        o.compression,
        o.partitions,
        o.linger_ms,
        o.messages as f64 / elapsed,
        bytes / elapsed / 1e6,
        cpu,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
    Ok(())
}

/// Fills a fresh topic with `o.messages` records, then times one group member reading them all.
async fn consume(o: Options) -> Result<(), Box<dyn std::error::Error>> {
    let base = ClientConfig::new().bootstrap_servers([o.bootstrap.as_str()]);
    let admin = Admin::builder(base.clone()).build().await?;
    let topic = match &o.topic {
        Some(topic) => topic.clone(),
        None => {
            let topic = format!("perf-consume-{}", std::process::id());
            admin.create_topic(&topic, o.partitions, 1).await?;
            fill(&o, &base, &topic).await?;
            topic
        }
    };

    let config = base
        .group_id(format!("perf-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")?;
    let mut consumer = purekafka::Consumer::builder(config).build().await?;
    consumer.subscribe(&[topic.as_str()])?;
    let cpu_start = cpu_seconds();
    let started = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..o.messages {
        let msg = consumer.recv().await?;
        bytes += msg.value.as_ref().map_or(0, Bytes::len) + msg.key.as_ref().map_or(0, Bytes::len);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    consumer.close().await?;
    if o.topic.is_none() {
        admin.delete_topic(&topic).await?;
    }
    println!(
        "{{\"workload\":\"consume\",\"messages\":{},\"size\":{},\"compression\":\"{}\",\"partitions\":{},\"msgs_per_s\":{:.0},\"mb_per_s\":{:.2},\"client_cpu_s\":{:.2}}}",
        o.messages,
        o.size,
        o.compression,
        o.partitions,
        o.messages as f64 / elapsed,
        bytes as f64 / elapsed / 1e6,
        cpu,
    );
    Ok(())
}

/// Writes `o.messages` keyed records of `o.size` bytes to `topic`.
async fn fill(
    o: &Options,
    base: &ClientConfig,
    topic: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let producer = Producer::builder(base.clone().set("compression.type", &o.compression)?)
        .build()
        .await?;
    let value = Bytes::from(vec![b'x'; o.size]);
    for i in 0..o.messages {
        let key = Bytes::from((i as u64).to_be_bytes().to_vec());
        producer
            .produce(ProducerRecord::new(topic).key(key).value(value.clone()))
            .await?;
    }
    producer.flush(Duration::from_secs(120)).await?;
    producer.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, rest)) if cmd == "produce" => produce(parse(rest)?).await,
        Some((cmd, rest)) if cmd == "consume" => consume(parse(rest)?).await,
        Some((cmd, rest)) if cmd == "fill" => {
            // A topic for `consume --topic`, created and filled, and left.
            let o = parse(rest)?;
            let topic = o.topic.clone().ok_or("fill needs --topic")?;
            let base = ClientConfig::new().bootstrap_servers([o.bootstrap.as_str()]);
            let admin = Admin::builder(base.clone()).build().await?;
            admin.create_topic(&topic, o.partitions, 1).await?;
            fill(&o, &base, &topic).await
        }
        _ => Err("usage: perf produce|consume|fill [--topic T] [--messages N] [--size B] [--acks A] [--compression C] [--partitions P] [--linger-ms MS]".into()),
    }
}
