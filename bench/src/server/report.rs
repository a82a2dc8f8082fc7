//! What a run prints: a human table, and with `--json` one JSON object on the last stdout line.
//!
//! Latencies are reported in milliseconds with the names `compare.sh` and other scripts read:
//! `qps`, `ops`, `errors`, `p50_ms`, `p90_ms`, `p99_ms`, `p999_ms`, `max_ms`.

use std::fmt::Write;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use super::recorder::Outcome;
use crate::latency::LatencySummary;

/// Percentiles of a nanosecond histogram, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SummaryMs {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Summarises a nanosecond histogram in milliseconds (all zero when it is empty).
pub fn summary_ms(histogram: &Histogram<u64>) -> SummaryMs {
    if histogram.is_empty() {
        return SummaryMs::default();
    }
    let summary = LatencySummary::of(histogram);
    SummaryMs {
        p50_ms: summary.p50_us / 1000.0,
        p90_ms: summary.p90_us / 1000.0,
        p99_ms: summary.p99_us / 1000.0,
        p999_ms: summary.p999_us / 1000.0,
        max_ms: summary.max_us / 1000.0,
        mean_ms: histogram.mean() / 1_000_000.0,
    }
}

/// The summary of one run (or of several merged runs) of one workload on one endpoint set.
#[derive(Clone, Debug)]
pub struct Report {
    pub workload: String,
    pub endpoints: Vec<String>,
    pub ops: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub qps: f64,
    pub latency: SummaryMs,
    pub violations: u64,
    /// What was measured, kept for plots and for merging runs under `--vs`.
    pub outcome: Outcome,
}

impl Report {
    /// Summarises `outcome` of `workload` run against `endpoints`.
    pub fn new(workload: &str, endpoints: &[String], outcome: &Outcome) -> Self {
        let elapsed_s = outcome.elapsed.as_secs_f64();
        Report {
            workload: workload.to_string(),
            endpoints: endpoints.to_vec(),
            ops: outcome.ops,
            errors: outcome.errors,
            elapsed_s,
            qps: if elapsed_s > 0.0 {
                outcome.ops as f64 / elapsed_s
            } else {
                0.0
            },
            latency: summary_ms(&outcome.latency),
            violations: outcome.violations,
            outcome: outcome.clone(),
        }
    }

    /// The headline figures by name, in print order (the JSON keys too).
    pub fn figures(&self) -> Vec<(String, f64)> {
        let mut figures = vec![
            ("qps".to_string(), self.qps),
            ("ops".to_string(), self.ops as f64),
            ("errors".to_string(), self.errors as f64),
            ("elapsed_s".to_string(), self.elapsed_s),
            ("p50_ms".to_string(), self.latency.p50_ms),
            ("p90_ms".to_string(), self.latency.p90_ms),
            ("p99_ms".to_string(), self.latency.p99_ms),
            ("p999_ms".to_string(), self.latency.p999_ms),
            ("max_ms".to_string(), self.latency.max_ms),
            ("mean_ms".to_string(), self.latency.mean_ms),
        ];
        figures.extend(self.outcome.extra.iter().cloned());
        figures.push(("violations".to_string(), self.violations as f64));
        figures
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} against {}",
            self.workload,
            self.endpoints.join(",")
        );
        let _ = writeln!(
            out,
            "  ops         {} ok, {} errors in {:.2} s",
            self.ops, self.errors, self.elapsed_s
        );
        let _ = writeln!(out, "  throughput  {:.1} ops/s", self.qps);
        let l = &self.latency;
        let _ = writeln!(
            out,
            "  latency ms  p50 {} | p90 {} | p99 {} | p99.9 {} | max {} | mean {}",
            ms(l.p50_ms),
            ms(l.p90_ms),
            ms(l.p99_ms),
            ms(l.p999_ms),
            ms(l.max_ms),
            ms(l.mean_ms)
        );
        for (name, value) in &self.outcome.extra {
            let _ = writeln!(out, "  {name:<28} {}", number(*value));
        }
        if self.outcome.violations > 0 || self.workload == "k8s-events" {
            let _ = writeln!(out, "  violations  {}", self.outcome.violations);
        }
        for sample in &self.outcome.violation_samples {
            let _ = writeln!(out, "    violation: {sample}");
        }
        for sample in &self.outcome.error_samples {
            let _ = writeln!(out, "    error: {sample}");
        }
        out
    }

    /// The JSON object (one line) with every figure.
    pub fn json_value(&self) -> Value {
        let mut object = Map::new();
        object.insert("workload".into(), json!(self.workload));
        object.insert("endpoints".into(), json!(self.endpoints));
        for (name, value) in self.figures() {
            object.insert(name, json_number(value));
        }
        object.insert(
            "error_samples".into(),
            json!(self.outcome.error_samples.clone()),
        );
        object.insert(
            "violation_samples".into(),
            json!(self.outcome.violation_samples.clone()),
        );
        Value::Object(object)
    }

    /// `json_value` on one line.
    pub fn json_line(&self) -> String {
        self.json_value().to_string()
    }
}

