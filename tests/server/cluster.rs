//! Three real members replicating through raft on loopback, driven by Debian's etcdctl.

use std::time::Duration;

use crate::support::cluster::Cluster;

/// How long a new leader may take after the old one is killed: etcd's election timeout is 1 s,
/// randomized up to 2 s; pre-vote and a probe round add a little.
const ELECTION_LIMIT: Duration = Duration::from_secs(10);

/// Goal: a write through any member is read back, linearizably, from every member; the killed
/// leader's successor takes writes within the election bound, nothing acknowledged is lost,
/// and the old leader rejoins and catches up after a restart.
#[test]
fn three_members_replicate_elect_and_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3);
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let follower = (leader + 1) % 3;

    // Writes through the leader and through a follower (forwarded to the leader).
    cluster.member(leader).ok(&["put", "via-leader", "1"]);
    cluster.member(follower).ok(&["put", "via-follower", "2"]);
    for i in 0..3 {
        let read = cluster
            .member(i)
            .ok(&["get", "via", "--prefix", "--print-value-only"]);
        // Sorted by key: via-follower, then via-leader.
        assert_eq!(read, "2\n1\n", "member {i}");
    }

    // Kill the leader; the survivors elect another and keep taking writes.
    cluster.kill_9(leader);
    let survivor = (leader + 1) % 3;
    if let Err(stderr) = cluster
        .member(survivor)
        .etcdctl_until_ok(&["put", "after-kill", "3"], ELECTION_LIMIT)
    {
        panic!("no write accepted within {ELECTION_LIMIT:?} after the leader was killed: {stderr}");
    }
    let new_leader = cluster.wait_for_leader(ELECTION_LIMIT);
    assert_ne!(new_leader, leader);
    for i in cluster.running() {
        let read = cluster
            .member(i)
            .ok(&["get", "", "--prefix", "--keys-only"]);
        let keys: Vec<&str> = read.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            keys,
            ["after-kill", "via-follower", "via-leader"],
            "member {i}"
        );
    }

    // The old leader comes back as a follower and serves what it missed.
    cluster.restart(leader);
    let read = cluster
        .member(leader)
        .ok(&["get", "after-kill", "--print-value-only"]);
    assert_eq!(read, "3\n");
    assert_eq!(cluster.wait_for_leader(ELECTION_LIMIT), new_leader);
}
