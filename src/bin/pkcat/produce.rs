//! `pkcat -P`: records from stdin, split at the delimiter (`-D`, a newline by default), or from
//! files: one record per file, or per line with `-l`. A key comes before the first `-K`
//! delimiter of a record. Delivery failures are reported on stderr and end in exit status 1.

use std::io::Read;

use bytes::{Buf, Bytes, BytesMut};
use purekafka::{ClientConfig, DeliveryReports, Producer, ProducerRecord};
use tokio::sync::mpsc;

use crate::args::Command;
use crate::Failure;

/// Failures printed one by one; beyond them, only counted.
const SHOWN_FAILURES: u64 = 10;

pub async fn run(c: Command) -> Result<(), Failure> {
    let topic = c.topic.clone().expect("checked by args");
    let (producer, mut reports) = with_reports(c.config.clone()).await?;
    let failures = tokio::spawn(async move {
        let mut failed = 0u64;
        while let Some(report) = reports.recv().await {
            if let Some(error) = report.error {
                failed += 1;
                if failed <= SHOWN_FAILURES {
                    eprintln!("pkcat: delivery to {} failed: {error}", report.metadata);
                }
            }
        }
        failed
    });

    let mut chunks = read_records(&c);
    let mut records = Vec::new().into_iter();
    let mut sent = 0u64;
    while c.count.is_none_or(|n| sent < n) {
        let Some(bytes) = records.next() else {
            match chunks.recv().await {
                Some(chunk) => records = chunk?.into_iter(),
                None => break,
            }
            continue;
        };
        let mut record = ProducerRecord::new(&topic);
        record = match c
            .key_delimiter
            .as_deref()
            .and_then(|d| find(&bytes, d).map(|at| (at, d.len())))
        {
            Some((at, len)) => record.key(bytes.slice(..at)).value(bytes.slice(at + len..)),
            None => record.value(bytes),
        };
        if let Some(p) = c.partition {
            record = record.partition(p);
        }
        for (name, value) in &c.headers {
            record = record.header(name.clone(), value.clone());
        }
        // The delivery report stream tells the outcome; the future is not needed.
        drop(producer.produce(record).await?);
        sent += 1;
    }
    drop(chunks);
    producer.close().await;
    let failed = failures.await.map_err(|e| Failure::Run(e.to_string()))?;
    if failed > 0 {
        return Err(Failure::Run(format!(
            "{failed} of {sent} records were not delivered"
        )));
    }
    if !c.quiet {
        eprintln!("pkcat: {sent} records delivered to {topic}");
    }
    Ok(())
}

/// A producer for `config`, and the stream of its delivery reports.
pub async fn with_reports(config: ClientConfig) -> Result<(Producer, DeliveryReports), Failure> {
    let producer = Producer::builder(config).delivery_reports().build().await?;
    crate::statistics_to_stderr(producer.statistics());
    let reports = producer.delivery_reports().expect("asked for at build");
    Ok((producer, reports))
}

/// The records of the input, read on a thread of their own (stdin and files block).
/// The records, read on a thread of their own and handed over a chunk at a time: each record
/// a slice of the buffer it was read into, so a line is neither copied nor allocated for on
/// its way to the producer, and the two sides meet once per chunk, not once per line.
fn read_records(c: &Command) -> mpsc::Receiver<std::io::Result<Vec<Bytes>>> {
    let (tx, rx) = mpsc::channel(16);
    let (files, delimiter, lines) = (c.rest.clone(), c.delimiter.clone(), c.lines);
    std::thread::spawn(move || {
        let send = |records| tx.blocking_send(records).is_ok();
        let result = if files.is_empty() {
            split(std::io::stdin().lock(), &delimiter, &send)
        } else {
            files.iter().try_for_each(|path| {
                let mut file = std::fs::File::open(path)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}")))?;
                if lines {
                    return split(file, &delimiter, &send);
                }
                let mut whole = Vec::new();
                file.read_to_end(&mut whole)?;
                send(Ok(vec![whole.into()]));
                Ok(())
            })
        };
        if let Err(e) = result {
            send(Err(e));
        }
    });
    rx
}

/// How much is read at a time.
const CHUNK: usize = 64 * 1024;

/// Splits `input` at every `delimiter`, handing `send` the records of each read (a record
/// straddling reads goes with the read that ends it). Stops early when `send` says false.
fn split(
    mut input: impl Read,
    delimiter: &[u8],
    send: &impl Fn(std::io::Result<Vec<Bytes>>) -> bool,
) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    // Where a delimiter may start in what is left of `buf`: not before what was searched.
    let mut scan = 0;
    loop {
        let filled = buf.len();
        buf.resize(filled + CHUNK, 0);
        let n = input.read(&mut buf[filled..])?;
        buf.truncate(filled + n);
        if n == 0 {
            if !buf.is_empty() {
                send(Ok(vec![buf.freeze()]));
            }
            return Ok(());
        }
        let mut records = Vec::new();
        while let Some(at) = find(&buf[scan..], delimiter) {
            records.push(buf.split_to(scan + at).freeze());
            buf.advance(delimiter.len());
            scan = 0;
        }
        // Only the new bytes, and the delimiter's length before them, can hold a new match.
        scan = buf.len().saturating_sub(delimiter.len() - 1);
        if !records.is_empty() && !send(Ok(records)) {
            return Ok(());
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [one] => haystack.iter().position(|b| b == one),
        _ => haystack.windows(needle.len()).position(|w| w == needle),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn pieces(input: &[u8], delimiter: &[u8]) -> Vec<Bytes> {
        let out = RefCell::new(Vec::new());
        // A reader that hands out one byte at a time, so delimiters straddle reads.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        split(Trickle(input), delimiter, &|r| {
            out.borrow_mut().extend(r.unwrap());
            true
        })
        .unwrap();
        out.into_inner()
    }

    #[test]
    fn splits_at_every_delimiter_across_reads() {
        assert_eq!(pieces(b"a\nbc\n\nd", b"\n"), [&b"a"[..], b"bc", b"", b"d"]);
        assert_eq!(pieces(b"a\n", b"\n"), [&b"a"[..]]);
        assert_eq!(pieces(b"x--y---z", b"--"), [&b"x"[..], b"y", b"-z"]);
        assert!(pieces(b"", b"\n").is_empty());
    }
}
