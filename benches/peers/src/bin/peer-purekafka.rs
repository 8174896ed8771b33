//! purekafka under the harness's common flags (see the crate docs), plus the topic chores the
//! harness needs done before and after a workload:
//!
//! ```text
//! peer-purekafka create-topic --topic T --partitions P [--bootstrap ADDR]
//! peer-purekafka delete-topic --topic T [--bootstrap ADDR]
//! peer-purekafka share-group --group G [--bootstrap ADDR]
//! ```
//!
//! (`share-group` sets share group G's `share.auto.offset.reset` to `earliest`, so that it
//! reads a topic filled before it.)
//!
//! - produce: records are queued with `produce`, and a second task counts the delivery reports,
//!   as an application that wants every outcome without awaiting each record would. With
//!   `--each true`, there is no report stream: each record's `DeliveryFuture` is awaited in
//!   turn, oldest first, up to `IN_FLIGHT` waiting at once, as purekafka's documentation shows.
//! - produce with `--transaction-size`: a transactional producer; each transaction's records
//!   are queued with `produce` (their futures dropped: the commit succeeds only once every one
//!   of them is acknowledged), then committed with `commit_transaction`.
//! - latency: each record's `DeliveryFuture` is awaited on a task of its own.
//! - consume: a `Consumer` without a group, every partition `assign`ed at `Offset::Earliest`,
//!   read with `recv`.
//! - share-consume: `--members` `ShareConsumer`s of one share group on the same runtime, each
//!   polling (implicit acknowledgement: each poll accepts the last), until together they have
//!   the Nth record; then each commits and closes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use purekafka::{
    Admin, AlterConfig, ClientConfig, ConfigResource, Consumer, Offset, Producer, ProducerRecord,
    RecordMetadata, ShareConsumer,
};
use purekafka_peers::{run_latency, MemberOptions, Options, ShareTally, Tally, Timer, Workload};

const CLIENT: &str = "purekafka";

/// Delivery futures waiting at once with `--each` (the krafka and rskafka peers keep as many).
const IN_FLIGHT: usize = 100_000;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("create-topic") => topic_chore(&args[1..], true).await,
        Some("delete-topic") => topic_chore(&args[1..], false).await,
        Some("member") => member(MemberOptions::from_args(&args[1..])).await,
        Some("share-group") => share_group(&args[1..]).await,
        _ => {
            let o = Options::from_env();
            match o.workload {
                Workload::Produce => produce(o).await,
                Workload::Latency => latency(o).await,
                Workload::Consume => consume(o).await,
                Workload::ShareConsume => share_consume(o).await,
            }
        }
    }
}

/// Creates (with `--partitions`, replication 1) or deletes `--topic`.
async fn topic_chore(args: &[String], create: bool) -> Result<()> {
    let (mut bootstrap, mut topic, mut partitions) = ("127.0.0.1:9092".to_owned(), None, 8);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bootstrap" => bootstrap = value.clone(),
            "--topic" => topic = Some(value.clone()),
            "--partitions" => partitions = value.parse()?,
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    let topic = topic.ok_or("--topic is required")?;
    let admin = Admin::builder(ClientConfig::new().bootstrap_servers([bootstrap]))
        .build()
        .await?;
    if create {
        admin.create_topic(&topic, partitions, 1).await?;
    } else {
        admin.delete_topic(&topic).await?;
    }
    Ok(())
}

fn producer_config(o: &Options) -> Result<ClientConfig> {
    Ok(ClientConfig::new()
        .bootstrap_servers([o.bootstrap.as_str()])
        .set("acks", &o.acks)?
        .set("enable.idempotence", o.idempotence)?
        .set("linger.ms", o.linger_ms)?
        .set("batch.size", o.batch_size)?
        .set("compression.type", &o.compression)?)
}

