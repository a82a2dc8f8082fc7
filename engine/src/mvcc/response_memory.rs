//! The member-wide bound on bytes held by read responses. Each read's [`ResponseBudget`]
//! bounds one answer (grpc-go's send limit, 2 GiB); this bounds all of them together, so 200
//! clients each reading a 1 GiB keyspace cannot allocate 200 GiB between them. Shared by every
//! core without a lock: one atomic counter, taken from in chunks so a scan of many small keys
//! touches it once per [`TAKE_CHUNK_BYTES`], not once per key.
//!
//! The rule: a read may take bytes while the total stays within the limit, **or while it is the
//! only read holding any** — a lone read larger than the limit (which etcd would serve) still
//! runs; meanwhile every other read is refused. So the member holds at most
//! `max(limit, the largest single answer) + one chunk per read in flight`.
//!
//! [`ResponseBudget`]: super::response_budget::ResponseBudget

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes a read takes from the member-wide counter at a time.
pub const TAKE_CHUNK_BYTES: usize = 256 * 1024;

/// Bytes held by responses over the whole member, with their limit.
#[derive(Debug)]
pub struct ResponseMemory {
    limit_bytes: usize,
    held_bytes: AtomicUsize,
}

impl ResponseMemory {
    /// A member-wide bound of `limit_bytes`.
    pub fn new(limit_bytes: usize) -> Arc<ResponseMemory> {
        Arc::new(ResponseMemory {
            limit_bytes,
            held_bytes: AtomicUsize::new(0),
        })
    }

    /// The bound.
    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    /// Bytes held now by every read together.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes.load(Ordering::Acquire)
    }

    /// Whether a read that was refused while holding `needed_bytes` could now take them: they
    /// fit under the limit, or nobody holds anything (it would run alone).
    pub fn has_room_for(&self, needed_bytes: usize) -> bool {
        let held = self.held_bytes();
        held == 0 || held.saturating_add(needed_bytes) <= self.limit_bytes
    }

    /// Takes `bytes` more for a read already holding `own_bytes`; `false` (nothing taken) when
    /// the total would pass the limit while other reads hold bytes.
    fn try_take(&self, own_bytes: usize, bytes: usize) -> bool {
        let before = self.held_bytes.fetch_add(bytes, Ordering::AcqRel);
        assert!(
            before >= own_bytes,
            "a read holds more than the member does"
        );
        let after = before.saturating_add(bytes);
        let others = before - own_bytes;
        if after > self.limit_bytes && others > 0 {
            self.give_back(bytes);
            return false;
        }
        true
    }

    fn give_back(&self, bytes: usize) {
        let before = self.held_bytes.fetch_sub(bytes, Ordering::AcqRel);
        assert!(before >= bytes, "more response bytes given back than taken");
    }
}

/// The bytes one read holds under a [`ResponseMemory`]; given back when dropped, so an error,
/// a cancelled call or a sent answer all return them. Travels with the answer until it is
/// sent.
#[derive(Debug)]
pub struct ResponseMemoryHold {
    memory: Arc<ResponseMemory>,
    /// Taken from `memory` (a multiple of the chunk, at least `used_bytes`).
    taken_bytes: usize,
    /// Charged by the read.
    used_bytes: usize,
}

impl ResponseMemoryHold {
    /// Holds nothing yet under `memory`.
    pub fn new(memory: Arc<ResponseMemory>) -> ResponseMemoryHold {
        ResponseMemoryHold {
            memory,
            taken_bytes: 0,
            used_bytes: 0,
        }
    }

    /// Bytes the read has charged.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    /// Charges `bytes`, taking another chunk from the member when needed; `false` when the
    /// member refuses (the charge is not recorded).
    pub(crate) fn charge(&mut self, bytes: usize) -> bool {
        let used = self.used_bytes.saturating_add(bytes);
        if used > self.taken_bytes {
            let more = (used - self.taken_bytes).max(TAKE_CHUNK_BYTES);
            if !self.memory.try_take(self.taken_bytes, more) {
                return false;
            }
            self.taken_bytes += more;
        }
        self.used_bytes = used;
        true
    }
}

impl Drop for ResponseMemoryHold {
    fn drop(&mut self) {
        if self.taken_bytes > 0 {
            self.memory.give_back(self.taken_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    //! Goal: reads together stay within the limit, a lone read may pass it, and every byte
    //! comes back when the holds drop.
    use super::*;

    #[test]
    fn reads_share_the_limit_and_a_lone_read_may_pass_it() {
        let memory = ResponseMemory::new(4 * TAKE_CHUNK_BYTES);
        let mut first = ResponseMemoryHold::new(memory.clone());
        assert!(first.charge(3 * TAKE_CHUNK_BYTES));
        let mut second = ResponseMemoryHold::new(memory.clone());
        assert!(second.charge(10), "one chunk still fits");
        assert!(
            !second.charge(TAKE_CHUNK_BYTES),
            "past the limit with another read"
        );
        assert_eq!(second.used_bytes(), 10);
        assert!(!memory.has_room_for(2 * TAKE_CHUNK_BYTES));
        drop(second);
        assert_eq!(memory.held_bytes(), 3 * TAKE_CHUNK_BYTES);
        // Alone, the first read goes on past the limit.
        assert!(first.charge(5 * TAKE_CHUNK_BYTES));
        assert_eq!(first.used_bytes(), 8 * TAKE_CHUNK_BYTES);
        let mut third = ResponseMemoryHold::new(memory.clone());
        assert!(
            !third.charge(1),
            "nothing left while the lone read holds it all"
        );
        drop(third);
        drop(first);
        assert_eq!(memory.held_bytes(), 0);
        assert!(memory.has_room_for(usize::MAX));
    }
}
