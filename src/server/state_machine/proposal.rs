//! What a raft entry carries: one client write, tagged with the id its proposer waits on.
//!
//! Layout: 8 bytes proposal id (little-endian; 0 for writes nobody waits on), 1 byte kind, then
//! the etcd request message itself (protobuf), so an entry reads the same as the request the
//! client sent.

use basalt_net::proto::etcdserverpb as pb;
use prost014::Message as _;

use super::auth_store::AuthRequest;

/// A write that goes through raft.
#[derive(Clone, Debug, PartialEq)]
pub enum Proposal {
    Put(pb::PutRequest),
    DeleteRange(pb::DeleteRangeRequest),
    Txn(pb::TxnRequest),
    Compaction(pb::CompactionRequest),
    Alarm(pb::AlarmRequest),
    MemberUpdate(pb::MemberUpdateRequest),
    /// A member's name and client URLs, published by the member itself when it starts (etcd's
    /// `publish`, a ConfChange-free attribute update). Body: etcd's `Member` message, of
    /// which the id, name and client URLs are used.
    MemberAttributes(pb::Member),
    LeaseGrant(pb::LeaseGrantRequest),
    LeaseRevoke(pb::LeaseRevokeRequest),
    /// Remaining TTLs recorded by the primary (etcd's LeaseCheckpoint).
    LeaseCheckpoint(pb::LeaseCheckpointRequest),
    /// Leases the primary found expired, revoked one after another (each its own revision);
    /// already-revoked ones are skipped. Body: the ids, 8 bytes little-endian each.
    LeaseExpire(Vec<i64>),
    /// A change to the auth store (passwords already hashed).
    Auth(AuthRequest),
    /// A client's write with who sent it and the auth revision its permissions were checked
    /// at (etcd's request header `username` and `auth_revision`): apply refuses it if auth is
    /// on and the caller is nobody or the store changed since. Body: user name length (2 bytes
    /// big-endian), the name, the revision (8 bytes big-endian), then the inner proposal's
    /// kind and body.
    AsUser {
        user: String,
        auth_revision: u64,
        inner: Box<Proposal>,
    },
}

/// Bytes in front of the request message: proposal id and kind.
pub const PROPOSAL_HEADER_BYTES: usize = 9;

/// A client's put (`proposal_check` walks these without decoding them).
pub(super) const KIND_PUT: u8 = 1;
const KIND_DELETE_RANGE: u8 = 2;
const KIND_TXN: u8 = 3;
const KIND_COMPACTION: u8 = 4;
// Cluster-state kinds are numbered from 20 so kinds added elsewhere (leases) do not collide.
const KIND_ALARM: u8 = 20;
const KIND_MEMBER_UPDATE: u8 = 21;
const KIND_MEMBER_ATTRIBUTES: u8 = 22;
const KIND_LEASE_GRANT: u8 = 5;
const KIND_LEASE_REVOKE: u8 = 6;
const KIND_LEASE_CHECKPOINT: u8 = 7;
const KIND_LEASE_EXPIRE: u8 = 8;
// Auth kinds are numbered from 40.
const KIND_AUTH_ENABLE: u8 = 40;
const KIND_AUTH_DISABLE: u8 = 41;
const KIND_USER_ADD: u8 = 42;
const KIND_USER_DELETE: u8 = 43;
const KIND_USER_CHANGE_PASSWORD: u8 = 44;
const KIND_USER_GRANT_ROLE: u8 = 45;
const KIND_USER_REVOKE_ROLE: u8 = 46;
const KIND_ROLE_ADD: u8 = 47;
const KIND_ROLE_DELETE: u8 = 48;
const KIND_ROLE_GRANT_PERMISSION: u8 = 49;
const KIND_ROLE_REVOKE_PERMISSION: u8 = 50;
const KIND_AS_USER: u8 = 51;

impl Proposal {
    /// The entry data for this proposal.
    pub fn encode(&self, id: u64) -> Vec<u8> {
        let (kind, body) = self.kind_and_body();
        let mut data = Vec::with_capacity(9 + body.len());
        data.extend_from_slice(&id.to_le_bytes());
        data.push(kind);
        data.extend_from_slice(&body);
        data
    }

