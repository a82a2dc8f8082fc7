//! The lessor: which leases exist, when each expires, which are due for a checkpoint — plain
//! code driven by an explicit clock (milliseconds from any fixed origin), so its rules are
//! tested deterministically. The async shell (`member::lease_driver`) reads the clock, asks for
//! expired leases and due checkpoints, and proposes them through raft; the apply path tells
//! the lessor what was granted, revoked and checkpointed.
//!
//! etcd's rules, kept here:
//! - only the primary (the raft leader) tracks expiry; elsewhere leases never expire;
//! - on promotion every lease gets its remaining TTL (the checkpointed one, else its TTL) plus
//!   the election timeout (etcd's `Promote(extend)`), so a new leader never revokes a lease
//!   whose holder kept it alive through the old one;
//! - a renew restarts the full TTL and clears a checkpointed remaining TTL;
//! - an expired lease is handed out for revocation, then looked at again after the retry
//!   interval if it is still there (its revoke may have been lost);
//! - a lease whose remaining TTL exceeds the checkpoint interval is checkpointed once per
//!   interval, so a restart resumes from its remaining TTL instead of resetting it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use basalt_engine::Lease;

/// Longest TTL a lease may be granted, in seconds (etcd's `MaxLeaseTTL`).
pub const LEASE_TTL_MAX_S: i64 = 9_000_000_000;

/// A point on the lessor's clock, in milliseconds.
pub type Millis = u64;

/// Leases revoked per second at most (etcd's `leaseRevokeRate`).
pub const REVOKE_PER_SECOND: usize = 1000;

/// "Never": the expiry of a lease on a member that is not the primary.
const FOREVER: Millis = Millis::MAX;

/// The lessor's settings.
#[derive(Clone, Copy, Debug)]
pub struct LessorConfig {
    /// Shortest TTL granted, in seconds (etcd: ceil of 1.5 election timeouts in seconds).
    pub ttl_min_s: i64,
    /// Time between two checkpoints of one lease.
    pub checkpoint_interval_ms: Millis,
    /// Time after which an expired lease that is still there is handed out again.
    pub expired_retry_ms: Millis,
}

impl LessorConfig {
    /// etcd's minimum TTL: `(3 * election_ticks / 2) * heartbeat`, rounded up to seconds.
    pub fn ttl_min_s(election_ticks: u64, heartbeat_ms: u64) -> i64 {
        let min_ms = (3 * election_ticks / 2) * heartbeat_ms;
        min_ms.div_ceil(1000) as i64
    }
}

/// One lease as the lessor tracks it.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    ttl_s: i64,
    /// Checkpointed remaining TTL; 0 when none.
    remaining_ttl_s: i64,
    expiry: Millis,
    /// When the expiry heap next looks at this lease (its live heap entry).
    next_check: Millis,
    /// When its live checkpoint-heap entry is due, if it has one.
    checkpoint_at: Option<Millis>,
}

impl Tracked {
    /// etcd's `getRemainingTTL`: the checkpointed remaining TTL, else the TTL.
    fn remaining_or_ttl_s(&self) -> i64 {
        if self.remaining_ttl_s > 0 {
            self.remaining_ttl_s
        } else {
            self.ttl_s
        }
    }
}

/// What a renew found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewed {
    /// The lease now lives its full TTL again (seconds). `clear_checkpoint`: a remaining TTL was
    /// checkpointed and must be cleared through raft, or a restart would resume from it.
    Ttl { ttl_s: i64, clear_checkpoint: bool },
    /// No such lease, or it has expired and waits for its revoke.
    NotFound,
    /// This member does not lead: the leader's lessor keeps the expiries (etcd's
    /// `ErrNotPrimary`).
    NotPrimary,
}

/// The leases of this member and their timers.
pub struct Lessor {
    config: LessorConfig,
    leases: HashMap<i64, Tracked>,
    /// (when to look, lease id); an entry is live only if it matches the lease's `next_check`.
    expiry_heap: BinaryHeap<Reverse<(Millis, i64)>>,
    /// (when due, lease id); live only if it matches the lease's `checkpoint_at`.
    checkpoint_heap: BinaryHeap<Reverse<(Millis, i64)>>,
    primary: bool,
}

