//! Where latencies go while a workload runs, and what a finished run hands to the report.
//!
//! One `Recorder` is shared by all the workers of a run behind a mutex: a lock per request is
//! ~20 ns against requests that cost tens of microseconds, and it keeps one exact histogram
//! instead of thousands of per-worker ones (a 3-digit hdrhistogram is ~250 KB). Besides the
//! overall histogram it keeps a `Timeline` of coarser histograms per time bucket, which is what
//! the plot draws as latency over time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::latency::new_histogram;

/// Time buckets a timeline keeps at most; past that, neighbours merge and the width doubles.
const TIMELINE_BUCKETS_LIMIT: usize = 256;
/// Width of a timeline bucket at the start of a run.
const TIMELINE_BUCKET_WIDTH_START: Duration = Duration::from_millis(250);
/// Error messages kept verbatim (the rest are only counted).
const ERROR_SAMPLES_LIMIT: usize = 5;

/// Latency over time: one 2-digit histogram (microseconds) per time bucket.
#[derive(Clone, Debug)]
pub struct Timeline {
    bucket_width: Duration,
    buckets: Vec<Histogram<u64>>,
}

impl Timeline {
    /// An empty timeline with the starting bucket width.
    pub fn new() -> Self {
        Timeline {
            bucket_width: TIMELINE_BUCKET_WIDTH_START,
            buckets: Vec::new(),
        }
    }

    /// Records one latency observed `at` after the start of the run.
    pub fn record(&mut self, at: Duration, latency: Duration) {
        let mut index = bucket_index(at, self.bucket_width);
        while index >= TIMELINE_BUCKETS_LIMIT {
            self.halve_resolution();
            index = bucket_index(at, self.bucket_width);
        }
        while self.buckets.len() <= index {
            self.buckets.push(new_bucket_histogram());
        }
        let micros = (latency.as_micros() as u64).clamp(1, BUCKET_MICROS_MAX);
        self.buckets[index].saturating_record(micros);
    }

    /// The bucket width (grows as the run gets longer).
    pub fn bucket_width(&self) -> Duration {
        self.bucket_width
    }

    /// Buckets in time order; empty buckets are histograms with no samples.
    pub fn buckets(&self) -> &[Histogram<u64>] {
        &self.buckets
    }

    fn halve_resolution(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        for pair in old.chunks(2) {
            let mut merged = pair[0].clone();
            if let Some(second) = pair.get(1) {
                merged.add(second).expect("timeline buckets share bounds");
            }
            self.buckets.push(merged);
        }
        self.bucket_width *= 2;
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

/// Largest latency a timeline bucket holds: one hour in microseconds.
const BUCKET_MICROS_MAX: u64 = 3_600_000_000;

fn new_bucket_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, BUCKET_MICROS_MAX, 2).expect("static bounds are valid")
}

fn bucket_index(at: Duration, width: Duration) -> usize {
    (at.as_nanos() / width.as_nanos().max(1)) as usize
}

/// Everything a finished run measured: the input of a `Report`.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Latency of successful requests, in nanoseconds.
    pub latency: Histogram<u64>,
    /// The same latencies over time.
    pub timeline: Timeline,
    /// Successful requests (or delivered events, for watch workloads).
    pub ops: u64,
    /// Failed requests.
    pub errors: u64,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// Wall time of the measured phase.
    pub elapsed: Duration,
    /// Workload-specific figures (name, value), printed and put in the JSON object.
    pub extra: Vec<(String, f64)>,
    /// Consistency violations found by a verifier (k8s-events); 0 elsewhere.
    pub violations: u64,
    /// The first few violations, described.
    pub violation_samples: Vec<String>,
}

impl Outcome {
    /// Adds a workload-specific figure.
    pub fn with_extra(mut self, name: &str, value: f64) -> Self {
        self.extra.push((name.to_string(), value));
        self
    }
}

struct RecorderState {
    latency: Histogram<u64>,
    timeline: Timeline,
    ops: u64,
    errors: u64,
    error_samples: Vec<String>,
}

/// The shared sink of one run's measurements.
pub struct Recorder {
    started: Instant,
    state: Mutex<RecorderState>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn start() -> Self {
        Recorder {
            started: Instant::now(),
            state: Mutex::new(RecorderState {
                latency: new_histogram(),
                timeline: Timeline::new(),
                ops: 0,
                errors: 0,
                error_samples: Vec::new(),
            }),
        }
    }

    /// When the run started (the origin of the timeline).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records one successful request that took `latency` and finished now.
    pub fn success(&self, latency: Duration) {
        let at = self.started.elapsed();
        let mut state = self.state.lock().expect("recorder lock");
        record_into(&mut state, at, latency);
    }

    /// Records several successes observed at the same moment (one watch response).
    pub fn successes(&self, latencies: impl IntoIterator<Item = Duration>) {
        let at = self.started.elapsed();
        let mut state = self.state.lock().expect("recorder lock");
        for latency in latencies {
            record_into(&mut state, at, latency);
        }
    }

    /// Records one failed request.
    pub fn error(&self, message: impl std::fmt::Display) {
        let mut state = self.state.lock().expect("recorder lock");
        state.errors += 1;
        if state.error_samples.len() < ERROR_SAMPLES_LIMIT {
            state.error_samples.push(message.to_string());
        }
    }

    /// Successful requests so far.
    pub fn ops(&self) -> u64 {
        self.state.lock().expect("recorder lock").ops
    }

    /// Ends the run: the measured phase lasted `elapsed`.
    pub fn finish(&self, elapsed: Duration) -> Outcome {
        let state = self.state.lock().expect("recorder lock");
        Outcome {
            latency: state.latency.clone(),
            timeline: state.timeline.clone(),
            ops: state.ops,
            errors: state.errors,
            error_samples: state.error_samples.clone(),
            elapsed,
            extra: Vec::new(),
            violations: 0,
            violation_samples: Vec::new(),
        }
    }
}

fn record_into(state: &mut RecorderState, at: Duration, latency: Duration) {
    let nanos = (latency.as_nanos() as u64).max(1);
    state.latency.saturating_record(nanos);
    state.timeline.record(at, latency);
    state.ops += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the timeline stays bounded however long the run, by merging neighbour buckets,
    // and loses no sample while doing so.
    #[test]
    fn timeline_is_bounded_and_keeps_every_sample() {
        let mut timeline = Timeline::new();
        for second in 0..1000u64 {
            timeline.record(Duration::from_secs(second), Duration::from_millis(1));
        }
        assert!(timeline.buckets().len() <= TIMELINE_BUCKETS_LIMIT);
        assert!(timeline.bucket_width() >= Duration::from_secs(4));
        let samples: u64 = timeline.buckets().iter().map(|bucket| bucket.len()).sum();
        assert_eq!(samples, 1000);
    }

    // Goal: the recorder counts successes and errors apart and keeps only a few messages.
    #[test]
    fn recorder_counts_successes_and_errors() {
        let recorder = Recorder::start();
        recorder.success(Duration::from_micros(500));
        recorder.successes([Duration::from_millis(2), Duration::from_millis(3)]);
        for n in 0..10 {
            recorder.error(format!("boom {n}"));
        }
        let outcome = recorder.finish(Duration::from_secs(1));
        assert_eq!(outcome.ops, 3);
        assert_eq!(outcome.latency.len(), 3);
        assert_eq!(outcome.errors, 10);
        assert_eq!(outcome.error_samples.len(), ERROR_SAMPLES_LIMIT);
        assert_eq!(outcome.error_samples[0], "boom 0");
    }
}
