//! The figures of `perf compare`: what one run measured, the medians over rounds, and the
//! Markdown tables they go into (one for throughput, one for ack latency), with the machine they
//! were taken on.

use std::fmt::Write as _;

use super::measure::Finished;
use super::workload::{thousands, Kind, Workload};

/// What a client's own output says of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// Records acknowledged (produce) or read (consume), as the client counted them.
    pub count: u64,
    pub msgs_per_s: f64,
    /// Value bytes per record read, where the client tells only a total (the Java consumer).
    pub bytes_per_record: Option<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub late_sends: Option<u64>,
}

/// One run's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub msgs_per_s: f64,
    /// Value bytes only, in 10^6 bytes per second, the same for every client.
    pub mb_per_s: f64,
    /// User + system CPU of the whole process.
    pub cpu_s: f64,
    pub cpu_s_per_million: f64,
    pub max_rss_mib: f64,
    /// Ack latency percentiles (latency workloads only).
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Sends that started more than 1 ms behind their schedule (latency workloads, Rust peers;
    /// the Java tool does not tell).
    pub late_sends: Option<u64>,
}

impl Sample {
    /// The figures of a run of `messages` records of `size` bytes: the client's own reading and
    /// what the process cost.
    pub fn new(f: &Finished, r: &Reading, messages: u64, size: usize) -> Sample {
        Sample {
            msgs_per_s: r.msgs_per_s,
            mb_per_s: r.msgs_per_s * size as f64 / 1e6,
            cpu_s: f.cpu_s,
            cpu_s_per_million: f.cpu_s / messages as f64 * 1e6,
            max_rss_mib: f.max_rss_kib as f64 / 1024.0,
            p50_ms: r.p50_ms,
            p99_ms: r.p99_ms,
            max_ms: r.max_ms,
            late_sends: r.late_sends,
        }
    }

    /// The line of progress printed after the run.
    pub fn progress(&self, kind: Kind) -> String {
        let cost = format!(
            "{:.2} CPU s, {:.0} MiB peak RSS",
            self.cpu_s, self.max_rss_mib
        );
        match kind {
            Kind::Latency => format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.0} msgs/s, {} late sends, {cost}",
                self.p50_ms,
                self.p99_ms,
                self.max_ms,
                self.msgs_per_s,
                self.late_sends
                    .map_or_else(|| "?".to_owned(), |n| n.to_string()),
            ),
            _ => format!(
                "{:.0} msgs/s, {:.2} MB/s, {:.2} CPU s/1M msgs, {cost}",
                self.msgs_per_s, self.mb_per_s, self.cpu_s_per_million
            ),
        }
    }

    /// The run as one line of `target/perf-compare.jsonl`.
    pub fn log_line(&self, w: &Workload, client: &str, round: usize, messages: u64) -> String {
        let mut line = format!(
            "{{\"workload\":\"{}\",\"client\":\"{client}\",\"round\":{round},\
             \"messages\":{messages},\"size\":{},\"msgs_per_s\":{:.0},\"mb_per_s\":{:.3},\
             \"cpu_s\":{:.3},\"cpu_s_per_million\":{:.3},\"max_rss_mib\":{:.1}",
            w.id,
            w.size,
            self.msgs_per_s,
            self.mb_per_s,
            self.cpu_s,
            self.cpu_s_per_million,
            self.max_rss_mib
        );
        if w.kind == Kind::Latency {
            let _ = write!(
                line,
                ",\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}",
                self.p50_ms, self.p99_ms, self.max_ms
            );
            if let Some(late) = self.late_sends {
                let _ = write!(line, ",\"late_sends\":{late}");
            }
        }
        line.push('}');
        line
    }
}

/// The median of each column on its own; the most late sends of any round.
pub fn median_of(samples: &[Sample]) -> Option<Sample> {
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
        cpu_s: median(|s| s.cpu_s),
        cpu_s_per_million: median(|s| s.cpu_s_per_million),
        max_rss_mib: median(|s| s.max_rss_mib),
        p50_ms: median(|s| s.p50_ms),
        p99_ms: median(|s| s.p99_ms),
        max_ms: median(|s| s.max_ms),
        late_sends: samples.iter().filter_map(|s| s.late_sends).max(),
    })
}

/// The tables of a `perf compare` run, filled one workload and client at a time.
#[derive(Default)]
pub struct Tables {
    throughput: String,
    latency: String,
    notes: Vec<String>,
}

