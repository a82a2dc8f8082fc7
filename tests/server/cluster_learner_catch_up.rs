//! The correctness side of a big catch-up (bench/snapshot-catch-up.sh times it): a learner
//! added to a cluster holding at least 1 GiB catches up by snapshot and ends with exactly the
//! leader's keyspace. A long run, out of the default suite (README.md lists it):
//!
//! ```sh
//! cargo test --release -p basalt --test server cluster_learner_catch_up -- --ignored
//! ```
//!
//! `BASALT_CATCH_UP_MB` sets the size loaded (default 1024; a small value checks the test
//! itself quickly).

use std::time::{Duration, Instant};

use crate::support::cluster::Cluster;
use crate::support::workload::{connect, connect_within, run};

const ELECTION_LIMIT: Duration = Duration::from_secs(15);
/// Each value's size: incompressible bytes, as bench/snapshot-catch-up.sh loads.
const VALUE_BYTES: usize = 4096;
/// Puts in flight at once while loading.
const LOADERS: usize = 64;
/// Bound on loading and on the catch-up (a 2-core machine shared with other work).
const LOAD_LIMIT: Duration = Duration::from_secs(1200);
const CATCH_UP_LIMIT: Duration = Duration::from_secs(600);
/// Bound on one `hashkv` (it reads every key and value: over 1 GiB, seconds).
const HASH_LIMIT: Duration = Duration::from_secs(300);

/// Goal: a learner that joins a cluster holding ≥ 1 GiB gets it by snapshot (the leader's log
/// was compacted long before) and then holds exactly what the leader holds. Method: three
/// members with `--snapshot-count 1000` and an 8 GiB quota; 4 KiB pseudo-random values under
/// distinct keys until the leader's database holds the size asked for; `member add
/// --learner`, the learner started with `--initial-cluster-state existing`; once its revision
/// is the leader's, their `hashkv` at that revision must be equal, and the learner must have
/// installed a snapshot.
#[test]
#[ignore = "long run (loads 1 GiB, minutes): see README.md"]
fn a_learner_catches_up_over_a_gibibyte_by_snapshot_to_the_leaders_hashkv() {
    let mib: u64 = std::env::var("BASALT_CATCH_UP_MB")
        .ok()
        .map(|text| text.parse().expect("BASALT_CATCH_UP_MB is a number"))
        .unwrap_or(1024);
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start_with_flags(
        dir.path(),
        3,
        &[
            "--snapshot-count",
            "1000",
            "--quota-backend-bytes",
            "8589934592",
        ],
    );
    cluster.wait_for_leader(ELECTION_LIMIT);
    let endpoints: Vec<String> = (0..3).map(|i| cluster.member(i).endpoint()).collect();
    let values = mib * 1024 * 1024 / VALUE_BYTES as u64;
    let started = Instant::now();
    load(&endpoints, values);
    eprintln!(
        "loaded {values} values of {VALUE_BYTES} B in {:?}",
        started.elapsed()
    );
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    let (leader_revision, db_bytes) = run(async {
        let mut client = connect(&cluster.member(leader).endpoint()).await.unwrap();
        client
            .get("catch-up-probe", None)
            .await
            .expect("linearizable read");
        let status = client.status().await.expect("status");
        (status.header().unwrap().revision(), status.db_size())
    });
    assert!(
        db_bytes >= (mib << 20) as i64,
        "the leader's database holds {db_bytes} bytes, not {mib} MiB"
    );

    let joiner = cluster.new_seat(dir.path());
    cluster
        .add_learner(leader, joiner, Duration::from_secs(30))
        .expect("member add --learner");
    let started = Instant::now();
    cluster.join(joiner);
    let learner = cluster.member(joiner).endpoint();
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    loop {
        let revision = run(async {
            let mut client = connect(&learner).await.ok()?;
            let status = client.status().await.ok()?;
            Some(status.header()?.revision())
        });
        if revision == Some(leader_revision) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the learner is at revision {revision:?}, the leader at {leader_revision}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("the learner caught up in {:?}", started.elapsed());
    assert!(
        !cluster
            .member(joiner)
            .logged("installed a raft snapshot")
            .is_empty(),
        "the learner caught up by snapshot"
    );
    let hashes: Vec<(u32, i64)> = [cluster.member(leader).endpoint(), learner]
        .iter()
        .map(|endpoint| {
            run(async {
                let mut client = connect_within(endpoint, HASH_LIMIT).await.unwrap();
                let hashed = client.hash_kv(leader_revision).await.expect("hashkv");
                (hashed.hash(), hashed.header().unwrap().revision())
            })
        })
        .collect();
    eprintln!("{db_bytes} bytes at revision {leader_revision}: hashkv {hashes:?}");
    assert_eq!(
        hashes[0].0, hashes[1].0,
        "hashkv of leader and learner: {hashes:?}"
    );
}

/// Puts `values` distinct keys of VALUE_BYTES pseudo-random bytes, LOADERS at a time, through
/// `endpoints`; a failed put (a leader change under load) is retried.
fn load(endpoints: &[String], values: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let deadline = tokio::time::Instant::now() + LOAD_LIMIT;
    runtime.block_on(async {
        let client = etcd_client::Client::connect(endpoints, None)
            .await
            .expect("connect");
        let mut loaders = tokio::task::JoinSet::new();
        for loader in 0..LOADERS as u64 {
            let mut client = client.clone();
            loaders.spawn(async move {
                for i in (loader..values).step_by(LOADERS) {
                    let value = pseudo_random_bytes(i, VALUE_BYTES);
                    while let Err(error) =
                        client.put(format!("big/{i:08}"), value.clone(), None).await
                    {
                        assert!(
                            tokio::time::Instant::now() < deadline,
                            "put big/{i}: {error}"
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            });
        }
        let all = async {
            while let Some(done) = loaders.join_next().await {
                done.expect("loader");
            }
        };
        tokio::time::timeout_at(deadline, all)
            .await
            .expect("the load finished in time");
    });
}

/// `length` bytes of xorshift64 output seeded by `seed`: incompressible, and the same for a
/// seed on every run.
fn pseudo_random_bytes(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}
