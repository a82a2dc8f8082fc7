//! The ids the raft owner gives leases granted with ID 0: chosen before proposing, so the
//! log holds the id (the generator itself is not replicated state).

use super::id_generator::IdGenerator;

/// etcd names leases with its request-id generator; so does basalt.
pub struct LeaseIds {
    ids: IdGenerator,
}

impl LeaseIds {
    pub fn new(member_id: u64) -> LeaseIds {
        LeaseIds {
            ids: IdGenerator::new(member_id, None),
        }
    }

    /// The next id: positive, possibly 0 (the caller skips it).
    pub fn next(&self) -> i64 {
        (self.ids.next() & (i64::MAX as u64)) as i64
    }
}
