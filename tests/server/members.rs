//! Membership changes end to end: three real members on loopback and Debian's etcdctl 3.4 for
//! every `member` command — list, add a learner, start it with `--initial-cluster-state
//! existing`, catch-up, promote (through a follower too), update, remove — with etcd's
//! refusals ("unhealthy cluster" too), `endpoint status --cluster` and `move-leader`.

use std::time::{Duration, Instant};

use crate::support::cluster::Cluster;
use crate::support::{listed_members as members, Basalt};

/// How long a new leader may take (etcd's election timeout is 1 s, randomized up to 2 s).
const ELECTION_LIMIT: Duration = Duration::from_secs(10);

/// `endpoint status` of one member: (its id, the leader it knows, whether it is a learner).
fn status(member: &Basalt) -> (u64, u64, bool) {
    let rows: serde_json::Value =
        serde_json::from_str(&member.ok(&["endpoint", "status", "-w", "json"])).unwrap();
    let row = &rows[0]["Status"];
    (
        row["header"]["member_id"].as_u64().unwrap(),
        row["leader"].as_u64().unwrap_or(0),
        row["isLearner"].as_bool().unwrap_or(false),
    )
}

/// Runs `args` on `member` until it succeeds, for at most `limit`; its stdout.
fn eventually_ok(member: &Basalt, args: &[&str], limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let output = member.etcdctl(args, "");
        if output.status.success() {
            return String::from_utf8(output.stdout).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "etcdctl {args:?} kept failing for {limit:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hex(id: u64) -> String {
    format!("{id:x}")
}

/// Goal: every `member` command of etcdctl 3.4 works against a real three-member cluster as
/// against etcd, with etcd's refusals. Method: add a learner, start it with
/// `--initial-cluster-state existing` (it must find its ID from the others and replay the
/// whole membership from the log), check it serves a key written before it existed
/// (serializably) and refuses writes, promote it, update its peer URLs, move leadership to
/// it, remove the leader (whose process exits), and finally let `--strict-reconfig-check`
/// refuse a voter that would leave too few started members for a quorum.
#[test]
fn member_commands_add_join_promote_update_move_remove() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3);
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    cluster.member(leader).ok(&["put", "before-join", "1"]);

    let listed = members(cluster.member(leader));
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed
        .iter()
        .all(|(_, name, learner, _)| !name.is_empty() && !learner));
    let voter = listed[0].0;
    let taken_url = listed[0].3[0].clone();

    // etcd's refusals before anything changes.
    let refusal = cluster
        .member(leader)
        .fails(&["member", "promote", &hex(voter)]);
    assert!(
        refusal.contains("etcdserver: can only promote a learner member"),
        "{refusal}"
    );
    let refusal = cluster.member(leader).fails(&["member", "remove", "1234"]);
    assert!(
        refusal.contains("etcdserver: member not found"),
        "{refusal}"
    );
    let refusal =
        cluster
            .member(leader)
            .fails(&["member", "add", "dup", "--peer-urls", &taken_url]);
    assert!(
        refusal.contains("etcdserver: Peer URLs already exists"),
        "{refusal}"
    );
    let refusal = cluster.member(leader).fails(&[
        "member",
        "update",
        "1234",
        "--peer-urls",
        "http://127.0.0.1:1",
    ]);
    assert!(
        refusal.contains("etcdserver: member not found"),
        "{refusal}"
    );

    // A learner is added; a second one is refused (etcd allows one). etcd 3.4 refuses any
    // addition ("unhealthy cluster") until the leader has been connected to every voter for
    // its 5 s health interval, so an operator retries, as here.
    let joiner = cluster.new_seat(dir.path());
    let joiner_url = format!("http://127.0.0.1:{}", cluster.seats[joiner].peer_port);
    let joiner_name = cluster.seats[joiner].name.clone();
    let added = cluster
        .member(leader)
        .etcdctl_until_ok(
            &[
                "member",
                "add",
                &joiner_name,
                "--learner",
                "--peer-urls",
                &joiner_url,
            ],
            Duration::from_secs(20),
        )
        .unwrap();
    assert!(
        added.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""),
        "{added}"
    );
    let (joiner_id, _, is_learner, _) = members(cluster.member(leader))
        .into_iter()
        .find(|(_, _, _, urls)| urls == std::slice::from_ref(&joiner_url))
        .expect("the learner is listed");
    assert!(is_learner);
    let refusal = cluster.member(leader).fails(&[
        "member",
        "add",
        "second",
        "--learner",
        "--peer-urls",
        "http://127.0.0.1:2",
    ]);
    assert!(
        refusal.contains("etcdserver: too many learner members in cluster"),
        "{refusal}"
    );
    let refusal = cluster
        .member(leader)
        .fails(&["member", "promote", &hex(joiner_id)]);
    assert!(
        refusal
            .contains("etcdserver: can only promote a learner member which is in sync with leader"),
        "{refusal}"
    );
    // A follower forwards a promotion to the leader (only the leader knows how far a learner
    // is), and answers with the leader's refusals, as etcd's does.
    let follower = (leader + 1) % 3;
    let refusal = cluster
        .member(follower)
        .fails(&["member", "promote", &hex(joiner_id)]);
    assert!(
        refusal
            .contains("etcdserver: can only promote a learner member which is in sync with leader"),
        "{refusal}"
    );
    let refusal = cluster
        .member(follower)
        .fails(&["member", "promote", &hex(voter)]);
    assert!(
        refusal.contains("etcdserver: can only promote a learner member"),
        "{refusal}"
    );
    let refusal = cluster
        .member(follower)
        .fails(&["member", "promote", "1234"]);
    assert!(
        refusal.contains("etcdserver: member not found"),
        "{refusal}"
    );

    // It joins, replays the membership and the key written before it existed, and refuses
    // writes and linearizable reads as a learner.
    cluster.join(joiner);
    let learner = cluster.member(joiner);
    assert_eq!(
        status(learner),
        (joiner_id, status(cluster.member(leader)).1, true)
    );
    let read = eventually_ok(
        learner,
        &[
            "get",
            "before-join",
            "--print-value-only",
            "--consistency=s",
        ],
        ELECTION_LIMIT,
    );
    assert_eq!(read, "1\n");
    let refusal = learner.fails(&["put", "on-learner", "x"]);
    assert!(
        refusal.contains("etcdserver: rpc not supported for learner"),
        "{refusal}"
    );
    let refusal = learner.fails(&["get", "before-join"]);
    assert!(
        refusal.contains("etcdserver: rpc not supported for learner"),
        "{refusal}"
    );

    // Promoted once in sync, through a follower; then it takes writes like any voter.
    eventually_ok(
        cluster.member(follower),
        &["member", "promote", &hex(joiner_id)],
        ELECTION_LIMIT,
    );
    assert!(members(cluster.member(leader))
        .iter()
        .all(|(_, _, learner, _)| !learner));
    eventually_ok(
        cluster.member(joiner),
        &["put", "via-joiner", "2"],
        ELECTION_LIMIT,
    );
    assert_eq!(
        cluster
            .member(leader)
            .ok(&["get", "via-joiner", "--print-value-only"]),
        "2\n"
    );

    // `endpoint status --cluster` tells the truth from any member: four voters, one leader.
    let rows: serde_json::Value = serde_json::from_str(&cluster.member(joiner).ok(&[
        "endpoint",
        "status",
        "--cluster",
        "-w",
        "json",
    ]))
    .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let leader_id = status(cluster.member(leader)).0;
    for row in rows {
        assert_eq!(row["Status"]["leader"].as_u64(), Some(leader_id), "{row}");
        assert!(
            !row["Status"]["isLearner"].as_bool().unwrap_or(false),
            "{row}"
        );
    }

    // Update: the joiner's peer URL by another name for the same address.
    let renamed = format!("http://localhost:{}", cluster.seats[joiner].peer_port);
    cluster
        .member(leader)
        .ok(&["member", "update", &hex(joiner_id), "--peer-urls", &renamed]);
    let listed = members(cluster.member(joiner));
    let updated = listed.iter().find(|(id, ..)| *id == joiner_id).unwrap();
    assert_eq!(updated.3, std::slice::from_ref(&renamed));

    // move-leader: to an unknown member is refused; to the joiner it moves.
    let refusal = cluster.member(leader).fails(&["move-leader", "1234"]);
    assert!(
        refusal.contains("etcdserver: bad leader transferee"),
        "{refusal}"
    );
    cluster.member(leader).ok(&["move-leader", &hex(joiner_id)]);
    assert_eq!(cluster.wait_for_leader(ELECTION_LIMIT), joiner);

    // Remove the leader (etcd allows it): its process exits, the others elect another and
    // keep every write.
    let mut removed = cluster.take(joiner);
    let other = (joiner + 1) % cluster.seats.len();
    cluster
        .member(other)
        .ok(&["member", "remove", &hex(joiner_id)]);
    assert!(
        removed.wait_exit(ELECTION_LIMIT).is_some(),
        "the removed member's process did not exit"
    );
    let new_leader = cluster.wait_for_leader(ELECTION_LIMIT);
    eventually_ok(
        cluster.member(new_leader),
        &["put", "after-remove", "3"],
        ELECTION_LIMIT,
    );
    let listed = members(cluster.member(new_leader));
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.iter().all(|(id, ..)| *id != joiner_id));
    let refusal = cluster
        .member(new_leader)
        .fails(&["member", "remove", &hex(joiner_id)]);
    assert!(
        refusal.contains("etcdserver: member not found"),
        "{refusal}"
    );

    // --strict-reconfig-check: a voter that never starts is accepted while every voter is
    // connected (three of four started is a quorum); the next is refused, as etcd refuses
    // it, since the leader is not connected to every voter ("unhealthy cluster").
    cluster.member(new_leader).ok(&[
        "member",
        "add",
        "ghost",
        "--peer-urls",
        "http://127.0.0.1:3",
    ]);
    let refusal = cluster.member(new_leader).fails(&[
        "member",
        "add",
        "ghost",
        "--peer-urls",
        "http://127.0.0.1:4",
    ]);
    assert!(
        refusal.contains("etcdserver: unhealthy cluster"),
        "{refusal}"
    );
}

