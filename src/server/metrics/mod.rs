//! Prometheus metrics: what each part records, and the `/metrics` exposition that reads it.
//!
//! Recording is a relaxed atomic add on memory the recording core owns (the owner core's
//! member and WAL, each core's gRPC router), so the request path shares no cache line between
//! cores; a scrape, on whichever core it arrives, reads every part and sums (`exposition`).
//! This layer imports nothing from the server's other layers: they hand it their parts.

pub mod exposition;
pub mod link_depth;
pub mod member_metrics;
mod peer_exposition;
mod process_metrics;

use std::sync::{Arc, Mutex, OnceLock};

use basalt_engine::Engine;
use basalt_net::grpc::GrpcCallCounts;
use basalt_net::peer::PeerMetrics;
use basalt_wal::WalMetrics;

pub use link_depth::OwnerLinkDepth;
pub use member_metrics::MemberMetrics;

/// One core's unsynced watchers (`etcd_debugging_mvcc_slow_watcher_total`, summed at scrape),
/// on a line of its own: only that core's hub writes it.
pub type SlowWatchers = basalt_metrics::CacheLinePadded<basalt_metrics::Gauge>;

/// The member-wide counts of Watch streams and watchers (kept by the watch layer's limits).
pub trait WatchCounts: std::fmt::Debug + Send + Sync {
    /// Open Watch streams on every core.
    fn watch_streams(&self) -> usize;
    /// Watchers on every core.
    fn watchers(&self) -> usize;
}

/// `--metrics`: `extensive` adds the per-method gRPC latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsLevel {
    Basic,
    Extensive,
}

/// What never changes while the member runs, reported as labels or constant gauges.
#[derive(Clone, Debug)]
pub struct MemberFacts {
    pub member_id: u64,
    /// The version reported to clients (`etcd_server_version{server_version}`).
    pub server_version: String,
    pub cluster_version: String,
    /// `--quota-backend-bytes` as enforced (`etcd_server_quota_backend_bytes`).
    pub quota_backend_bytes: u64,
}

/// Every part's metrics, shared by all cores (one per process).
pub struct ServerMetrics {
    pub level: MetricsLevel,
    pub facts: MemberFacts,
    /// Written by the raft owner's core.
    pub member: MemberMetrics,
    /// The WAL's histograms, once the owner has opened it.
    wal: OnceLock<Arc<WalMetrics>>,
    /// The peer transport's per-peer counters, once it starts (never on a one-member
    /// cluster, which exposes no `etcd_network_peer_*` series, as etcd with no peers).
    peers: OnceLock<Arc<PeerMetrics>>,
    /// Each client core's link to the owner, by core (set up before the cores start).
    owner_links: Mutex<Vec<(usize, Arc<OwnerLinkDepth>)>>,
    /// The client connections each core serves, once the cores are set up.
    connection_shares: OnceLock<Arc<basalt_net::handoff::ConnectionShares>>,
    /// Each core's unsynced watchers.
    slow_watchers: Mutex<Vec<Arc<SlowWatchers>>>,
    /// The watch layer's counts, once the server has its limits.
    watches: OnceLock<Arc<dyn WatchCounts>>,
    /// Each core's gRPC call counts (one entry per client server built; a handful).
    grpc: Mutex<Vec<Arc<GrpcCallCounts>>>,
    engine: Arc<Engine>,
    /// The process's start, for `process_start_time_seconds`.
    started_at: std::time::SystemTime,
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMetrics")
            .field("level", &self.level)
            .field("facts", &self.facts)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl ServerMetrics {
    pub fn new(level: MetricsLevel, facts: MemberFacts, engine: Arc<Engine>) -> ServerMetrics {
        ServerMetrics {
            level,
            facts,
            member: MemberMetrics::default(),
            wal: OnceLock::new(),
            peers: OnceLock::new(),
            grpc: Mutex::new(Vec::new()),
            owner_links: Mutex::new(Vec::new()),
            connection_shares: OnceLock::new(),
            watches: OnceLock::new(),
            slow_watchers: Mutex::new(Vec::new()),
            engine,
            started_at: std::time::SystemTime::now(),
        }
    }

    /// Adds the WAL's histograms (the owner opens one WAL per run).
    pub fn add_wal(&self, wal: Arc<WalMetrics>) {
        assert!(
            self.wal.set(wal).is_ok(),
            "one write-ahead log per member run"
        );
    }

    /// Adds the peer transport's counters (the owner starts one transport per run).
    pub fn add_peers(&self, peers: Arc<PeerMetrics>) {
        assert!(
            self.peers.set(peers).is_ok(),
            "one peer transport per member run"
        );
    }

    /// The counters of client core `core`'s link to the owner.
    pub fn add_owner_link(&self, core: usize) -> Arc<OwnerLinkDepth> {
        let depth = Arc::new(OwnerLinkDepth::default());
        let mut links = lock(&self.owner_links);
        assert!(
            links.iter().all(|(known, _)| *known != core),
            "one link per core"
        );
        links.push((core, depth.clone()));
        depth
    }

    /// Adds the count of client connections each core serves (one set per process).
    pub fn add_connection_shares(&self, shares: Arc<basalt_net::handoff::ConnectionShares>) {
        assert!(
            self.connection_shares.set(shares).is_ok(),
            "one set of connection counts per process"
        );
    }

    fn connection_shares(&self) -> Option<&basalt_net::handoff::ConnectionShares> {
        self.connection_shares.get().map(|shares| &**shares)
    }

    /// Each client core's link counters, by core.
    fn owner_links(&self) -> Vec<(usize, Arc<OwnerLinkDepth>)> {
        lock(&self.owner_links).clone()
    }

    /// Adds the member-wide watch counts.
    pub fn add_watch_counts(&self, counts: Arc<dyn WatchCounts>) {
        assert!(
            self.watches.set(counts).is_ok(),
            "one set of watch counts per member"
        );
    }

    /// A new count of one core's unsynced watchers.
    pub fn add_slow_watchers(&self) -> Arc<SlowWatchers> {
        let slow = Arc::new(SlowWatchers::default());
        lock(&self.slow_watchers).push(slow.clone());
        slow
    }

    /// Unsynced watchers on every core.
    fn slow_watchers(&self) -> i64 {
        lock(&self.slow_watchers)
            .iter()
            .map(|slow| slow.get())
            .sum()
    }

    /// Adds one core's gRPC call counts.
    pub fn add_grpc_calls(&self, counts: Arc<GrpcCallCounts>) {
        self.grpc_parts().push(counts);
    }

    /// Whether calls should be timed (`--metrics=extensive`).
    pub fn times_grpc_calls(&self) -> bool {
        self.level == MetricsLevel::Extensive
    }

    fn grpc_parts(&self) -> std::sync::MutexGuard<'_, Vec<Arc<GrpcCallCounts>>> {
        lock(&self.grpc)
    }
}

/// Locks a list of parts (taken when a part is added and by scrapes, never per request).
fn lock<T>(parts: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock ends the process (fail-stop), so poison is moot.
    parts
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
