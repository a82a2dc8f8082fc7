//! A follower cut off from the others while clients write and read through every member (the
//! leader's side is `cluster_faults`): the fault-injecting peer proxy refuses its links. What a
//! client must be able to rely on is checked: the majority goes on, the cut-off member
//! answers no linearizable read with what it held before the cut, and once healed it serves
//! everything acknowledged meanwhile.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::agreement::assert_members_agree;
use crate::support::cluster::Cluster;
use crate::support::workload::Workload;

/// How long the members may take to agree on a leader or a healed member to catch up
/// (etcd's election timeout is 1 s, randomized up to 2 s; room for a loaded machine).
const ELECTION_LIMIT: Duration = Duration::from_secs(15);
/// Puts that must be acknowledged in each phase.
const PROGRESS: usize = 10;

/// Goal: a partitioned follower never serves a stale linearizable read nor loses what was
/// acknowledged while it was away. Method: three members behind the proxy; three writers and
/// three linearizable readers (one per member, failing over when theirs does not answer);
/// a follower is isolated; the majority must keep acknowledging puts, a key written after
/// the cut must not be readable (linearizably) on the cut-off member, which must refuse
/// instead; after the heal it reads that key, and at the end every member holds every
/// acknowledged put and the members agree on revision and `hashkv`.
#[test]
fn a_cut_off_follower_serves_nothing_stale_and_catches_up_after_the_heal() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_behind_proxy(dir.path(), 3);
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let ids = cluster.member_ids();
    assert!(ids.iter().all(|&id| id != 0), "{ids:?}");
    let endpoints: Vec<String> = (0..3).map(|i| cluster.member(i).endpoint()).collect();
    let workload = Workload::start(Arc::new(Mutex::new(endpoints.clone())), 3, 3);
    workload.wait_for_more_acks(PROGRESS, ELECTION_LIMIT, "before the cut");

    let cut_off = (leader + 1) % 3;
    cluster.isolate(cut_off, &ids);
    workload.wait_for_more_acks(PROGRESS, ELECTION_LIMIT, "with a follower cut off");
    let majority = (cut_off + 1) % 3;
    if let Err(stderr) = cluster.member(majority).etcdctl_until_ok(
        &["--command-timeout=3s", "put", "after-cut", "1"],
        ELECTION_LIMIT,
    ) {
        panic!("the majority took no write after the cut: {stderr}");
    }
    for _ in 0..3 {
        let read = cluster.member(cut_off).etcdctl(
            &[
                "--command-timeout=2s",
                "get",
                "after-cut",
                "--print-value-only",
            ],
            "",
        );
        assert!(
            !read.status.success(),
            "the cut-off member answered a linearizable read: {:?}",
            String::from_utf8_lossy(&read.stdout)
        );
    }

    cluster.heal();
    match cluster.member(cut_off).etcdctl_until_ok(
        &[
            "--command-timeout=2s",
            "get",
            "after-cut",
            "--print-value-only",
        ],
        ELECTION_LIMIT,
    ) {
        Ok(value) => assert_eq!(value, "1\n"),
        Err(stderr) => panic!("the healed member did not catch up: {stderr}"),
    }
    workload.wait_for_more_acks(PROGRESS, ELECTION_LIMIT, "after the heal");
    let outcome = workload.stop();
    outcome.assert_nothing_lost_or_stale(&endpoints);
    assert_members_agree(&endpoints, ELECTION_LIMIT);
}
