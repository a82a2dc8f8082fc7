//! Basic behaviour of the public API, one etcd rule per test.

use basalt_engine::*;

mod support;
use support::put;

fn get(key: &str) -> RangeRequest {
    RangeRequest {
        key: key.into(),
        ..Default::default()
    }
}

#[test]
fn put_get_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let engine = Engine::open(&path).unwrap();
        let mut batch = engine.write().unwrap();
        // A fresh store is at revision 1, as etcd's: the first write gets revision 2.
        assert_eq!(batch.current_revision(), 1);
        let (response, events) = batch.put(&put("a", "1")).unwrap();
        assert_eq!(response.header_revision, 2);
        assert_eq!(events.len(), 1);
        batch.put(&put("a", "2")).unwrap();
        batch.put(&put("b", "3")).unwrap();
        batch.set_applied_index(7);
        batch.commit().unwrap();
    }
    let engine = Engine::open(&path).unwrap();
    let view = engine.read().unwrap();
    assert_eq!(view.current_revision(), 4);
    assert_eq!(view.applied_index(), 7);
    let response = view.range(&get("a")).unwrap();
    assert_eq!(response.count, 1);
    let kv = &response.kvs[0];
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"2"[..], 2, 3, 2)
    );
    let old = view
        .range(&RangeRequest {
            revision: 2,
            ..get("a")
        })
        .unwrap();
    assert_eq!(old.kvs[0].value, b"1");
    let all = view
        .range(&RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.count, 2);
}

#[test]
fn many_keys_large_values_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let big = vec![7u8; 1_600_000];
    for round in 0..3 {
        let mut batch = engine.write().unwrap();
        for i in 0..3000 {
            batch
                .put(&put(&format!("key/{i:05}"), &format!("v{round}-{i}")))
                .unwrap();
        }
        batch
            .put(&PutRequest {
                key: b"big".to_vec(),
                value: big.clone(),
                ..Default::default()
            })
            .unwrap();
        batch.commit().unwrap();
    }
    let view = engine.read().unwrap();
    let r = view
        .range(&RangeRequest {
            key: b"key/".to_vec(),
            range_end: b"key0".to_vec(),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.count, 3000);
    assert!(r.more);
    assert_eq!(r.kvs.len(), 10);
    assert_eq!(r.kvs[0].value, b"v2-0");
    assert_eq!(view.range(&get("big")).unwrap().kvs[0].value, big);
    let current = view.current_revision();
    drop(view);
    let mut batch = engine.write().unwrap();
    let mut done = batch.compact(current).unwrap();
    while !done {
        done = batch.compact_step(1000).unwrap();
    }
    batch.commit().unwrap();
    let view = engine.read().unwrap();
    assert!(matches!(
        view.range(&RangeRequest {
            revision: 1,
            ..get("key/00000")
        }),
        Err(Error::Compacted)
    ));
    assert_eq!(view.range(&get("key/00001")).unwrap().kvs[0].value, b"v2-1");
    assert_eq!(
        view.events_since(current, 100, usize::MAX).unwrap().len(),
        1
    );
}

/// Versions, create revisions and prev_kv over a tree of many leaves (the put path finds the
/// previous version inside its insert descent, or falls back to a lookup at a leaf's start):
/// every put must see exactly the previous version, across commits and within one batch.
#[test]
fn versions_and_prev_kv_in_a_large_tree() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let mut created = std::collections::HashMap::new();
    let mut last: std::collections::HashMap<String, (i64, Vec<u8>)> =
        std::collections::HashMap::new();
    for round in 0..4i64 {
        let mut batch = engine.write().unwrap();
        for i in 0..2500u32 {
            // Scattered order, two writes of some keys per batch.
            let k = format!("key/{:05}", (i * 7919) % 2500);
            let value = format!("{round}-{i}")
                .repeat(1 + (i as usize % 40))
                .into_bytes();
            let request = PutRequest {
                key: k.clone().into(),
                value: value.clone(),
                prev_kv: true,
                ..Default::default()
            };
            let (response, events) = batch.put(&request).unwrap();
            let kv = &events[0].kv;
            let previous = last.get(&k);
            assert_eq!(
                response
                    .prev_kv
                    .as_ref()
                    .map(|p| (p.version, p.value.clone())),
                previous.cloned(),
                "{k}"
            );
            assert_eq!(kv.version, previous.map_or(1, |p| p.0 + 1), "{k}");
            let create = *created.entry(k.clone()).or_insert(kv.mod_revision);
            assert_eq!(kv.create_revision, create, "{k}");
            last.insert(k.clone(), (kv.version, value));
            if i % 500 == 0 {
                let again = PutRequest {
                    ignore_value: true,
                    ..request
                };
                let (_, events) = batch.put(&again).unwrap();
                last.insert(
                    k.clone(),
                    (events[0].kv.version, events[0].kv.value.clone()),
                );
            }
        }
        if round == 2 {
            batch
                .delete_range(&DeleteRangeRequest {
                    key: b"key/00100".to_vec(),
                    range_end: b"key/00200".to_vec(),
                    ..Default::default()
                })
                .unwrap();
            for i in 100..200 {
                let k = format!("key/{i:05}");
                last.remove(&k);
                created.remove(&k);
            }
        }
        batch.commit().unwrap();
    }
    let view = engine.read().unwrap();
    let all = view
        .range(&RangeRequest {
            key: b"key/".to_vec(),
            range_end: b"key0".to_vec(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.count, 2500);
    for kv in all.kvs {
        let k = String::from_utf8(kv.key.clone()).unwrap();
        assert_eq!((kv.version, kv.value), last[&k].clone(), "{k}");
        assert_eq!(kv.create_revision, created[&k], "{k}");
    }
    engine.check().unwrap();
}

#[test]
fn small_ranges_are_told_from_large_ones() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let mut batch = engine.write().unwrap();
    for i in 0..20_000 {
        batch.put(&put(&format!("k/{i:06}"), "some value")).unwrap();
    }
    batch.commit().unwrap();
    let view = engine.read().unwrap();
    let small = |key: &str, end: &str| view.is_small_range(key.as_bytes(), end.as_bytes()).unwrap();
    assert!(small("k/000100", ""), "a point");
    assert!(small("k/000100", "k/000110"), "ten keys");
    assert!(
        small("k/000200", "k/000100"),
        "an empty range (end before key)"
    );
    assert!(!small("k/", "k0"), "every key, by prefix");
    assert!(!small("k/000100", "\0"), "every key from one on");
    assert!(!small("a", "z"), "every key, wider bounds");
    assert!(!small("k/001000", "k/009000"), "8,000 keys");
}
