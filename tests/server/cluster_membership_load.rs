//! Members replaced while clients write, as an operator replaces a host: add a learner, start
//! it with `--initial-cluster-state existing`, promote it once it is in sync, remove an old
//! member — once a follower, once the leader. Driven by Debian's etcdctl for the `member`
//! commands and the etcd-client crate for the load; checked: no acknowledged write lost, no
//! stale linearizable read, the new members serve every write, and `member list` is the
//! truth on every member.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::agreement::assert_members_agree;
use crate::support::cluster::Cluster;
use crate::support::workload::{Endpoints, Workload};

/// How long the members may take to agree on a leader (etcd's election timeout is 1 s,
/// randomized up to 2 s), or a removed member to exit.
const ELECTION_LIMIT: Duration = Duration::from_secs(15);
/// How long a reconfiguration may be refused: etcd 3.4 refuses `member add` ("unhealthy
/// cluster") until the leader has been connected to every voter for 5 s, and promotion
/// until the learner is in sync; operators retry, as here.
const RECONFIGURE_LIMIT: Duration = Duration::from_secs(30);
/// Puts that must be acknowledged after each step: the cluster takes writes.
const PROGRESS: usize = 10;

/// Goal: replacing members under load keeps every acknowledged write, serves no stale read,
/// and leaves a membership every member reports alike. Method: three members; three writers
/// and two linearizable readers on the voters' endpoints; twice a learner is added, started,
/// promoted and put in the workload's endpoints, then an old member is taken out of them and
/// removed (first a follower, then whichever member leads); its process must exit. At the
/// end every member holds every acknowledged put, the new ones included, the members agree
/// on revision and `hashkv`, and each lists exactly the three running voters.
#[test]
fn members_replaced_under_load_lose_nothing_and_list_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3);
    cluster.wait_for_leader(ELECTION_LIMIT);
    let endpoints: Endpoints = Arc::new(Mutex::new(
        (0..3).map(|i| cluster.member(i).endpoint()).collect(),
    ));
    let workload = Workload::start(endpoints.clone(), 3, 2);
    workload.wait_for_more_acks(PROGRESS, ELECTION_LIMIT, "at the start");

    add_learner_and_promote(&mut cluster, dir.path(), &endpoints, &workload);
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let follower = (0..3)
        .find(|&i| i != leader && cluster.members[i].is_some())
        .expect("an old member follows");
    remove(&mut cluster, follower, &endpoints, &workload);

    add_learner_and_promote(&mut cluster, dir.path(), &endpoints, &workload);
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    remove(&mut cluster, leader, &endpoints, &workload);

    let outcome = workload.stop();
    let running = cluster.running();
    assert_eq!(running.len(), 3, "{running:?}");
    let voters: Vec<String> = running
        .iter()
        .map(|&i| cluster.member(i).endpoint())
        .collect();
    outcome.assert_nothing_lost_or_stale(&voters);
    assert_members_agree(&voters, ELECTION_LIMIT);

    // `member list` is the truth on every member: the running members, voters all, with
    // their names and peer URLs.
    let ids = cluster.member_ids();
    let truth: BTreeSet<(u64, String, bool, Vec<String>)> = running
        .iter()
        .map(|&i| {
            let seat = &cluster.seats[i];
            (
                ids[i],
                seat.name.clone(),
                false,
                vec![format!("http://127.0.0.1:{}", seat.peer_port)],
            )
        })
        .collect();
    for &i in &running {
        assert_eq!(
            listed_members(&cluster, i),
            truth,
            "member list on member {i}"
        );
    }
}

