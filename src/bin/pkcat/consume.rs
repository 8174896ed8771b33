//! `pkcat -C`: records to stdout, from the partitions of `-t` (all, or `-p`) starting at `-o`,
//! as a member of `-G`'s group, or as a member of `--share`'s share group. Stops after `-c`
//! records, at the end of every partition with `-e`, or at Ctrl-C; a group member then commits
//! and leaves, a share group member accepts what it printed and releases the rest. Errors that
//! pass (a broker down, a leader moving, a subscribed topic not there yet) are reported on
//! stderr and reading goes on, as kcat does; any other ends the run.

use std::io::Write;
use std::time::Duration;

use purekafka::{
    AcknowledgeType, AutoOffsetReset, ClientConfig, Consumer, Message, Offset,
    ShareAcknowledgementMode, ShareConsumer,
};

use crate::args::{Command, Start};
use crate::Failure;

/// How long one poll waits for records before the end conditions are checked again.
const POLL: Duration = Duration::from_millis(100);

pub async fn run(c: Command) -> Result<(), Failure> {
    let mut consumer = build(&c).await?;
    start(&mut consumer, &c).await?;

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    // Whatever ends the reading, the consumer is closed (a member commits and leaves).
    let ended: Result<(), Failure> = async {
        loop {
            let Some(batch) = next_batch(consumer.poll(POLL), &mut interrupted).await? else {
                return Ok(());
            };
            for msg in &batch {
                c.output
                    .write(&mut out, msg, &c.delimiter, c.key_delimiter.as_deref())?;
                printed += 1;
                if c.count.is_some_and(|n| printed >= n) {
                    return Ok(());
                }
            }
            out.flush()?;
            if c.exit_at_end && at_end(&consumer) {
                return Ok(());
            }
        }
    }
    .await;
    let flushed = out.flush();
    drop(out);
    consumer.close().await?;
    ended?;
    flushed?;
    if !c.quiet {
        eprintln!("pkcat: {printed} records consumed");
    }
    Ok(())
}

/// `pkcat -C --share GROUP TOPIC...`: each record printed (and written out) is accepted;
/// records past `-c`, and those fetched when pkcat stops, are released for another member.
pub async fn share(c: Command) -> Result<(), Failure> {
    let mut config = c.config.clone();
    config.consumer.group_id = c.share.clone();
    // pkcat's own default start is for plain consumers; a share group has its group config.
    config.consumer.auto_offset_reset = ClientConfig::default().consumer.auto_offset_reset;
    config.consumer.share_acknowledgement_mode = ShareAcknowledgementMode::Explicit;
    let mut consumer = ShareConsumer::builder(config).build().await?;
    let topics: Vec<&str> = c.topic.iter().chain(&c.rest).map(String::as_str).collect();
    consumer.subscribe(&topics)?;

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let ended: Result<(), Failure> = async {
        loop {
            let Some(batch) = next_batch(consumer.poll(POLL), &mut interrupted).await? else {
                return Ok(());
            };
            let room = c.count.map_or(usize::MAX, |n| (n - printed) as usize);
            let shown = batch.len().min(room);
            for msg in &batch[..shown] {
                c.output
                    .write(&mut out, msg, &c.delimiter, c.key_delimiter.as_deref())?;
            }
            // Accepted only once written out: a record lost on the way is delivered again.
            out.flush()?;
            for (i, msg) in batch.iter().enumerate() {
                let kind = match i < shown {
                    true => AcknowledgeType::Accept,
                    false => AcknowledgeType::Release,
                };
                consumer.acknowledge(msg, kind)?;
            }
            printed += shown as u64;
            if c.count.is_some_and(|n| printed >= n) {
                return Ok(());
            }
        }
    }
    .await;
    let flushed = out.flush();
    drop(out);
    let committed = consumer.commit_sync().await;
    consumer.close().await?;
    ended?;
    flushed?;
    for result in committed? {
        if let Err(e) = result.result {
            eprintln!("pkcat: {e}");
        }
    }
    if !c.quiet {
        eprintln!("pkcat: {printed} records consumed");
    }
    Ok(())
}

