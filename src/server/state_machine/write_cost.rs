//! etcd's estimate of what a write will add to the database (`storage/quota.go`): only Put,
//! Txn with puts, and LeaseGrant cost anything. The quota check (`v3rpc::quota`) refuses a
//! write by it before proposing; apply refuses by it while the NOSPACE alarm is raised, so it
//! lives here, below both.

use basalt_net::proto::etcdserverpb as pb;

/// etcd's estimate of the cost of storing a lease (LeaseGrant's quota check).
pub const LEASE_OVERHEAD_BYTES: u64 = 64;
/// etcd's estimate of the cost of a key's metadata.
const KV_OVERHEAD_BYTES: u64 = 256;

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
