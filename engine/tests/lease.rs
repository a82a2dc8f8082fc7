//! Leases in the engine: the lease → keys index follows every put, overwrite and delete, a
//! revoke deletes exactly the attached keys in one revision, and unknown leases are refused
//! before anything changes. Each test drives the public API and checks the index against the
//! keys' own `lease` fields.

use basalt_engine::*;

fn put(key: &str, lease: i64) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: b"v".to_vec(),
        lease,
        ..Default::default()
    }
}

fn keys_of(engine: &Engine, id: i64) -> Vec<String> {
    engine
        .read()
        .unwrap()
        .lease_keys(id)
        .unwrap()
        .into_iter()
        .map(|k| String::from_utf8(k).unwrap())
        .collect()
}

#[test]
fn the_index_follows_attach_overwrite_detach_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let mut batch = engine.write().unwrap();
    batch.grant_lease(1, 60).unwrap();
    batch.grant_lease(2, 60).unwrap();
    batch.put(&put("a", 1)).unwrap();
    batch.put(&put("b", 1)).unwrap();
    batch.put(&put("c", 1)).unwrap();
    // Moved to another lease, detached by a lease-0 put, deleted.
    batch.put(&put("a", 2)).unwrap();
    batch.put(&put("b", 0)).unwrap();
    batch
        .delete_range(&DeleteRangeRequest {
            key: b"c".to_vec(),
            ..Default::default()
        })
        .unwrap();
    // ignore_lease keeps the key's lease.
    batch
        .put(&PutRequest {
            key: b"a".to_vec(),
            value: b"w".to_vec(),
            ignore_lease: true,
            ..Default::default()
        })
        .unwrap();
    batch.put(&put("d", 1)).unwrap();
    batch.commit().unwrap();
    assert_eq!(keys_of(&engine, 1), ["d"]);
    assert_eq!(keys_of(&engine, 2), ["a"]);
    let leases = engine.read().unwrap().leases().unwrap();
    assert_eq!(
        leases,
        [
            Lease {
                id: 1,
                ttl: 60,
                remaining_ttl: 0
            },
            Lease {
                id: 2,
                ttl: 60,
                remaining_ttl: 0
            }
        ]
    );
}

#[test]
fn revoke_deletes_the_attached_keys_in_one_revision() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let mut batch = engine.write().unwrap();
    batch.grant_lease(7, 10).unwrap();
    batch.grant_lease(8, 10).unwrap();
    for key in ["x", "y", "z"] {
        batch.put(&put(key, 7)).unwrap();
    }
    batch.put(&put("other", 8)).unwrap();
    let before = batch.current_revision();
    let events = batch.revoke_lease(7).unwrap();
    assert_eq!(batch.current_revision(), before + 1);
    assert_eq!(events.len(), 3);
    assert!(events
        .iter()
        .all(|e| e.kind == EventKind::Delete && e.kv.mod_revision == before + 1));
    let deleted: Vec<&[u8]> = events.iter().map(|e| e.kv.key.as_slice()).collect();
    assert_eq!(deleted, [b"x", b"y", b"z"]);
    // A lease with no keys is revoked without a revision.
    batch.grant_lease(9, 10).unwrap();
    assert!(batch.revoke_lease(9).unwrap().is_empty());
    assert_eq!(batch.current_revision(), before + 1);
    assert!(matches!(batch.revoke_lease(7), Err(Error::LeaseNotFound)));
    batch.commit().unwrap();
    let view = engine.read().unwrap();
    assert!(view.lease(7).unwrap().is_none());
    assert!(view.lease_keys(7).unwrap().is_empty());
    assert_eq!(keys_of(&engine, 8), ["other"]);
    let all = view
        .range(&RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.count, 1);
}

#[test]
fn unknown_leases_are_refused_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let mut batch = engine.write().unwrap();
    let before = batch.current_revision();
    assert!(matches!(batch.put(&put("a", 5)), Err(Error::LeaseNotFound)));
    let txn = TxnRequest {
        compare: Vec::new(),
        success: vec![RequestOp::Put(put("b", 0)), RequestOp::Put(put("c", 5))],
        failure: Vec::new(),
    };
    assert!(matches!(batch.txn(&txn), Err(Error::LeaseNotFound)));
    assert_eq!(batch.current_revision(), before);
    batch.grant_lease(5, 30).unwrap();
    assert!(matches!(batch.grant_lease(5, 30), Err(Error::LeaseExists)));
    batch.txn(&txn).unwrap();
    batch.checkpoint_lease(5, 12).unwrap();
    batch.checkpoint_lease(6, 12).unwrap(); // unknown: ignored
                                            // The batch is still usable and commits.
    batch.commit().unwrap();
    let view = engine.read().unwrap();
    assert_eq!(view.lease(5).unwrap().unwrap().remaining_ttl, 12);
    assert!(view.lease(6).unwrap().is_none());
    assert_eq!(keys_of(&engine, 5), ["c"]);
}