impl Lessor {
    /// A lessor holding the stored leases, not yet primary (nothing expires).
    pub fn new(config: LessorConfig, stored: &[Lease]) -> Lessor {
        let leases = stored
            .iter()
            .map(|l| {
                (
                    l.id,
                    Tracked {
                        ttl_s: l.ttl,
                        remaining_ttl_s: l.remaining_ttl,
                        expiry: FOREVER,
                        next_check: FOREVER,
                        checkpoint_at: None,
                    },
                )
            })
            .collect();
        Lessor {
            config,
            leases,
            expiry_heap: BinaryHeap::new(),
            checkpoint_heap: BinaryHeap::new(),
            primary: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> LessorConfig {
        self.config
    }

    /// Becomes the primary at `now`: every lease expires after its remaining TTL plus `extend`
    /// (etcd passes the election timeout). As etcd, when many leases would then expire in the
    /// same second, the later ones are pushed back so no second holds more than 3/4 of the
    /// revoke rate: a restart after a long outage does not revoke everything at once.
    pub fn promote(&mut self, now: Millis, extend_ms: Millis) {
        self.primary = true;
        self.expiry_heap.clear();
        self.checkpoint_heap.clear();
        let ids: Vec<i64> = self.leases.keys().copied().collect();
        for &id in &ids {
            self.refresh(id, now, extend_ms);
            self.schedule_checkpoint(id, now);
        }
        if ids.len() < REVOKE_PER_SECOND {
            return; // no pile-up possible
        }
        let mut by_expiry: Vec<(Millis, i64)> =
            ids.iter().map(|id| (self.leases[id].expiry, *id)).collect();
        by_expiry.sort_unstable();
        let target = (3 * REVOKE_PER_SECOND / 4) as u64;
        let mut window_start = by_expiry[0].0;
        let mut window_end = window_start + 1000;
        let mut expires: u64 = 0;
        for (expiry, id) in by_expiry {
            if expiry > window_end {
                window_start = expiry;
                window_end = expiry + 1000;
                expires = 1;
                continue;
            }
            expires += 1;
            if expires <= target {
                continue;
            }
            // etcd's rule: delay by the window's overflow, less how far into the window this
            // lease already expires.
            let delay_ms = (1000 * expires / target).saturating_sub(expiry - window_start);
            window_end = window_start + delay_ms;
            self.refresh(id, now, delay_ms + extend_ms);
        }
    }

    /// Stops being the primary (leadership moved to another member): nothing expires or is
    /// checkpointed here until this member leads again, as etcd's `Demote`; every lease's
    /// expiry is forgotten, so a later `promote` starts each from its remaining TTL.
    pub fn demote(&mut self) {
        self.primary = false;
        self.expiry_heap.clear();
        self.checkpoint_heap.clear();
        for lease in self.leases.values_mut() {
            lease.expiry = FOREVER;
            lease.next_check = FOREVER;
            lease.checkpoint_at = None;
        }
    }

    /// Whether this lessor is the primary (its member leads): only the primary expires leases
    /// and renews them.
    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// The grant of lease `id` was applied.
    pub fn on_granted(&mut self, id: i64, ttl_s: i64, now: Millis) {
        self.leases.insert(
            id,
            Tracked {
                ttl_s,
                remaining_ttl_s: 0,
                expiry: FOREVER,
                next_check: FOREVER,
                checkpoint_at: None,
            },
        );
        if self.primary {
            self.refresh(id, now, 0);
            self.schedule_checkpoint(id, now);
        }
    }

    /// The revoke of lease `id` was applied (its heap entries die lazily).
    pub fn on_revoked(&mut self, id: i64) {
        self.leases.remove(&id);
    }

    /// A checkpoint of lease `id` was applied: a restart or a new primary resumes from it.
    pub fn on_checkpointed(&mut self, id: i64, remaining_ttl_s: i64, now: Millis) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.remaining_ttl_s = remaining_ttl_s;
            lease.checkpoint_at = None;
            if self.primary {
                self.schedule_checkpoint(id, now);
            }
        }
    }

