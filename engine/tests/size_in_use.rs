//! `Engine::size_in_use_bytes` (Status `db_size_in_use`) is right whatever the newest commit is:
//! an unsynced commit carries no free-page record, and after a defragmentation cut the file the
//! last record on disk describes a longer file.

use basalt_engine::*;

fn put(key: String, value: Vec<u8>) -> PutRequest {
    PutRequest {
        key: key.into_bytes(),
        value,
        ..Default::default()
    }
}

#[test]
fn size_in_use_after_defragment_and_an_unsynced_commit() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let mut batch = engine.write().unwrap();
    for n in 0..3000 {
        batch.put(&put(format!("k{n:05}"), vec![7; 2000])).unwrap();
    }
    batch.commit().unwrap();
    let mut batch = engine.write().unwrap();
    let (deleted, _) = batch
        .delete_range(&DeleteRangeRequest {
            key: b"k".to_vec(),
            range_end: b"l".to_vec(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(deleted.deleted, 3000);
    let revision = batch.current_revision();
    batch.compact(revision).unwrap();
    while !batch.compact_step(usize::MAX).unwrap() {}
    batch.commit().unwrap();
    let report = engine.defragment(64).unwrap();
    assert!(report.bytes_after < report.bytes_before, "{report:?}");

    let mut batch = engine.write().unwrap();
    batch.put(&put("after".into(), b"v".to_vec())).unwrap();
    batch.commit_unsynced().unwrap();
    let size = engine.read().unwrap().size_bytes();
    let in_use = engine.size_in_use_bytes().unwrap();
    assert!(in_use > 0 && in_use <= size, "in use {in_use} of {size}");
}

/// `Engine::size_bound_bytes` (the quota check's) follows the newest commit, synced or not, as
/// a view opened then would, including after a defragmentation cut the file; while a batch is
/// deferred it is never below the size that batch's publication gives.
#[test]
fn engine_size_follows_every_commit_as_a_view_does() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let empty = engine.size_bound_bytes();
    assert_eq!(empty, engine.read().unwrap().size_bytes());
    let mut batch = engine.write().unwrap();
    for n in 0..2000 {
        batch.put(&put(format!("k{n:05}"), vec![7; 2000])).unwrap();
    }
    batch.commit_unsynced().unwrap();
    let grown = engine.size_bound_bytes();
    assert!(grown > empty + 2000 * 2000, "{grown} after 4 MB of values");
    assert_eq!(grown, engine.read().unwrap().size_bytes());

    let mut batch = engine.write().unwrap();
    batch
        .delete_range(&DeleteRangeRequest {
            key: b"k".to_vec(),
            range_end: b"l".to_vec(),
            ..Default::default()
        })
        .unwrap();
    let revision = batch.current_revision();
    batch.compact(revision).unwrap();
    while !batch.compact_step(usize::MAX).unwrap() {}
    batch.commit().unwrap();
    engine.defragment(64).unwrap();
    let cut = engine.size_bound_bytes();
    assert!(cut < grown, "defragmented to {cut} from {grown}");
    assert_eq!(cut, engine.read().unwrap().size_bytes());

    let mut batch = engine.write().unwrap();
    for n in 0..500 {
        batch.put(&put(format!("d{n:05}"), vec![9; 3000])).unwrap();
    }
    batch.commit_deferred().unwrap();
    let bound = engine.size_bound_bytes();
    let published = engine.read().unwrap().size_bytes();
    assert!(
        bound >= published && bound > cut + 500 * 3000,
        "bound {bound} while deferred, {published} once published, {cut} before"
    );
    assert_eq!(engine.size_bound_bytes(), published, "exact once published");
}
