//! The raft log does not grow without bound: every `--snapshot-count` applied entries the member
//! checkpoints (syncs the engine through them), the WAL releases its segments below, and a
//! restart replays only what follows — and still serves every acknowledged write.

use crate::support;

use std::path::Path;

use etcd_client::Client;
use support::{free_port, Basalt};

const FLAGS: &[&str] = &["--snapshot-count", "50"];
const VALUE_BYTES: usize = 100 * 1024;
const WRITES: usize = 2000;

fn segments_in(wal_dir: &Path) -> usize {
    std::fs::read_dir(wal_dir)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "wal")
        })
        .count()
}

#[test]
fn checkpoints_release_wal_segments_and_restarts_serve_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let port = free_port();
    let basalt = Basalt::start_with_flags(data_dir.clone(), port, FLAGS);
    let endpoint = basalt.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = Client::connect([endpoint.as_str()], None).await.unwrap();
        for n in 0..WRITES {
            client
                .put(
                    format!("key/{n:05}"),
                    vec![(n % 251) as u8; VALUE_BYTES],
                    None,
                )
                .await
                .unwrap();
        }
    });
    // 200 MB of entries fill about four 64 MiB segments; checkpoints every 50 entries let the
    // log keep only the segment(s) after the last checkpoint.
    let wal_dir = data_dir.join("member").join("wal");
    let segments = segments_in(&wal_dir);
    assert!(
        segments <= 2,
        "{segments} wal segments kept after checkpoints"
    );

    let (data_dir, port) = basalt.kill_9();
    let basalt = Basalt::start_with_flags(data_dir, port, FLAGS);
    let endpoint = basalt.endpoint();
    runtime.block_on(async {
        let mut client = Client::connect([endpoint.as_str()], None).await.unwrap();
        for n in (0..WRITES).step_by(97).chain([WRITES - 1]) {
            let response = client.get(format!("key/{n:05}"), None).await.unwrap();
            let kv = response
                .kvs()
                .first()
                .unwrap_or_else(|| panic!("key/{n:05} is gone"));
            assert_eq!(kv.value(), vec![(n % 251) as u8; VALUE_BYTES].as_slice());
            // A fresh store is at revision 1, so put n gets revision n + 2.
            assert_eq!(kv.mod_revision(), n as i64 + 2);
        }
        client.put("after-restart", "ok", None).await.unwrap();
    });
}