/// Adds a learner in a new seat, starts it with the `--initial-cluster` that `member add`
/// printed, promotes it once the leader finds it in sync, and adds it to the workload's
/// endpoints; checks the cluster takes writes after each step.
fn add_learner_and_promote(
    cluster: &mut Cluster,
    dir: &Path,
    endpoints: &Endpoints,
    workload: &Workload,
) {
    let joiner = cluster.new_seat(dir);
    let name = cluster.seats[joiner].name.clone();
    let peer_url = format!("http://127.0.0.1:{}", cluster.seats[joiner].peer_port);
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let added = cluster
        .add_learner(leader, joiner, RECONFIGURE_LIMIT)
        .unwrap_or_else(|stderr| panic!("member add {name} --learner: {stderr}"));
    let initial_cluster = added
        .lines()
        .find_map(|line| line.strip_prefix("ETCD_INITIAL_CLUSTER=\""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no ETCD_INITIAL_CLUSTER in {added}"))
        .to_string();
    assert!(
        initial_cluster.contains(&format!("{name}={peer_url}")),
        "{added}"
    );
    cluster.join_with(joiner, &initial_cluster);
    workload.wait_for_more_acks(PROGRESS, ELECTION_LIMIT, &format!("with learner {name}"));

    let id = cluster.leader_seen_by(joiner).1;
    assert_ne!(id, 0, "the learner reports its ID");
    // Through a follower on purpose: it forwards the promotion to the leader.
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let other = cluster
        .running()
        .into_iter()
        .find(|&i| i != leader && i != joiner)
        .expect("a follower");
    if let Err(stderr) = cluster.member(other).etcdctl_until_ok(
        &["member", "promote", &format!("{id:x}")],
        RECONFIGURE_LIMIT,
    ) {
        panic!("member promote {name}: {stderr}");
    }
    if let Err(stderr) = cluster.member(joiner).etcdctl_until_ok(
        &["--command-timeout=2s", "get", "health-probe"],
        ELECTION_LIMIT,
    ) {
        panic!("promoted {name} served no linearizable read: {stderr}");
    }
    endpoints
        .lock()
        .unwrap()
        .push(cluster.member(joiner).endpoint());
    workload.wait_for_more_acks(PROGRESS, ELECTION_LIMIT, &format!("after promoting {name}"));
}

/// Takes member `i` out of the workload's endpoints, removes it through another member and
/// waits for its process to exit; checks the cluster takes writes afterwards.
fn remove(cluster: &mut Cluster, i: usize, endpoints: &Endpoints, workload: &Workload) {
    let id = cluster.leader_seen_by(i).1;
    assert_ne!(id, 0, "member {i} reports its ID");
    let endpoint = cluster.member(i).endpoint();
    endpoints.lock().unwrap().retain(|e| *e != endpoint);
    let through = cluster
        .running()
        .into_iter()
        .find(|&other| other != i)
        .expect("another member");
    let mut removed = cluster.take(i);
    let removal = removed_through(cluster, through, id);
    assert!(removal.is_ok(), "member remove {id:x}: {removal:?}");
    assert!(
        removed.wait_exit(ELECTION_LIMIT).is_some(),
        "the removed member {i}'s process did not exit"
    );
    cluster.wait_for_leader(ELECTION_LIMIT);
    workload.wait_for_more_acks(
        PROGRESS,
        ELECTION_LIMIT,
        &format!("after removing member {i}"),
    );
}

/// `member remove` through member `through`, retried while it is refused (a reconfiguration
/// still settling). An attempt whose answer was lost (the removed leader exits as it applies
/// the removal) may still have removed it: then the member list no longer names it.
fn removed_through(cluster: &Cluster, through: usize, id: u64) -> Result<(), String> {
    let deadline = Instant::now() + RECONFIGURE_LIMIT;
    loop {
        let output = cluster
            .member(through)
            .etcdctl(&["member", "remove", &format!("{id:x}")], "");
        if output.status.success() {
            return Ok(());
        }
        let listed = cluster
            .member(through)
            .etcdctl(&["member", "list", "-w", "json"], "");
        if listed.status.success()
            && !String::from_utf8_lossy(&listed.stdout).contains(&id.to_string())
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `member list -w json` on member `i`, as a set.
fn listed_members(cluster: &Cluster, i: usize) -> BTreeSet<(u64, String, bool, Vec<String>)> {
    crate::support::listed_members(cluster.member(i))
        .into_iter()
        .collect()
}
