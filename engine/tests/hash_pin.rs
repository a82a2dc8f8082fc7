//! HashKV is compared between members and across versions of basalt, so its result for a given
//! history must not depend on how the store lays out its tables. Method: one fixed history
//! (small, empty and overflow values, keys with zero bytes, overwrites, deletes, a txn with
//! several changes, a lease revoke, a compaction left half done and then finished), hashed at
//! several revisions; the expected values were computed by the format-1 engine, whose key index
//! still held the values inline, and are pinned here.

use basalt_engine::*;

fn put(key: &[u8], value: &[u8]) -> PutRequest {
    PutRequest {
        key: key.to_vec(),
        value: value.to_vec(),
        ..Default::default()
    }
}

fn delete(key: &[u8], range_end: &[u8]) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: key.to_vec(),
        range_end: range_end.to_vec(),
        prev_kv: false,
    }
}

/// Writes the history (revisions 2..=15) in two durable commits.
fn history(engine: &Engine) {
    let mut b = engine.write().unwrap();
    b.grant_lease(7, 60).unwrap();
    b.put(&put(b"a", b"1")).unwrap(); // 2
    b.put(&put(b"b\0x", &[9u8; 5000])).unwrap(); // 3: overflow value, zero byte in the key
    b.put(&put(b"c", b"")).unwrap(); // 4: empty value
    b.put(&PutRequest {
        lease: 7,
        ..put(b"d", b"leased")
    })
    .unwrap(); // 5
    b.put(&put(b"a", b"22")).unwrap(); // 6
    b.delete_range(&delete(b"c", b"")).unwrap(); // 7: tombstone
    b.txn(&TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal,
            target: CompareTarget::Version(2),
            key: b"a".to_vec(),
            range_end: vec![],
        }],
        success: vec![
            RequestOp::Put(put(b"e", b"five")),
            RequestOp::Put(put(b"b\0x", b"small now")),
            RequestOp::DeleteRange(delete(b"a", b"")),
        ],
        failure: vec![],
    })
    .unwrap(); // 8: three changes
    b.commit().unwrap();
    let mut b = engine.write().unwrap();
    b.revoke_lease(7).unwrap(); // 9: deletes d
    b.put(&put(b"c", &[3u8; 3000])).unwrap(); // 10: recreated, overflow
    b.put(&PutRequest {
        ignore_value: true,
        ..put(b"e", b"")
    })
    .unwrap(); // 11
    b.put(&put(b"f", b"6")).unwrap(); // 12
    b.delete_range(&delete(b"e", b"g")).unwrap(); // 13: e and f
    b.put(&put(b"a", b"back")).unwrap(); // 14
    b.put(&put(b"g\0", b"7")).unwrap(); // 15
    b.commit().unwrap();
}

fn hashes(view: &ReadView, revisions: &[i64]) -> Vec<(i64, u32)> {
    revisions
        .iter()
        .map(|&rev| (rev, view.hash_kv(rev).unwrap().hash))
        .collect()
}

#[test]
fn hash_kv_of_a_fixed_history_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    history(&engine);
    let view = engine.read().unwrap();
    assert_eq!(view.current_revision(), 15);
    let before = hashes(&view, &[2, 5, 8, 9, 11, 13, 15]);
    drop(view);

    // Compact at 9, leaving the physical work half done: the hash skips what a finished
    // compaction removes, so it does not change.
    let mut b = engine.write().unwrap();
    assert!(!b.compact_within(9, 3).unwrap());
    b.commit().unwrap();
    let view = engine.read().unwrap();
    assert!(view.compaction_pending());
    let pending = hashes(&view, &[9, 11, 13, 15]);
    drop(view);
    let mut b = engine.write().unwrap();
    while !b.compact_step(2).unwrap() {}
    b.commit().unwrap();
    let view = engine.read().unwrap();
    let after = hashes(&view, &[9, 11, 13, 15]);
    assert_eq!(pending, after);
    assert_eq!(
        before,
        [
            (2, 3036497474),
            (5, 2380707820),
            (8, 2771125613),
            (9, 1267982810),
            (11, 1347251219),
            (13, 332122416),
            (15, 269057165)
        ]
    );
    assert_eq!(
        after,
        [
            (9, 1173108537),
            (11, 3659037097),
            (13, 1810085914),
            (15, 3527435399)
        ]
    );
}
