//! What etcd checks before it bootstraps a fresh data directory (`ServerConfig.VerifyBootstrap`
//! and `VerifyJoinExisting`), and the member and cluster IDs the new cluster will carry.
//!
//! These checks belong to bootstrap, not to every start: a member restarting on its own data
//! ignores `--initial-cluster`, exactly as etcd does, so the server calls [`plan`] only when
//! its data directory holds no WAL yet.

use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs};

use super::error::ConfigError;
use super::ids::{self, Id};
use super::urls::{self, InitialCluster, Url};
use super::{ClusterState, Config};

/// One member of the initial cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapMember {
    /// Its `--initial-cluster` name.
    pub name: String,
    /// Its ID, derived as etcd derives it.
    pub id: Id,
    /// Its peer URLs, sorted.
    pub peer_urls: Vec<Url>,
}

/// The cluster a fresh member bootstraps (or, for `existing`, the local view it joins with).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bootstrap {
    /// Every initial member, ordered by ID as etcd lists members.
    pub members: Vec<BootstrapMember>,
    /// This member's ID.
    pub local_member_id: Id,
    /// The cluster's ID. For `--initial-cluster-state=existing` the running cluster's ID is
    /// authoritative; this is what the initial cluster alone would give.
    pub cluster_id: Id,
}

/// Checks the initial cluster against this member and derives the IDs.
pub fn plan(config: &Config) -> Result<Bootstrap, ConfigError> {
    let cluster = &config.cluster.initial_cluster;
    let name = &config.member.name;
    if cluster.is_empty() {
        return Err(ConfigError::InitialClusterEmpty);
    }
    let Some(local_urls) = cluster.members.get(name) else {
        return Err(ConfigError::LocalMemberMissing(name.clone()));
    };
    if config.cluster.state == ClusterState::New {
        check_advertise_matches_cluster(name, &config.urls.advertise_peer, local_urls)?;
    }
    check_duplicate_urls(cluster)?;

    let mut members: Vec<BootstrapMember> = cluster
        .members
        .iter()
        .map(|(member_name, peer_urls)| BootstrapMember {
            name: member_name.clone(),
            id: ids::member_id(peer_urls, &config.cluster.token, None),
            peer_urls: peer_urls.clone(),
        })
        .collect();
    members.sort_by_key(|member| member.id);
    for pair in members.windows(2) {
        if pair[0].id == pair[1].id {
            return Err(ConfigError::DuplicateMemberId(pair[0].id.to_string()));
        }
    }
    if let Some(zero) = members.iter().find(|member| member.id == Id(0)) {
        return Err(ConfigError::ReservedMemberId(zero.name.clone()));
    }
    let member_ids: Vec<Id> = members.iter().map(|member| member.id).collect();
    let local_member_id = members
        .iter()
        .find(|member| &member.name == name)
        .map(|member| member.id)
        .expect("the local member is in the cluster");
    Ok(Bootstrap {
        cluster_id: ids::cluster_id(&member_ids),
        local_member_id,
        members,
    })
}

/// etcd's `advertiseMatchesCluster`: the URLs this member advertises are exactly the ones the
/// cluster lists for it, compared as text first, then after resolving host names.
fn check_advertise_matches_cluster(
    name: &str,
    advertised: &[Url],
    listed: &[Url],
) -> Result<(), ConfigError> {
    let advertised_texts: BTreeSet<&str> = advertised.iter().map(|u| u.text.as_str()).collect();
    let listed_texts: BTreeSet<&str> = listed.iter().map(|u| u.text.as_str()).collect();
    if advertised_texts == listed_texts {
        return Ok(());
    }
    if let (Some(a), Some(b)) = (resolved(advertised), resolved(listed)) {
        if a == b {
            return Ok(());
        }
    }
    let advertised_joined = urls::join(advertised);
    let missing_from_advertised: Vec<String> = listed_texts
        .difference(&advertised_texts)
        .map(|url| format!("{name}={url}"))
        .collect();
    if !missing_from_advertised.is_empty() {
        return Err(ConfigError::AdvertisedPeerUrlsMismatch(format!(
            "--initial-cluster has {} but missing from --initial-advertise-peer-urls={}",
            missing_from_advertised.join(","),
            advertised_joined
        )));
    }
    let missing_from_cluster: Vec<&str> = advertised_texts
        .difference(&listed_texts)
        .copied()
        .collect();
    Err(ConfigError::AdvertisedPeerUrlsMismatch(format!(
        "--initial-advertise-peer-urls has {} but missing from --initial-cluster={}",
        missing_from_cluster.join(","),
        InitialCluster::single(name, listed)
    )))
}

/// The URLs with DNS names replaced by their first address (IPv4 first, as Go resolves for
/// "tcp"); `None` if a name does not resolve. Like etcd's `netutil.resolveURL`, `localhost`
/// and IP literals are left as written, so `localhost` never matches `127.0.0.1`.
fn resolved(list: &[Url]) -> Option<BTreeSet<(bool, Option<SocketAddr>, String)>> {
    list.iter()
        .map(|url| {
            let literal = match url.host() {
                None => true,
                Some(host) => host == "localhost" || host.parse::<std::net::IpAddr>().is_ok(),
            };
            if literal {
                return Some((url.is_tls(), None, url.text.clone()));
            }
            let mut addresses: Vec<SocketAddr> = url.address.to_socket_addrs().ok()?.collect();
            addresses.sort_by_key(|address| address.is_ipv6());
            Some((url.is_tls(), Some(*addresses.first()?), String::new()))
        })
        .collect()
}

/// etcd's `CheckDuplicateURL`: no peer URL may appear twice in the initial cluster.
fn check_duplicate_urls(cluster: &InitialCluster) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for url in cluster.members.values().flatten() {
        if !seen.insert(url.text.as_str()) {
            return Err(ConfigError::DuplicatePeerUrl(cluster.to_string()));
        }
    }
    Ok(())
}
