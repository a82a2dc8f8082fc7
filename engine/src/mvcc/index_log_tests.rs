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
use crate::btree::page::PageNode;
use crate::db::{Db, Durability, Table, Tables};
use crate::error::Error;
use crate::pager::{PageKind, View, PAGE_SIZE};
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

/// Every page of `table`'s tree: nodes and value runs.
fn table_pages(view: &View, root: u64) -> Vec<u64> {
    let mut pages = Vec::new();
    let mut stack = vec![root];
    while let Some(page) = stack.pop() {
        pages.push(page);
        let node = PageNode::open(view, page).unwrap();
        for i in 0..node.count {
            if node.kind == PageKind::Branch {
                stack.push(node.child(view, i).unwrap());
            } else if let Some((page, n)) = node.value(view, i).unwrap().run_pages() {
                pages.extend(page..page + n);
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
    check_in(&dir.path().join("db"), tamper)
}

/// [`check_after`] with the database at `path`.
fn check_in(path: &Path, tamper: impl FnOnce(&mut crate::db::WriteTxn)) -> crate::Result<()> {
    {
        let engine = Engine::open(path).unwrap();
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
        let db = Db::open(path).unwrap();
        let mut txn = db.begin_write().unwrap();
        tamper(&mut txn);
        txn.commit(Durability::OneSync).unwrap();
    }
    Engine::open(path).unwrap().check().map(drop)
}

fn rev(main: i64) -> Revision {
    Revision { main, sub: 0 }
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
        assert!(txn
            .delete(Table::Revisions, &log::tree_key(rev(3), b"b"))
            .unwrap());
    }));
    assert!(reason.contains("has no change log entry"), "{reason}");
}

#[test]
fn check_finds_a_log_entry_without_its_index_record() {
    let reason = check_error(check_after(|txn| {
        log::put(txn, rev(9), b"z", b"9").unwrap();
    }));
    assert!(reason.contains("has no index record"), "{reason}");
}

#[test]
fn check_finds_a_log_entry_logged_for_another_key() {
    let reason = check_error(check_after(|txn| {
        assert!(txn
            .delete(Table::Revisions, &log::tree_key(rev(3), b"b"))
            .unwrap());
        log::put(txn, rev(3), b"a", b"2").unwrap();
    }));
    assert!(reason.contains("is logged for key"), "{reason}");
}

#[test]
fn check_finds_a_legacy_log_entry_logged_for_another_key() {
    let reason = check_error(check_after(|txn| {
        assert!(txn
            .delete(Table::Revisions, &log::tree_key(rev(3), b"b"))
            .unwrap());
        txn.put(
            Table::Revisions,
            &rev(3).to_bytes(),
            &log::encode_legacy(b"a", b"2"),
        )
        .unwrap();
    }));
    assert!(reason.contains("is logged for key"), "{reason}");
}

/// Goal: a change log holding entries of both layouts (format 2's, keyed by revision alone,
/// next to format 3's) reads, compacts and checks as one log. Method: rewrite b's entry (rev 3)
/// in the legacy layout under the raw tables; compare the whole-store hash with the same
/// history stored in the current layout; read it, overwrite b, compact past rev 3 and check
/// that the legacy entry is gone and nothing else is.
#[test]
fn a_log_mixing_both_layouts_reads_compacts_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    check_in(&path, |txn| {
        assert!(txn
            .delete(Table::Revisions, &log::tree_key(rev(3), b"b"))
            .unwrap());
        txn.put(
            Table::Revisions,
            &rev(3).to_bytes(),
            &log::encode_legacy(b"b", b"2"),
        )
        .unwrap();
    })
    .unwrap();
    let engine = Engine::open(&path).unwrap();
    // The whole-store hash does not see the layout: the same history, all in format 3.
    let same_dir = tempfile::tempdir().unwrap();
    let same = same_dir.path().join("db");
    check_in(&same, |_| {}).unwrap();
    assert_eq!(
        engine.read().unwrap().hash_store().unwrap(),
        Engine::open(&same)
            .unwrap()
            .read()
            .unwrap()
            .hash_store()
            .unwrap()
    );
    let got = engine.read().unwrap().range(&everything()).unwrap();
    assert_eq!(got.kvs.len(), 1);
    assert_eq!(
        (&got.kvs[0].key[..], &got.kvs[0].value[..]),
        (&b"b"[..], &b"2"[..])
    );
    let mut b = engine.write().unwrap();
    let (_, events) = b
        .put(&PutRequest {
            prev_kv: true,
            ..put(b"b".to_vec(), b"3".to_vec())
        })
        .unwrap();
    assert_eq!(events[0].prev_kv.as_ref().unwrap().value, b"2");
    b.compact(5).unwrap();
    b.commit().unwrap();
    engine.check().unwrap();
    let db_read = engine.read().unwrap();
    assert_eq!(db_read.range(&everything()).unwrap().kvs[0].value, b"3");
    drop(db_read);
    drop(engine);
    let db = Db::open(&path).unwrap();
    let read = db.begin_read();
    let mut keys = Vec::new();
    read.scan(
        Table::Revisions,
        std::ops::Bound::Unbounded,
        std::ops::Bound::Unbounded,
        false,
        &mut |k, _| {
            keys.push(k.to_vec());
            Ok(true)
        },
    )
    .unwrap();
    assert_eq!(keys, vec![log::tree_key(rev(5), b"b")]);
}

#[test]
fn check_finds_a_delete_with_a_value() {
    let reason = check_error(check_after(|txn| {
        log::put(txn, rev(4), b"a", b"zombie").unwrap();
    }));
    assert!(reason.contains("has a value"), "{reason}");
}

// ---------------------------------------------------------------- value runs