async fn produce(o: Options) -> Result<()> {
    if o.transaction_size > 0 {
        return produce_transactions(o).await;
    }
    if o.each {
        return produce_each(o).await;
    }
    let producer = Producer::builder(producer_config(&o)?)
        .delivery_reports()
        .build()
        .await?;
    let mut reports = producer
        .delivery_reports()
        .ok_or("no delivery report stream")?;
    let value = Bytes::from(o.value());
    let messages = o.messages;
    let counter = tokio::spawn(async move {
        let (mut seen, mut failed) = (0u64, 0u64);
        while seen < messages {
            let Some(report) = reports.recv().await else {
                break;
            };
            seen += 1;
            if let Some(e) = report.error {
                if failed == 0 {
                    eprintln!("{CLIENT}: delivery failed: {e}");
                }
                failed += 1;
            }
        }
        failed + (messages - seen)
    });

    let timer = Timer::start();
    for _ in 0..o.messages {
        // The delivery future is not needed: the report stream carries every outcome.
        drop(
            producer
                .produce(ProducerRecord::new(o.topic.as_str()).value(value.clone()))
                .await?,
        );
    }
    let failed = counter.await?;
    timer.report(CLIENT, &o, failed);
    producer.flush(Duration::from_secs(30)).await?;
    producer.close().await;
    Ok(())
}

/// The produce workload with every record's own `DeliveryFuture` awaited, oldest first, at
/// most [`IN_FLIGHT`] waiting at once: the pattern purekafka's documentation shows (queue with
/// `produce`, await each delivery in turn).
async fn produce_each(o: Options) -> Result<()> {
    let producer = Producer::builder(producer_config(&o)?).build().await?;
    let value = Bytes::from(o.value());
    let mut pending = VecDeque::with_capacity(IN_FLIGHT);
    let mut failed = 0u64;
    let mut note = |outcome: std::result::Result<RecordMetadata, purekafka::Error>| {
        if let Err(e) = outcome {
            if failed == 0 {
                eprintln!("{CLIENT}: delivery failed: {e}");
            }
            failed += 1;
        }
    };

    let timer = Timer::start();
    for _ in 0..o.messages {
        let delivery = producer
            .produce(ProducerRecord::new(o.topic.as_str()).value(value.clone()))
            .await?;
        pending.push_back(delivery);
        if pending.len() >= IN_FLIGHT {
            note(pending.pop_front().expect("not empty").await);
        }
    }
    for delivery in pending {
        note(delivery.await);
    }
    timer.report(CLIENT, &o, failed);
    producer.close().await;
    Ok(())
}

/// The produce workload in transactions of `--transaction-size` records, committed in turn.
/// The records of a transaction that fails to commit count as failed.
async fn produce_transactions(o: Options) -> Result<()> {
    const PATIENCE: Duration = Duration::from_secs(60);
    let config = producer_config(&o)?.set("transactional.id", o.transactional_id(CLIENT))?;
    let producer = Producer::builder(config).build().await?;
    producer.init_transactions(PATIENCE).await?;
    let value = Bytes::from(o.value());
    let mut failed = 0u64;

    let timer = Timer::start();
    for records in o.transactions() {
        producer.begin_transaction()?;
        for _ in 0..records {
            // The commit answers for every record of the transaction.
            drop(
                producer
                    .produce(ProducerRecord::new(o.topic.as_str()).value(value.clone()))
                    .await?,
            );
        }
        if let Err(e) = producer.commit_transaction(PATIENCE).await {
            if failed == 0 {
                eprintln!("{CLIENT}: commit failed: {e}");
            }
            failed += records;
            producer.abort_transaction(PATIENCE).await?;
        }
    }
    timer.report(CLIENT, &o, failed);
    producer.close().await;
    Ok(())
}

async fn latency(o: Options) -> Result<()> {
    let producer = Producer::builder(producer_config(&o)?).build().await?;
    let (producer_ref, value) = (&producer, Bytes::from(o.value()));
    let (topic, value) = (o.topic.as_str(), &value);
    run_latency(CLIENT, &o, move || {
        producer_ref.produce(ProducerRecord::new(topic).value(value.clone()))
    })
    .await;
    producer.close().await;
    Ok(())
}

