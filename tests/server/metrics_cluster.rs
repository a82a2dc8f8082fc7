//! etcd's `etcd_network_*` peer series on a real 3-member cluster: the labels etcd gives them
//! (member IDs in hex), values that follow the traffic, and a killed member's disconnect; and
//! none of them on a lone member, as etcd with no peers.

use std::collections::HashMap;
use std::time::Duration;

use crate::metrics_e2e::{scrape, scrape_until, value};
use crate::support::cluster::Cluster;
use crate::support::Basalt;

/// Every peer family basalt exposes (sample names start with one of these).
const PEER_FAMILIES: [&str; 3] = [
    "etcd_network_peer_",
    "etcd_network_active_peers",
    "etcd_network_disconnected_peers",
];

fn active(local: u64, remote: u64) -> String {
    format!("etcd_network_active_peers{{Local=\"{local:x}\",Remote=\"{remote:x}\"}}")
}

fn disconnected(local: u64, remote: u64) -> String {
    format!("etcd_network_disconnected_peers_total{{Local=\"{local:x}\",Remote=\"{remote:x}\"}}")
}

fn to(family: &str, peer: u64) -> String {
    format!("{family}{{To=\"{peer:x}\"}}")
}

fn from(family: &str, peer: u64) -> String {
    format!("{family}{{From=\"{peer:x}\"}}")
}

/// Whether every other member is an active peer of `local` and has answered a ping.
fn linked_to_all(samples: &HashMap<String, f64>, local: u64, ids: &[u64]) -> bool {
    ids.iter().filter(|&&id| id != local).all(|&remote| {
        samples.get(&active(local, remote)) == Some(&1.0)
            && samples
                .get(&to(
                    "etcd_network_peer_round_trip_time_seconds_count",
                    remote,
                ))
                .is_some_and(|count| *count >= 1.0)
    })
}

#[test]
fn peer_series_follow_the_cluster_under_etcds_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let ids = cluster.member_ids();
    let follower = (leader + 1) % 3;
    let doomed = (leader + 2) % 3;
    let (leader_id, follower_id, doomed_id) = (ids[leader], ids[follower], ids[doomed]);

    // Every member is an active peer of every other, followers of each other too, and pings
    // have measured each link.
    let leader_port = cluster.member(leader).port;
    let follower_port = cluster.member(follower).port;
    let before = scrape_until(leader_port, |s| linked_to_all(s, leader_id, &ids));
    let follower_before = scrape_until(follower_port, |s| linked_to_all(s, follower_id, &ids));
    for (samples, local) in [(&before, leader_id), (&follower_before, follower_id)] {
        for &remote in ids.iter().filter(|&&id| id != local) {
            assert_eq!(value(samples, &disconnected(local, remote)), 0.0);
            assert!(value(samples, &to("etcd_network_peer_sent_bytes_total", remote)) > 0.0);
            assert!(
                value(
                    samples,
                    &from("etcd_network_peer_received_bytes_total", remote)
                ) > 0.0
            );
            assert_eq!(
                value(
                    samples,
                    &from("etcd_network_peer_received_failures_total", remote)
                ),
                0.0
            );
            // etcd's buckets, ending in +Inf.
            let le = |bound: &str| {
                format!(
                    "etcd_network_peer_round_trip_time_seconds_bucket{{To=\"{remote:x}\",le=\"{bound}\"}}"
                )
            };
            assert!(samples.contains_key(&le("0.0001")), "{samples:?}");
            assert!(samples.contains_key(&le("3.2768")), "{samples:?}");
            assert!(samples.contains_key(&le("+Inf")), "{samples:?}");
        }
        // A member is never its own peer.
        assert!(!samples.contains_key(&active(local, local)));
    }

    // Writes are appends to both followers: the bytes sent to them grow by at least the data.
    let value_bytes = "v".repeat(1000);
    for i in 0..20 {
        cluster
            .member(leader)
            .ok(&["put", &format!("k{i}"), &value_bytes]);
    }
    let after = scrape(leader_port);
    let sent = |samples: &HashMap<String, f64>, peer: u64| {
        value(samples, &to("etcd_network_peer_sent_bytes_total", peer))
    };
    assert!(sent(&after, follower_id) - sent(&before, follower_id) >= 20_000.0);
    let follower_after = scrape(follower_port);
    let received = |samples: &HashMap<String, f64>| {
        value(
            samples,
            &from("etcd_network_peer_received_bytes_total", leader_id),
        )
    };
    assert!(received(&follower_after) - received(&follower_before) >= 20_000.0);

    // A killed member: the leader counts the disconnect and the frames it could not send.
    cluster.kill_9(doomed);
    scrape_until(leader_port, |s| {
        s.get(&active(leader_id, doomed_id)) == Some(&0.0)
            && s.get(&disconnected(leader_id, doomed_id)) == Some(&1.0)
            && s.get(&to("etcd_network_peer_sent_failures_total", doomed_id))
                .is_some_and(|failures| *failures > 0.0)
    });
    // The survivors stay linked.
    let survivors = scrape(leader_port);
    assert_eq!(value(&survivors, &active(leader_id, follower_id)), 1.0);
    assert_eq!(
        value(&survivors, &disconnected(leader_id, follower_id)),
        0.0
    );
}

#[test]
fn a_lone_member_has_no_peer_series() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    basalt.ok(&["put", "k", "v"]);
    let (status, body) = crate::support::http_request(basalt.port, "GET", "/metrics");
    assert_eq!(status, 200);
    for family in PEER_FAMILIES.iter().chain(&["etcd_network_snapshot_"]) {
        assert!(
            !body.contains(family),
            "a lone member exposes {family}:\n{body}"
        );
    }
}
