//! What a core asks of the raft owner, one type per operation with the type of its answer.
//! `Gateway::call` runs an operation directly on the owner's core and sends it over the core's
//! link to the owner elsewhere, so each operation is written once: its type and its `run`.

use std::future::Future;
use std::rc::Rc;

use basalt_net::Status;

use super::raft_member::{Member, RaftStatus};
use crate::server::state_machine::cluster_state::ClusterState;
use crate::server::state_machine::membership_change::MembershipChange;
use crate::server::state_machine::proposal::Proposal;
use crate::server::state_machine::typed_write::Write;

/// One operation the raft owner performs, and what it answers.
pub trait OwnerOp: Send + 'static {
    /// The answer, sent back to the calling core.
    type Answer: Send + 'static;
    /// Performs the operation on the owner's core.
    fn run(self, member: Rc<Member>) -> impl Future<Output = Self::Answer>;
}

/// Proposes a client write and waits until it is applied: its typed answer.
pub struct Propose<W>(pub W);

impl<W: Write> OwnerOp for Propose<W> {
    type Answer = Result<W::Answer, Status>;
    async fn run(self, member: Rc<Member>) -> Self::Answer {
        refuse_learner(&member)?;
        member.propose_write(self.0).await
    }
}

/// Proposes a client write on behalf of a caller (etcd's request header: user name and the
/// auth revision its permissions were checked at), so apply refuses it if auth changed since.
pub struct ProposeAs<W> {
    pub user: String,
    pub auth_revision: u64,
    pub write: W,
}

impl<W: Write> OwnerOp for ProposeAs<W> {
    type Answer = Result<W::Answer, Status>;
    async fn run(self, member: Rc<Member>) -> Self::Answer {
        refuse_learner(&member)?;
        let proposal = Proposal::AsUser {
            user: self.user,
            auth_revision: self.auth_revision,
            inner: Box::new(self.write.into_proposal()),
        };
        W::answer(member.propose(proposal).await?)
    }
}

/// Waits until a read of the engine is linearizable (ReadIndex, then apply reaching it).
pub struct WaitLinearizable;

impl OwnerOp for WaitLinearizable {
    type Answer = Result<(), Status>;
    async fn run(self, member: Rc<Member>) -> Self::Answer {
        refuse_learner(&member)?;
        member.wait_linearizable().await
    }
}

/// Raft's numbers, for Status.
pub struct GetRaftStatus;

impl OwnerOp for GetRaftStatus {
    type Answer = RaftStatus;
    async fn run(self, member: Rc<Member>) -> RaftStatus {
        member.raft_status()
    }
}

/// A copy of the alarms and member attributes as of the last applied entry (small, and
/// changed only through raft).
pub struct GetClusterState;

impl OwnerOp for GetClusterState {
    type Answer = ClusterState;
    async fn run(self, member: Rc<Member>) -> ClusterState {
        member.cluster().clone()
    }
}

/// etcd's learner rule for clients: a learner serves Status and serializable reads only, so
/// a client's write or linearizable read is refused ("rpc not supported for learner").
fn refuse_learner(member: &Member) -> Result<(), Status> {
    if member.raft_status().is_learner {
        return Err(basalt_net::EtcdStatus::NotSupportedForLearner.into());
    }
    Ok(())
}

/// Proposes a membership change and waits until it is applied.
pub struct ProposeMembership(pub MembershipChange);

impl OwnerOp for ProposeMembership {
    type Answer = Result<(), Status>;
    async fn run(self, member: Rc<Member>) -> Self::Answer {
        let change = self.0;
        let MembershipChange::Promote {
            member_id: promoted,
        } = change
        else {
            return member.propose_membership(change).await;
        };
        // etcd: only the leader knows whether a learner is in sync, so a member that does
        // not lead forwards the promotion to the leader.
        match member.propose_membership(change).await {
            Err(status) if status == basalt_net::EtcdStatus::NotLeader.into() => {
                super::leader_forward::promote_through_leader(&member, promoted).await
            }
            answer => answer,
        }
    }
}

/// etcd's MoveLeader: hands leadership to a member and waits until it leads.
pub struct TransferLeader(pub u64);

impl OwnerOp for TransferLeader {
    type Answer = Result<(), Status>;
    async fn run(self, member: Rc<Member>) -> Self::Answer {
        member.transfer_leader(self.0).await
    }
}
