//! The simulated operator's membership changes: a seeded plan of steps (add a learner,
//! promote it once the leader finds it in sync, remove a voter — the leader too —, add a
//! voter), carried out one at a time while clients write and faults happen. A step is
//! proposed as raft's ConfChange through the real `MembershipChange` encoding, on a member of
//! the world's choosing (a follower forwards it) once that member's `--strict-reconfig-check`
//! connectivity rules allow it (`World::connected_enough_for`: etcd refuses a change with
//! "unhealthy cluster" otherwise), and proposed again until the leader's
//! cluster table shows it applied: a proposal may be lost with a leader, or turned by raft-rs
//! into an empty entry while an earlier change is still being applied.

use std::collections::VecDeque;

use crate::server::state_machine::membership_change::MembershipChange;

use super::cluster::Cluster;
use super::rng::Rng;

/// One step of the plan, before it names its member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    AddLearner,
    PromoteLearner,
    RemoveVoter,
    AddVoter,
}

/// Voters a removal leaves at least: two, so that the cluster keeps a quorum of members the
/// faults stop only for a while.
const VOTERS_MIN: usize = 2;

pub struct Reconfiguration {
    steps: VecDeque<Step>,
    /// The change being carried out, once named.
    pub current: Option<MembershipChange>,
}

impl Reconfiguration {
    /// One of a few orders of the four kinds of step, as the seed picks.
    pub fn plan(rng: &mut Rng) -> Reconfiguration {
        use Step::*;
        let plans: [&[Step]; 4] = [
            &[
                AddLearner,
                PromoteLearner,
                RemoveVoter,
                AddVoter,
                RemoveVoter,
            ],
            &[RemoveVoter, AddLearner, PromoteLearner, AddVoter],
            &[
                AddVoter,
                RemoveVoter,
                RemoveVoter,
                AddLearner,
                PromoteLearner,
            ],
            &[
                AddLearner,
                RemoveVoter,
                PromoteLearner,
                RemoveVoter,
                AddVoter,
            ],
        ];
        let plan = plans[rng.below(plans.len() as u64) as usize];
        Reconfiguration {
            steps: plan.iter().copied().collect(),
            current: None,
        }
    }

    pub fn is_done(&self) -> bool {
        self.steps.is_empty() && self.current.is_none()
    }

    /// Whether `cluster` (the leader's table) shows the current change applied; if so the
    /// step is over.
    pub fn finish_if_applied(&mut self, cluster: &Cluster) -> bool {
        let applied = match &self.current {
            None => return false,
            Some(MembershipChange::Add { member_id, .. }) => cluster.is_member(*member_id),
            Some(MembershipChange::Promote { member_id }) => cluster.voters().contains(member_id),
            Some(MembershipChange::Remove { member_id }) => cluster.is_removed(*member_id),
        };
        if applied {
            self.current = None;
        }
        applied
    }

    /// The next step, named against `cluster`: `new_id` for an addition, `leader` (removed
    /// with probability 40 %) or another voter for a removal. A step that cannot apply now (no
    /// learner to promote, too few voters to remove one) is skipped.
    pub fn next_change(
        &mut self,
        cluster: &Cluster,
        leader: u64,
        new_id: u64,
        rng: &mut Rng,
    ) -> Option<MembershipChange> {
        assert!(self.current.is_none(), "one change at a time");
        while let Some(step) = self.steps.pop_front() {
            let change = match step {
                Step::AddLearner | Step::AddVoter => Some(MembershipChange::Add {
                    member_id: new_id,
                    peer_urls: vec![format!("http://sim-{new_id}:2380")],
                    learner: step == Step::AddLearner,
                }),
                Step::PromoteLearner => cluster
                    .learners()
                    .first()
                    .map(|&member_id| MembershipChange::Promote { member_id }),
                Step::RemoveVoter => {
                    let voters = cluster.voters();
                    (voters.len() > VOTERS_MIN).then(|| {
                        let member_id = if rng.percent(40) {
                            leader
                        } else {
                            voters[rng.below(voters.len() as u64) as usize]
                        };
                        MembershipChange::Remove { member_id }
                    })
                }
            };
            if change.is_some() {
                self.current = change.clone();
                return change;
            }
        }
        None
    }
}