    fn kind_and_body(&self) -> (u8, Vec<u8>) {
        match self {
            Proposal::Put(r) => (KIND_PUT, r.encode_to_vec()),
            Proposal::DeleteRange(r) => (KIND_DELETE_RANGE, r.encode_to_vec()),
            Proposal::Txn(r) => (KIND_TXN, r.encode_to_vec()),
            Proposal::Compaction(r) => (KIND_COMPACTION, r.encode_to_vec()),
            Proposal::Alarm(r) => (KIND_ALARM, r.encode_to_vec()),
            Proposal::MemberUpdate(r) => (KIND_MEMBER_UPDATE, r.encode_to_vec()),
            Proposal::MemberAttributes(r) => (KIND_MEMBER_ATTRIBUTES, r.encode_to_vec()),
            Proposal::LeaseGrant(r) => (KIND_LEASE_GRANT, r.encode_to_vec()),
            Proposal::LeaseRevoke(r) => (KIND_LEASE_REVOKE, r.encode_to_vec()),
            Proposal::LeaseCheckpoint(r) => (KIND_LEASE_CHECKPOINT, r.encode_to_vec()),
            Proposal::LeaseExpire(ids) => (
                KIND_LEASE_EXPIRE,
                ids.iter().flat_map(|id| id.to_le_bytes()).collect(),
            ),
            Proposal::Auth(request) => {
                use AuthRequest::*;
                match request {
                    Enable(r) => (KIND_AUTH_ENABLE, r.encode_to_vec()),
                    Disable(r) => (KIND_AUTH_DISABLE, r.encode_to_vec()),
                    UserAdd(r) => (KIND_USER_ADD, r.encode_to_vec()),
                    UserDelete(r) => (KIND_USER_DELETE, r.encode_to_vec()),
                    UserChangePassword(r) => (KIND_USER_CHANGE_PASSWORD, r.encode_to_vec()),
                    UserGrantRole(r) => (KIND_USER_GRANT_ROLE, r.encode_to_vec()),
                    UserRevokeRole(r) => (KIND_USER_REVOKE_ROLE, r.encode_to_vec()),
                    RoleAdd(r) => (KIND_ROLE_ADD, r.encode_to_vec()),
                    RoleDelete(r) => (KIND_ROLE_DELETE, r.encode_to_vec()),
                    RoleGrantPermission(r) => (KIND_ROLE_GRANT_PERMISSION, r.encode_to_vec()),
                    RoleRevokePermission(r) => (KIND_ROLE_REVOKE_PERMISSION, r.encode_to_vec()),
                }
            }
            Proposal::AsUser {
                user,
                auth_revision,
                inner,
            } => {
                let (inner_kind, inner_body) = inner.kind_and_body();
                // Names longer than 64 KiB are refused before proposing (`AsUser::fits`).
                let name = &user.as_bytes()[..user.len().min(u16::MAX as usize)];
                let mut body = Vec::with_capacity(2 + name.len() + 9 + inner_body.len());
                body.extend_from_slice(&(name.len() as u16).to_be_bytes());
                body.extend_from_slice(name);
                body.extend_from_slice(&auth_revision.to_be_bytes());
                body.push(inner_kind);
                body.extend_from_slice(&inner_body);
                (KIND_AS_USER, body)
            }
        }
    }

