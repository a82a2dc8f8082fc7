//! The backend quota (`--quota-backend-bytes`): etcd's estimate of what a write will add to the
//! database, and the check that refuses it — raising the NOSPACE alarm — when the database
//! would reach the quota.
//!
//! etcd (`storage/quota.go`) compares the backend's *total* size (bbolt's high-water mark, free
//! pages included: not the size in use) plus the request's cost against the quota; only Put,
//! Txn with puts, and LeaseGrant cost anything, so reads, deletes and compactions always pass.
//! Basalt's total size is likewise the engine's page count times the page size.

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Status};

use super::gateway::Gateway;
use super::proposal::Proposal;

/// etcd's estimate of the cost of storing a lease.
// Used by LeaseGrant's quota check, which lives with the lease service.
#[allow(dead_code)]
pub const LEASE_OVERHEAD_BYTES: u64 = 64;
/// etcd's estimate of the cost of a key's metadata.
const KV_OVERHEAD_BYTES: u64 = 256;

/// The quota in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// `None`: disabled (a negative `--quota-backend-bytes`).
    pub limit_bytes: Option<u64>,
}

/// etcd's cost of a Put: overhead plus key and value.
pub fn put_cost(request: &pb::PutRequest) -> u64 {
    KV_OVERHEAD_BYTES + request.key.len() as u64 + request.value.len() as u64
}

/// etcd's cost of a Txn: the dearer branch, counting only its puts (a nested txn counts 0,
/// as in etcd).
pub fn txn_cost(request: &pb::TxnRequest) -> u64 {
    use pb::request_op::Request;
    let branch = |ops: &[pb::RequestOp]| -> u64 {
        ops.iter()
            .map(|op| match &op.request {
                Some(Request::RequestPut(put)) => put_cost(put),
                _ => 0,
            })
            .sum()
    };
    branch(&request.success).max(branch(&request.failure))
}

impl Quota {
    /// Refuses a write of `cost` bytes with etcd's "database space exceeded" when the database
    /// plus the cost would reach the quota, after proposing the NOSPACE alarm for this member
    /// (as etcd's quotaAlarmer does; the alarm's own outcome does not change the answer).
    pub async fn check(self, member: &Gateway, cost: u64) -> Result<(), Status> {
        let Some(limit) = self.limit_bytes else {
            return Ok(());
        };
        if cost == 0 {
            return Ok(());
        }
        let size = member
            .engine()
            .read()
            .map(|view| view.size_bytes())
            .map_err(|e| Status::internal(e.to_string()))?;
        if size + cost < limit {
            return Ok(());
        }
        let activate = pb::AlarmRequest {
            action: pb::alarm_request::AlarmAction::Activate as i32,
            member_id: member.identity().member_id,
            alarm: pb::AlarmType::Nospace as i32,
        };
        let _ = member.propose(Proposal::Alarm(activate)).await;
        Err(EtcdStatus::NoSpace.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::request_op::Request;

    fn put(key: &str, value: &str) -> pb::RequestOp {
        pb::RequestOp {
            request: Some(Request::RequestPut(pb::PutRequest {
                key: key.into(),
                value: value.into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn costs_follow_etcds_estimates() {
        let request = pb::PutRequest {
            key: b"key".to_vec(),
            value: b"value".to_vec(),
            ..Default::default()
        };
        assert_eq!(put_cost(&request), 256 + 3 + 5);
        let delete = pb::RequestOp {
            request: Some(Request::RequestDeleteRange(pb::DeleteRangeRequest {
                key: b"k".to_vec(),
                ..Default::default()
            })),
        };
        let txn = pb::TxnRequest {
            success: vec![put("a", "1"), delete.clone()],
            failure: vec![put("a", "1"), put("b", "22")],
            ..Default::default()
        };
        assert_eq!(txn_cost(&txn), (256 + 2) + (256 + 3));
        let deletes_only = pb::TxnRequest {
            success: vec![delete],
            ..Default::default()
        };
        assert_eq!(txn_cost(&deletes_only), 0);
    }
}
