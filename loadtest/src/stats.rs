//! Per-worker recording (HDR histograms, error counts, bytes) and the summary of a phase.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency the histograms track: one hour, in nanoseconds. Anything above is clamped.
const MAX_TRACKABLE_NS: u64 = 3_600_000_000_000;
/// Three significant digits: 0.1 % resolution at every scale.
const SIGNIFICANT_DIGITS: u8 = 3;

/// What one worker saw; merged with the others' at the end of a phase.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    /// Whole request: from the (intended) send time to the last body byte.
    pub(crate) latency: Histogram<u64>,
    /// From the same start to the first body byte (or the head, for an empty body).
    pub(crate) ttfb: Histogram<u64>,
    /// Responses with a 2xx status.
    pub(crate) ok: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_received: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub(crate) fn new() -> Self {
        let histogram = || {
            Histogram::new_with_bounds(1, MAX_TRACKABLE_NS, SIGNIFICANT_DIGITS)
                .expect("static histogram bounds are valid")
        };
        Self {
            latency: histogram(),
            ttfb: histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            bytes_sent: 0,
            bytes_received: 0,
        }
    }

    /// Records one answered request (any status): its latency and time to first byte.
    pub(crate) fn record_response(&mut self, latency: Duration, ttfb: Duration) {
        self.latency.saturating_record(clamp_ns(latency));
        self.ttfb.saturating_record(clamp_ns(ttfb));
    }

    pub(crate) fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_owned()).or_default() += 1;
    }

    pub(crate) fn merge(&mut self, other: &Recorder) {
        // Both histograms share the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.ttfb.add(&other.ttfb);
        self.ok += other.ok;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
    }

    /// The numbers a report shows, for a phase that ran for `elapsed`.
    pub(crate) fn summarize(&self, elapsed: Duration) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Summary {
            requests: self.latency.len(),
            ok: self.ok,
            errors: self.errors.values().sum(),
            errors_by_kind: self.errors.clone(),
            elapsed_s: elapsed.as_secs_f64(),
            requests_per_s: self.ok as f64 / secs,
            latency_ms: Percentiles::of(&self.latency),
            ttfb_ms: Percentiles::of(&self.ttfb),
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            mb_per_s_received: self.bytes_received as f64 / secs / 1e6,
            mb_per_s_sent: self.bytes_sent as f64 / secs / 1e6,
            process: None,
        }
    }
}

fn clamp_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_TRACKABLE_NS)
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p99_9: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
}

impl Percentiles {
    pub(crate) fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Self {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p99_9: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1e6,
        }
    }

    /// The labelled points a percentile plot draws, in order.
    pub(crate) fn points(&self) -> [(&'static str, f64); 5] {
        [
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("p99.9", self.p99_9),
            ("max", self.max),
        ]
    }
}

/// Resource use of the watched process (tree) during a phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProcessUsage {
    /// Highest resident set size seen during the phase, in bytes.
    pub(crate) peak_rss_bytes: u64,
    /// Resident set size at the end of the phase, in bytes.
    pub(crate) end_rss_bytes: u64,
    /// User plus system CPU time spent during the phase, in seconds.
    pub(crate) cpu_s: f64,
    /// Processes watched (nginx has a master and workers).
    pub(crate) processes: usize,
}

/// One phase against one target: what the table, JSON, CSV and plots show.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// Answered requests, any status.
    pub(crate) requests: u64,
    /// Requests answered with 2xx.
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) errors_by_kind: BTreeMap<String, u64>,
    pub(crate) elapsed_s: f64,
    /// 2xx answers per second.
    pub(crate) requests_per_s: f64,
    pub(crate) latency_ms: Percentiles,
    pub(crate) ttfb_ms: Percentiles,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_received: u64,
    pub(crate) mb_per_s_received: f64,
    pub(crate) mb_per_s_sent: f64,
    pub(crate) process: Option<ProcessUsage>,
}

impl Summary {
    /// CPU time of the watched process per successful request, in microseconds.
    pub(crate) fn cpu_us_per_request(&self) -> Option<f64> {
        let process = self.process?;
        (self.ok > 0).then(|| process.cpu_s * 1e6 / self.ok as f64)
    }

    /// Errors as `kind=count` pairs, for the terminal and CSV.
    pub(crate) fn errors_text(&self) -> String {
        if self.errors_by_kind.is_empty() {
            return "0".to_owned();
        }
        self.errors_by_kind
            .iter()
            .map(|(kind, count)| format!("{kind}={count}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut recorder = Recorder::new();
        for value in 1..=1000 {
            recorder.record_response(ms(value), ms(1));
            recorder.ok += 1;
        }
        let summary = recorder.summarize(Duration::from_secs(2));
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        let p = summary.latency_ms;
        assert!(close(p.p50, 500.0), "{p:?}");
        assert!(close(p.p90, 900.0), "{p:?}");
        assert!(close(p.p99, 990.0), "{p:?}");
        assert!(close(p.p99_9, 999.0), "{p:?}");
        assert!(close(p.max, 1000.0), "{p:?}");
        assert!(close(p.mean, 500.5), "{p:?}");
        assert_eq!(summary.requests, 1000);
        assert!((summary.requests_per_s - 500.0).abs() < 1e-9);
    }

    #[test]
    fn merge_adds_counts_errors_and_histograms() {
        let mut a = Recorder::new();
        a.record_response(ms(1), ms(1));
        a.ok = 1;
        a.error("timeout");
        a.bytes_sent = 10;
        let mut b = Recorder::new();
        b.record_response(ms(3), ms(2));
        b.ok = 1;
        b.error("timeout");
        b.error("status_502");
        b.bytes_received = 7;
        a.merge(&b);
        let summary = a.summarize(Duration::from_secs(1));
        assert_eq!(summary.requests, 2);
        assert_eq!(summary.errors, 3);
        assert_eq!(summary.errors_text(), "status_502=1 timeout=2");
        assert_eq!((summary.bytes_sent, summary.bytes_received), (10, 7));
        assert!((summary.latency_ms.max - 3.0).abs() < 0.01);
    }

    #[test]
    fn empty_and_out_of_range_values_are_safe() {
        let mut recorder = Recorder::new();
        let empty = recorder.summarize(Duration::ZERO);
        assert_eq!(empty.latency_ms, Percentiles::default());
        assert_eq!(empty.errors_text(), "0");
        recorder.record_response(Duration::ZERO, Duration::from_secs(100_000));
        let summary = recorder.summarize(Duration::from_secs(1));
        assert!(summary.ttfb_ms.max <= 3_600_000.0 * 1.001);
    }

    #[test]
    fn cpu_per_request_needs_a_process_and_requests() {
        let mut summary = Summary {
            ok: 4,
            ..Summary::default()
        };
        assert_eq!(summary.cpu_us_per_request(), None);
        summary.process = Some(ProcessUsage {
            cpu_s: 0.002,
            ..ProcessUsage::default()
        });
        assert_eq!(summary.cpu_us_per_request(), Some(500.0));
    }
}