    /// The proposal id of entry data, without decoding the request (`None`: too short to be a
    /// proposal).
    pub fn id_of(data: &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(data.get(..8)?.try_into().ok()?))
    }

    /// Reads entry data back: (proposal id, proposal).
    pub fn decode(data: &[u8]) -> Result<(u64, Proposal), String> {
        if data.len() < PROPOSAL_HEADER_BYTES {
            return Err(format!(
                "raft entry of {} bytes is too short for a proposal",
                data.len()
            ));
        }
        let id = Proposal::id_of(data).expect("the length was checked above");
        Ok((
            id,
            Proposal::decode_kind(data[8], &data[PROPOSAL_HEADER_BYTES..])?,
        ))
    }

    fn decode_kind(kind: u8, body: &[u8]) -> Result<Proposal, String> {
        let bad = |e: prost014::DecodeError| format!("raft entry does not decode: {e}");
        let proposal = match kind {
            KIND_PUT => Proposal::Put(pb::PutRequest::decode(body).map_err(bad)?),
            KIND_DELETE_RANGE => {
                Proposal::DeleteRange(pb::DeleteRangeRequest::decode(body).map_err(bad)?)
            }
            KIND_TXN => Proposal::Txn(pb::TxnRequest::decode(body).map_err(bad)?),
            KIND_COMPACTION => {
                Proposal::Compaction(pb::CompactionRequest::decode(body).map_err(bad)?)
            }
            KIND_ALARM => Proposal::Alarm(pb::AlarmRequest::decode(body).map_err(bad)?),
            KIND_MEMBER_UPDATE => {
                Proposal::MemberUpdate(pb::MemberUpdateRequest::decode(body).map_err(bad)?)
            }
            KIND_MEMBER_ATTRIBUTES => {
                Proposal::MemberAttributes(pb::Member::decode(body).map_err(bad)?)
            }
            KIND_LEASE_GRANT => {
                Proposal::LeaseGrant(pb::LeaseGrantRequest::decode(body).map_err(bad)?)
            }
            KIND_LEASE_REVOKE => {
                Proposal::LeaseRevoke(pb::LeaseRevokeRequest::decode(body).map_err(bad)?)
            }
            KIND_LEASE_CHECKPOINT => {
                Proposal::LeaseCheckpoint(pb::LeaseCheckpointRequest::decode(body).map_err(bad)?)
            }
            KIND_LEASE_EXPIRE => {
                if !body.len().is_multiple_of(8) {
                    return Err(format!(
                        "lease expiry entry of {} bytes is not a list of ids",
                        body.len()
                    ));
                }
                Proposal::LeaseExpire(
                    body.chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .collect(),
                )
            }
            KIND_AUTH_ENABLE => Proposal::Auth(AuthRequest::Enable(decode(body)?)),
            KIND_AUTH_DISABLE => Proposal::Auth(AuthRequest::Disable(decode(body)?)),
            KIND_USER_ADD => Proposal::Auth(AuthRequest::UserAdd(decode(body)?)),
            KIND_USER_DELETE => Proposal::Auth(AuthRequest::UserDelete(decode(body)?)),
            KIND_USER_CHANGE_PASSWORD => {
                Proposal::Auth(AuthRequest::UserChangePassword(decode(body)?))
            }
            KIND_USER_GRANT_ROLE => Proposal::Auth(AuthRequest::UserGrantRole(decode(body)?)),
            KIND_USER_REVOKE_ROLE => Proposal::Auth(AuthRequest::UserRevokeRole(decode(body)?)),
            KIND_ROLE_ADD => Proposal::Auth(AuthRequest::RoleAdd(decode(body)?)),
            KIND_ROLE_DELETE => Proposal::Auth(AuthRequest::RoleDelete(decode(body)?)),
            KIND_ROLE_GRANT_PERMISSION => {
                Proposal::Auth(AuthRequest::RoleGrantPermission(decode(body)?))
            }
            KIND_ROLE_REVOKE_PERMISSION => {
                Proposal::Auth(AuthRequest::RoleRevokePermission(decode(body)?))
            }
            KIND_AS_USER => {
                let short = || format!("as-user entry of {} bytes is torn", body.len());
                let name_len =
                    u16::from_be_bytes(body.get(..2).ok_or_else(short)?.try_into().expect("2"))
                        as usize;
                let name = body.get(2..2 + name_len).ok_or_else(short)?;
                let rest = &body[2 + name_len..];
                let revision =
                    u64::from_be_bytes(rest.get(..8).ok_or_else(short)?.try_into().expect("8"));
                let inner_kind = *rest.get(8).ok_or_else(short)?;
                if inner_kind == KIND_AS_USER {
                    return Err("as-user entry wraps another".to_string());
                }
                Proposal::AsUser {
                    user: String::from_utf8(name.to_vec())
                        .map_err(|_| "as-user entry's name is not UTF-8".to_string())?,
                    auth_revision: revision,
                    inner: Box::new(Proposal::decode_kind(inner_kind, &rest[9..])?),
                }
            }
            other => return Err(format!("raft entry has unknown proposal kind {other}")),
        };
        Ok(proposal)
    }
}

fn decode<M: prost014::Message + Default>(body: &[u8]) -> Result<M, String> {
    M::decode(body).map_err(|e| format!("raft entry does not decode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_round_trip_and_garbage_is_refused() {
        let put = Proposal::Put(pb::PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ..Default::default()
        });
        assert_eq!(Proposal::decode(&put.encode(42)), Ok((42, put)));
        let expire = Proposal::LeaseExpire(vec![1, -2, i64::MAX]);
        assert_eq!(Proposal::decode(&expire.encode(0)), Ok((0, expire)));
        let as_user = Proposal::AsUser {
            user: "alice".into(),
            auth_revision: 7,
            inner: Box::new(Proposal::Auth(AuthRequest::RoleAdd(
                pb::AuthRoleAddRequest { name: "r".into() },
            ))),
        };
        assert_eq!(
            Proposal::decode(&as_user.encode(3)),
            Ok((3, as_user.clone()))
        );
        let mut torn_as_user = as_user.encode(3);
        torn_as_user.truncate(14);
        assert!(Proposal::decode(&torn_as_user).is_err());
        let mut torn = Proposal::LeaseExpire(vec![1]).encode(0);
        torn.pop();
        assert!(Proposal::decode(&torn).is_err());
        assert!(Proposal::decode(&[1, 2, 3]).is_err());
        let mut unknown = vec![0u8; 9];
        unknown[8] = 99;
        assert!(Proposal::decode(&unknown).is_err());
    }
}
