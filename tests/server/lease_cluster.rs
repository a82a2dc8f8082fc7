//! Leases through any member of a three-member cluster: a follower forwards keep-alives and
//! TimeToLive to the leader (as etcd does), and a leader's death keeps the lease.

use std::time::{Duration, Instant};

use crate::support::cluster::Cluster;

const ELECTION_LIMIT: Duration = Duration::from_secs(10);

/// The TTL etcdctl prints for `lease timetolive` ("... remaining(Ns)").
fn remaining_s(text: &str) -> i64 {
    let rest = text
        .split("remaining(")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    rest.split('s').next().unwrap().parse().unwrap()
}

/// Goal: a 3 s lease kept alive only through a follower outlives its TTL several times; a
/// follower's TimeToLive is the leader's count-down; after the leader is killed the lease
/// still exists with a live TTL. Method: etcdctl against real members.
#[test]
fn leases_through_a_follower() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3);
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let follower = (leader + 1) % 3;
    let granted = cluster.member(leader).ok(&["lease", "grant", "3"]);
    let id = granted.split_whitespace().nth(1).unwrap().to_string();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(7) {
        let kept = cluster
            .member(follower)
            .ok(&["lease", "keep-alive", "--once", &id]);
        assert!(kept.contains("TTL(3)"), "{kept}");
        std::thread::sleep(Duration::from_millis(700));
    }
    let on_follower = remaining_s(&cluster.member(follower).ok(&["lease", "timetolive", &id]));
    let on_leader = remaining_s(&cluster.member(leader).ok(&["lease", "timetolive", &id]));
    assert!(
        on_follower > 0 && (on_follower - on_leader).abs() <= 1,
        "{on_follower} vs {on_leader}"
    );

    cluster.kill_9(leader);
    let new_leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let text = cluster.member(new_leader).ok(&["lease", "timetolive", &id]);
    assert!(remaining_s(&text) > 0, "the lease did not survive: {text}");
    let kept = cluster
        .member(follower)
        .ok(&["lease", "keep-alive", "--once", &id]);
    assert!(kept.contains("TTL(3)"), "{kept}");
}
