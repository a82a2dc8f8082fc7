//! etcd's Cluster service: MemberList of every member; MemberAdd (voter or learner),
//! MemberRemove and MemberPromote as raft membership changes (`MembershipChange`: checked on
//! the proposing member — `--strict-reconfig-check`, a learner's progress — then validated
//! at apply as etcd validates them); MemberUpdate as a replicated write of the member's peer
//! URLs (a restart keeps them, as etcd keeps stored URLs over
//! `--initial-advertise-peer-urls`). Each answers with the members once it has applied.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::Metadata;
use basalt_net::{EtcdStatus, Router, Status};

use super::status_service::MemberInfo;
use crate::server::member::owner_op::{GetClusterState, ProposeMembership};
use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::membership_change::MembershipChange;

/// Registers the Cluster methods on `router`.
pub fn register(router: &mut Router, member: Rc<Gateway>, info: Rc<MemberInfo>) {
    let (m, i) = (member.clone(), info.clone());
    router.unary(
        "/etcdserverpb.Cluster/MemberList",
        move |metadata: Metadata, request: pb::MemberListRequest| {
            let (member, info) = (m.clone(), i.clone());
            async move {
                member.caller(&metadata)?.require()?;
                if request.linearizable {
                    member.wait_linearizable().await?;
                }
                Ok(pb::MemberListResponse {
                    header: Some(header(&member)),
                    members: members(&member, &info).await?,
                })
            }
        },
    );
    let (m, i) = (member.clone(), info.clone());
    router.unary(
        "/etcdserverpb.Cluster/MemberAdd",
        move |metadata: Metadata, request: pb::MemberAddRequest| {
            let (member, info) = (m.clone(), i.clone());
            async move {
                member.caller(&metadata)?.check_admin()?;
                check_urls(&request.peer_ur_ls)?;
                let member_id = new_member_id(&request.peer_ur_ls);
                let change = MembershipChange::Add {
                    member_id,
                    peer_urls: request.peer_ur_ls.clone(),
                    learner: request.is_learner,
                };
                member.call(ProposeMembership(change)).await??;
                Ok(pb::MemberAddResponse {
                    header: Some(header(&member)),
                    member: Some(pb::Member {
                        id: member_id,
                        peer_ur_ls: request.peer_ur_ls,
                        is_learner: request.is_learner,
                        ..Default::default()
                    }),
                    members: members(&member, &info).await?,
                })
            }
        },
    );
    let (m, i) = (member.clone(), info.clone());
    router.unary(
        "/etcdserverpb.Cluster/MemberRemove",
        move |metadata: Metadata, request: pb::MemberRemoveRequest| {
            let (member, info) = (m.clone(), i.clone());
            async move {
                member.caller(&metadata)?.check_admin()?;
                let change = MembershipChange::Remove {
                    member_id: request.id,
                };
                member.call(ProposeMembership(change)).await??;
                Ok(pb::MemberRemoveResponse {
                    header: Some(header(&member)),
                    members: members(&member, &info).await?,
                })
            }
        },
    );
    let (m, i) = (member.clone(), info.clone());
    router.unary(
        "/etcdserverpb.Cluster/MemberUpdate",
        move |metadata: Metadata, request: pb::MemberUpdateRequest| {
            let (member, info) = (m.clone(), i.clone());
            async move {
                member.caller(&metadata)?.check_admin()?;
                member.propose(request).await?;
                Ok(pb::MemberUpdateResponse {
                    header: Some(header(&member)),
                    members: members(&member, &info).await?,
                })
            }
        },
    );
    router.unary(
        "/etcdserverpb.Cluster/MemberPromote",
        move |metadata: Metadata, request: pb::MemberPromoteRequest| {
            let (member, info) = (member.clone(), info.clone());
            async move {
                member.caller(&metadata)?.check_admin()?;
                let change = MembershipChange::Promote {
                    member_id: request.id,
                };
                member.call(ProposeMembership(change)).await??;
                Ok(pb::MemberPromoteResponse {
                    header: Some(header(&member)),
                    members: members(&member, &info).await?,
                })
            }
        },
    );
}

/// A new member's ID, as etcd's `NewMember` derives one for MemberAdd: a hash of its peer
/// URLs and the time (so the same URLs added again get another ID).
fn new_member_id(peer_urls: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut sorted = peer_urls.to_vec();
    sorted.sort();
    sorted.hash(&mut hasher);
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .hash(&mut hasher);
    // 0 means "no member" to raft.
    hasher.finish().max(1)
}

/// The members, as etcd lists them: by ID, each with the name and client URLs it published
/// (empty for a member that has not started yet; this member's own from its flags until its
/// publication applies).
async fn members(member: &Gateway, info: &MemberInfo) -> Result<Vec<pb::Member>, Status> {
    let own = member.identity().member_id;
    let cluster = member.call(GetClusterState).await?;
    Ok(cluster
        .members()
        .map(|(id, peer_urls)| {
            let (name, client_urls) = match cluster.attributes(id) {
                Some((name, urls)) => (name.to_string(), urls.to_vec()),
                None if id == own => (info.name.clone(), info.client_urls.clone()),
                None => (String::new(), Vec::new()),
            };
            pb::Member {
                id,
                name,
                peer_ur_ls: peer_urls.to_vec(),
                client_ur_ls: client_urls,
                is_learner: cluster.is_learner(id),
            }
        })
        .collect())
}

/// etcd's Cluster header: cluster, member and term; no revision.
fn header(member: &Gateway) -> pb::ResponseHeader {
    member.header(0)
}

/// etcd's `types.NewURLs` check of member URLs: at least one; each `scheme://host:port` with
/// scheme http, https, unix or unixs and no path.
fn check_urls(urls: &[String]) -> Result<(), Status> {
    let bad = || Status::from(EtcdStatus::MemberBadUrls);
    if urls.is_empty() {
        return Err(bad());
    }
    for url in urls {
        let (scheme, rest) = url.trim().split_once("://").ok_or_else(bad)?;
        if !matches!(scheme, "http" | "https" | "unix" | "unixs") {
            return Err(bad());
        }
        if rest.contains('/') {
            return Err(bad());
        }
        if matches!(scheme, "http" | "https") {
            let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
            if host.is_empty() || port.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_urls_are_checked_as_etcd_checks_them() {
        let ok = |u: &[&str]| check_urls(&u.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(ok(&["http://10.0.0.1:2380", "https://node:2380"]).is_ok());
        assert!(ok(&[]).is_err());
        assert!(ok(&["10.0.0.1:2380"]).is_err());
        assert!(ok(&["ftp://10.0.0.1:2380"]).is_err());
        assert!(ok(&["http://10.0.0.1"]).is_err());
        assert!(ok(&["http://10.0.0.1:2380/path"]).is_err());
    }
}
