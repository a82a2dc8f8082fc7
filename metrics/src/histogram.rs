//! A histogram with fixed bucket bounds, as Prometheus' classic histograms.

use std::sync::atomic::{AtomicU64, Ordering};

/// Observations counted per bucket, with their sum. Each observation is a few relaxed atomic
/// adds; reading is a pass over the buckets.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds (inclusive, as Prometheus' `le`), strictly increasing; `+Inf` is implied.
    bounds: &'static [f64],
    /// One count per bound, then the count above the last bound.
    buckets: Box<[AtomicU64]>,
    /// The sum of observations in nanounits (seconds observed are summed as nanoseconds):
    /// integer adds need no compare-and-swap loop, and 2^64 ns is 584 years.
    sum_nanos: AtomicU64,
}

/// What a histogram held when it was read: the observations per bucket (not cumulative: the
/// text encoder of `prometheus-client` accumulates them as it writes `le` lines).
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    pub sum: f64,
    pub count: u64,
    /// `(upper bound, observations above the previous bound and at or below this one)`,
    /// ending with the `+Inf` bucket.
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        assert!(
            bounds.windows(2).all(|pair| pair[0] < pair[1]),
            "bucket bounds must increase strictly: {bounds:?}"
        );
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation (negative and NaN values count as zero: durations and sizes
    /// cannot be below it).
    pub fn observe(&self, value: f64) {
        let value = if value.is_nan() || value < 0.0 {
            0.0
        } else {
            value
        };
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        // `as` saturates: an absurd value cannot wrap the sum backwards.
        self.sum_nanos
            .fetch_add((value * 1e9) as u64, Ordering::Relaxed);
    }

    /// Records a duration in seconds.
    pub fn observe_duration(&self, duration: std::time::Duration) {
        self.observe(duration.as_secs_f64());
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut snapshot = HistogramSnapshot {
            sum: 0.0,
            count: 0,
            buckets: Vec::with_capacity(self.buckets.len()),
        };
        snapshot.add(self);
        snapshot
    }
}

impl HistogramSnapshot {
    /// Adds another histogram's counts to this one (the per-core parts of one metric). Both
    /// must have the same bounds; an empty snapshot takes the other's.
    pub fn add(&mut self, histogram: &Histogram) {
        if self.buckets.is_empty() {
            self.buckets = histogram
                .bounds
                .iter()
                .copied()
                .chain(std::iter::once(f64::INFINITY))
                .map(|bound| (bound, 0))
                .collect();
        }
        assert_eq!(
            self.buckets.len(),
            histogram.buckets.len(),
            "histograms summed together must share their bounds"
        );
        // The count comes from the buckets themselves, so it always equals their total even
        // while observations land during the read.
        for (index, bucket) in histogram.buckets.iter().enumerate() {
            let observed = bucket.load(Ordering::Relaxed);
            self.buckets[index].1 += observed;
            self.count += observed;
        }
        self.sum += histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BOUNDS: [f64; 3] = [0.001, 0.01, 0.1];

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        let histogram = Histogram::new(&BOUNDS);
        for value in [0.0005, 0.001, 0.002, 0.1, 5.0, -1.0, f64::NAN] {
            histogram.observe(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(
            snapshot.buckets,
            vec![(0.001, 4), (0.01, 1), (0.1, 1), (f64::INFINITY, 1)]
        );
        assert_eq!(snapshot.count, 7);
        assert!((snapshot.sum - 5.1035).abs() < 1e-9, "{}", snapshot.sum);
    }

    #[test]
    fn per_core_parts_sum_bucket_by_bucket() {
        let (a, b) = (Histogram::new(&BOUNDS), Histogram::new(&BOUNDS));
        a.observe(0.005);
        b.observe(0.005);
        b.observe(1.0);
        let mut total = a.snapshot();
        total.add(&b);
        assert_eq!(
            total.buckets,
            vec![(0.001, 0), (0.01, 2), (0.1, 0), (f64::INFINITY, 1)]
        );
        assert_eq!(total.count, 3);
    }

    #[test]
    #[should_panic(expected = "increase strictly")]
    fn unordered_bounds_are_refused() {
        static WRONG: [f64; 2] = [1.0, 0.5];
        Histogram::new(&WRONG);
    }
}
