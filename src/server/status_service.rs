//! What tools read about a member: Maintenance.Status (etcdctl endpoint status, Kubernetes'
//! version probe) and Cluster.MemberList (this member, with its URLs).

use std::path::PathBuf;
use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::Router;

use super::gateway::Gateway;

/// What MemberList reports about this member.
#[derive(Clone, Debug)]
pub struct MemberInfo {
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    /// The version reported to clients (they gate features on it).
    pub version: String,
    /// The database file, whose size Status reports.
    pub db_path: PathBuf,
}

/// Registers Status and MemberList on `router`.
pub fn register(router: &mut Router, member: Rc<Gateway>, info: Rc<MemberInfo>) {
    let (m, i) = (member.clone(), info.clone());
    router.unary(
        "/etcdserverpb.Maintenance/Status",
        move |_metadata, _request: pb::StatusRequest| {
            let (member, info) = (m.clone(), i.clone());
            async move {
                let raft = member.raft_status().await?;
                let revision = member
                    .engine()
                    .read()
                    .map(|view| view.current_revision())
                    .unwrap_or(0);
                let db_size = std::fs::metadata(&info.db_path).map_or(0, |m| m.len() as i64);
                Ok(pb::StatusResponse {
                    header: Some(member.header(revision)),
                    version: info.version.clone(),
                    db_size,
                    leader: raft.leader,
                    raft_index: raft.last_index,
                    raft_term: raft.term,
                    raft_applied_index: raft.applied_index,
                    errors: Vec::new(),
                    db_size_in_use: db_size,
                    is_learner: false,
                })
            }
        },
    );
    let (m, i) = (member, info);
    router.unary(
        "/etcdserverpb.Cluster/MemberList",
        move |_metadata, _request: pb::MemberListRequest| {
            let (member, info) = (m.clone(), i.clone());
            async move {
                let identity = member.identity();
                let revision = member
                    .engine()
                    .read()
                    .map(|view| view.current_revision())
                    .unwrap_or(0);
                Ok(pb::MemberListResponse {
                    header: Some(member.header(revision)),
                    members: vec![pb::Member {
                        id: identity.member_id,
                        name: info.name.clone(),
                        peer_ur_ls: info.peer_urls.clone(),
                        client_ur_ls: info.client_urls.clone(),
                        is_learner: false,
                    }],
                })
            }
        },
    );
}
