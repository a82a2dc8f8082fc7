//! The lease operations that need the lessor, which lives with the raft owner (as etcd's lessor
//! lives with its leader): grant (its id and minimum TTL are decided here), renew, time to live
//! and the list of leases. Services on any core reach them through their `Gateway`.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Status};

use super::lease_driver;
use super::raft_member::Member;
use crate::server::state_machine::apply::Applied;
use crate::server::state_machine::lease_lessor::{Renewed, LEASE_TTL_MAX_S};
use crate::server::state_machine::proposal::Proposal;

/// LeaseGrant: etcd's TTL bounds, an id when the client gave 0, then raft.
pub async fn grant(
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
    match member.propose(Proposal::LeaseGrant(proposal)).await? {
        Applied::LeaseGrant(response) => Ok(response),
        other => Err(Status::internal(format!(
            "etcdserver: unexpected answer to a lease grant: {other:?}"
        ))),
    }
}

/// A keep-alive: the TTL to answer (0 for an unknown or expired lease, as etcd answers).
pub async fn renew(member: &Rc<Member>, id: i64) -> Result<i64, Status> {
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
    }
}

/// (remaining TTL, granted TTL) in seconds, if the lease exists.
pub fn time_to_live(member: &Member, id: i64) -> Option<(i64, i64)> {
    member.lessor().time_to_live(id, member.now_ms())
}

/// Every lease id.
pub fn ids(member: &Member) -> Vec<i64> {
    member.lessor().ids()
}
