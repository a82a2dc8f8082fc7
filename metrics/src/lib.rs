//! Recording for Prometheus metrics, cheap enough for the request path.
//!
//! Every core records into its own instances (atomics on its own cache lines, so no two cores
//! write one line), and a scrape reads every instance and sums them. Nothing here encodes the
//! exposition format: the server does that at scrape time with `prometheus-client`, so the
//! crates that record (the WAL, the gRPC server) do not depend on it.

mod counter;
mod histogram;

pub use counter::{Counter, Gauge};
pub use histogram::{Histogram, HistogramSnapshot};

/// etcd's buckets for disk latencies (`etcd_disk_wal_fsync_duration_seconds`,
/// `etcd_disk_backend_commit_duration_seconds`): 1 ms doubling 14 times, to 8.192 s.
pub const DISK_SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192,
];

/// Prometheus' default buckets, which `grpc_server_handling_seconds` uses.
pub const DEFAULT_SECONDS_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counts of things per batch (records per WAL group commit): 1 doubling to 4096.
pub const BATCH_SIZE_BUCKETS: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// Keeps what it holds on cache lines of its own, so one core's writes never invalidate a line
/// another core writes (128 bytes: adjacent-line prefetch pairs lines on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CacheLinePadded<T>(pub T);

impl<T> std::ops::Deref for CacheLinePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
