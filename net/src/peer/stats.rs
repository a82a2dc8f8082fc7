//! Per-peer counters for etcd's `etcd_network_*` metrics. Atomics, as `basalt-metrics`
//! records everywhere; the registry is an `Arc` the server shares with every core, so a scrape
//! on any core reads it (the transport, on one executor, is the only writer; the registry's
//! lock is taken only when a peer appears or goes, and by scrapes).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use basalt_metrics::{Counter, Gauge, Histogram, HistogramSnapshot};

/// etcd's buckets for `etcd_network_peer_round_trip_time_seconds`: 0.1 ms doubling 16 times.
pub const ROUND_TRIP_SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024, 0.2048,
    0.4096, 0.8192, 1.6384, 3.2768,
];

/// etcd's buckets for `etcd_network_snapshot_{send,receive}_total_duration_seconds`: 0.1 s
/// doubling 10 times.
pub const SNAPSHOT_SECONDS_BUCKETS: [f64; 10] =
    [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2];

/// Peers whose counters are kept (members, and senders not yet in the membership): bounds what
/// a stray sender with the right cluster ID could make us create.
pub(crate) const COUNTED_PEERS_MAX: usize = 256;

/// What the transport counts for one peer (etcd's metric in each field's doc).
#[derive(Debug)]
pub struct PeerCounters {
    /// 1 while the peer is in the membership, 0 for a sender only heard from.
    pub member: Gauge,
    /// 1 while the peer is reachable (`etcd_network_active_peers{Local,Remote}`).
    pub active: Gauge,
    /// Times the peer became unreachable (`etcd_network_disconnected_peers_total`).
    pub disconnects: Counter,
    /// Bytes written to the peer, frame headers included (`etcd_network_peer_sent_bytes_total`).
    pub sent_bytes: Counter,
    /// Frames that did not reach the socket: dropped on a full queue, while the peer was
    /// unreachable, or lost with a failed write; and failed snapshot chunks
    /// (`etcd_network_peer_sent_failures_total`).
    pub sent_failures: Counter,
    /// Bytes read from the peer (`etcd_network_peer_received_bytes_total`).
    pub received_bytes: Counter,
    /// Connections from the peer closed on a bad frame
    /// (`etcd_network_peer_received_failures_total`).
    pub received_failures: Counter,
    /// Control-lane ping round trips (`etcd_network_peer_round_trip_time_seconds`).
    pub round_trip_seconds: Histogram,
    /// Snapshots the peer confirmed (`etcd_network_snapshot_send_success`).
    pub snapshot_send_successes: Counter,
    /// Snapshots to the peer that failed (`etcd_network_snapshot_send_failures`).
    pub snapshot_send_failures: Counter,
    /// Snapshots being sent (`etcd_network_snapshot_send_inflights_total`).
    pub snapshot_send_inflight: Gauge,
    /// Open to verdict (`etcd_network_snapshot_send_total_duration_seconds`).
    pub snapshot_send_seconds: Histogram,
    /// Snapshots received whole and accepted (`etcd_network_snapshot_receive_success`).
    pub snapshot_receive_successes: Counter,
    /// Snapshots from the peer that failed (`etcd_network_snapshot_receive_failures`).
    pub snapshot_receive_failures: Counter,
    /// Snapshots being received (`etcd_network_snapshot_receive_inflights_total`).
    pub snapshot_receive_inflight: Gauge,
    /// Header to verdict (`etcd_network_snapshot_receive_total_duration_seconds`).
    pub snapshot_receive_seconds: Histogram,
}

impl Default for PeerCounters {
    fn default() -> PeerCounters {
        PeerCounters {
            member: Gauge::new(),
            active: Gauge::new(),
            disconnects: Counter::new(),
            sent_bytes: Counter::new(),
            sent_failures: Counter::new(),
            received_bytes: Counter::new(),
            received_failures: Counter::new(),
            round_trip_seconds: Histogram::new(&ROUND_TRIP_SECONDS_BUCKETS),
            snapshot_send_successes: Counter::new(),
            snapshot_send_failures: Counter::new(),
            snapshot_send_inflight: Gauge::new(),
            snapshot_send_seconds: Histogram::new(&SNAPSHOT_SECONDS_BUCKETS),
            snapshot_receive_successes: Counter::new(),
            snapshot_receive_failures: Counter::new(),
            snapshot_receive_inflight: Gauge::new(),
            snapshot_receive_seconds: Histogram::new(&SNAPSHOT_SECONDS_BUCKETS),
        }
    }
}

