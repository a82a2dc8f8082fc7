//! What a raft entry carries: one client write, tagged with the id its proposer waits on.
//!
//! Layout: 8 bytes proposal id (little-endian; 0 for writes nobody waits on), 1 byte kind, then
//! the etcd request message itself (protobuf), so an entry reads the same as the request the
//! client sent.

use basalt_net::proto::etcdserverpb as pb;
use prost014::Message as _;

/// A write that goes through raft.
#[derive(Clone, Debug, PartialEq)]
pub enum Proposal {
    Put(pb::PutRequest),
    DeleteRange(pb::DeleteRangeRequest),
    Txn(pb::TxnRequest),
    Compaction(pb::CompactionRequest),
    Alarm(pb::AlarmRequest),
    MemberUpdate(pb::MemberUpdateRequest),
    LeaseGrant(pb::LeaseGrantRequest),
    LeaseRevoke(pb::LeaseRevokeRequest),
    /// Remaining TTLs recorded by the primary (etcd's LeaseCheckpoint).
    LeaseCheckpoint(pb::LeaseCheckpointRequest),
    /// Leases the primary found expired, revoked one after another (each its own revision);
    /// already-revoked ones are skipped. Body: the ids, 8 bytes little-endian each.
    LeaseExpire(Vec<i64>),
}

/// Bytes in front of the request message: proposal id and kind.
pub const PROPOSAL_HEADER_BYTES: usize = 9;

const KIND_PUT: u8 = 1;
const KIND_DELETE_RANGE: u8 = 2;
const KIND_TXN: u8 = 3;
const KIND_COMPACTION: u8 = 4;
// Cluster-state kinds are numbered from 20 so kinds added elsewhere (leases) do not collide.
const KIND_ALARM: u8 = 20;
const KIND_MEMBER_UPDATE: u8 = 21;
const KIND_LEASE_GRANT: u8 = 5;
const KIND_LEASE_REVOKE: u8 = 6;
const KIND_LEASE_CHECKPOINT: u8 = 7;
const KIND_LEASE_EXPIRE: u8 = 8;

impl Proposal {
    /// The entry data for this proposal.
    pub fn encode(&self, id: u64) -> Vec<u8> {
        let (kind, body) = match self {
            Proposal::Put(r) => (KIND_PUT, r.encode_to_vec()),
            Proposal::DeleteRange(r) => (KIND_DELETE_RANGE, r.encode_to_vec()),
            Proposal::Txn(r) => (KIND_TXN, r.encode_to_vec()),
            Proposal::Compaction(r) => (KIND_COMPACTION, r.encode_to_vec()),
            Proposal::Alarm(r) => (KIND_ALARM, r.encode_to_vec()),
            Proposal::MemberUpdate(r) => (KIND_MEMBER_UPDATE, r.encode_to_vec()),
            Proposal::LeaseGrant(r) => (KIND_LEASE_GRANT, r.encode_to_vec()),
            Proposal::LeaseRevoke(r) => (KIND_LEASE_REVOKE, r.encode_to_vec()),
            Proposal::LeaseCheckpoint(r) => (KIND_LEASE_CHECKPOINT, r.encode_to_vec()),
            Proposal::LeaseExpire(ids) => (
                KIND_LEASE_EXPIRE,
                ids.iter().flat_map(|id| id.to_le_bytes()).collect(),
            ),
        };
        let mut data = Vec::with_capacity(9 + body.len());
        data.extend_from_slice(&id.to_le_bytes());
        data.push(kind);
        data.extend_from_slice(&body);
        data
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
        let body = &data[PROPOSAL_HEADER_BYTES..];
        let bad = |e: prost014::DecodeError| format!("raft entry does not decode: {e}");
        let proposal = match data[8] {
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
            other => return Err(format!("raft entry has unknown proposal kind {other}")),
        };
        Ok((id, proposal))
    }
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
        let mut torn = Proposal::LeaseExpire(vec![1]).encode(0);
        torn.pop();
        assert!(Proposal::decode(&torn).is_err());
        assert!(Proposal::decode(&[1, 2, 3]).is_err());
        let mut unknown = vec![0u8; 9];
        unknown[8] = 99;
        assert!(Proposal::decode(&unknown).is_err());
    }
}
