//! The lease operations that need the lessor, which lives with the raft owner (as etcd's lessor
//! lives with its leader): grant (its id and minimum TTL are decided here), renew, time to live
//! and the list of leases. Services on any core call them through their `Gateway`.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Status};

use super::leader_forward::{LeaderQuery, LeaderReply};
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
    let reply = ask_the_primary(member, LeaderQuery::Renew(id), || async move {
        renew_here(member, id).await
    })
    .await?;
    match reply {
        LeaderReply::Renewed(ttl) => Ok(ttl),
        other => unreachable!("a renew answered with {other:?}"),
    }
}

/// A keep-alive on this member's lessor: `Ok(None)` when it is not primary (a follower, or a
/// new leader not yet promoted).
pub async fn renew_here(member: &Rc<Member>, id: i64) -> Result<Option<i64>, Status> {
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
            Ok(Some(ttl_s))
        }
        Renewed::NotFound => Ok(Some(0)),
        Renewed::NotPrimary => Ok(None),
    }
}

/// (remaining TTL, granted TTL) in seconds of a lease, if it exists, as the leader's lessor
/// counts it down (a follower asks the leader, as etcd forwards TimeToLive).
pub struct LeaseTimeToLive(pub i64);

impl OwnerOp for LeaseTimeToLive {
    type Answer = Result<Option<(i64, i64)>, Status>;
    async fn run(self, member: Rc<Member>) -> Self::Answer {
        let (id, member) = (self.0, &member);
        let reply = ask_the_primary(member, LeaderQuery::TimeToLive(id), || async move {
            Ok(time_to_live_here(member, id).map(LeaderReply::TimeToLive))
        })
        .await?;
        match reply {
            LeaderReply::TimeToLive(found) => Ok(found),
            other => unreachable!("a TimeToLive answered with {other:?}"),
        }
    }
}

/// TimeToLive on this member's lessor: `None` when it is not primary; else the lease's
/// (remaining, granted) TTL if it exists.
pub fn time_to_live_here(member: &Rc<Member>, id: i64) -> Option<Option<(i64, i64)>> {
    let lessor = member.lessor();
    if !lessor.is_primary() {
        return None;
    }
    Some(lessor.time_to_live(id, member.now_ms()))
}

/// How long a lease question waits for a primary lessor between two tries (a leader being
/// elected or promoted).
const PRIMARY_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// Answers `query` on this member's lessor when it is primary (`here`, whose `None` means it
/// is not), else asks the leader over the peer link; retried until etcd's request timeout
/// while there is no primary lessor (an election, a promotion), as etcd's LeaseRenew retries
/// its forward until then. `here` answers `Renewed`/`TimeToLive` as the query asks.
async fn ask_the_primary<F, Fut, T>(
    member: &Rc<Member>,
    query: LeaderQuery,
    here: F,
) -> Result<LeaderReply, Status>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, Status>>,
    T: Into<LeaderReply>,
{
    let timeout = std::time::Duration::from_millis(member.lessor().config().expired_retry_ms);
    let deadline = std::time::Instant::now() + timeout;
    let own = member.headers().identity().member_id;
    loop {
        if let Some(answer) = here().await? {
            return Ok(answer.into());
        }
        let leader = member.raft_status().leader;
        let outlet = member.peer_outlet();
        if let (Some(outlet), true) = (outlet, leader != 0 && leader != own) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let asked = futures_lite::future::or(outlet.forward_to_leader(leader, query), async {
                glommio::timer::sleep(left).await;
                None
            })
            .await;
            match asked {
                Some(LeaderReply::Busy) => return Err(EtcdStatus::TooManyRequests.into()),
                Some(LeaderReply::Retry) | None => {}
                Some(answer) => return Ok(answer),
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(EtcdStatus::Timeout.into());
        }
        glommio::timer::sleep(PRIMARY_RETRY).await;
    }
}

impl From<i64> for LeaderReply {
    fn from(ttl: i64) -> LeaderReply {
        LeaderReply::Renewed(ttl)
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