    /// A keep-alive for lease `id` at `now`.
    pub fn renew(&mut self, id: i64, now: Millis) -> Renewed {
        if !self.primary {
            return Renewed::NotPrimary;
        }
        let Some(lease) = self.leases.get(&id) else {
            return Renewed::NotFound;
        };
        // etcd's renew of an expired lease waits for its revoke and answers "not found".
        if lease.expiry <= now {
            return Renewed::NotFound;
        }
        let clear_checkpoint = lease.remaining_ttl_s > 0;
        let ttl_s = lease.ttl_s;
        // The remaining TTL stays until the clearing checkpoint applies; the expiry does not
        // depend on it meanwhile.
        let expiry = now.saturating_add(ttl_s as Millis * 1000);
        self.set_expiry(id, expiry);
        Renewed::Ttl {
            ttl_s,
            clear_checkpoint,
        }
    }

    /// (remaining seconds, granted TTL) of lease `id`, as etcd's TimeToLive reports them
    /// (remaining truncated to whole seconds).
    pub fn time_to_live(&self, id: i64, now: Millis) -> Option<(i64, i64)> {
        let lease = self.leases.get(&id)?;
        let remaining_s = if lease.expiry == FOREVER {
            lease.remaining_or_ttl_s()
        } else {
            (lease.expiry.saturating_sub(now) / 1000) as i64
        };
        Some((remaining_s, lease.ttl_s))
    }

    /// Every lease id, soonest expiry first (etcd's `Leases()` order).
    pub fn ids(&self) -> Vec<i64> {
        let mut all: Vec<(Millis, i64)> =
            self.leases.iter().map(|(id, l)| (l.expiry, *id)).collect();
        all.sort_unstable();
        all.into_iter().map(|(_, id)| id).collect()
    }

    /// Up to `limit` leases expired at `now`, to be revoked. Each is looked at again after the
    /// retry interval if it is still there then.
    pub fn expired(&mut self, now: Millis, limit: usize) -> Vec<i64> {
        let mut out = Vec::new();
        if !self.primary {
            return out;
        }
        while out.len() < limit {
            let Some(&Reverse((at, id))) = self.expiry_heap.peek() else {
                break;
            };
            if at > now {
                break;
            }
            self.expiry_heap.pop();
            let Some(lease) = self.leases.get_mut(&id) else {
                continue; // revoked since
            };
            if lease.next_check != at {
                continue; // renewed since: a newer entry is live
            }
            if lease.expiry <= now {
                out.push(id);
            }
            lease.next_check = now.saturating_add(self.config.expired_retry_ms);
            let next = lease.next_check;
            self.expiry_heap.push(Reverse((next, id)));
        }
        out
    }

