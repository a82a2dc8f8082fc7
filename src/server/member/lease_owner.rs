//! The lease operations that need the lessor, which lives with the raft owner (as etcd's lessor
//! lives with its leader): grant (its id and minimum TTL are decided here), renew, time to live
//! and the list of leases. Services on any core call them through their `Gateway`.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{Code, EtcdStatus, Status};

use super::lease_driver;
use super::owner_op::OwnerOp;
use super::raft_member::Member;
use crate::server::state_machine::lease_lessor::{Renewed, LEASE_TTL_MAX_S};

/// LeaseGrant: etcd's TTL bounds, an id when the client gave 0, then raft.
pub struct LeaseGrant(pub pb::LeaseGrantRequest);

impl OwnerOp for LeaseGrant {
    type Answer = Result<pb::LeaseGrantResponse, Status>;
    async fn run(self, member: Rc<Member>) -> Self::Answer {
        grant(&member, self.0).await
    }
}

async fn grant(
    member: &Rc<Member>,
    request: pb::LeaseGrantRequest,
) -> Result<pb::LeaseGrantResponse, Status> {
    if request.ttl > LEASE_TTL_MAX_S {
        return Err(EtcdStatus::LeaseTtlTooLarge.into());
    }
    // etcd raises a TTL below its minimum (as its lessor's Grant does); raised here, before
    // proposing, so the log holds the TTL the lease really has.
    let ttl_min_s = member.lessor().config().ttl_min_s;
    let mut proposal = pb::LeaseGrantRequest {
        ttl: request.ttl.max(ttl_min_s),
        id: request.id,
    };
    // etcd picks the id of a lease asked for with ID 0: positive, never 0. One generator, on
    // the owner, so ids from different cores never collide.
    while proposal.id == 0 {
        proposal.id = member.lease_ids().next();
    }
    member.propose_write(proposal).await
}

/// A keep-alive of a lease: the TTL to answer (0 for an unknown or expired lease, as etcd
/// answers).
pub struct LeaseRenew(pub i64);

impl OwnerOp for LeaseRenew {
    type Answer = Result<i64, Status>;
    async fn run(self, member: Rc<Member>) -> Self::Answer {
        renew(&member, self.0).await
    }
}

async fn renew(member: &Rc<Member>, id: i64) -> Result<i64, Status> {
    let renewed = member.lessor().renew(id, member.now_ms());
    match renewed {
        Renewed::Ttl {
            ttl_s,
            clear_checkpoint,
        } => {
            if clear_checkpoint {
                // As etcd: the checkpointed remaining TTL would outlive this renew across a
                // restart; clear it through raft before answering.
                member.propose(lease_driver::checkpoint(&[(id, 0)])).await?;
            }
            Ok(ttl_s)
        }
        Renewed::NotFound => Ok(0),
        // etcd forwards a follower's keep-alive to the leader over its peer link; basalt's
        // peer link carries raft messages only so far, so the client is told to go elsewhere.
        Renewed::NotPrimary => Err(Status::new(
            Code::Unavailable,
            "etcdserver: not leader (basalt serves lease keep-alives on the leader only)",
        )),
    }
}

/// (remaining TTL, granted TTL) in seconds of a lease, if it exists.
pub struct LeaseTimeToLive(pub i64);

impl OwnerOp for LeaseTimeToLive {
    type Answer = Option<(i64, i64)>;
    async fn run(self, member: Rc<Member>) -> Self::Answer {
        member.lessor().time_to_live(self.0, member.now_ms())
    }
}

/// Every lease id.
pub struct LeaseIdList;

impl OwnerOp for LeaseIdList {
    type Answer = Vec<i64>;
    async fn run(self, member: Rc<Member>) -> Vec<i64> {
        member.lessor().ids()
    }
}
