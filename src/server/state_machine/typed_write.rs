//! Client writes with typed answers: `Gateway::propose` takes an etcd request and gives back
//! its response, so no service matches on apply's [`Applied`] union of answers.

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::Status;

use super::apply::Applied;
use super::auth_store::AuthRequest;
use super::proposal::Proposal;

/// A client write with one answer type: `Gateway::propose` takes the request and gives back
/// its response, so no caller matches on [`Applied`]. Apply answers each kind of proposal with
/// that kind's own variant; `answer` checks it, in this one place per kind. A mismatch can only
/// be an answer delivered to the wrong waiter (a proposal id reused): the client gets an
/// internal error, and the member goes on.
pub trait Write: Send + 'static {
    /// The response apply gives this write.
    type Answer: Send + 'static;
    /// The proposal that carries the write through raft.
    fn into_proposal(self) -> Proposal;
    /// The typed answer inside apply's answer to this write's proposal.
    fn answer(applied: Applied) -> Result<Self::Answer, Status>;
}

/// Implements [`Write`] for a request whose proposal variant is `$proposal` and whose answer is
/// `$answer(value)` (or `$answer` with no value: `()`).
macro_rules! write_kind {
    ($request:ty => $proposal:ident, $applied:ident($answer:ty)) => {
        impl Write for $request {
            type Answer = $answer;
            fn into_proposal(self) -> Proposal {
                Proposal::$proposal(self)
            }
            fn answer(applied: Applied) -> Result<$answer, Status> {
                match applied {
                    Applied::$applied(answer) => Ok(answer),
                    other => Err(mismatch(stringify!($proposal), &other)),
                }
            }
        }
    };
    ($request:ty => $proposal:ident, $applied:ident) => {
        impl Write for $request {
            type Answer = ();
            fn into_proposal(self) -> Proposal {
                Proposal::$proposal(self)
            }
            fn answer(applied: Applied) -> Result<(), Status> {
                match applied {
                    Applied::$applied => Ok(()),
                    other => Err(mismatch(stringify!($proposal), &other)),
                }
            }
        }
    };
}

write_kind!(pb::PutRequest => Put, Put(pb::PutResponse));
write_kind!(pb::DeleteRangeRequest => DeleteRange, DeleteRange(pb::DeleteRangeResponse));
write_kind!(pb::TxnRequest => Txn, Txn(pb::TxnResponse));
write_kind!(pb::CompactionRequest => Compaction, Compaction(pb::CompactionResponse));
write_kind!(pb::AlarmRequest => Alarm, Alarm(pb::AlarmResponse));
write_kind!(pb::MemberUpdateRequest => MemberUpdate, MemberUpdate);
write_kind!(pb::Member => MemberAttributes, MemberAttributes);
write_kind!(pb::LeaseGrantRequest => LeaseGrant, LeaseGrant(pb::LeaseGrantResponse));
write_kind!(pb::LeaseRevokeRequest => LeaseRevoke, LeaseRevoke(pb::LeaseRevokeResponse));

/// Implements [`Write`] for an auth store change: its proposal is `Proposal::Auth`, its answer
/// the response that carries only apply's header.
macro_rules! auth_kind {
    ($request:ident => $variant:ident, $response:ident) => {
        impl Write for pb::$request {
            type Answer = pb::$response;
            fn into_proposal(self) -> Proposal {
                Proposal::Auth(AuthRequest::$variant(self))
            }
            fn answer(applied: Applied) -> Result<pb::$response, Status> {
                match applied {
                    Applied::Auth(header) => Ok(pb::$response {
                        header: Some(header),
                    }),
                    other => Err(mismatch(stringify!($variant), &other)),
                }
            }
        }
    };
}

auth_kind!(AuthEnableRequest => Enable, AuthEnableResponse);
auth_kind!(AuthDisableRequest => Disable, AuthDisableResponse);
auth_kind!(AuthUserAddRequest => UserAdd, AuthUserAddResponse);
auth_kind!(AuthUserDeleteRequest => UserDelete, AuthUserDeleteResponse);
auth_kind!(AuthUserChangePasswordRequest => UserChangePassword, AuthUserChangePasswordResponse);
auth_kind!(AuthUserGrantRoleRequest => UserGrantRole, AuthUserGrantRoleResponse);
auth_kind!(AuthUserRevokeRoleRequest => UserRevokeRole, AuthUserRevokeRoleResponse);
auth_kind!(AuthRoleAddRequest => RoleAdd, AuthRoleAddResponse);
auth_kind!(AuthRoleDeleteRequest => RoleDelete, AuthRoleDeleteResponse);
auth_kind!(AuthRoleGrantPermissionRequest => RoleGrantPermission, AuthRoleGrantPermissionResponse);
auth_kind!(AuthRoleRevokePermissionRequest => RoleRevokePermission, AuthRoleRevokePermissionResponse);

/// The error for an answer of another kind than the proposal's.
fn mismatch(kind: &str, applied: &Applied) -> Status {
    tracing::error!(
        kind,
        ?applied,
        "a proposal was answered with another kind's answer"
    );
    Status::internal(format!(
        "etcdserver: unexpected answer to a {kind} proposal"
    ))
}