/// Goal: `--strict-reconfig-check`'s connectivity rules refuse what etcd 3.4 refuses with
/// "etcdserver: unhealthy cluster", through etcdctl. Method: three members; one follower is
/// killed; once the leader has seen it go, removing the live follower (two connected less one
/// is no quorum of three) and adding a voter (not every voter connected) are refused, while
/// removing the dead member is allowed (it is no part of the active quorum); then, with the
/// two live members connected for etcd's health interval, a voter may be added again.
#[test]
fn unhealthy_cluster_refuses_reconfiguration() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3);
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let ids = cluster.member_ids();
    let (live, dead) = ((leader + 1) % 3, (leader + 2) % 3);
    // Lines from dials before every member listened do not count.
    let times_gone = |cluster: &Cluster| {
        cluster
            .member(leader)
            .logged("peer became inactive")
            .iter()
            .filter(|line| line.contains(&hex(ids[dead])))
            .count()
    };
    let gone_before = times_gone(&cluster);
    cluster.kill_9(dead);
    let seen_gone = Instant::now() + ELECTION_LIMIT;
    while times_gone(&cluster) == gone_before {
        assert!(
            Instant::now() < seen_gone,
            "the leader never saw the member killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let refusal = cluster
        .member(leader)
        .fails(&["member", "remove", &hex(ids[live])]);
    assert!(
        refusal.contains("etcdserver: unhealthy cluster"),
        "{refusal}"
    );
    let add_voter = [
        "member",
        "add",
        "voter",
        "--peer-urls",
        "http://127.0.0.1:7",
    ];
    let refusal = cluster.member(leader).fails(&add_voter);
    assert!(
        refusal.contains("etcdserver: unhealthy cluster"),
        "{refusal}"
    );
    // A follower sees the dead member from its own links, and refuses as well.
    let refusal = cluster.member(live).fails(&add_voter);
    assert!(
        refusal.contains("etcdserver: unhealthy cluster"),
        "{refusal}"
    );
    assert_eq!(members(cluster.member(leader)).len(), 3);

    cluster
        .member(leader)
        .ok(&["member", "remove", &hex(ids[dead])]);
    // The two left have been (or soon will have been) connected for the health interval.
    eventually_ok(cluster.member(live), &add_voter, ELECTION_LIMIT);
    assert_eq!(members(cluster.member(leader)).len(), 3);
}

/// Goal: a cluster started as one member grows with MemberAdd, as etcd's does (every member
/// serves `--listen-peer-urls`, a lone one too). Method: one member,
/// a key, `member add` of a voter through etcdctl, the new member started with
/// `--initial-cluster-state existing`; it serves the key, takes a write, and after a kill -9
/// and restart of the first member both still list two members.
#[test]
fn a_one_member_cluster_grows_with_member_add() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 1);
    cluster.wait_for_leader(ELECTION_LIMIT);
    cluster.member(0).ok(&["put", "alone", "1"]);

    let joiner = cluster.new_seat(dir.path());
    let peer_url = format!("http://127.0.0.1:{}", cluster.seats[joiner].peer_port);
    let name = cluster.seats[joiner].name.clone();
    let added = cluster
        .member(0)
        .ok(&["member", "add", &name, "--peer-urls", &peer_url]);
    assert!(
        added.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""),
        "{added}"
    );
    cluster.join(joiner);
    let read = eventually_ok(
        cluster.member(joiner),
        &["get", "alone", "--print-value-only", "--consistency=s"],
        ELECTION_LIMIT,
    );
    assert_eq!(read, "1\n");
    eventually_ok(
        cluster.member(joiner),
        &["put", "grown", "2"],
        ELECTION_LIMIT,
    );
    assert_eq!(members(cluster.member(0)).len(), 2);

    // The first member's stored membership holds itself too: a restart keeps both.
    cluster.kill_9(0);
    cluster.restart(0);
    cluster.wait_for_leader(ELECTION_LIMIT);
    assert_eq!(members(cluster.member(0)).len(), 2);
    assert_eq!(
        eventually_ok(
            cluster.member(0),
            &["get", "grown", "--print-value-only"],
            ELECTION_LIMIT
        ),
        "2\n"
    );
}
