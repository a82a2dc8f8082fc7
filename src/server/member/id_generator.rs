//! etcd's request-id generator (its `idutil`), which names proposals, read requests and leases
//! granted with ID 0: the member id's low 16 bits, then a 48-bit suffix that starts at the
//! clock's milliseconds (40 bits) shifted past an 8-bit counter and counts up. Members never
//! share a prefix unless their ids share their low 16 bits, so ids from different members do
//! not meet in the replicated log: an applied entry answers only the member that proposed it.

use std::cell::Cell;

/// Bits of the suffix; the prefix takes the 16 above them.
const SUFFIX_BITS: u32 = 48;
const SUFFIX_MASK: u64 = (1 << SUFFIX_BITS) - 1;

/// One member's generator (the generator itself is not replicated state).
pub struct IdGenerator {
    prefix: u64,
    suffix: Cell<u64>,
}

impl IdGenerator {
    /// A generator for `member_id` whose first id is above `floor` when `floor` carries this
    /// member's prefix (ids replayed from the log after a restart: a replayed entry must never
    /// answer a request of this run, even if the clock stepped back).
    pub fn new(member_id: u64, floor: Option<u64>) -> IdGenerator {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let prefix = (member_id & 0xffff) << SUFFIX_BITS;
        let mut suffix = (millis & ((1 << 40) - 1)) << 8;
        if let Some(floor) = floor.filter(|floor| floor & !SUFFIX_MASK == prefix) {
            suffix = suffix.max(floor & SUFFIX_MASK);
        }
        IdGenerator {
            prefix,
            suffix: Cell::new(suffix),
        }
    }

    /// Whether `id` was made by a generator of this member.
    pub fn is_own(&self, id: u64) -> bool {
        id & !SUFFIX_MASK == self.prefix
    }

    /// The next id (never 0).
    pub fn next(&self) -> u64 {
        loop {
            let suffix = self.suffix.get().wrapping_add(1) & SUFFIX_MASK;
            self.suffix.set(suffix);
            let id = self.prefix | suffix;
            if id != 0 {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: two members' ids never meet, and a restarted member starts above the ids of its
    /// own that its log replays, even when they lie in the clock's future.
    #[test]
    fn ids_are_per_member_and_above_the_replayed_ones() {
        let first = IdGenerator::new(0x1111_0001, None);
        let second = IdGenerator::new(0x2222_0002, None);
        let a = first.next();
        let b = second.next();
        assert_ne!(a >> 48, b >> 48);
        assert!(first.is_own(a) && !first.is_own(b));
        let future = (0x0001 << 48) | (SUFFIX_MASK - 10);
        let restarted = IdGenerator::new(0x1111_0001, Some(future));
        assert!(restarted.next() > future);
        // Another member's floor does not move this member's ids.
        let unaffected = IdGenerator::new(0x2222_0002, Some(future));
        assert!(unaffected.next() < (0x0002 << 48) | (SUFFIX_MASK - 10));
    }
}
