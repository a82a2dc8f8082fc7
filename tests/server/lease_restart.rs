//! Leases across a crash: after `kill -9` and a restart a lease still exists with its keys,
//! its remaining TTL resumes from the last checkpoint (not reset to the granted TTL), and it
//! still expires on time afterwards.

use crate::support;

use std::time::Duration;

use etcd_client::{Client, PutOptions};
use support::{free_port, Basalt};

/// Checkpoint remaining TTLs every second (etcd's default is 5 minutes).
const CHECKPOINT_ENV: [(&str, &str); 1] = [("BASALT_LEASE_CHECKPOINT_INTERVAL_MS", "1000")];

fn start(data_dir: std::path::PathBuf, port: u16) -> Basalt {
    Basalt::start_with_env(data_dir, port, &[], &CHECKPOINT_ENV)
}

async fn connect(basalt: &Basalt) -> Client {
    tokio::time::timeout(
        Duration::from_secs(30),
        Client::connect([basalt.endpoint()], None),
    )
    .await
    .expect("connect within 30 s")
    .expect("connect")
}

/// Goal: a 30 s lease that has lived ~6 s is checkpointed; after kill -9 and restart it comes
/// back with its key and the checkpointed remaining TTL plus the election timeout (1 s) —
/// never the full 30 s — and then expires on its own.
#[test]
fn kill_9_keeps_leases_their_keys_and_their_remaining_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let basalt = start(dir.path().join("data"), port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (lease, short) = runtime.block_on(async {
        let mut client = connect(&basalt).await;
        let lease = client.lease_grant(30, None).await.unwrap().id();
        client
            .put("kept", "v", Some(PutOptions::new().with_lease(lease)))
            .await
            .unwrap();
        // A lease shorter than the checkpoint interval is never checkpointed: it restarts
        // from its TTL (plus the election timeout), as in etcd.
        let short = client.lease_grant(2, None).await.unwrap().id();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ttl = client.lease_time_to_live(lease, None).await.unwrap().ttl();
            if ttl <= 24 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "time stood still");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (lease, short)
    });
    let (data_dir, port) = basalt.kill_9();

    let basalt = start(data_dir, port);
    runtime.block_on(async {
        let mut client = connect(&basalt).await;
        let ttl = client.lease_time_to_live(lease, None).await.unwrap();
        assert_eq!(ttl.granted_ttl(), 30);
        // Checkpoints are taken every 1 s (looked for every 0.5 s), so the last one before the
        // crash recorded at most 24 + 2 s (rounded up); promotion adds the 1 s election
        // timeout. A reset would show 30 or more.
        assert!(
            (15..=27).contains(&ttl.ttl()),
            "remaining TTL after restart: {} (30+ means it was reset)",
            ttl.ttl()
        );
        let kept = client.get("kept", None).await.unwrap();
        assert_eq!(kept.kvs().len(), 1, "the key survives the crash");
        assert_eq!(kept.kvs()[0].lease(), lease);
        // The short lease was either revoked before the crash or comes back and expires.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        loop {
            let short_ttl = client.lease_time_to_live(short, None).await.unwrap().ttl();
            let key_left = !client.get("kept", None).await.unwrap().kvs().is_empty();
            if short_ttl == -1 && !key_left {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "leases did not expire after the restart"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    drop(basalt);
}
