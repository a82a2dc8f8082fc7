//! The backend quota (`--quota-backend-bytes`): the check that refuses a write — raising the
//! NOSPACE alarm — when the database plus what the write would add (its cost, from
//! `state_machine::write_cost`) would reach the quota.
//!
//! etcd (`storage/quota.go`) compares the backend's *total* size (bbolt's high-water mark, free
//! pages included: not the size in use) plus the request's cost against the quota; only Put,
//! Txn with puts, and LeaseGrant cost anything, so reads, deletes and compactions always pass.
//! Basalt's total size is likewise the engine's page count times the page size.

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Status};

use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::apply::status_of;

/// The quota in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// `None`: disabled (a negative `--quota-backend-bytes`).
    pub limit_bytes: Option<u64>,
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
        let engine = member.engine();
        if engine.size_bound_bytes() + cost < limit {
            return Ok(());
        }
        // The bound counts every page the last apply batch could add if its commit is still
        // deferred (`WriteBatch::commit_deferred`). Near the quota, decide on the exact size:
        // publish that commit (as the next read would) and ask again.
        let size = engine
            .settled_size_bytes()
            .map_err(|error| status_of(&error))?;
        if size + cost < limit {
            return Ok(());
        }
        let activate = pb::AlarmRequest {
            action: pb::alarm_request::AlarmAction::Activate as i32,
            member_id: member.identity().member_id,
            alarm: pb::AlarmType::Nospace as i32,
        };
        let _ = member.propose(activate).await;
        Err(EtcdStatus::NoSpace.into())
    }
}
