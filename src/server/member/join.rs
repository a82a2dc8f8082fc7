//! `--initial-cluster-state=existing`: a new member learns its ID, the cluster's ID and the
//! members to dial by asking the running members, as etcd's `GetClusterFromRemotePeers` does.
//!
//! The question travels as plain HTTP/1.1 on the peer port (`GET /basalt/members`), which the
//! peer transport already answers beside its framed raft connections (etcd serves `/members`
//! there): no new message in the raft wire protocol, and a member that is not running yet
//! needs no handshake (it has no ID to present). The answer carries the cluster ID in its body
//! because basalt's HTTP/1.1 responses have no custom headers (etcd sends X-Etcd-Cluster-ID).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::server::state_machine::cluster_state::ClusterState;

/// The peer port's path that lists the members.
pub const MEMBERS_PATH: &str = "/basalt/members";

/// Largest answer read (a member list of a few members is a few KiB).
const ANSWER_BYTES_LIMIT: u64 = 1 << 20;

/// What `GET /basalt/members` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct MemberListing {
    /// The cluster ID, hex.
    pub cluster_id: String,
    pub members: Vec<ListedMember>,
}

/// One member of the listing.
#[derive(Debug, Serialize, Deserialize)]
pub struct ListedMember {
    /// The member ID, hex.
    pub id: String,
    #[serde(rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    #[serde(rename = "isLearner")]
    pub is_learner: bool,
}

/// The listing of `cluster`'s members, as JSON.
pub fn members_json(cluster_id: u64, cluster: &ClusterState) -> Vec<u8> {
    let listing = MemberListing {
        cluster_id: format!("{cluster_id:x}"),
        members: cluster
            .members()
            .map(|(id, urls)| ListedMember {
                id: format!("{id:x}"),
                peer_urls: urls.to_vec(),
                is_learner: cluster.is_learner(id),
            })
            .collect(),
    };
    serde_json::to_vec(&listing).expect("a listing always encodes")
}

/// What a joining member learned from the cluster.
#[derive(Clone, Debug)]
pub struct Joined {
    pub cluster_id: u64,
    pub member_id: u64,
    /// Every member and its peer URLs (this one included).
    pub members: Vec<(u64, Vec<String>)>,
}

/// Asks the members at `peer_urls` (every peer URL of `--initial-cluster` but this member's)
/// for the member list until one answers, for at most `limit`; finds this member in it by its
/// advertised peer URLs (it must have been added with MemberAdd first, as in etcd).
pub fn fetch_cluster(
    peer_urls: &[String],
    advertised: &[String],
    limit: Duration,
) -> Result<Joined, String> {
    if peer_urls.is_empty() {
        return Err(
            "--initial-cluster lists no other member to ask for the cluster's members".into(),
        );
    }
    let deadline = Instant::now() + limit;
    let mut last_error = String::from("no peer URLs to ask");
    loop {
        for url in peer_urls {
            match ask(url, deadline) {
                Ok(listing) => return joined_from(listing, advertised),
                Err(error) => last_error = format!("{url}: {error}"),
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "could not retrieve the cluster's members from its peers within {limit:?} \
                 (last: {last_error})"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn joined_from(listing: MemberListing, advertised: &[String]) -> Result<Joined, String> {
    let hex = |text: &str| {
        u64::from_str_radix(text, 16).map_err(|e| format!("bad id {text:?} in the listing: {e}"))
    };
    let members = listing
        .members
        .iter()
        .map(|member| Ok((hex(&member.id)?, member.peer_urls.clone())))
        .collect::<Result<Vec<_>, String>>()?;
    let own = members
        .iter()
        .find(|(_, urls)| {
            let mut urls = urls.clone();
            let mut ours = advertised.to_vec();
            urls.sort();
            ours.sort();
            urls == ours
        })
        .map(|(id, _)| *id)
        .ok_or_else(|| {
            format!(
                "the cluster has no member with this member's peer URLs {advertised:?}; add it \
                 first (etcdctl member add)"
            )
        })?;
    Ok(Joined {
        cluster_id: hex(&listing.cluster_id)?,
        member_id: own,
        members,
    })
}

/// One `GET /basalt/members` to the peer at `url` (`http://host:port`).
fn ask(url: &str, deadline: Instant) -> Result<MemberListing, String> {
    let address = url
        .strip_prefix("http://")
        .ok_or("only http:// peer URLs can be asked")?
        .trim_end_matches('/');
    let socket = address
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("the address resolves to nothing")?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    let mut stream = TcpStream::connect_timeout(&socket, left.min(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {MEMBERS_PATH} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    // Read until the head and `Content-Length` bytes of body are in (the connection may be
    // kept open after the answer).
    let mut answer = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head, body) = loop {
        let read = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("the connection closed before the answer was complete".into());
        }
        answer.extend_from_slice(&chunk[..read]);
        if answer.len() as u64 > ANSWER_BYTES_LIMIT {
            return Err("the answer is too large".into());
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .ok_or("the answer has no Content-Length")?;
        if body.len() >= length {
            break (head.to_string(), body[..length].to_string());
        }
    };
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "answered {:?}",
            head.lines().next().unwrap_or_default()
        ));
    }
    serde_json::from_str(&body).map_err(|e| format!("the member list does not parse: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joiner_finds_itself_by_its_peer_urls() {
        let listing: MemberListing = serde_json::from_str(
            r#"{"cluster_id":"ab","members":[
                {"id":"1","peerURLs":["http://a:1"],"isLearner":false},
                {"id":"2f","peerURLs":["http://b:2","http://c:3"],"isLearner":true}]}"#,
        )
        .unwrap();
        let joined = joined_from(listing, &["http://c:3".into(), "http://b:2".into()]).unwrap();
        assert_eq!((joined.cluster_id, joined.member_id), (0xab, 0x2f));
        assert_eq!(joined.members.len(), 2);
        let listing: MemberListing =
            serde_json::from_str(r#"{"cluster_id":"ab","members":[]}"#).unwrap();
        assert!(joined_from(listing, &["http://c:3".into()]).is_err());
    }
}
