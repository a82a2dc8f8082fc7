//! Model-based test of the B+tree and pager alone: random inserts, overwrites, deletes (single
//! and in bulk, to force splits and merges over several levels), large values in value runs,
//! commits, aborts, reopens and pinned readers, against a `BTreeMap`. After every commit the
//! whole file's page accounting is checked: nothing leaked, nothing referenced twice.

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;

use super::{Db, ReadTxn, Table, Tables};

#[derive(Clone, Debug)]
enum Op {
    Put(u16, usize),
    Delete(u16),
    DeleteSpan(u16, u16),
    Commit,
    Abort,
    Reopen,
    Pin,
    CheckPinned,
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![6 => 0usize..40, 2 => 40usize..900, 1 => 900usize..20_000];
    prop_oneof![
        30 => (0u16..3000, size).prop_map(|(k, s)| Op::Put(k, s)),
        6 => (0u16..3000).prop_map(Op::Delete),
        1 => (0u16..3000, 0u16..800).prop_map(|(k, n)| Op::DeleteSpan(k, n)),
        3 => Just(Op::Commit),
        1 => Just(Op::Abort),
        1 => Just(Op::Reopen),
        1 => Just(Op::Pin),
        1 => Just(Op::CheckPinned),
    ]
}

fn key(k: u16) -> Vec<u8> {
    // Variable-length keys with shared prefixes.
    format!("k/{}/{k}", k % 7)
        .repeat(1 + (k % 3) as usize)
        .into_bytes()
}

fn value(k: u16, size: usize, salt: u64) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u64 ^ k as u64 ^ salt) as u8)
        .collect()
}

/// A table's entries.
type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

fn contents<T: Tables>(t: &T, table: Table) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    t.scan(
        table,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
        &mut |k, v| {
            out.insert(k.to_vec(), v.to_vec());
            Ok(true)
        },
    )
    .unwrap();
    out
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = Db::open(&path).unwrap();
    let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut pinned: Vec<(ReadTxn, Contents)> = vec![];
    let mut ops = ops.into_iter().peekable();
    let mut salt = 0u64;
    while ops.peek().is_some() {
        let mut model = committed.clone();
        let mut reopen = false;
        let mut slot = Some(db.begin_write().unwrap());
        for op in ops.by_ref() {
            let txn = slot.as_mut().unwrap();
            salt += 1;
            match op {
                Op::Put(k, size) => {
                    let v = value(k, size, salt);
                    let replaced = txn.put(Table::Index, &key(k), &v).unwrap();
                    prop_assert_eq!(replaced, model.insert(key(k), v).is_some());
                }
                Op::Delete(k) => {
                    let removed = txn.delete(Table::Index, &key(k)).unwrap();
                    prop_assert_eq!(removed, model.remove(&key(k)).is_some());
                }
                Op::DeleteSpan(k, n) => {
                    let doomed: Vec<Vec<u8>> = model
                        .range(key(k)..)
                        .take(n as usize)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for d in doomed {
                        prop_assert!(txn.delete(Table::Index, &d).unwrap());
                        model.remove(&d);
                    }
                }
                Op::Commit => {
                    prop_assert_eq!(contents(&*txn, Table::Index), model.clone());
                    slot.take()
                        .unwrap()
                        .commit(crate::db::Durability::OneSync)
                        .unwrap();
                    committed = model.clone();
                    db.check().unwrap();
                    break;
                }
                Op::Abort => break,
                Op::Reopen => {
                    reopen = true;
                    break;
                }
                Op::Pin => pinned.push((db.begin_read(), committed.clone())),
                Op::CheckPinned => {
                    for (reader, expected) in &pinned {
                        prop_assert_eq!(&contents(reader, Table::Index), expected);
                    }
                    pinned.truncate(1);
                }
            }
        }
        drop(slot);
        if reopen {
            pinned.clear();
            drop(db);
            db = Db::open(&path).unwrap();
            let report = db.check().unwrap();
            prop_assert_eq!(report.pages_pending, 0);
            prop_assert_eq!(contents(&db.begin_read(), Table::Index), committed.clone());
        }
    }
    for (reader, expected) in &pinned {
        prop_assert_eq!(&contents(reader, Table::Index), expected);
    }
    pinned.clear();
    let reader = db.begin_read();
    for (k, v) in &committed {
        prop_assert_eq!(reader.get(Table::Index, k).unwrap(), Some(v.as_slice()));
    }
    Ok(())
}

/// Cases per run; soak with `BASALT_BTREE_CASES=500 cargo test --release -p basalt-engine --lib`.
fn cases() -> u32 {
    std::env::var("BASALT_BTREE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn btree_matches_model(ops in proptest::collection::vec(op(), 1..1500)) {
        run(ops)?;
    }
}

