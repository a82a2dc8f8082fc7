//! etcd's Lease service: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive,
//! LeaseLeases. Grants and revokes go through raft; keep-alives renew in the lessor on this
//! (the leader's) executor, as etcd renews on its leader; TimeToLive and Leases read the lessor.

use std::cell::Cell;
use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, RequestStream, ResponseSink, Router, Status};

use super::apply::{status_of, Applied};
use super::lease_driver;
use super::lease_lessor::{Renewed, LEASE_TTL_MAX_S};
use super::member::Member;
use super::proposal::Proposal;

/// Registers the Lease methods on `router`.
pub fn register(router: &mut Router, member: Rc<Member>) {
    let ids = Rc::new(LeaseIds::new(member.identity().member_id));
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Lease/LeaseGrant",
        move |_metadata, request: pb::LeaseGrantRequest| {
            let (member, ids) = (m.clone(), ids.clone());
            async move { grant(&member, &ids, request).await }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Lease/LeaseRevoke",
        move |_metadata, request: pb::LeaseRevokeRequest| {
            let member = m.clone();
            async move {
                match member.propose(Proposal::LeaseRevoke(request)).await? {
                    Applied::LeaseRevoke(response) => Ok(response),
                    other => Err(unexpected(other)),
                }
            }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Lease/LeaseTimeToLive",
        move |_metadata, request: pb::LeaseTimeToLiveRequest| {
            let member = m.clone();
            async move { time_to_live(&member, request) }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Lease/LeaseLeases",
        move |_metadata, _request: pb::LeaseLeasesRequest| {
            let member = m.clone();
            async move {
                let leases = member
                    .lessor()
                    .ids()
                    .into_iter()
                    .map(|id| pb::LeaseStatus { id })
                    .collect();
                Ok(pb::LeaseLeasesResponse {
                    header: Some(header(&member)?),
                    leases,
                })
            }
        },
    );
    let m = member;
    router.streaming(
        "/etcdserverpb.Lease/LeaseKeepAlive",
        move |_metadata,
              requests: RequestStream<pb::LeaseKeepAliveRequest>,
              responses: ResponseSink<pb::LeaseKeepAliveResponse>| {
            let member = m.clone();
            async move { keep_alive(&member, requests, responses).await }
        },
    );
}

async fn grant(
    member: &Rc<Member>,
    ids: &LeaseIds,
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
    // etcd picks the id of a lease asked for with ID 0: positive, never 0.
    while proposal.id == 0 {
        proposal.id = ids.next();
    }
    match member.propose(Proposal::LeaseGrant(proposal)).await? {
        Applied::LeaseGrant(response) => Ok(response),
        other => Err(unexpected(other)),
    }
}

fn time_to_live(
    member: &Member,
    request: pb::LeaseTimeToLiveRequest,
) -> Result<pb::LeaseTimeToLiveResponse, Status> {
    let found = member.lessor().time_to_live(request.id, member.now_ms());
    let header = header(member)?;
    let Some((remaining_s, granted_s)) = found else {
        // etcd answers an unknown lease with TTL -1, not an error.
        return Ok(pb::LeaseTimeToLiveResponse {
            header: Some(header),
            id: request.id,
            ttl: -1,
            ..Default::default()
        });
    };
    let keys = if request.keys {
        let view = member.engine().read().map_err(|e| status_of(&e))?;
        view.lease_keys(request.id).map_err(|e| status_of(&e))?
    } else {
        Vec::new()
    };
    Ok(pb::LeaseTimeToLiveResponse {
        header: Some(header),
        id: request.id,
        ttl: remaining_s,
        granted_ttl: granted_s,
        keys,
    })
}

/// etcd's keep-alive loop: one answer per request, in order. The header is taken before the
/// renew, so a client never sees a keep-alive succeed at a revision after the lease's revoke.
async fn keep_alive(
    member: &Rc<Member>,
    mut requests: RequestStream<pb::LeaseKeepAliveRequest>,
    mut responses: ResponseSink<pb::LeaseKeepAliveResponse>,
) -> Result<(), Status> {
    while let Some(request) = requests.message().await? {
        let header = header(member)?;
        let renewed = member.lessor().renew(request.id, member.now_ms());
        let ttl = match renewed {
            Renewed::Ttl {
                ttl_s,
                clear_checkpoint,
            } => {
                if clear_checkpoint {
                    // As etcd: the checkpointed remaining TTL would outlive this renew across a
                    // restart; clear it through raft before answering.
                    member
                        .propose(lease_driver::checkpoint(&[(request.id, 0)]))
                        .await?;
                }
                ttl_s
            }
            // etcd answers a keep-alive for an unknown or expired lease with TTL 0.
            Renewed::NotFound => 0,
        };
        responses
            .send(&pb::LeaseKeepAliveResponse {
                header: Some(header),
                id: request.id,
                ttl,
            })
            .await?;
    }
    Ok(())
}

fn header(member: &Member) -> Result<pb::ResponseHeader, Status> {
    let view = member.engine().read().map_err(|e| status_of(&e))?;
    Ok(member.header(view.current_revision()))
}

/// etcd's request-id generator, which also names leases: the member id's low 16 bits, then
/// the start time in milliseconds (40 bits) and a counter (8 bits) that count up together —
/// unique across restarts as long as the clock does not step back.
struct LeaseIds {
    prefix: u64,
    suffix: Cell<u64>,
}

impl LeaseIds {
    fn new(member_id: u64) -> LeaseIds {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        LeaseIds {
            prefix: member_id << 48,
            suffix: Cell::new((millis & ((1 << 40) - 1)) << 8),
        }
    }

    /// The next id: positive, possibly 0 (the caller skips it).
    fn next(&self) -> i64 {
        let suffix = self.suffix.get().wrapping_add(1);
        self.suffix.set(suffix);
        ((self.prefix | (suffix & ((1 << 48) - 1))) & (i64::MAX as u64)) as i64
    }
}

fn unexpected(applied: Applied) -> Status {
    Status::internal(format!(
        "etcdserver: unexpected answer to a proposal: {applied:?}"
    ))
}
