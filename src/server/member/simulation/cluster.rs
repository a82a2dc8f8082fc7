//! The simulated members' cluster table: who is a voter, who a learner, who was removed, as
//! of a state machine's applied index. It validates a committed membership change as the real
//! table does (`state_machine::cluster_state`: a removed id never returns, an Add of a known
//! member is refused except the bootstrap's own entries, a Promote needs a learner, a Remove a
//! member), so every member passes the same changes to raft in the same order, and it travels
//! with the state machine in a snapshot: a member that installs one learns the membership from
//! it, as a real member reads it from the engine's cluster table when it restarts.

use std::collections::{BTreeMap, BTreeSet};

use raft::prelude::ConfState;

use crate::server::state_machine::membership_change::MembershipChange;

#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Cluster {
    /// Member id -> whether it is a learner.
    members: BTreeMap<u64, bool>,
    removed: BTreeSet<u64>,
}

impl Cluster {
    /// The table every initial member records before its log starts (etcd's bootstrap).
    pub fn initial(voters: &[u64]) -> Cluster {
        Cluster {
            members: voters.iter().map(|&id| (id, false)).collect(),
            removed: BTreeSet::new(),
        }
    }

    /// Whether the table holds anything (a joining member's starts empty and is built by the
    /// bootstrap entries it replays, or arrives whole in a snapshot).
    pub fn is_recorded(&self) -> bool {
        !self.members.is_empty() || !self.removed.is_empty()
    }

    /// Applies a committed change; `Ok(true)` if raft must apply it too, `Ok(false)` for a
    /// bootstrap entry the table already holds, `Err` for a change the table refuses (raft
    /// never sees it, on every member alike).
    pub fn apply(&mut self, change: &MembershipChange, bootstrap: bool) -> Result<bool, String> {
        let id = change.member_id();
        if self.removed.contains(&id) {
            return Err(format!("member {id} was removed"));
        }
        match change {
            MembershipChange::Add { learner, .. } => {
                if let Some(is_learner) = self.members.get(&id) {
                    return if bootstrap && is_learner == learner {
                        Ok(false)
                    } else {
                        Err(format!("member {id} exists"))
                    };
                }
                self.members.insert(id, *learner);
            }
            MembershipChange::Promote { .. } => match self.members.get_mut(&id) {
                Some(learner @ true) => *learner = false,
                Some(false) => return Err(format!("member {id} is not a learner")),
                None => return Err(format!("member {id} not found")),
            },
            MembershipChange::Remove { .. } => {
                if self.members.remove(&id).is_none() {
                    return Err(format!("member {id} not found"));
                }
                self.removed.insert(id);
            }
        }
        Ok(true)
    }

    /// The membership as raft's ConfState, ids in ascending order.
    pub fn conf_state(&self) -> ConfState {
        let mut conf_state = ConfState::default();
        for (&id, &learner) in &self.members {
            if learner {
                conf_state.learners.push(id);
            } else {
                conf_state.voters.push(id);
            }
        }
        conf_state
    }

    pub fn voters(&self) -> Vec<u64> {
        self.conf_state().voters
    }

    pub fn learners(&self) -> Vec<u64> {
        self.conf_state().learners
    }

    pub fn is_member(&self, id: u64) -> bool {
        self.members.contains_key(&id)
    }

    pub fn is_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }
}

/// `conf_state` with its id lists sorted (raft-rs does not sort them), for comparisons.
pub fn sorted(mut conf_state: ConfState) -> ConfState {
    conf_state.voters.sort_unstable();
    conf_state.learners.sort_unstable();
    conf_state.voters_outgoing.sort_unstable();
    conf_state.learners_next.sort_unstable();
    conf_state
}