/// A peer's counters as read at one moment (the histograms summarised).
#[derive(Clone, Debug, PartialEq)]
pub struct PeerStats {
    /// The peer's member ID.
    pub peer: u64,
    /// Whether the peer is in the membership now (false: only frames received from it).
    pub member: bool,
    /// Whether it is reachable now.
    pub active: bool,
    /// See [`PeerCounters::disconnects`].
    pub disconnects: u64,
    /// See [`PeerCounters::sent_bytes`].
    pub sent_bytes: u64,
    /// See [`PeerCounters::sent_failures`].
    pub sent_failures: u64,
    /// See [`PeerCounters::received_bytes`].
    pub received_bytes: u64,
    /// See [`PeerCounters::received_failures`].
    pub received_failures: u64,
    /// See [`PeerCounters::round_trip_seconds`].
    pub round_trip_seconds: HistogramSnapshot,
    /// See [`PeerCounters::snapshot_send_successes`].
    pub snapshot_send_successes: u64,
    /// See [`PeerCounters::snapshot_send_failures`].
    pub snapshot_send_failures: u64,
    /// See [`PeerCounters::snapshot_receive_successes`].
    pub snapshot_receive_successes: u64,
    /// See [`PeerCounters::snapshot_receive_failures`].
    pub snapshot_receive_failures: u64,
}

impl PeerStats {
    fn read(peer: u64, counters: &PeerCounters) -> PeerStats {
        PeerStats {
            peer,
            member: counters.member.get() == 1,
            active: counters.active.get() == 1,
            disconnects: counters.disconnects.get(),
            sent_bytes: counters.sent_bytes.get(),
            sent_failures: counters.sent_failures.get(),
            received_bytes: counters.received_bytes.get(),
            received_failures: counters.received_failures.get(),
            round_trip_seconds: counters.round_trip_seconds.snapshot(),
            snapshot_send_successes: counters.snapshot_send_successes.get(),
            snapshot_send_failures: counters.snapshot_send_failures.get(),
            snapshot_receive_successes: counters.snapshot_receive_successes.get(),
            snapshot_receive_failures: counters.snapshot_receive_failures.get(),
        }
    }
}

/// Every counted peer's counters, shareable with every core (`Transport::metrics`).
#[derive(Debug)]
pub struct PeerMetrics {
    local_id: u64,
    peers: Mutex<BTreeMap<u64, Arc<PeerCounters>>>,
}

impl PeerMetrics {
    pub(crate) fn new(local_id: u64) -> PeerMetrics {
        PeerMetrics {
            local_id,
            peers: Mutex::default(),
        }
    }

    /// This member's ID (etcd's `Local` label).
    pub fn local_id(&self) -> u64 {
        self.local_id
    }

    /// Each counted peer's counters, by ID (for an exposition that reads the histograms
    /// itself).
    pub fn peers(&self) -> Vec<(u64, Arc<PeerCounters>)> {
        let peers = self
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        peers
            .iter()
            .map(|(id, counters)| (*id, counters.clone()))
            .collect()
    }

    /// Each counted peer's counters as read now, by ID.
    pub fn snapshot(&self) -> Vec<PeerStats> {
        self.peers()
            .iter()
            .map(|(id, counters)| PeerStats::read(*id, counters))
            .collect()
    }

    /// The counters of `peer`, created on first use; a peer beyond the bound is not counted
    /// unless `always` (members are always counted).
    pub(crate) fn counters_for(&self, peer: u64, always: bool) -> Option<Arc<PeerCounters>> {
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(existing) = peers.get(&peer) {
            return Some(existing.clone());
        }
        if !always && peers.len() >= COUNTED_PEERS_MAX {
            return None;
        }
        Some(peers.entry(peer).or_default().clone())
    }

    /// Stops counting `peer` (it left the membership).
    pub(crate) fn forget(&self, peer: u64) {
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        peers.remove(&peer);
    }
}
