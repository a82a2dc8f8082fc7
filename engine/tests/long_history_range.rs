//! Ranges over keys with long histories (many revisions not yet compacted): the key index
//! scan seeks past a long run of one key's revisions instead of walking it, and must answer
//! exactly what a walk would, at any revision, with tombstones and re-creations in the history.

use std::collections::BTreeMap;

use basalt_engine::*;

fn put(key: &[u8], value: Vec<u8>) -> PutRequest {
    PutRequest {
        key: key.to_vec(),
        value,
        ..Default::default()
    }
}

fn delete(key: &[u8]) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: key.to_vec(),
        ..Default::default()
    }
}

/// What a key holds at each revision: (revision, Some(value) or None for a delete).
type History = BTreeMap<Vec<u8>, Vec<(i64, Option<Vec<u8>>)>>;

fn live_at(history: &History, rev: i64) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    history
        .iter()
        .filter_map(|(key, changes)| {
            let (mod_revision, value) = changes.iter().rev().find(|(r, _)| *r <= rev)?;
            Some((key.clone(), value.clone()?, *mod_revision))
        })
        .collect()
}

#[test]
fn ranges_over_long_histories_answer_as_a_walk_would() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let mut history = History::new();
    // "a" and "d": short histories. "b": 300 revisions, deleted at 150 and re-created.
    // "c": 200 revisions ending with a delete. "c\0x": a key that extends "c" with a 0 byte.
    let mut plan: Vec<(&[u8], bool)> = vec![(b"a", false), (b"d", false), (b"c\0x", false)];
    for i in 0..300 {
        plan.push((b"b", i == 150));
        if i < 200 {
            plan.push((b"c", i == 199));
        }
    }
    plan.push((b"a", false));
    for (n, (key, is_delete)) in plan.into_iter().enumerate() {
        let mut batch = engine.write().unwrap();
        if is_delete {
            batch.delete_range(&delete(key)).unwrap();
        } else {
            batch.put(&put(key, format!("v{n}").into_bytes())).unwrap();
        }
        let revision = batch.current_revision();
        batch.commit_unsynced().unwrap();
        let value = (!is_delete).then(|| format!("v{n}").into_bytes());
        history
            .entry(key.to_vec())
            .or_default()
            .push((revision, value));
    }
    let current = engine.read().unwrap().current_revision();
    for rev in [2, 3, 4, 100, 300, 303, 304, 305, 400, 500, current] {
        let expected = live_at(&history, rev);
        for limit in [0i64, 1, 2, 3] {
            let answer = engine
                .read()
                .unwrap()
                .range(&RangeRequest {
                    key: vec![0],
                    range_end: vec![0],
                    limit,
                    revision: rev,
                    ..Default::default()
                })
                .unwrap();
            let got: Vec<_> = answer
                .kvs
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone(), kv.mod_revision))
                .collect();
            let want = if limit == 0 {
                expected.clone()
            } else {
                expected.iter().take(limit as usize).cloned().collect()
            };
            assert_eq!(got, want, "at revision {rev}, limit {limit}");
            assert_eq!(answer.count, expected.len() as i64, "count at {rev}");
            assert_eq!(answer.more, limit > 0 && expected.len() > limit as usize);
        }
        // The long key alone, and a range starting inside the long key's neighbours.
        for (key, range_end) in [(&b"b"[..], &b""[..]), (b"b", b"c\x01"), (b"c", b"e")] {
            let answer = engine
                .read()
                .unwrap()
                .range(&RangeRequest {
                    key: key.to_vec(),
                    range_end: range_end.to_vec(),
                    revision: rev,
                    ..Default::default()
                })
                .unwrap();
            let want: Vec<_> = expected
                .iter()
                .filter(|(k, _, _)| {
                    if range_end.is_empty() {
                        k.as_slice() == key
                    } else {
                        k.as_slice() >= key && k.as_slice() < range_end
                    }
                })
                .map(|(k, _, _)| k.clone())
                .collect();
            let got: Vec<_> = answer.kvs.iter().map(|kv| kv.key.clone()).collect();
            assert_eq!(got, want, "{key:?}..{range_end:?} at {rev}");
        }
    }
}
