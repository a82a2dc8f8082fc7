//! A member that falls behind the leader's compacted log catches up by snapshot, as etcd's
//! does: three real members with a small `--snapshot-count`, one killed while the others take
//! more writes than the log keeps (etcd's 5,000-entry catch-up margin plus a checkpoint), then
//! restarted; and a member added after the log was compacted past its first entries joins by
//! snapshot. (A truncated or damaged stream is refused by the installer's unit tests.)

use std::time::{Duration, Instant};

use crate::support::cluster::Cluster;

const ELECTION_LIMIT: Duration = Duration::from_secs(10);

/// Writes past the dead member: more than the leader's catch-up margin (5,000) and a
/// checkpoint (`--snapshot-count` 100), so the entries it lacks are gone from every log.
const WRITES: usize = 6_000;
/// Puts in flight at once: raft batches them, so the writes take seconds.
const WRITERS: usize = 64;

/// Goal: the restarted member serves every key written while it was down (serializable reads
/// on it alone), it got them by snapshot (the leader sent one, it installed one), the leader's
/// log was compacted past it, and it keeps following the log afterwards.
#[test]
fn a_member_behind_the_compacted_log_catches_up_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start_with_flags(dir.path(), 3, &["--snapshot-count", "100"]);
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let behind = (leader + 1) % 3;
    cluster.member(leader).ok(&["put", "before", "0"]);
    let read = cluster
        .member(behind)
        .ok(&["get", "before", "--print-value-only"]);
    assert_eq!(read, "0\n");
    cluster.kill_9(behind);

    let survivors: Vec<usize> = cluster.running();
    let endpoints: Vec<String> = survivors
        .iter()
        .map(|&i| cluster.member(i).endpoint())
        .collect();
    put_many(&endpoints);
    assert!(
        logged_by_any(&cluster, &survivors, "checkpointed the raft log"),
        "the log was compacted while the member was down"
    );

    let started = Instant::now();
    cluster.restart(behind);
    let caught_up_in = started.elapsed();
    let member = cluster.member(behind);
    let count = member.ok(&[
        "get",
        "key-",
        "--prefix",
        "--limit=1",
        "--consistency=s",
        "-w",
        "json",
    ]);
    assert!(
        count.contains(&format!("\"count\":{WRITES}")),
        "every key on the restarted member: {count}"
    );
    let read = member.ok(&[
        "get",
        &format!("key-{}", WRITES - 1),
        "--print-value-only",
        "--consistency=s",
    ]);
    assert_eq!(read, format!("value-{}\n", WRITES - 1));
    assert_eq!(
        member.ok(&["get", "before", "--print-value-only", "--consistency=s"]),
        "0\n"
    );
    assert!(
        logged_by_any(&cluster, &survivors, "sent a raft snapshot"),
        "the leader sent a snapshot"
    );
    assert!(
        !member.logged("installed a raft snapshot").is_empty(),
        "the member installed a snapshot"
    );
    let snap_dir = cluster.seats[behind].data_dir.join("member").join("snap");
    for leftover in ["incoming.db", "incoming.db.partial", "incoming.meta"] {
        assert!(!snap_dir.join(leftover).exists(), "{leftover} left behind");
    }
    eprintln!("caught up by snapshot in {caught_up_in:?}");

    // It follows the log from the snapshot on: a write after it reaches it.
    cluster.member(survivors[0]).ok(&["put", "after", "1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let read =
            cluster
                .member(behind)
                .ok(&["get", "after", "--print-value-only", "--consistency=s"]);
        if read == "1\n" {
            break;
        }
        assert!(Instant::now() < deadline, "the write after the snapshot");
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.wait_for_leader(ELECTION_LIMIT);
}

/// Goal: a member added with MemberAdd after the leader's log was compacted past its first
/// entries (the bootstrap's members) joins by snapshot, as etcd's does: the snapshot's cluster
/// table is its membership. Method: three members with a small `--snapshot-count`, more
/// writes than the log keeps, `member add` of a voter through etcdctl, the new member started
/// with `--initial-cluster-state existing`; it serves every key (serializable reads on it
/// alone), lists the four members, and takes a write as a voter.
#[test]
fn a_member_added_after_compaction_joins_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start_with_flags(dir.path(), 3, &["--snapshot-count", "100"]);
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let endpoints: Vec<String> = (0..3).map(|i| cluster.member(i).endpoint()).collect();
    put_many(&endpoints);
    assert!(
        logged_by_any(&cluster, &[0, 1, 2], "checkpointed the raft log"),
        "the log was compacted before the member was added"
    );

    let joiner = cluster.new_seat(dir.path());
    let peer_url = format!("http://127.0.0.1:{}", cluster.seats[joiner].peer_port);
    let name = cluster.seats[joiner].name.clone();
    // A voter may be added once the leader has been connected to every voter for etcd's
    // health interval.
    cluster
        .member(leader)
        .etcdctl_until_ok(
            &["member", "add", &name, "--peer-urls", &peer_url],
            ELECTION_LIMIT,
        )
        .expect("member add");
    cluster.join(joiner);
    let member = cluster.member(joiner);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let count = member.ok(&[
            "get",
            "key-",
            "--prefix",
            "--limit=1",
            "--consistency=s",
            "-w",
            "json",
        ]);
        if count.contains(&format!("\"count\":{WRITES}")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "every key on the new member: {count}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !member.logged("installed a raft snapshot").is_empty(),
        "the new member installed a snapshot"
    );
    let listed = member.ok(&["member", "list"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    member
        .etcdctl_until_ok(&["put", "via-new-member", "1"], ELECTION_LIMIT)
        .expect("a write through the new member");
    assert_eq!(
        cluster
            .member(leader)
            .ok(&["get", "via-new-member", "--print-value-only"]),
        "1\n"
    );
}

/// Whether any of `members` logged `text`: whichever member leads logs the leader's part (the
/// leader may change under load on a busy machine).
fn logged_by_any(cluster: &Cluster, members: &[usize], text: &str) -> bool {
    members
        .iter()
        .any(|&i| !cluster.member(i).logged(text).is_empty())
}

/// Puts `key-<i>` = `value-<i>` for every i below WRITES, WRITERS at a time, through
/// `endpoints`; a put that fails (a leader change under load) is retried until the deadline.
fn put_many(endpoints: &[String]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    runtime.block_on(async {
        let client = etcd_client::Client::connect(endpoints, None)
            .await
            .expect("connect");
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..WRITERS {
            let mut client = client.clone();
            writers.spawn(async move {
                for i in (writer..WRITES).step_by(WRITERS) {
                    while let Err(error) = client
                        .put(format!("key-{i}"), format!("value-{i}"), None)
                        .await
                    {
                        assert!(
                            tokio::time::Instant::now() < deadline,
                            "put key-{i}: {error}"
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            });
        }
        let all = async {
            while let Some(done) = writers.join_next().await {
                done.expect("writer");
            }
        };
        tokio::time::timeout_at(deadline, all)
            .await
            .expect("the writes finished in time");
    });
}
