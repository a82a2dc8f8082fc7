//! Maintenance.Status: what `etcdctl endpoint status` and Kubernetes' version probe read.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::Metadata;
use basalt_net::{EtcdStatus, Router};

use crate::server::member::owner_op::{GetClusterState, GetRaftStatus};
use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::apply::status_of;

/// What this member reports about itself besides raft and the database.
#[derive(Clone, Debug)]
pub struct MemberInfo {
    pub name: String,
    pub client_urls: Vec<String>,
    /// The version reported to clients (they gate features on it).
    pub version: String,
}

/// Registers Status on `router`.
pub fn register(router: &mut Router, member: Rc<Gateway>, info: Rc<MemberInfo>) {
    router.unary(
        "/etcdserverpb.Maintenance/Status",
        move |metadata: Metadata, _request: pb::StatusRequest| {
            let (member, info) = (member.clone(), info.clone());
            async move {
                member.caller(&metadata)?.require()?;
                let raft = member.call(GetRaftStatus).await?;
                let cluster = member.call(GetClusterState).await?;
                let view = member.engine().read().map_err(|e| status_of(&e))?;
                // As etcd: no leader is an error, and so is each raised alarm.
                let mut errors = Vec::new();
                if raft.leader == 0 {
                    errors.push(EtcdStatus::NoLeader.message().to_string());
                }
                errors.extend(cluster.alarms.status_errors());
                Ok(pb::StatusResponse {
                    header: Some(member.header(view.current_revision())),
                    version: info.version.clone(),
                    db_size: view.size_bytes() as i64,
                    leader: raft.leader,
                    // etcd reports raft's commit index here.
                    raft_index: raft.commit_index,
                    raft_term: raft.term,
                    raft_applied_index: raft.applied_index,
                    errors,
                    db_size_in_use: member
                        .engine()
                        .size_in_use_bytes()
                        .map_err(|e| status_of(&e))? as i64,
                    is_learner: raft.is_learner,
                })
            }
        },
    );
}
