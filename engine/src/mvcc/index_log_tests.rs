//! The split between the key index (record headers) and the change log (values): reads that
//! need no value never touch the log, reads that return values look up only the keys they
//! return, and `Engine::check` catches an index and a log that disagree.
//!
//! Two methods. A count of log lookups (`log::tests::value_reads`, this thread only) shows how
//! many values each read fetched. And a database whose whole change log has been zeroed on disk
//! shows that counts, keys-only ranges and compares on version/create/mod/lease still answer
//! exactly, while every read that needs a value fails with `Corrupt`.

use std::os::unix::fs::FileExt;
use std::path::Path;

use super::keys::Revision;
use super::log;
use super::types::*;
use crate::btree::page::{PageNode, ValRef};
use crate::db::{Db, Durability, Table, Tables};
use crate::error::Error;
use crate::pager::{run_pages, PageKind, View, PAGE_SIZE};
use crate::Engine;

const KEYS: u32 = 300;

fn key(i: u32) -> Vec<u8> {
    format!("k/{i:03}").into_bytes()
}

fn everything() -> RangeRequest {
    RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    }
}

fn put(key: Vec<u8>, value: Vec<u8>) -> PutRequest {
    PutRequest {
        key,
        value,
        ..Default::default()
    }
}

/// Writes `KEYS` keys (every 20th value an overflow run), overwrites every third, deletes every
/// seventh, compacts away the first versions; then a second durable commit that touches only
/// the Meta table, so open does not re-verify the log's pages (see `db::open`).
fn build(path: &Path) {
    let engine = Engine::open(path).unwrap();
    let mut b = engine.write().unwrap();
    for i in 0..KEYS {
        let value = if i % 20 == 0 {
            vec![i as u8; 5000]
        } else {
            format!("v{i}").into_bytes()
        };
        b.put(&put(key(i), value)).unwrap();
    }
    let first_round = b.current_revision();
    for i in (0..KEYS).step_by(3) {
        b.put(&put(key(i), format!("w{i}").into_bytes())).unwrap();
    }
    for i in (0..KEYS).step_by(7) {
        b.delete_range(&DeleteRangeRequest {
            key: key(i),
            ..Default::default()
        })
        .unwrap();
    }
    let mut done = b.compact(first_round).unwrap();
    while !done {
        done = b.compact_step(usize::MAX).unwrap();
    }
    b.commit().unwrap();
    let mut b = engine.write().unwrap();
    b.set_applied_index(1);
    b.commit().unwrap();
}

fn expected_live() -> Vec<Vec<u8>> {
    (0..KEYS).filter(|i| i % 7 != 0).map(key).collect()
}