    /// Up to `limit` checkpoints due at `now`: (lease id, remaining seconds rounded up).
    pub fn due_checkpoints(&mut self, now: Millis, limit: usize) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        if !self.primary {
            return out;
        }
        while out.len() < limit {
            let Some(&Reverse((at, id))) = self.checkpoint_heap.peek() else {
                break;
            };
            if at > now {
                break;
            }
            self.checkpoint_heap.pop();
            let Some(lease) = self.leases.get_mut(&id) else {
                continue;
            };
            if lease.checkpoint_at != Some(at) {
                continue;
            }
            if lease.expiry <= now {
                lease.checkpoint_at = None;
                continue; // expired: its revoke is coming
            }
            out.push((id, (lease.expiry - now).div_ceil(1000) as i64));
            // Due again after an interval should this checkpoint be lost; its apply reschedules.
            let next = now.saturating_add(self.config.checkpoint_interval_ms);
            lease.checkpoint_at = Some(next);
            self.checkpoint_heap.push(Reverse((next, id)));
        }
        out
    }

    /// etcd's `refresh(extend)`: expiry = now + extend + remaining-or-TTL.
    fn refresh(&mut self, id: i64, now: Millis, extend_ms: Millis) {
        let Some(lease) = self.leases.get(&id) else {
            return;
        };
        let expiry = now
            .saturating_add(extend_ms)
            .saturating_add(lease.remaining_or_ttl_s() as Millis * 1000);
        self.set_expiry(id, expiry);
    }

    fn set_expiry(&mut self, id: i64, expiry: Millis) {
        let lease = self.leases.get_mut(&id).expect("lease is tracked");
        lease.expiry = expiry;
        lease.next_check = expiry;
        self.expiry_heap.push(Reverse((expiry, id)));
        // Stale entries die lazily; keep the heap from growing without bound under renews.
        if self.expiry_heap.len() > 4 * self.leases.len() + 1024 {
            self.expiry_heap = self
                .leases
                .iter()
                .map(|(id, l)| Reverse((l.next_check, *id)))
                .collect();
        }
    }

    /// etcd's `scheduleCheckpointIfNeeded`: only leases that outlive one interval.
    fn schedule_checkpoint(&mut self, id: i64, now: Millis) {
        let interval = self.config.checkpoint_interval_ms;
        let Some(lease) = self.leases.get_mut(&id) else {
            return;
        };
        if lease.checkpoint_at.is_some()
            || (lease.remaining_or_ttl_s() as Millis) * 1000 <= interval
        {
            return;
        }
        let at = now.saturating_add(interval);
        lease.checkpoint_at = Some(at);
        self.checkpoint_heap.push(Reverse((at, id)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LessorConfig {
        LessorConfig {
            ttl_min_s: 2,
            checkpoint_interval_ms: 5_000,
            expired_retry_ms: 3_000,
        }
    }

    fn primary() -> Lessor {
        let mut lessor = Lessor::new(config(), &[]);
        lessor.promote(0, 1_000);
        lessor
    }

    #[test]
    fn min_ttl_follows_etcds_rule() {
        // Defaults: 10 election ticks of 100 ms → 1.5 s → 2 s.
        assert_eq!(LessorConfig::ttl_min_s(10, 100), 2);
        assert_eq!(LessorConfig::ttl_min_s(10, 200), 3);
        // Integer division first, as etcd: 3*5/2 = 7 ticks of 100 ms → 0.7 s → 1 s.
        assert_eq!(LessorConfig::ttl_min_s(5, 100), 1);
    }

    #[test]
    fn a_lease_expires_after_its_ttl_unless_renewed() {
        let mut lessor = primary();
        lessor.on_granted(1, 10, 0);
        lessor.on_granted(2, 10, 0);
        assert!(lessor.expired(9_999, 10).is_empty());
        assert_eq!(
            lessor.renew(2, 5_000),
            Renewed::Ttl {
                ttl_s: 10,
                clear_checkpoint: false
            }
        );
        assert_eq!(lessor.expired(10_000, 10), [1]);
        // Not handed out again before the retry interval; again after it while not revoked.
        assert!(lessor.expired(12_999, 10).is_empty());
        assert_eq!(lessor.expired(13_000, 10), [1]);
        lessor.on_revoked(1);
        assert!(lessor.expired(14_999, 10).is_empty());
        assert_eq!(lessor.expired(15_000, 10), [2]);
        assert!(lessor.expired(17_000, 10).is_empty());
        // An expired lease cannot be renewed back to life.
        assert_eq!(lessor.renew(2, 15_001), Renewed::NotFound);
        assert_eq!(lessor.renew(3, 0), Renewed::NotFound);
    }

    #[test]
    fn expiry_is_handed_out_in_bounded_batches_soonest_first() {
        let mut lessor = primary();
        for id in 1..=10 {
            lessor.on_granted(id, id, 0);
        }
        assert_eq!(lessor.expired(100_000, 4), [1, 2, 3, 4]);
        assert_eq!(lessor.expired(100_000, 4), [5, 6, 7, 8]);
        assert_eq!(lessor.expired(100_000, 4), [9, 10]);
    }

    #[test]
    fn a_follower_never_expires_and_promotion_extends_the_remaining_ttl() {
        let stored = [
            Lease {
                id: 1,
                ttl: 60,
                remaining_ttl: 20,
            },
            Lease {
                id: 2,
                ttl: 30,
                remaining_ttl: 0,
            },
        ];
        let mut lessor = Lessor::new(config(), &stored);
        assert!(lessor.expired(Millis::MAX - 1, 10).is_empty());
        assert_eq!(lessor.time_to_live(1, 0), Some((20, 60)));
        lessor.promote(1_000, 1_000);
        // Remaining (checkpointed, else TTL) + the election timeout.
        assert_eq!(lessor.time_to_live(1, 1_000), Some((21, 60)));
        assert_eq!(lessor.time_to_live(2, 1_000), Some((31, 30)));
        assert!(lessor.expired(21_999, 10).is_empty());
        assert_eq!(lessor.expired(22_000, 10), [1]);
    }

    #[test]
    fn promotion_spreads_a_pile_up_of_expiries() {
        let stored: Vec<Lease> = (1..=2_000)
            .map(|id| Lease {
                id,
                ttl: 10,
                remaining_ttl: 0,
            })
            .collect();
        let mut lessor = Lessor::new(config(), &stored);
        lessor.promote(0, 1_000);
        let mut per_second = std::collections::BTreeMap::<Millis, usize>::new();
        for lease in lessor.leases.values() {
            assert!(lease.expiry >= 11_000, "promotion never shortens a lease");
            *per_second.entry(lease.expiry / 1000).or_default() += 1;
        }
        assert!(per_second.len() > 1, "expiries were spread");
        assert!(
            per_second.values().all(|&n| n <= 3 * REVOKE_PER_SECOND / 4),
            "{per_second:?}"
        );
        // Few leases: no spreading.
        let mut lessor = Lessor::new(config(), &stored[..10]);
        lessor.promote(0, 1_000);
        assert!(lessor.leases.values().all(|l| l.expiry == 11_000));
    }

    #[test]
    fn long_leases_are_checkpointed_once_per_interval() {
        let mut lessor = primary();
        lessor.on_granted(1, 60, 0);
        lessor.on_granted(2, 4, 0); // shorter than the interval: never checkpointed
        assert!(lessor.due_checkpoints(4_999, 10).is_empty());
        assert_eq!(lessor.due_checkpoints(5_000, 10), [(1, 55)]);
        // Due again one interval later, should this checkpoint never apply.
        assert!(lessor.due_checkpoints(9_999, 10).is_empty());
        lessor.on_checkpointed(1, 55, 5_100);
        assert_eq!(lessor.due_checkpoints(10_100, 10), [(1, 50)]);
        lessor.on_checkpointed(1, 50, 10_100);
        // A renew restarts the TTL and asks for the checkpoint to be cleared.
        assert_eq!(
            lessor.renew(1, 11_000),
            Renewed::Ttl {
                ttl_s: 60,
                clear_checkpoint: true
            }
        );
        assert_eq!(lessor.time_to_live(1, 11_000), Some((60, 60)));
        lessor.on_checkpointed(1, 0, 11_000);
        assert!(lessor.due_checkpoints(15_999, 10).is_empty());
        assert_eq!(lessor.due_checkpoints(16_000, 10), [(1, 55)]);
    }

    #[test]
    fn renewals_do_not_grow_the_heap_without_bound() {
        let mut lessor = primary();
        lessor.on_granted(1, 10, 0);
        for now in 0..100_000 {
            lessor.renew(1, now);
        }
        assert!(lessor.expiry_heap.len() <= 4 + 1024 + 1);
        assert_eq!(lessor.expired(100_000 + 9_998, 10), Vec::<i64>::new());
        assert_eq!(lessor.expired(100_000 + 9_999, 10), [1]);
    }
}
