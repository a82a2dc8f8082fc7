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
    /// Live keys when the member opened its database (-1 until counted, off the start path).
    keys_at_open: Gauge,
    /// Keys created less keys deleted by what the member applied since.
    keys_changed: Gauge,
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
            keys_at_open: Gauge::with_value(-1),
            keys_changed: Gauge::new(),
            db_size_in_use_bytes: Gauge::new(),
            backend_commit_seconds: Histogram::new(&DISK_SECONDS_BUCKETS),
        }
    }
}

impl MemberMetrics {
    /// Counts keys created (a put at version 1) and deleted among applied events.
    pub fn count_key_changes(&self, events: &[basalt_engine::Event]) {
        let change: i64 = events
            .iter()
            .map(|event| match event.kind {
                basalt_engine::EventKind::Put if event.kv.version == 1 => 1,
                basalt_engine::EventKind::Put => 0,
                basalt_engine::EventKind::Delete => -1,
            })
            .sum();
        if change != 0 {
            self.keys_changed.add(change);
        }
    }

    pub fn set_keys_at_open(&self, keys: i64) {
        assert!(keys >= 0, "a key count is never negative: {keys}");
        self.keys_at_open.set(keys);
    }

    /// Live keys (`etcd_debugging_mvcc_keys_total`), once the count at open is known.
    pub fn keys_total(&self) -> Option<i64> {
        let at_open = self.keys_at_open.get();
        (at_open >= 0).then(|| at_open + self.keys_changed.get())
    }

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