#[test]
fn counts_and_keys_only_ranges_read_no_value_and_ranges_read_only_returned_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build(&path);
    let engine = Engine::open(&path).unwrap();
    let view = engine.read().unwrap();
    let live = expected_live().len() as i64;
    let reads = |request: RangeRequest| {
        let before = log::tests::value_reads();
        let response = view.range(&request).unwrap();
        (response, log::tests::value_reads() - before)
    };

    let (r, n) = reads(RangeRequest {
        count_only: true,
        ..everything()
    });
    assert_eq!((r.count, n), (live, 0));
    let (r, n) = reads(RangeRequest {
        keys_only: true,
        ..everything()
    });
    assert_eq!((r.kvs.len() as i64, n), (live, 0));
    // etcd's paginated LIST: a limited page also counts the rest of the range.
    let (r, n) = reads(RangeRequest {
        limit: 10,
        ..everything()
    });
    assert_eq!((r.kvs.len(), r.count, r.more, n), (10, live, true, 10));
    let (r, n) = reads(RangeRequest {
        limit: 10,
        keys_only: true,
        ..everything()
    });
    assert_eq!((r.kvs.len(), r.count, n), (10, live, 0));
    // Sorting and filtering look at every candidate's header, still only returned values.
    let (r, n) = reads(RangeRequest {
        limit: 4,
        sort_order: SortOrder::Descend,
        sort_target: SortTarget::Mod,
        min_mod_revision: 2,
        ..everything()
    });
    assert_eq!((r.kvs.len(), n), (4, 4));
    assert!(r.kvs.iter().all(|kv| !kv.value.is_empty()));
    // A sort by value is the one keys-only read that needs values: every candidate's.
    let (r, n) = reads(RangeRequest {
        keys_only: true,
        sort_order: SortOrder::Ascend,
        sort_target: SortTarget::Value,
        ..everything()
    });
    assert_eq!((r.kvs.len() as i64, n), (live, live as u64));
    assert!(r.kvs.iter().all(|kv| kv.value.is_empty()));

    // Compares: only VALUE reads values.
    let compare = |target: CompareTarget, range_end: &[u8]| {
        let before = log::tests::value_reads();
        let response = view
            .read_only_txn(&TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::NotEqual,
                    target,
                    key: key(1),
                    range_end: range_end.to_vec(),
                }],
                ..Default::default()
            })
            .unwrap();
        (response.succeeded, log::tests::value_reads() - before)
    };
    for target in [
        CompareTarget::Version(0),
        CompareTarget::Create(0),
        CompareTarget::Mod(0),
        CompareTarget::Lease(9),
    ] {
        assert_eq!(compare(target, b"k/4"), (true, 0));
    }
    // k/001..k/004 are live: four values compared.
    assert_eq!(
        compare(CompareTarget::Value(b"x".to_vec()), b"k/005"),
        (true, 4)
    );
}

/// Every page of `table`'s tree: nodes and overflow runs.
fn table_pages(view: &View, root: u64) -> Vec<u64> {
    let mut pages = Vec::new();
    let mut stack = vec![root];
    while let Some(page) = stack.pop() {
        pages.push(page);
        let node = PageNode::open(view, page).unwrap();
        for i in 0..node.count {
            if node.kind == PageKind::Branch {
                stack.push(node.child(view, i).unwrap());
            } else if let ValRef::Overflow { page, len } = node.value(view, i).unwrap() {
                pages.extend(page..page + run_pages(len as usize));
            }
        }
    }
    pages
}

fn is_corrupt<T: std::fmt::Debug>(result: crate::Result<T>) -> bool {
    matches!(result, Err(Error::Corrupt { .. }))
}

#[test]
fn with_the_change_log_zeroed_only_reads_of_values_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build(&path);
    let (expected, expected_size) = {
        let engine = Engine::open(&path).unwrap();
        let all = engine.read().unwrap().range(&everything()).unwrap();
        (all, engine.read().unwrap().size_bytes())
    };
    let log_pages = {
        let db = Db::open(&path).unwrap();
        let read = db.begin_read();
        table_pages(read.view(), read.root_page(Table::Revisions).unwrap())
    };
    assert!(log_pages.len() > 10, "a multi-page log: {log_pages:?}");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for page in &log_pages {
        file.write_all_at(&[0u8; PAGE_SIZE], page * PAGE_SIZE as u64)
            .unwrap();
    }
    drop(file);

    let engine = Engine::open(&path).unwrap();
    let view = engine.read().unwrap();
    assert_eq!(view.size_bytes(), expected_size);
    let without_values: Vec<KeyValue> = expected
        .kvs
        .iter()
        .map(|kv| KeyValue {
            value: Vec::new(),
            ..kv.clone()
        })
        .collect();
    assert_eq!(
        view.range(&RangeRequest {
            count_only: true,
            ..everything()
        })
        .unwrap()
        .count,
        expected.count
    );
    let keys_only = view
        .range(&RangeRequest {
            keys_only: true,
            ..everything()
        })
        .unwrap();
    assert_eq!(keys_only.kvs, without_values);
    let page = view
        .range(&RangeRequest {
            keys_only: true,
            limit: 7,
            sort_order: SortOrder::Descend,
            sort_target: SortTarget::Create,
            ..everything()
        })
        .unwrap();
    assert_eq!(
        (page.kvs.len(), page.count, page.more),
        (7, expected.count, true)
    );
    let guarded = |target: CompareTarget| {
        view.read_only_txn(&TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Greater,
                target,
                key: key(1),
                range_end: vec![0],
            }],
            ..Default::default()
        })
    };
    for target in [
        CompareTarget::Version(0),
        CompareTarget::Create(0),
        CompareTarget::Mod(0),
    ] {
        assert!(guarded(target).unwrap().succeeded);
    }

    // What needs a value finds the damage and says so.
    assert!(is_corrupt(view.range(&RangeRequest {
        limit: 1,
        ..everything()
    })));
    assert!(is_corrupt(guarded(CompareTarget::Value(vec![]))));
    assert!(is_corrupt(view.range(&RangeRequest {
        keys_only: true,
        sort_order: SortOrder::Ascend,
        sort_target: SortTarget::Value,
        ..everything()
    })));
    assert!(is_corrupt(view.events_since(
        view.compact_revision(),
        usize::MAX,
        usize::MAX
    )));
    assert!(is_corrupt(view.hash_kv(0)));
    drop(view);
    assert!(is_corrupt(engine.check()));
}

