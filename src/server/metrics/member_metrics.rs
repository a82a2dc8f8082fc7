//! The raft member's metrics, written only by the owner core (etcd's `etcd_server_*` and
//! `etcd_disk_backend_commit_duration_seconds`).

use basalt_metrics::{Counter, Gauge, Histogram, DISK_SECONDS_BUCKETS};

#[derive(Debug)]
pub struct MemberMetrics {
    /// 1 while a leader is known.
    pub has_leader: Gauge,
    /// 1 while this member leads.
    pub is_leader: Gauge,
    /// Times a new leader was seen (the first election counts, as etcd counts it).
    pub leader_changes: Counter,
    /// Raft's commit index (etcd's `proposals_committed_total` is this gauge).
    pub proposals_committed: Gauge,
    /// The index applied to the database.
    pub proposals_applied: Gauge,
    /// Proposals waiting to be applied.
    pub proposals_pending: Gauge,
    /// Proposals that failed (no leader, timed out, refused, member stopped).
    pub proposals_failed: Counter,
    /// The database's bytes in use, measured after each engine sync (measuring waits for the
    /// writer, so a scrape reads this instead).
    pub db_size_in_use_bytes: Gauge,
    /// The leader last seen (0: none), to tell a change.
    leader: Gauge,
    /// Seconds each durable commit of the database (an engine sync) took.
    pub backend_commit_seconds: Histogram,
}

impl Default for MemberMetrics {
    fn default() -> MemberMetrics {
        MemberMetrics {
            has_leader: Gauge::new(),
            is_leader: Gauge::new(),
            leader_changes: Counter::new(),
            proposals_committed: Gauge::new(),
            proposals_applied: Gauge::new(),
            proposals_pending: Gauge::new(),
            proposals_failed: Counter::new(),
            leader: Gauge::new(),
            db_size_in_use_bytes: Gauge::new(),
            backend_commit_seconds: Histogram::new(&DISK_SECONDS_BUCKETS),
        }
    }
}

impl MemberMetrics {
    /// Records raft's view of the leader after a round; counts a change to a new leader.
    pub fn observe_leader(&self, leader: u64, member_id: u64) {
        let known = leader != 0;
        // Only the owner core writes: a read then a write is not a race here.
        if known && self.leader.get() as u64 != leader {
            self.leader_changes.inc();
        }
        self.leader.set(leader as i64);
        self.has_leader.set(i64::from(known));
        self.is_leader.set(i64::from(known && leader == member_id));
    }
}