/// Deleting everything after a large load must give (nearly) all pages back, and the file's
/// used area must not grow under repeated overwrite (free pages are reused).
#[test]
fn churn_reuses_pages() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let mut sizes = vec![];
    for round in 0..6u64 {
        let mut txn = db.begin_write().unwrap();
        for k in 0..5000u16 {
            txn.put(
                Table::Index,
                &key(k),
                &value(k, 100 + (k as usize % 200), round),
            )
            .unwrap();
        }
        txn.commit(crate::db::Durability::OneSync).unwrap();
        sizes.push(db.check().unwrap().pages_total);
    }
    assert!(
        sizes[5] <= sizes[1] + sizes[1] / 10,
        "file keeps growing: {sizes:?}"
    );
    let mut txn = db.begin_write().unwrap();
    for k in 0..5000u16 {
        assert!(txn.delete(Table::Index, &key(k)).unwrap());
    }
    txn.commit(crate::db::Durability::OneSync).unwrap();
    let report = db.check().unwrap();
    assert_eq!(report.entries, 0);
    assert!(report.pages_reachable <= 2, "{report:?}");
}

/// Relocation (defragmentation's copy of a path, large values made fresh again) and the
/// MVCC put's insert-after-predecessor, mixed with the plain edits, against a `BTreeMap`.
mod relocate_model {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::super::{Db, Durability, Table};
    use super::{contents, key};

    #[derive(Clone, Debug)]
    enum Op {
        Put(u16, usize),
        PutAfter(u16, usize),
        Delete(u16),
        DeleteSpan(u16, u16),
        Relocate(u16),
        Commit,
        Abort,
    }

    fn op() -> impl Strategy<Value = Op> {
        let size = prop_oneof![5 => 0usize..40, 2 => 40usize..900, 2 => 900usize..6000];
        prop_oneof![
            20 => (0u16..2000, size.clone()).prop_map(|(k, s)| Op::Put(k, s)),
            5 => (0u16..2000, size).prop_map(|(k, s)| Op::PutAfter(k, s)),
            6 => (0u16..2000).prop_map(Op::Delete),
            1 => (0u16..2000, 0u16..400).prop_map(|(k, n)| Op::DeleteSpan(k, n)),
            4 => (0u16..2000).prop_map(Op::Relocate),
            2 => Just(Op::Commit),
            1 => Just(Op::Abort),
        ]
    }

    fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let mut committed = BTreeMap::new();
        let mut ops = ops.into_iter().peekable();
        let mut salt = 0u8;
        while ops.peek().is_some() {
            let mut model = committed.clone();
            let mut txn = Some(db.begin_write().unwrap());
            for op in ops.by_ref() {
                salt = salt.wrapping_add(1);
                let t = txn.as_mut().unwrap();
                match op {
                    Op::Put(k, s) => {
                        let v = vec![salt; s];
                        prop_assert_eq!(
                            t.put(Table::Index, &key(k), &v).unwrap(),
                            model.insert(key(k), v).is_some()
                        );
                    }
                    Op::PutAfter(k, s) => {
                        if model.contains_key(&key(k)) {
                            continue;
                        }
                        let expected_pred: Option<(Vec<u8>, Vec<u8>)> = model
                            .range(..key(k))
                            .next_back()
                            .map(|(a, b)| (a.clone(), b.clone()));
                        let mut seen = None;
                        let done = t
                            .put_after_predecessor(Table::Index, &key(k), &mut |p| {
                                seen = Some(p.map(|(a, b)| (a.to_vec(), b.to_vec())));
                                Ok(vec![salt; s])
                            })
                            .unwrap();
                        if done {
                            prop_assert_eq!(seen.unwrap(), expected_pred);
                        } else {
                            t.put(Table::Index, &key(k), &vec![salt; s]).unwrap();
                        }
                        model.insert(key(k), vec![salt; s]);
                    }
                    Op::Delete(k) => {
                        prop_assert_eq!(
                            t.delete(Table::Index, &key(k)).unwrap(),
                            model.remove(&key(k)).is_some()
                        );
                    }
                    Op::DeleteSpan(k, n) => {
                        let doomed: Vec<_> = model
                            .range(key(k)..)
                            .take(n as usize)
                            .map(|(k, _)| k.clone())
                            .collect();
                        for d in doomed {
                            prop_assert!(t.delete(Table::Index, &d).unwrap());
                            model.remove(&d);
                        }
                    }
                    Op::Relocate(k) => t.relocate(Table::Index, &key(k), 0).unwrap(),
                    Op::Commit => {
                        prop_assert_eq!(contents(&*t, Table::Index), model.clone());
                        txn.take().unwrap().commit(Durability::OneSync).unwrap();
                        committed = model.clone();
                        db.check().unwrap();
                        prop_assert_eq!(
                            contents(&db.begin_read(), Table::Index),
                            committed.clone()
                        );
                        break;
                    }
                    Op::Abort => break,
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: super::cases() / 2, ..ProptestConfig::default() })]
        #[test]
        fn relocate_and_predecessor_match_model(ops in proptest::collection::vec(op(), 1..1500)) {
            run(ops)?;
        }
    }
}