impl Tables {
    /// Adds the medians of `client`'s runs of `w` (a row), or why it has none (a note).
    pub fn add(
        &mut self,
        w: &Workload,
        base: u64,
        client: &str,
        samples: &[Sample],
        unsupported: Option<&str>,
    ) {
        let what = w.describe(base);
        let m = match (unsupported, median_of(samples)) {
            (Some(why), _) => return self.notes.push(format!("{what}: {client} not run: {why}")),
            (None, None) => {
                return self
                    .notes
                    .push(format!("{what}: {client}: no run finished"))
            }
            (None, Some(m)) => m,
        };
        let _ = match w.kind {
            Kind::Latency => writeln!(
                self.latency,
                "| {what} | {client} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.0} |",
                m.p50_ms,
                m.p99_ms,
                m.max_ms,
                thousands(m.msgs_per_s.round() as u64),
                m.cpu_s,
                m.max_rss_mib
            ),
            Kind::Produce | Kind::Consume | Kind::ShareConsume => writeln!(
                self.throughput,
                "| {what} | {client} | {} | {:.1} | {:.2} | {:.0} |",
                thousands(m.msgs_per_s.round() as u64),
                m.mb_per_s,
                m.cpu_s_per_million,
                m.max_rss_mib
            ),
        };
        if let Some(late) = m.late_sends.filter(|&n| n > 0) {
            self.notes.push(format!(
                "{what}: {client}: up to {late} sends in a round started more than 1 ms behind \
                 schedule (each is timed from its actual send)"
            ));
        }
    }

    /// The tables and notes as Markdown.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.throughput.is_empty() {
            out.push_str(
                "| workload | client | msgs/s | MB/s | CPU s / 1M msgs | peak RSS MiB |\n\
                 |---|---|---:|---:|---:|---:|\n",
            );
            out.push_str(&self.throughput);
        }
        if !self.latency.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(
                "| workload | client | p50 ms | p99 ms | max ms | msgs/s | CPU s | peak RSS MiB |\n\
                 |---|---|---:|---:|---:|---:|---:|---:|\n",
            );
            out.push_str(&self.latency);
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        out
    }
}

/// The 1, 5 and 15 minute load averages: others' work on a shared machine shows here.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Cores, CPU model and memory, from /proc.
pub fn machine() -> String {
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
    use super::super::workload::WORKLOADS;
    use super::*;

    fn s(x: f64, late: Option<u64>) -> Sample {
        Sample {
            msgs_per_s: x,
            cpu_s_per_million: 10.0 - x,
            p99_ms: x * 2.0,
            late_sends: late,
            ..Sample::default()
        }
    }

    #[test]
    fn medians() {
        let m = median_of(&[s(3.0, Some(0)), s(1.0, Some(7)), s(2.0, None)]).unwrap();
        assert_eq!(
            (m.msgs_per_s, m.cpu_s_per_million, m.p99_ms),
            (2.0, 8.0, 4.0)
        );
        assert_eq!(m.late_sends, Some(7));
        assert_eq!(
            median_of(&[s(1.0, None), s(2.0, None)]).unwrap().msgs_per_s,
            1.5
        );
        assert!(median_of(&[]).is_none());
    }

    #[test]
    fn rows_go_to_their_table() {
        let by_id = |id: &str| WORKLOADS.iter().find(|w| w.id == id).unwrap();
        let mut t = Tables::default();
        t.add(by_id("consume"), 1000, "a", &[s(5.0, None)], None);
        t.add(by_id("latency"), 100_000, "a", &[s(5.0, Some(2))], None);
        t.add(by_id("latency"), 100_000, "b", &[], Some("no acks=1"));
        let out = t.render();
        let tables: Vec<&str> = out.split("\n\n").collect();
        assert_eq!(tables.len(), 3, "{out}");
        assert!(tables[0].contains("| consume 1,000 × 100 B, 8 partitions | a | 5 |"));
        assert!(tables[1].starts_with("| workload | client | p50 ms"));
        assert!(
            tables[1].contains("| a | 0.00 | 10.00 | 0.00 | 5 |"),
            "{out}"
        );
        assert!(tables[2].contains("b not run: no acks=1"));
        assert!(tables[2].contains("a: up to 2 sends"));
    }
}
