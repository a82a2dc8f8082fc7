//! Per-peer counters for etcd's `etcd_network_peer_*` metrics. Atomics in an `Arc`, as
//! `basalt-metrics` records everywhere, so a scrape on any core can read them; the transport
//! (one executor) is the only writer.

use std::sync::Arc;

use basalt_metrics::{Counter, Histogram, HistogramSnapshot};

/// etcd's buckets for `etcd_network_peer_round_trip_time_seconds`: 0.1 ms doubling 16 times.
pub const ROUND_TRIP_SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024, 0.2048,
    0.4096, 0.8192, 1.6384, 3.2768,
];

/// What the transport counts for one peer.
#[derive(Debug)]
pub struct PeerCounters {
    /// Bytes written to the peer, frame headers included (`etcd_network_peer_sent_bytes_total`).
    pub sent_bytes: Counter,
    /// Frames that did not reach the socket: dropped on a full queue, while the peer was
    /// unreachable, or lost with a failed write (`etcd_network_peer_sent_failures_total`).
    pub sent_failures: Counter,
    /// Bytes read from the peer (`etcd_network_peer_received_bytes_total`).
    pub received_bytes: Counter,
    /// Control-lane ping round trips (`etcd_network_peer_round_trip_time_seconds`).
    pub round_trip_seconds: Histogram,
}

impl Default for PeerCounters {
    fn default() -> PeerCounters {
        PeerCounters {
            sent_bytes: Counter::new(),
            sent_failures: Counter::new(),
            received_bytes: Counter::new(),
            round_trip_seconds: Histogram::new(&ROUND_TRIP_SECONDS_BUCKETS),
        }
    }
}

/// A peer's counters and state as read at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerStats {
    /// The peer's member ID.
    pub peer: u64,
    /// Whether the peer is in the membership now (false: only frames received from it).
    pub member: bool,
    /// Whether its lanes are connected (no lane failing).
    pub reachable: bool,
    /// See [`PeerCounters::sent_bytes`].
    pub sent_bytes: u64,
    /// See [`PeerCounters::sent_failures`].
    pub sent_failures: u64,
    /// See [`PeerCounters::received_bytes`].
    pub received_bytes: u64,
    /// See [`PeerCounters::round_trip_seconds`].
    pub round_trip_seconds: HistogramSnapshot,
}

impl PeerStats {
    pub(crate) fn read(
        peer: u64,
        member: bool,
        reachable: bool,
        counters: &Arc<PeerCounters>,
    ) -> PeerStats {
        PeerStats {
            peer,
            member,
            reachable,
            sent_bytes: counters.sent_bytes.get(),
            sent_failures: counters.sent_failures.get(),
            received_bytes: counters.received_bytes.get(),
            round_trip_seconds: counters.round_trip_seconds.snapshot(),
        }
    }
}
