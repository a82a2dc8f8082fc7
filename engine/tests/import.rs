//! Importing another store's history (`basalt-util migrate`): every change lands at its own
//! revision with the given create revision, version and lease, tombstones hide keys, reads at
//! old revisions see the history, and the current revision is the last imported one.

use basalt_engine::*;

fn kv(key: &str, value: &str, create: i64, version: i64, lease: i64) -> KeyValue {
    KeyValue {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        create_revision: create,
        mod_revision: 0,
        version,
        lease,
    }
}

fn get(engine: &Engine, key: &str, revision: i64) -> Vec<KeyValue> {
    engine
        .read()
        .unwrap()
        .range(&RangeRequest {
            key: key.as_bytes().to_vec(),
            revision,
            ..Default::default()
        })
        .unwrap()
        .kvs
}

#[test]
fn imported_history_keeps_its_revisions_versions_leases_and_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let mut batch = engine.write().unwrap();
    batch.grant_lease(7, 60).unwrap();
    let at = |main, sub| Revision { main, sub };
    batch
        .import_change(at(2, 0), &kv("a", "1", 2, 1, 0), false)
        .unwrap();
    batch
        .import_change(at(3, 0), &kv("a", "2", 2, 2, 7), false)
        .unwrap();
    batch
        .import_change(at(3, 1), &kv("b", "x", 3, 1, 7), false)
        .unwrap();
    batch
        .import_change(at(5, 0), &kv("b", "", 0, 0, 0), true)
        .unwrap();
    assert_eq!(batch.current_revision(), 5);
    batch.commit().unwrap();

    let now = get(&engine, "a", 0);
    assert_eq!(now.len(), 1);
    assert_eq!(
        (
            now[0].create_revision,
            now[0].mod_revision,
            now[0].version,
            now[0].lease
        ),
        (2, 3, 2, 7)
    );
    assert_eq!(now[0].value, b"2");
    assert!(get(&engine, "b", 0).is_empty());
    let old = get(&engine, "b", 4);
    assert_eq!(
        (old[0].mod_revision, old[0].value.as_slice()),
        (3, &b"x"[..])
    );
    assert_eq!(get(&engine, "a", 2)[0].value, b"1");
    // The delete detached b from the lease; a stays attached.
    assert_eq!(
        engine.read().unwrap().lease_keys(7).unwrap(),
        vec![b"a".to_vec()]
    );
    // Reopened, the current revision is the last imported one.
    drop(engine);
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let mut batch = engine.write().unwrap();
    assert_eq!(batch.current_revision(), 5);
    let (response, _) = batch
        .put(&PutRequest {
            key: b"a".to_vec(),
            value: b"3".to_vec(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(response.header_revision, 6);
}