// ---------------------------------------------------------------- the check of index and log

/// Writes a (rev 2), b (rev 3), then deletes a (rev 4); then applies `tamper` to the raw
/// tables and returns what `Engine::check` says.
fn check_after(tamper: impl FnOnce(&mut crate::db::WriteTxn)) -> crate::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let engine = Engine::open(&path).unwrap();
        let mut b = engine.write().unwrap();
        b.put(&put(b"a".to_vec(), b"1".to_vec())).unwrap();
        b.put(&put(b"b".to_vec(), b"2".to_vec())).unwrap();
        b.delete_range(&DeleteRangeRequest {
            key: b"a".to_vec(),
            ..Default::default()
        })
        .unwrap();
        b.commit().unwrap();
        engine.check().unwrap();
    }
    {
        let db = Db::open(&path).unwrap();
        let mut txn = db.begin_write().unwrap();
        tamper(&mut txn);
        txn.commit(Durability::OneSync).unwrap();
    }
    Engine::open(&path).unwrap().check().map(drop)
}

fn rev(main: i64) -> [u8; 16] {
    Revision { main, sub: 0 }.to_bytes()
}

fn check_error(result: crate::Result<()>) -> String {
    match result {
        Err(Error::Corrupt { reason, .. }) => reason,
        other => panic!("expected a corruption report, got {other:?}"),
    }
}

#[test]
fn check_finds_an_index_record_without_its_log_entry() {
    let reason = check_error(check_after(|txn| {
        assert!(txn.delete(Table::Revisions, &rev(3)).unwrap());
    }));
    assert!(reason.contains("has no change log entry"), "{reason}");
}

#[test]
fn check_finds_a_log_entry_without_its_index_record() {
    let reason = check_error(check_after(|txn| {
        txn.put(Table::Revisions, &rev(9), &log::encode(b"z", b"9"))
            .unwrap();
    }));
    assert!(reason.contains("has no index record"), "{reason}");
}

#[test]
fn check_finds_a_log_entry_logged_for_another_key() {
    let reason = check_error(check_after(|txn| {
        txn.put(Table::Revisions, &rev(3), &log::encode(b"a", b"2"))
            .unwrap();
    }));
    assert!(reason.contains("is logged for key"), "{reason}");
}

#[test]
fn check_finds_a_delete_with_a_value() {
    let reason = check_error(check_after(|txn| {
        txn.put(Table::Revisions, &rev(4), &log::encode(b"a", b"zombie"))
            .unwrap();
    }));
    assert!(reason.contains("has a value"), "{reason}");
}
