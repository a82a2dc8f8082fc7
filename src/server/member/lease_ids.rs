//! The ids the raft owner gives leases granted with ID 0: chosen before proposing, so the
//! log holds the id (the generator itself is not replicated state).

use std::cell::Cell;

/// etcd's request-id generator, which also names leases: the member id's low 16 bits, then
/// the start time in milliseconds (40 bits) and a counter (8 bits) that count up together —
/// unique across restarts as long as the clock does not step back.
pub struct LeaseIds {
    prefix: u64,
    suffix: Cell<u64>,
}

impl LeaseIds {
    pub fn new(member_id: u64) -> LeaseIds {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        LeaseIds {
            prefix: member_id << 48,
            suffix: Cell::new((millis & ((1 << 40) - 1)) << 8),
        }
    }

    /// The next id: positive, possibly 0 (the caller skips it).
    pub fn next(&self) -> i64 {
        let suffix = self.suffix.get().wrapping_add(1);
        self.suffix.set(suffix);
        ((self.prefix | (suffix & ((1 << 48) - 1))) & (i64::MAX as u64)) as i64
    }
}
