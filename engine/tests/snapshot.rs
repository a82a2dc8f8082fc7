//! A snapshot is a consistent copy of one (durable) commit that `Engine::open` accepts, taken
//! while writers go on: the test pins a commit, keeps writing (overwriting keys, so freed pages are
//! reused and both meta slots move on), then writes the copy to a file and opens it.

use basalt_engine::*;

mod support;
use support::{put, value_at};

/// Overwrites every key; odd rounds publish without fsync, as the server's apply does.
fn commit_puts(engine: &Engine, round: usize) {
    let mut batch = engine.write().unwrap();
    for i in 0..200 {
        batch
            .put(&put(
                &format!("key{i:04}"),
                &format!("round{round}-{}", "x".repeat(300)),
            ))
            .unwrap();
    }
    if round % 2 == 1 {
        batch.commit_unsynced().unwrap();
    } else {
        batch.commit().unwrap();
    }
}

#[test]
fn snapshot_copies_one_commit_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    for round in 0..4 {
        commit_puts(&engine, round);
    }
    // Round 3 was published unsynced: the snapshot syncs and pins it.
    let view = engine.durable_view().unwrap();
    let (revision, hash) = (view.current_revision(), view.hash_store().unwrap());
    let snapshot = view.into_snapshot().unwrap();
    assert_eq!(snapshot.size_bytes() % 4096, 0);
    assert!(snapshot.size_in_use_bytes() <= snapshot.size_bytes());
    // Writes after the snapshot was taken must not show in it.
    for round in 4..8 {
        commit_puts(&engine, round);
    }
    let mut copy = vec![0u8; snapshot.size_bytes() as usize];
    // Read in odd-sized pieces, as a chunked stream would, across page boundaries.
    let mut at = 0;
    while at < copy.len() {
        let end = (at + 5000).min(copy.len());
        let n = snapshot.read_at(at as u64, &mut copy[at..end]).unwrap();
        assert_eq!(n, end - at);
        at = end;
    }
    assert_eq!(
        snapshot.read_at(copy.len() as u64, &mut [0u8; 16]).unwrap(),
        0
    );
    drop(snapshot);
    let path = dir.path().join("copy.db");
    std::fs::write(&path, &copy).unwrap();

    let restored = Engine::open(&path).unwrap();
    restored.check().unwrap();
    let view = restored.read().unwrap();
    assert_eq!(view.current_revision(), revision);
    assert_eq!(view.hash_store().unwrap(), hash);
    assert!(value_at(&view, "key0007").unwrap().starts_with(b"round3-"));
    // The live store moved on.
    let live = engine.read().unwrap();
    assert!(value_at(&live, "key0007").unwrap().starts_with(b"round7-"));
    assert_ne!(live.hash_store().unwrap(), hash);
}

#[test]
fn store_hash_ignores_the_applied_index_but_not_data() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    commit_puts(&engine, 0);
    let before = engine.read().unwrap().hash_store().unwrap();
    let mut batch = engine.write().unwrap();
    batch.set_applied_index(99);
    batch.commit().unwrap();
    assert_eq!(engine.read().unwrap().hash_store().unwrap(), before);
    let mut batch = engine.write().unwrap();
    batch.put_cluster_record(b"alarm/x", b"").unwrap();
    batch.commit().unwrap();
    assert_ne!(engine.read().unwrap().hash_store().unwrap(), before);
}

/// The value of key `i` in round `round`: 4 KiB to ~12 KiB, so every one lives in a value run
/// (format 3), of one to three pages.
fn large_value(i: usize, round: usize) -> Vec<u8> {
    let len = 4096 + (i * 1931 + round * 977) % 8200;
    (0..len)
        .map(|j| ((i * 31 + j * 7 + round) % 251) as u8)
        .collect()
}

/// Value runs in a snapshot: the pinned commit's runs are copied whole while later commits free
/// and reuse the runs they replace; the copy opens, passes the check, and holds the pinned
/// commit's values byte for byte. Runtime: ~0.1 s.
#[test]
fn snapshot_copies_value_runs_while_overwrites_reuse_pages() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let round_of = |round: usize| {
        let mut batch = engine.write().unwrap();
        for i in 0..40 {
            batch
                .put(&PutRequest {
                    key: format!("big{i:02}").into_bytes(),
                    value: large_value(i, round),
                    ..Default::default()
                })
                .unwrap();
        }
        batch.commit().unwrap();
    };
    for round in 0..3 {
        round_of(round);
    }
    let snapshot = engine.durable_view().unwrap().into_snapshot().unwrap();
    for round in 3..8 {
        round_of(round);
    }
    let mut copy = vec![0u8; snapshot.size_bytes() as usize];
    assert_eq!(snapshot.read_at(0, &mut copy).unwrap(), copy.len());
    drop(snapshot);
    let path = dir.path().join("copy.db");
    std::fs::write(&path, &copy).unwrap();

    let restored = Engine::open(&path).unwrap();
    restored.check().unwrap();
    let view = restored.read().unwrap();
    for i in 0..40 {
        let key = format!("big{i:02}");
        assert_eq!(
            value_at(&view, &key).as_deref(),
            Some(&large_value(i, 2)[..]),
            "{key}"
        );
    }
}
