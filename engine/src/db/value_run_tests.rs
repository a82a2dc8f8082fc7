//! A headerless value run carries no checksum of its own: the leaf pointing at it and the
//! commit record that wrote it hold its checksum and length. These tests damage a run's last
//! page on disk (what a lost or misdirected write leaves) and check that open takes a torn
//! one-sync commit for torn, refuses a pages-first one, and that a reader gets `Corrupt`
//! naming the run, never the damaged value. Runtime: ~20 ms.

use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Db, Durability, Table, Tables};
use crate::btree::page::{PageNode, ValRef};
use crate::error::Error;
use crate::pager::PAGE_SIZE;

/// A value of two pages (its last page holds 4 bytes).
const VALUE_BYTES: usize = PAGE_SIZE + 4;

/// Commits `a` (small) durably, then `b` (a two-page value) with `durability` and, for the
/// record to list nothing of `b` any more, `then_sync` more durable commits. Returns the first
/// page of b's value run and b's commit id.
fn with_run(path: &Path, durability: Durability, then_sync: usize) -> (u64, u64) {
    let db = Db::open(path).unwrap();
    let mut txn = db.begin_write().unwrap();
    txn.put(Table::Index, b"a", b"small").unwrap();
    txn.commit(Durability::OneSync).unwrap();
    let mut txn = db.begin_write().unwrap();
    txn.put(Table::Index, b"b", &[0xAB; VALUE_BYTES]).unwrap();
    txn.commit(durability).unwrap();
    let commit = db.begin_read().txn_id();
    for i in 0..then_sync {
        let mut txn = db.begin_write().unwrap();
        txn.put(Table::Meta, b"x", &[i as u8]).unwrap();
        txn.commit(Durability::OneSync).unwrap();
    }
    let read = db.begin_read();
    let leaf = PageNode::open(read.view(), read.root_page(Table::Index).unwrap()).unwrap();
    let i = leaf.lower_bound(read.view(), b"b").unwrap();
    let run = match leaf.value(read.view(), i).unwrap() {
        ValRef::Run { page, len, .. } => {
            assert_eq!(len as usize, VALUE_BYTES);
            page
        }
        other => panic!("b's value is not in a value run: {other:?}"),
    };
    drop(read);
    drop(db);
    // The control: undamaged, the file opens with b's commit and value whole.
    let db = Db::open(path).unwrap();
    assert_eq!(db.shared.torn_commit_discarded, None);
    let read = db.begin_read();
    assert_eq!(
        read.get(Table::Index, b"b").unwrap(),
        Some(&[0xAB; VALUE_BYTES][..])
    );
    (run, commit)
}

/// Overwrites the last byte of the run's second page (inside the zero padding).
fn damage_second_page(path: &Path, run: u64) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let offset = (run + 2) * PAGE_SIZE as u64 - 1;
    file.write_all_at(&[0x5A], offset).unwrap();
}

#[test]
fn a_damaged_value_run_of_a_one_sync_commit_is_a_torn_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (run, commit) = with_run(&path, Durability::OneSync, 0);
    damage_second_page(&path, run);
    let db = Db::open(&path).unwrap();
    assert_eq!(db.shared.torn_commit_discarded, Some(commit));
    let read = db.begin_read();
    assert_eq!(read.get(Table::Index, b"a").unwrap(), Some(&b"small"[..]));
    assert_eq!(read.get(Table::Index, b"b").unwrap(), None);
}

#[test]
fn a_damaged_value_run_of_a_pages_first_commit_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (run, _) = with_run(&path, Durability::PagesFirst, 0);
    damage_second_page(&path, run);
    match Db::open(&path) {
        Err(Error::Corrupt { page, .. }) => assert_eq!(page, run),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a pages-first commit with a damaged value run was opened"),
    }
}

#[test]
fn a_damaged_value_run_is_reported_to_readers_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    // Two later durable commits: the newest commit record no longer lists b's run, so only
    // the read can find the damage.
    let (run, _) = with_run(&path, Durability::OneSync, 2);
    damage_second_page(&path, run);
    let db = Db::open(&path).unwrap();
    assert_eq!(db.shared.torn_commit_discarded, None);
    let read = db.begin_read();
    match read.get(Table::Index, b"b") {
        Err(Error::Corrupt { page, reason, .. }) => {
            assert_eq!(page, run, "{reason}");
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("damaged value read as {other:?}"),
    }
    assert!(
        db.check().is_err(),
        "the whole-file check misses the damage"
    );
}