/// (value bytes, pages of its run) of every value of `table` stored outside its leaf.
fn value_runs(view: &View, root: u64) -> Vec<(usize, u64)> {
    let mut runs = Vec::new();
    let mut stack = vec![root];
    while let Some(page) = stack.pop() {
        let node = PageNode::open(view, page).unwrap();
        for i in 0..node.count {
            if node.kind == PageKind::Branch {
                stack.push(node.child(view, i).unwrap());
                continue;
            }
            let value = node.value(view, i).unwrap();
            if let Some((_, pages)) = value.run_pages() {
                let len = crate::btree::read::resolve(view, value).unwrap().len();
                runs.push((len, pages));
            }
        }
    }
    runs.sort_unstable();
    runs
}

/// Goal: a value stored outside its leaf takes ceil(N / 4096) pages, its key and checksum
/// staying in the leaf: a 4 KiB value (Kubernetes' and the bench's size class) takes one page,
/// where format 2 took two. Method: put values of sizes around page multiples under 16-byte
/// keys, walk the change log's tree and read each run's page count; then check that 256
/// values of 4 KiB make the whole file about 256 pages. Runtime: ~50 ms.
#[test]
fn a_value_of_n_bytes_takes_ceil_n_over_a_page_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let sizes = [2100, 4095, 4096, 4097, 8191, 8192, 10_000];
    {
        let engine = Engine::open(&path).unwrap();
        let mut b = engine.write().unwrap();
        for (i, len) in sizes.iter().enumerate() {
            let key = format!("/registry/{i:06}").into_bytes();
            assert_eq!(key.len(), 16);
            b.put(&put(key, vec![i as u8 + 1; *len])).unwrap();
        }
        b.commit().unwrap();
        engine.check().unwrap();
    }
    let db = Db::open(&path).unwrap();
    let read = db.begin_read();
    let runs = value_runs(read.view(), read.root_page(Table::Revisions).unwrap());
    let expected: Vec<(usize, u64)> = sizes
        .iter()
        .map(|&n| (n, n.div_ceil(PAGE_SIZE) as u64))
        .collect();
    assert_eq!(runs, expected);
    drop(read);
    drop(db);

    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let values = 256u64;
    let mut b = engine.write().unwrap();
    for i in 0..values {
        let key = format!("/registry/{i:06}").into_bytes();
        b.put(&put(key, vec![(i % 251) as u8; PAGE_SIZE])).unwrap();
    }
    b.commit().unwrap();
    let report = engine.check().unwrap();
    // One page per value, plus the two trees' leaves and branches (~60 bytes of entries per
    // value in all), the meta pages and the commit record: format 2 needed over 512.
    assert!(
        (values..values + values / 16).contains(&report.pages_reachable),
        "{} pages reachable for {values} values of 4 KiB",
        report.pages_reachable
    );
}

/// A put looks up its previous version's value only for whoever wants it: its request
/// (`prev_kv`, `ignore_value`) or, by default, its event's consumer. Told that no consumer
/// wants it, the put skips the lookup, marks its event's `prev_kv` as omitted, and still moves
/// the key between leases (that needs the previous record, not its value).
#[test]
fn a_put_reads_the_previous_value_only_when_something_wants_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let mut b = engine.write().unwrap();
    b.grant_lease(7, 60).unwrap();
    let leased = PutRequest {
        lease: 7,
        ..put(key(1), b"v1".to_vec())
    };
    b.put(&leased).unwrap();
    let measured = |b: &mut crate::WriteBatch, request: PutRequest| {
        let before = log::tests::value_reads();
        let (response, mut events) = b.put(&request).unwrap();
        assert_eq!(events.len(), 1);
        (
            response,
            events.pop().unwrap(),
            log::tests::value_reads() - before,
        )
    };

    // By default the event carries the previous version.
    let (_, event, reads) = measured(&mut b, leased.clone());
    assert_eq!((reads, event.prev_kv_omitted), (1, false));
    assert_eq!(event.prev_kv.unwrap().value, b"v1");

    b.set_events_prev_kv(false);
    // Nobody wants the value (and the put leaves lease 7).
    let (response, event, reads) = measured(&mut b, put(key(1), b"v2".to_vec()));
    assert_eq!((reads, event.prev_kv_omitted), (0, true));
    assert!(event.prev_kv.is_none() && response.prev_kv.is_none());
    // A new key has no previous version to omit.
    let (_, event, reads) = measured(&mut b, put(key(2), b"x".to_vec()));
    assert_eq!(
        (reads, event.prev_kv_omitted, event.prev_kv),
        (0, false, None)
    );
    // The request's prev_kv reads it, for the answer and the event alike.
    let asked = PutRequest {
        prev_kv: true,
        ..put(key(1), b"v3".to_vec())
    };
    let (response, event, reads) = measured(&mut b, asked);
    assert_eq!((reads, event.prev_kv_omitted), (1, false));
    assert_eq!(response.prev_kv.unwrap().value, b"v2");
    assert_eq!(event.prev_kv.unwrap().value, b"v2");
    // ignore_value keeps the previous value, so it reads it.
    let kept = PutRequest {
        ignore_value: true,
        ..put(key(1), Vec::new())
    };
    let (_, event, reads) = measured(&mut b, kept);
    assert_eq!((reads, event.kv.value.as_slice()), (1, &b"v3"[..]));
    b.commit().unwrap();

    let view = engine.read().unwrap();
    assert!(
        view.lease_keys(7).unwrap().is_empty(),
        "the key left lease 7"
    );
    let got = view.range(&single_key(key(1))).unwrap();
    assert_eq!(got.kvs[0].value, b"v3");
    assert_eq!(got.kvs[0].version, 5);
}

fn single_key(key: Vec<u8>) -> RangeRequest {
    RangeRequest {
        key,
        ..Default::default()
    }
}
