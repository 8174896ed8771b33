//! A window of samples (round-trip times, batch sizes, ...) between two statistics emits, with
//! the summary librdkafka gives each: min, max, avg, sum, stddev, percentiles, and how many
//! samples fell outside the histogram's range. The percentiles come from an HDR histogram, as
//! librdkafka's do (two significant figures): a percentile is a bucket's value, and may exceed
//! the largest sample by the bucket's width.

use std::sync::Mutex;

use hdrhistogram::Histogram;

use super::WindowStatistics;

/// Samples since the last [`Window::take`].
pub(crate) struct Window {
    inner: Mutex<Inner>,
}

struct Inner {
    histogram: Histogram<u64>,
    sum: u64,
    /// The exact extremes: the histogram's are its buckets' values.
    min: u64,
    max: u64,
    outofrange: u64,
}

impl Window {
    /// A window for values from 0 to `highest`; larger ones count as out of range.
    pub fn new(highest: u64) -> Window {
        Window {
            inner: Mutex::new(Inner {
                histogram: histogram(highest),
                sum: 0,
                min: u64::MAX,
                max: 0,
                outofrange: 0,
            }),
        }
    }

    /// Adds one sample; a negative one counts as 0.
    pub fn record(&self, value: i64) {
        let value = value.max(0) as u64;
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.histogram.record(value).is_err() {
            inner.outofrange += 1;
            return;
        }
        inner.sum = inner.sum.saturating_add(value);
        inner.min = inner.min.min(value);
        inner.max = inner.max.max(value);
    }

    /// The summary of the samples since the last call, which starts a new window.
    pub fn take(&self) -> WindowStatistics {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let h = &inner.histogram;
        let cnt = h.len();
        let at = |q: f64| {
            if cnt == 0 {
                0
            } else {
                h.value_at_quantile(q) as i64
            }
        };
        let summary = WindowStatistics {
            min: if cnt == 0 { 0 } else { inner.min as i64 },
            max: inner.max as i64,
            avg: inner.sum.checked_div(cnt).unwrap_or(0) as i64,
            sum: inner.sum as i64,
            stddev: if cnt == 0 { 0 } else { h.stdev() as i64 },
            p50: at(0.50),
            p75: at(0.75),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            p99_99: at(0.9999),
            outofrange: inner.outofrange as i64,
            // The histogram's counts, as librdkafka reports its histogram's memory.
            hdrsize: (h.distinct_values() * std::mem::size_of::<u64>()) as i64,
            cnt: cnt as i64,
            #[cfg(feature = "metrics")]
            buckets: h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        };
        inner.histogram.reset();
        inner.sum = 0;
        inner.min = u64::MAX;
        inner.max = 0;
        inner.outofrange = 0;
        summary
    }
}

fn histogram(highest: u64) -> Histogram<u64> {
    // Bounds that hdrhistogram accepts for any highest >= 2; two significant figures.
    Histogram::new_with_bounds(1, highest.max(2), 2).expect("valid histogram bounds")
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn a_window_summarizes_its_samples_and_starts_afresh() {
        let w = Window::new(1_000_000);
        for v in 1..=100 {
            w.record(v * 10);
        }
        w.record(5_000_000);
        let s = w.take();
        assert_eq!(
            (s.cnt, s.min, s.max, s.sum, s.avg),
            (100, 10, 1000, 50_500, 505)
        );
        assert_eq!(s.outofrange, 1);
        // Two significant figures: each percentile within 1% of the sample it names.
        assert!((500..=505).contains(&s.p50), "{s:?}");
        assert!((990..=1000).contains(&s.p99), "{s:?}");
        assert!(s.stddev > 280 && s.stddev < 300, "{s:?}");
        let empty = w.take();
        assert_eq!((empty.cnt, empty.min, empty.max, empty.p99), (0, 0, 0, 0));
    }
}