/// Integral figures print as integers, others with 3 decimals.
fn json_number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!((value * 1000.0).round() / 1000.0)
    }
}

fn ms(value: f64) -> String {
    format!("{value:.3}")
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::recorder::Recorder;
    use std::time::Duration;

    fn sample_report() -> Report {
        let recorder = Recorder::start();
        for millis in 1..=100u64 {
            recorder.success(Duration::from_millis(millis));
        }
        recorder.error("etcdserver: request timed out");
        let outcome = recorder
            .finish(Duration::from_secs(2))
            .with_extra("events_per_s", 12.5);
        Report::new("put", &["127.0.0.1:2379".to_string()], &outcome)
    }

    // Goal: the figures are computed from the histogram (ms) and the elapsed time (qps).
    #[test]
    fn figures_come_from_histogram_and_time() {
        let report = sample_report();
        assert_eq!(report.ops, 100);
        assert_eq!(report.errors, 1);
        assert!((report.qps - 50.0).abs() < 1e-9);
        assert!((report.latency.p50_ms - 50.0).abs() < 0.1);
        assert!((report.latency.p99_ms - 99.0).abs() < 0.1);
        assert!((report.latency.max_ms - 100.0).abs() < 0.1);
    }

    // Goal: the JSON line is one object, parseable, with the keys scripts rely on.
    #[test]
    fn json_line_has_the_contract_keys() {
        let line = sample_report().json_line();
        assert!(!line.contains('\n'));
        let value: Value = serde_json::from_str(&line).unwrap();
        for key in [
            "qps", "ops", "errors", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
        ] {
            assert!(value[key].is_number(), "{key} missing in {line}");
        }
        assert_eq!(value["ops"], 100);
        assert_eq!(value["errors"], 1);
        assert_eq!(value["qps"], 50);
        assert_eq!(value["events_per_s"], 12.5);
        assert_eq!(value["workload"], "put");
        assert_eq!(value["error_samples"][0], "etcdserver: request timed out");
    }

    // Goal: the human table names the workload, the rate and the percentiles.
    #[test]
    fn table_shows_rate_and_percentiles() {
        let table = sample_report().table();
        assert!(table.starts_with("put against 127.0.0.1:2379\n"));
        assert!(table.contains("throughput  50.0 ops/s"));
        assert!(table.contains("p99 99."));
        assert!(table.contains("events_per_s"));
        assert!(table.contains("error: etcdserver: request timed out"));
    }

    // Goal: an empty run summarises to zeros instead of panicking.
    #[test]
    fn empty_histogram_summarises_to_zero() {
        let empty = Recorder::start().finish(Duration::from_secs(1));
        assert_eq!(summary_ms(&empty.latency), SummaryMs::default());
    }
}
