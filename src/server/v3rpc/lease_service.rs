//! etcd's Lease service: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive,
//! LeaseLeases, on every core. Grants and revokes go through raft; keep-alives renew in the
//! leader's lessor and TimeToLive reads it (a follower's owner forwards them to the leader:
//! `member/lease_owner.rs`, `member/leader_forward.rs`), as etcd does; Leases reads this
//! member's lessor, the keys of a lease this core's engine.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::Metadata;
use basalt_net::{RequestStream, ResponseSink, Router, Status};

use super::quota::Quota;
use crate::server::member::lease_owner::{LeaseGrant, LeaseIdList, LeaseRenew, LeaseTimeToLive};
use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::apply::status_of;
use crate::server::state_machine::auth_perms::Access;
use crate::server::state_machine::write_cost::LEASE_OVERHEAD_BYTES;

/// Registers the Lease methods on `router`; a LeaseGrant is checked against `quota` first, as
/// etcd's quotaLeaseServer does.
pub fn register(router: &mut Router, member: Rc<Gateway>, quota: Quota) {
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Lease/LeaseGrant",
        move |metadata: Metadata, request: pb::LeaseGrantRequest| {
            let member = m.clone();
            async move {
                member.caller(&metadata)?.require()?;
                quota.check(&member, LEASE_OVERHEAD_BYTES).await?;
                member.call(LeaseGrant(request)).await?
            }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Lease/LeaseRevoke",
        move |metadata: Metadata, request: pb::LeaseRevokeRequest| {
            let member = m.clone();
            async move {
                let caller = member.caller(&metadata)?;
                caller.require()?;
                if caller.auth_enabled() {
                    let view = member.engine().read().map_err(|e| status_of(&e))?;
                    caller.check_lease_keys(request.id, Access::Write, &view)?;
                }
                member.propose(request).await
            }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Lease/LeaseTimeToLive",
        move |metadata: Metadata, request: pb::LeaseTimeToLiveRequest| {
            let member = m.clone();
            async move {
                let caller = member.caller(&metadata)?;
                caller.require()?;
                if caller.auth_enabled() {
                    let view = member.engine().read().map_err(|e| status_of(&e))?;
                    caller.check_lease_keys(request.id, Access::Read, &view)?;
                }
                time_to_live(&member, request).await
            }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Lease/LeaseLeases",
        move |metadata: Metadata, _request: pb::LeaseLeasesRequest| {
            let member = m.clone();
            async move {
                let caller = member.caller(&metadata)?;
                caller.require()?;
                if caller.auth_enabled() {
                    let view = member.engine().read().map_err(|e| status_of(&e))?;
                    for lease in view.leases().map_err(|e| status_of(&e))? {
                        caller.check_lease_keys(lease.id, Access::Read, &view)?;
                    }
                }
                let leases = member
                    .call(LeaseIdList)
                    .await?
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
        move |metadata: Metadata,
              requests: RequestStream<pb::LeaseKeepAliveRequest>,
              responses: ResponseSink<pb::LeaseKeepAliveResponse>| {
            let member = m.clone();
            async move { keep_alive(&member, &metadata, requests, responses).await }
        },
    );
}

async fn time_to_live(
    member: &Gateway,
    request: pb::LeaseTimeToLiveRequest,
) -> Result<pb::LeaseTimeToLiveResponse, Status> {
    let found = member.call(LeaseTimeToLive(request.id)).await??;
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
    member: &Gateway,
    metadata: &Metadata,
    mut requests: RequestStream<pb::LeaseKeepAliveRequest>,
    mut responses: ResponseSink<pb::LeaseKeepAliveResponse>,
) -> Result<(), Status> {
    while let Some(request) = requests.message().await? {
        // etcd's checkLeaseRenew: a user, with write on every key attached to the lease.
        let caller = member.caller(metadata)?;
        caller.require()?;
        if caller.auth_enabled() {
            let view = member.engine().read().map_err(|e| status_of(&e))?;
            caller.check_lease_keys(request.id, Access::Write, &view)?;
        }
        let header = header(member)?;
        let ttl = member.call(LeaseRenew(request.id)).await??;
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

fn header(member: &Gateway) -> Result<pb::ResponseHeader, Status> {
    let view = member.engine().read().map_err(|e| status_of(&e))?;
    Ok(member.header(view.current_revision()))
}
