//! What the members of a cluster must agree on once the writes stop: the same revision and
//! the same `hashkv` at it (etcd's corruption check compares exactly these).

use std::time::{Duration, Instant};

use super::workload::{connect, connect_within, run};

/// Waits at most `limit` until every member (by client endpoint) reports the same revision in
/// `endpoint status` after a linearizable read through it, then asserts their `hashkv` at that
/// revision are equal; returns (revision, hash).
pub fn assert_members_agree(endpoints: &[String], limit: Duration) -> (i64, u32) {
    run(async {
        let deadline = Instant::now() + limit;
        let revision = loop {
            let mut revisions = Vec::new();
            for endpoint in endpoints {
                revisions.push(applied_revision(endpoint).await);
            }
            if revisions.iter().all(|&r| r > 0 && r == revisions[0]) {
                break revisions[0];
            }
            assert!(
                Instant::now() < deadline,
                "the members' revisions did not agree within {limit:?}: {endpoints:?} {revisions:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut hashes = Vec::new();
        for endpoint in endpoints {
            let mut client = connect_within(endpoint, limit).await.expect("connect");
            let hashed = client.hash_kv(revision).await.expect("hashkv");
            hashes.push(hashed.hash());
        }
        assert!(
            hashes.iter().all(|&hash| hash == hashes[0]),
            "hashkv at revision {revision} differs: {endpoints:?} {hashes:?}"
        );
        (revision, hashes[0])
    })
}

/// The revision `endpoint status` reports after a linearizable read through the member (so it
/// has applied everything committed before it); 0 if the member does not answer.
async fn applied_revision(endpoint: &str) -> i64 {
    let Ok(mut client) = connect(endpoint).await else {
        return 0;
    };
    if client.get("agreement-probe", None).await.is_err() {
        return 0;
    }
    match client.status().await {
        Ok(status) => status.header().map_or(0, |header| header.revision()),
        Err(_) => 0,
    }
}
