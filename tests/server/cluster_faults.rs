//! Real members under faults on loopback: a leader cut off from the others by a
//! fault-injecting peer proxy, kill -9 of every member in turn (leader included) while a
//! client writes, and kill -9 of the leader again and again under writers and linearizable
//! readers. Driven by Debian's etcdctl; what is checked is what a client must be able
//! to rely on — no acknowledged write lost, no stale linearizable read.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::agreement::assert_members_agree;
use crate::support::cluster::Cluster;
use crate::support::find_etcdctl;
use crate::support::workload::Workload;

/// How long the members may take to agree on a leader after a fault: etcd's election timeout
/// is 1 s, randomized up to 2 s; the bound leaves room for a loaded 2-core machine.
const ELECTION_LIMIT: Duration = Duration::from_secs(15);

/// Goal: a leader cut off from both followers never answers a linearizable read with what it
/// held before the cut, nor acknowledges a write, while the other two elect a leader and take
/// writes; once the links heal it follows the new leader and reads what was written meanwhile.
/// Method: every peer link runs through a proxy that refuses the leader's connections.
#[test]
fn a_cut_off_leader_serves_nothing_stale_and_the_majority_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_behind_proxy(dir.path(), 3);
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let ids = cluster.member_ids();
    assert!(ids.iter().all(|&id| id != 0), "{ids:?}");
    cluster.member(leader).ok(&["put", "k", "before"]);

    cluster.isolate(leader, &ids);
    let majority = (leader + 1) % 3;
    if let Err(stderr) = cluster.member(majority).etcdctl_until_ok(
        &["--command-timeout=3s", "put", "k", "after"],
        ELECTION_LIMIT,
    ) {
        panic!("the majority took no write within {ELECTION_LIMIT:?} of the cut: {stderr}");
    }

    // The cut-off member knows only "before": it must refuse rather than answer.
    for _ in 0..3 {
        let read = cluster.member(leader).etcdctl(
            &["--command-timeout=2s", "get", "k", "--print-value-only"],
            "",
        );
        let stderr = String::from_utf8_lossy(&read.stderr);
        assert!(
            !read.status.success(),
            "stale linearizable read on the cut-off member: {:?}",
            String::from_utf8_lossy(&read.stdout)
        );
        assert!(
            [
                "request timed out",
                "no leader",
                "context deadline exceeded"
            ]
            .iter()
            .any(|text| stderr.contains(text)),
            "unexpected refusal: {stderr}"
        );
    }
    let write = cluster
        .member(leader)
        .etcdctl(&["--command-timeout=2s", "put", "k", "lost"], "");
    assert!(
        !write.status.success(),
        "the cut-off member acknowledged a write"
    );

    cluster.heal();
    match cluster.member(leader).etcdctl_until_ok(
        &["--command-timeout=2s", "get", "k", "--print-value-only"],
        ELECTION_LIMIT,
    ) {
        Ok(value) => assert_eq!(value, "after\n"),
        Err(stderr) => {
            panic!("the healed member did not catch up within {ELECTION_LIMIT:?}: {stderr}")
        }
    }
    let agreed = cluster.wait_for_leader(ELECTION_LIMIT);
    assert_ne!(
        agreed, leader,
        "a healed member with an older log cannot lead"
    );
}

/// Goal: five members lose no acknowledged write while each of them, the leader included, is
/// killed with SIGKILL and restarted in turn under a steady stream of writes.
/// Method: a writer puts numbered keys through etcdctl with every endpoint (it fails over as a
/// real client does) and records the keys acknowledged; after the last restart every member
/// must hold every one of them.
#[test]
fn five_members_keep_every_acknowledged_write_through_kill_9_of_each_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 5);
    cluster.wait_for_leader(ELECTION_LIMIT);
    let endpoints = cluster
        .seats
        .iter()
        .map(|seat| format!("127.0.0.1:{}", seat.client_port))
        .collect::<Vec<_>>()
        .join(",");
    let acknowledged = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        thread::spawn(move || {
            let etcdctl = find_etcdctl();
            for n in 0u64.. {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let put = Command::new(&etcdctl)
                    .env("ETCDCTL_API", "3")
                    .args([
                        "--endpoints",
                        &endpoints,
                        "--command-timeout=3s",
                        "put",
                        &format!("w/{n:06}"),
                        "v",
                    ])
                    .output()
                    .expect("run etcdctl");
                if put.status.success() {
                    acknowledged.lock().unwrap().push(n);
                }
            }
        })
    };
    let acked = || acknowledged.lock().unwrap().len();
    // Writes must resume after each restart: a bounded wait for a few more acknowledgements.
    let wait_for_writes = |after: usize, what: &str| {
        let deadline = Instant::now() + ELECTION_LIMIT;
        while acked() < after + 3 {
            assert!(Instant::now() < deadline, "no writes acknowledged {what}");
            thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for_writes(0, "at the start");
    let mut leaders_killed = 0;
    for i in 0..5 {
        let leader = cluster.wait_for_leader(ELECTION_LIMIT);
        leaders_killed += usize::from(leader == i);
        cluster.kill_9(i);
        wait_for_writes(acked(), &format!("with member {i} down"));
        cluster.restart(i);
        wait_for_writes(acked(), &format!("after member {i} restarted"));
    }
    if leaders_killed == 0 {
        // Leadership moved on its own before its holder's turn: kill the leader once more.
        let leader = cluster.wait_for_leader(ELECTION_LIMIT);
        cluster.kill_9(leader);
        wait_for_writes(acked(), "with the leader down");
        cluster.restart(leader);
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();

    let expected: BTreeSet<String> = acknowledged
        .lock()
        .unwrap()
        .iter()
        .map(|n| format!("w/{n:06}"))
        .collect();
    assert!(expected.len() > 20, "too few writes to mean anything");
    for i in 0..5 {
        let keys = cluster
            .member(i)
            .ok(&["get", "w/", "--prefix", "--keys-only"]);
        let held: BTreeSet<String> = keys
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        let lost: Vec<&String> = expected.difference(&held).collect();
        assert!(
            lost.is_empty(),
            "member {i} lost acknowledged writes {lost:?}"
        );
    }
}

/// Goal: killing the leader with SIGKILL under load, again and again, loses no acknowledged
/// write and never lets a linearizable read miss a put acknowledged before it was sent.
/// Method: three members; three writers and three linearizable readers (one per member,
/// failing over as a client does, `support::workload`); three times the current leader is
/// killed, the survivors must take writes, and it is restarted; at the end every member holds
/// every acknowledged put and the members agree on revision and `hashkv`.
#[test]
fn kill_9_of_the_leader_under_load_loses_nothing_and_reads_nothing_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3);
    cluster.wait_for_leader(ELECTION_LIMIT);
    let endpoints: Vec<String> = (0..3).map(|i| cluster.member(i).endpoint()).collect();
    let workload = Workload::start(Arc::new(Mutex::new(endpoints.clone())), 3, 3);
    workload.wait_for_more_acks(10, ELECTION_LIMIT, "at the start");
    for round in 0..3 {
        let leader = cluster.wait_for_leader(ELECTION_LIMIT);
        cluster.kill_9(leader);
        workload.wait_for_more_acks(10, ELECTION_LIMIT, &format!("after kill {round}"));
        cluster.restart(leader);
        workload.wait_for_more_acks(10, ELECTION_LIMIT, &format!("after restart {round}"));
    }
    cluster.wait_for_leader(ELECTION_LIMIT);
    let outcome = workload.stop();
    outcome.assert_nothing_lost_or_stale(&endpoints);
    assert_members_agree(&endpoints, ELECTION_LIMIT);
}
