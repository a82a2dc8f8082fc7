//! Member and cluster IDs derived exactly as etcd derives them (its `membership` package), so a
//! cluster bootstrapped with the same flags carries the same IDs in every response header and
//! `member list`, and tools that remember an ID keep recognising the cluster.
//!
//! - member ID: the first 8 bytes, big-endian, of SHA-1 over the member's peer URLs sorted and
//!   concatenated, then the cluster token, then (only for a member added at run time) the
//!   decimal Unix time of the addition;
//! - cluster ID: the first 8 bytes, big-endian, of SHA-1 over the member IDs sorted ascending,
//!   each as 8 big-endian bytes.

use std::fmt;

use super::urls::Url;

/// A member or cluster ID; etcd prints it as lower-case hex without padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub u64);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// The ID etcd gives a member from its peer URLs and the cluster token; `added_at_unix_seconds`
/// is `Some` only for a member added to a running cluster (`member add`), never at bootstrap.
pub fn member_id(peer_urls: &[Url], cluster_token: &str, added_at_unix_seconds: Option<i64>) -> Id {
    let mut texts: Vec<&str> = peer_urls.iter().map(|url| url.text.as_str()).collect();
    texts.sort_unstable();
    let mut hasher = sha1_smol::Sha1::new();
    for text in texts {
        hasher.update(text.as_bytes());
    }
    hasher.update(cluster_token.as_bytes());
    if let Some(seconds) = added_at_unix_seconds {
        hasher.update(seconds.to_string().as_bytes());
    }
    first_eight_bytes(hasher.digest().bytes())
}

/// The ID etcd gives a cluster from its members' IDs (order does not matter).
pub fn cluster_id(member_ids: &[Id]) -> Id {
    let mut sorted = member_ids.to_vec();
    sorted.sort_unstable();
    let mut hasher = sha1_smol::Sha1::new();
    for id in sorted {
        hasher.update(&id.0.to_be_bytes());
    }
    first_eight_bytes(hasher.digest().bytes())
}

fn first_eight_bytes(digest: [u8; 20]) -> Id {
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    Id(u64::from_be_bytes(head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::urls::InitialCluster;

    fn urls(texts: &[&str]) -> Vec<Url> {
        texts.iter().map(|text| Url::parse(text).unwrap()).collect()
    }

    /// IDs of a bootstrapped cluster, derived from `--initial-cluster` as etcd does.
    fn bootstrap_ids(initial_cluster: &str, token: &str) -> (Vec<(String, Id)>, Id) {
        let cluster = InitialCluster::parse(initial_cluster).unwrap();
        let members: Vec<(String, Id)> = cluster
            .members
            .iter()
            .map(|(name, urls)| (name.clone(), member_id(urls, token, None)))
            .collect();
        let ids: Vec<Id> = members.iter().map(|(_, id)| *id).collect();
        (members, cluster_id(&ids))
    }

    // Expected values below were read from Debian's etcd 3.4.23 (same algorithm as 3.5), by
    // starting it with the flags in each comment and reading its "starting member <id> in
    // cluster <id>" log line, or `etcdctl member list -w json` / `endpoint status -w json`.

    /// `etcd` with no cluster flags: the IDs every etcd user has seen in a default start-up.
    #[test]
    fn default_member_matches_etcd() {
        // --name default --initial-advertise-peer-urls http://localhost:2380 (the defaults)
        let (members, cluster) = bootstrap_ids("default=http://localhost:2380", "etcd-cluster");
        assert_eq!(members[0].1.to_string(), "8e9e05c52164694d");
        assert_eq!(cluster.to_string(), "cdf818194e3a8c32");
    }

    #[test]
    fn single_member_matches_etcd() {
        // --name x --initial-cluster x=http://127.0.0.1:23805 (token etcd-cluster);
        // etcdctl: member_id 9009370488483034218, cluster_id 16852641557184054374.
        let (members, cluster) = bootstrap_ids("x=http://127.0.0.1:23805", "etcd-cluster");
        assert_eq!(members[0].1, Id(9009370488483034218));
        assert_eq!(members[0].1.to_string(), "7d07b6b9bfeb346a");
        assert_eq!(cluster, Id(16852641557184054374));
        assert_eq!(cluster.to_string(), "e9e09c3506f10466");
    }

    #[test]
    fn three_members_match_etcd() {
        // --initial-cluster a=...:23811,b=...:23812,c=...:23813 --initial-cluster-token k8s-events
        let (members, cluster) = bootstrap_ids(
            "a=http://127.0.0.1:23811,b=http://127.0.0.1:23812,c=http://127.0.0.1:23813",
            "k8s-events",
        );
        let by_name: Vec<(&str, String)> = members
            .iter()
            .map(|(name, id)| (name.as_str(), id.to_string()))
            .collect();
        assert_eq!(
            by_name,
            [
                ("a", "2fe2fc7eafb090a1".to_string()),
                ("b", "57a6d318a85a3d81".to_string()),
                ("c", "423cc4f6bffc5760".to_string()),
            ]
        );
        assert_eq!(cluster.to_string(), "623ddbba08d6d56c");
    }

    #[test]
    fn member_with_two_peer_urls_matches_etcd() {
        // --initial-cluster m=http://127.0.0.1:23822,m=http://127.0.0.1:23821
        // --initial-cluster-token tok (URLs given unsorted on purpose)
        let (members, cluster) =
            bootstrap_ids("m=http://127.0.0.1:23822,m=http://127.0.0.1:23821", "tok");
        assert_eq!(members[0].1.to_string(), "178091a5f6e6b0bc");
        assert_eq!(cluster.to_string(), "2febde3372a0d59d");
    }

    /// Goal: the ID depends on the set of URLs and the token, not on the order URLs arrive in;
    /// a member added at run time hashes its addition time too.
    #[test]
    fn member_id_ignores_url_order_but_not_token_or_time() {
        let forward = urls(&["http://a:1", "http://b:2"]);
        let backward = urls(&["http://b:2", "http://a:1"]);
        assert_eq!(
            member_id(&forward, "t", None),
            member_id(&backward, "t", None)
        );
        assert_ne!(
            member_id(&forward, "t", None),
            member_id(&forward, "u", None)
        );
        assert_ne!(
            member_id(&forward, "t", None),
            member_id(&forward, "t", Some(1))
        );
        let ids = [Id(3), Id(1), Id(2)];
        assert_eq!(cluster_id(&ids), cluster_id(&[Id(1), Id(2), Id(3)]));
    }
}
