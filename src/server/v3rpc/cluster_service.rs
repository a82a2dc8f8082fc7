//! etcd's Cluster service: MemberList of every member, and MemberAdd / MemberRemove /
//! MemberUpdate / MemberPromote answered as a one-member etcd 3.5 answers them (membership
//! changes through raft are not built yet).
//!
//! - Remove of this member: "not enough started members" (it would leave no quorum); of an
//!   unknown id: "member not found".
//! - Update of this member's peer URLs goes through raft and is stored (a restart keeps it, as
//!   etcd keeps stored URLs over `--initial-advertise-peer-urls`); unknown id: "member not
//!   found".
//! - Promote of this member (a voter): "can only promote a learner member"; unknown id:
//!   "member not found".
//! - Add is checked as etcd checks it (URLs, URLs already in use), then refused with
//!   UNIMPLEMENTED: a second member needs peer networking, which basalt does not have yet.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::Metadata;
use basalt_net::{Code, EtcdStatus, Router, Status};

use super::status_service::MemberInfo;
use crate::server::member::owner_op::GetClusterState;
use crate::server::routing::gateway::Gateway;

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
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Cluster/MemberAdd",
        move |metadata: Metadata, request: pb::MemberAddRequest| {
            let member = m.clone();
            async move {
                member.caller(&metadata)?.check_admin()?;
                check_urls(&request.peer_ur_ls)?;
                let cluster = member.call(GetClusterState).await?;
                let self_urls = cluster
                    .peer_urls(member.identity().member_id)
                    .unwrap_or_default();
                if request.peer_ur_ls.iter().any(|u| self_urls.contains(u)) {
                    return Err(EtcdStatus::PeerUrlExists.into());
                }
                Err::<pb::MemberAddResponse, _>(Status::new(
                    Code::Unimplemented,
                    "basalt: adding a member needs clustering, which this version does not have \
                     yet",
                ))
            }
        },
    );
    let m = member.clone();
    router.unary(
        "/etcdserverpb.Cluster/MemberRemove",
        move |metadata: Metadata, request: pb::MemberRemoveRequest| {
            let member = m.clone();
            async move {
                member.caller(&metadata)?.check_admin()?;
                if request.id == member.identity().member_id {
                    return Err(EtcdStatus::MemberNotEnoughStarted.into());
                }
                Err::<pb::MemberRemoveResponse, _>(EtcdStatus::MemberNotFound.into())
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
            let member = member.clone();
            async move {
                member.caller(&metadata)?.check_admin()?;
                if request.id == member.identity().member_id {
                    return Err(EtcdStatus::MemberNotLearner.into());
                }
                Err::<pb::MemberPromoteResponse, _>(EtcdStatus::MemberNotFound.into())
            }
        },
    );
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
                is_learner: false,
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
