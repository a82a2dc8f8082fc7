//! Maps keyed by the member's request ids (proposals and reads waiting for raft), hashed by one
//! multiplication instead of std's SipHash: the ids are the member's own (`id_generator`), not
//! chosen by a client, so the flooding SipHash defends against cannot happen here, and
//! `HashMap::remove` with SipHash was 1.7 % of the raft core's CPU under put load (one insert
//! and one remove per proposal).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from request id to `V`.
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of one `u64`: the low bits (the table's bucket) follow the id's low bits
/// one to one, so consecutive ids never collide in them, and the high bits (the table's
/// control byte) mix in every bit of the id.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, _bytes: &[u8]) {
        unreachable!("IdHasher hashes u64 keys only");
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_one_member_spread_over_buckets_and_control_bytes() {
        let ids =
            crate::server::member::id_generator::IdGenerator::new(0x8e9e_05c5_2164_694d, None);
        let hashes: Vec<u64> = (0..4096)
            .map(|_| {
                let mut hasher = IdHasher::default();
                hasher.write_u64(ids.next());
                hasher.finish()
            })
            .collect();
        // A table of 4096 buckets: consecutive ids land in distinct ones.
        let buckets: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 4095).collect();
        assert_eq!(buckets.len(), 4096);
        // The control byte (top 7 bits) takes every one of its 128 values.
        let tags: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(tags.len(), 128);
        let mut map: IdMap<usize> = IdMap::default();
        for (i, id) in (0..1000u64).map(|i| (i, i * 7919)) {
            map.insert(id, i as usize);
        }
        assert!((0..1000u64).all(|i| map.remove(&(i * 7919)) == Some(i as usize)));
    }
}
