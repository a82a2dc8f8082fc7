//! etcd's Maintenance service, except Status (`status_service`), Snapshot
//! (`snapshot_service`) and Defragment (`defragment_service`): Alarm, Hash, HashKV, MoveLeader.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::Metadata;
use basalt_net::{Router, Status};

use crate::server::member::owner_op::TransferLeader;
use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::apply::status_of;

/// Registers Alarm, Hash, HashKV and MoveLeader on `router`.
pub fn register(router: &mut Router, member: Rc<Gateway>) {
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Maintenance/Alarm",
        move |metadata: Metadata, request: pb::AlarmRequest| {
            let member = m.clone();
            // Every action, GET included, goes through raft as in etcd: the answer reflects
            // everything committed before it.
            async move {
                let caller = member.caller(&metadata)?;
                // etcd: GET needs a user; raising or disarming needs root.
                if request.action == pb::alarm_request::AlarmAction::Get as i32 {
                    caller.require()?;
                } else {
                    caller.check_admin()?;
                }
                let mut response = member.propose(request).await?;
                response.header = Some(header(&member)?);
                Ok(response)
            }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Maintenance/Hash",
        move |metadata: Metadata, _request: pb::HashRequest| {
            let member = m.clone();
            async move {
                member.caller(&metadata)?.check_admin()?;
                let view = member.engine().read().map_err(|e| status_of(&e))?;
                Ok(pb::HashResponse {
                    header: Some(member.header(view.current_revision())),
                    hash: view.hash_store().map_err(|e| status_of(&e))?,
                })
            }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Maintenance/HashKV",
        move |metadata: Metadata, request: pb::HashKvRequest| {
            let member = m.clone();
            async move {
                member.caller(&metadata)?.check_admin()?;
                let view = member.engine().read().map_err(|e| status_of(&e))?;
                let hashed = view.hash_kv(request.revision).map_err(|e| status_of(&e))?;
                let hash_revision = match request.revision {
                    0 => hashed.header_revision,
                    revision => revision,
                };
                Ok(pb::HashKvResponse {
                    header: Some(member.header(hashed.header_revision)),
                    hash: hashed.hash,
                    // etcd's store starts with compaction revision -1 and reports it as is
                    // until the first compaction.
                    compact_revision: match hashed.compact_revision {
                        0 => -1,
                        revision => revision,
                    },
                    hash_revision,
                })
            }
        },
    );
    router.unary(
        "/etcdserverpb.Maintenance/MoveLeader",
        move |metadata: Metadata, request: pb::MoveLeaderRequest| {
            let member = member.clone();
            async move {
                member.caller(&metadata)?.check_admin()?;
                move_leader(&member, request).await
            }
        },
    );
}

/// etcd's MoveLeader: only the leader may move leadership; a target that is not a voting
/// member is a "bad leader transferee"; moving it to itself succeeds at once. The leader waits
/// until the target leads (at most the request timeout: "leader transfer took too long"). The
/// response carries no header, as etcd's.
async fn move_leader(
    member: &Gateway,
    request: pb::MoveLeaderRequest,
) -> Result<pb::MoveLeaderResponse, Status> {
    member.call(TransferLeader(request.target_id)).await??;
    Ok(pb::MoveLeaderResponse { header: None })
}

/// etcd's response header at the current revision.
fn header(member: &Gateway) -> Result<pb::ResponseHeader, Status> {
    let view = member.engine().read().map_err(|e| status_of(&e))?;
    Ok(member.header(view.current_revision()))
}