async fn consume(o: Options) -> Result<()> {
    let config = ClientConfig::new()
        .bootstrap_servers([o.bootstrap.as_str()])
        .set("fetch.min.bytes", o.fetch_min_bytes)?
        .set("fetch.wait.max.ms", o.fetch_max_wait_ms)?
        .set("max.partition.fetch.bytes", o.max_partition_fetch_bytes)?
        .set("check.crcs", o.check_crcs)?;
    let mut consumer = Consumer::builder(config).build().await?;
    o.check_partitions(consumer.partitions(&o.topic).await?.len())?;
    let mut tally = Tally::new(&o);

    let timer = Timer::start();
    let partitions = (0..o.partitions).map(|p| (o.topic.as_str(), p));
    consumer.assign(partitions, Offset::Earliest).await?;
    while tally.count < o.messages {
        let msg = consumer.recv().await?;
        tally.note(
            msg.partition,
            msg.offset,
            msg.value.as_ref().map(Bytes::len),
        );
    }
    tally.report(timer, CLIENT, &o);
    Ok(())
}

/// Sets `--group`'s `share.auto.offset.reset` to `earliest`.
async fn share_group(args: &[String]) -> Result<()> {
    let (mut bootstrap, mut group) = ("127.0.0.1:9092".to_owned(), None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bootstrap" => bootstrap = value.clone(),
            "--group" => group = Some(value.clone()),
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    let group = group.ok_or("--group is required")?;
    let admin = Admin::builder(ClientConfig::new().bootstrap_servers([bootstrap]))
        .build()
        .await?;
    let earliest = AlterConfig::Set("share.auto.offset.reset".into(), "earliest".into());
    for (_, result) in admin
        .incremental_alter_configs(&[(ConfigResource::Group(group), vec![earliest])])
        .await?
    {
        result?;
    }
    Ok(())
}

/// `--members` share group members on this runtime, together reading `--messages` records.
async fn share_consume(o: Options) -> Result<()> {
    let config = ClientConfig::new()
        .bootstrap_servers([o.bootstrap.as_str()])
        .group_id(&o.group)
        .set("fetch.min.bytes", o.fetch_min_bytes)?
        .set("fetch.wait.max.ms", o.fetch_max_wait_ms)?
        .set("check.crcs", o.check_crcs)?;
    let mut members = Vec::with_capacity(o.members);
    for _ in 0..o.members {
        members.push(ShareConsumer::builder(config.clone()).build().await?);
    }
    let tally = Arc::new(Mutex::new(ShareTally::new(&o)));
    let o = Arc::new(o);
    let timer = Arc::new(Timer::start());
    let mut tasks = Vec::new();
    for mut member in members {
        member.subscribe(&[&o.topic])?;
        let (tally, o, timer) = (tally.clone(), o.clone(), timer.clone());
        tasks.push(tokio::spawn(async move {
            // Until the members together have every record; the one that takes the last
            // prints the result at once.
            while tally.lock().unwrap().count < o.messages {
                let batch = member.poll(Duration::from_millis(100)).await?;
                let mut tally = tally.lock().unwrap();
                let before = tally.count;
                for msg in &batch {
                    tally.note(
                        msg.partition,
                        msg.offset,
                        msg.value.as_ref().map(Bytes::len),
                    );
                }
                if before < o.messages && tally.count >= o.messages {
                    tally.report(&timer, CLIENT, &o);
                }
            }
            Ok::<_, purekafka::Error>(member)
        }));
    }
    for task in tasks {
        let mut member = task.await??;
        member.commit_sync().await?;
        member.close().await?;
    }
    Ok(())
}

/// A member of a cooperative-sticky group, polling 100 ms at a time.
async fn member(o: MemberOptions) -> Result<()> {
    let config = ClientConfig::new()
        .bootstrap_servers([o.bootstrap.as_str()])
        .group_id(&o.group)
        .set("partition.assignment.strategy", "cooperative-sticky")?
        .set("auto.offset.reset", "earliest")?;
    let mut consumer = Consumer::builder(config).build().await?;
    consumer.subscribe(&[&o.topic])?;
    let until = std::time::Instant::now() + Duration::from_secs(o.seconds);
    let mut records = 0;
    while std::time::Instant::now() < until {
        if let Ok(batch) = consumer.poll(Duration::from_millis(100)).await {
            records += batch.len() as u64;
        }
    }
    consumer.close().await?;
    o.report("purekafka", records);
    Ok(())
}