/// The next batch of a poll, or `None` at Ctrl-C. An error that passes is reported on stderr
/// and gives an empty batch; any other ends the run.
async fn next_batch(
    poll: impl std::future::Future<Output = Result<Vec<Message>, purekafka::Error>>,
    interrupted: &mut (impl std::future::Future + Unpin),
) -> Result<Option<Vec<Message>>, Failure> {
    tokio::select! {
        batch = poll => match batch {
            Ok(batch) => Ok(Some(batch)),
            Err(e) if e.is_retriable() => {
                eprintln!("pkcat: {e} (carrying on)");
                Ok(Some(Vec::new()))
            }
            Err(e) => Err(e.into()),
        },
        _ = interrupted => Ok(None),
    }
}

/// The consumer `c` asks for: a member of `-G`'s group, or one of no group.
pub async fn build(c: &Command) -> Result<Consumer, Failure> {
    let mut config = c.config.clone();
    if c.group.is_some() {
        config.consumer.group_id = c.group.clone();
        match c.start {
            Some(Start::Beginning) => config.consumer.auto_offset_reset = AutoOffsetReset::Earliest,
            Some(Start::End) => config.consumer.auto_offset_reset = AutoOffsetReset::Latest,
            _ => {}
        }
    } else {
        // Partitions read by hand belong to no group, whatever -F or -X said.
        config.consumer.group_id = None;
        config.consumer.enable_auto_commit = false;
    }
    let consumer = Consumer::builder(config).build().await?;
    crate::statistics_to_stderr(consumer.statistics());
    Ok(consumer)
}

/// Joins the group with the topics (`-G`), or assigns the partitions (`-t`, `-p`, `-o`).
pub async fn start(consumer: &mut Consumer, c: &Command) -> Result<(), Failure> {
    if c.group.is_some() {
        let topics: Vec<&str> = c.topic.iter().chain(&c.rest).map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(())
    } else {
        assign(consumer, c).await
    }
}

/// Assigns `-p` (or every partition of `-t`) at `-o` (the beginning by default).
async fn assign(consumer: &mut Consumer, c: &Command) -> Result<(), Failure> {
    let topic = c.topic.as_deref().expect("checked by args");
    let partitions = match c.partition {
        Some(p) => vec![p],
        None => consumer.partitions(topic).await?,
    };
    let parts = || partitions.iter().map(|&p| (topic, p));
    match c.start.unwrap_or(Start::Beginning) {
        Start::Beginning => consumer.assign(parts(), Offset::Earliest).await?,
        Start::End => consumer.assign(parts(), Offset::Latest).await?,
        Start::At(offset) => consumer.assign(parts(), Offset::At(offset)).await?,
        Start::FromEnd(n) => {
            consumer.assign(parts(), Offset::Latest).await?;
            // Below the log's start, the fetch resets to its start (auto.offset.reset).
            let ends: Vec<(i32, i64)> = consumer.positions().map(|(_, p, o)| (p, o)).collect();
            for (p, end) in ends {
                consumer.seek(topic, p, (end - n).max(0))?;
            }
        }
        Start::Stored => {
            return Err(Failure::Usage(
                "-o stored reads a group's offsets: give -G GROUP".into(),
            ))
        }
    }
    Ok(())
}

/// Whether every assigned partition has been read up to its high watermark, as of the last
/// fetch (a partition not fetched yet is not at its end).
pub fn at_end(consumer: &Consumer) -> bool {
    let assigned = consumer.assignment();
    !assigned.is_empty()
        && assigned.iter().all(|(t, p)| {
            consumer
                .watermark_and_lag(t, *p)
                .is_some_and(|(_, lag)| lag == 0)
        })
}
