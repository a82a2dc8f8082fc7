//! etcd's connectivity rules for `--strict-reconfig-check` (`mayAddMember`, `mayRemoveMember`
//! with `isConnectedFullySince` and `numConnectedSince`): a membership change is refused with
//! "etcdserver: unhealthy cluster" unless the member asked has been connected to enough of the
//! voters for the health interval. They read only since when each peer has been reachable
//! without a break (the peer transport's `active_since`), so they are plain functions of it.

use std::time::{Duration, Instant};

use crate::server::state_machine::membership_change::MembershipChange;

/// etcd's `HealthInterval`: how long a peer must have been reachable without a break to count.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// The voters as this member sees them: each voter's ID and since when it has been reachable
/// from here (`None`: not now). This member itself always counts as connected.
pub struct Connectivity<'a> {
    pub own: u64,
    pub voters: &'a [(u64, Option<Instant>)],
    pub now: Instant,
    /// `HEALTH_INTERVAL`, or the simulation's, scaled to its faster ticks.
    pub health_interval: Duration,
}

impl Connectivity<'_> {
    /// Voters connected since the health interval began (etcd's `numConnectedSince`).
    fn connected_throughout(&self) -> usize {
        let since = self.now.checked_sub(self.health_interval);
        self.voters
            .iter()
            .filter(|(id, active_since)| {
                *id == self.own
                    || matches!((active_since, since), (Some(at), Some(since)) if *at < since)
            })
            .count()
    }

    /// etcd's `mayAddMember` rule for a voter: this member has been connected to every voter
    /// for the health interval (`isConnectedFullySince`).
    pub fn may_add_voter(&self) -> bool {
        self.connected_throughout() == self.voters.len()
    }

    /// Whether `--strict-reconfig-check`'s connectivity rules allow `change`: adding a member
    /// (etcd 3.4 checks a learner's addition too) needs every voter connected, removing a voter
    /// needs the rest to keep a connected quorum; removing a learner or promoting one is free
    /// of them. `is_learner` says whether a member is a learner now.
    pub fn allows(&self, change: &MembershipChange, is_learner: impl Fn(u64) -> bool) -> bool {
        match change {
            MembershipChange::Add { .. } => self.may_add_voter(),
            MembershipChange::Remove { member_id } if !is_learner(*member_id) => {
                self.may_remove_voter(*member_id)
            }
            _ => true,
        }
    }

    /// etcd's `mayRemoveMember` rule for a voter (a learner is removed freely): a voter that
    /// is down now may go (it is no part of the active quorum); otherwise the voters connected
    /// for the health interval, less the one removed, must still be a quorum of the voters.
    pub fn may_remove_voter(&self, removed: u64) -> bool {
        let removed_active = self
            .voters
            .iter()
            .any(|(id, active_since)| *id == removed && active_since.is_some());
        if removed != self.own && !removed_active {
            return true;
        }
        // etcd: refused when `connected - 1 < 1 + (voters - 1) / 2`.
        let quorum_after = 1 + self.voters.len().saturating_sub(1) / 2;
        self.connected_throughout() > quorum_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(now: Instant, voters: &[(u64, Option<Instant>)]) -> Connectivity<'_> {
        Connectivity {
            own: 1,
            voters,
            now,
            health_interval: HEALTH_INTERVAL,
        }
    }

    #[test]
    fn etcd_rules_on_three_voters() {
        let now = Instant::now() + 2 * HEALTH_INTERVAL;
        let long_ago = Some(now - 2 * HEALTH_INTERVAL);
        let just_now = Some(now - Duration::from_secs(1));

        let healthy = [(1, None), (2, long_ago), (3, long_ago)];
        assert!(view(now, &healthy).may_add_voter());
        assert!(view(now, &healthy).may_remove_voter(2));
        assert!(view(now, &healthy).may_remove_voter(1));

        // One follower down: no voter may be added; the down one may go, the live one not
        // (two connected less one is not a quorum of three).
        let one_down = [(1, None), (2, long_ago), (3, None)];
        assert!(!view(now, &one_down).may_add_voter());
        assert!(view(now, &one_down).may_remove_voter(3));
        assert!(!view(now, &one_down).may_remove_voter(2));
        assert!(!view(now, &one_down).may_remove_voter(1));

        // A peer connected for less than the health interval does not count yet.
        let fresh = [(1, None), (2, just_now), (3, long_ago)];
        assert!(!view(now, &fresh).may_add_voter());
        assert!(view(now, &fresh).may_remove_voter(3) == view(now, &fresh).may_remove_voter(2));
        assert!(!view(now, &fresh).may_remove_voter(2));

        // A member alone is connected to every voter: itself.
        assert!(view(now, &[(1, None)]).may_add_voter());
    }

    #[test]
    fn five_voters_keep_a_quorum_with_one_down() {
        let now = Instant::now() + 2 * HEALTH_INTERVAL;
        let up = Some(now - 2 * HEALTH_INTERVAL);
        let voters = [(1, None), (2, up), (3, up), (4, up), (5, None)];
        // Four connected less one leaves three of five.
        assert!(view(now, &voters).may_remove_voter(2));
        assert!(!view(now, &voters).may_add_voter());
    }
}
