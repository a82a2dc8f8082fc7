//! Node pages that pass their checksum but whose layout is wrong (what a buggy writer could
//! leave): the engine reports corruption with the page number, for readers and for the write
//! transactions that copy and edit pages in place; it never panics and never builds on them.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use super::{Db, Durability, Table, Tables};
use crate::error::Error;
use crate::pager::{seal, HEADER_SIZE, PAGE_SIZE};

/// A db whose Index table is one leaf holding a, b, c with 8-byte values; returns its page.
fn one_leaf(path: &Path) -> u64 {
    let db = Db::open(path).unwrap();
    let mut txn = db.begin_write().unwrap();
    for k in [b"a", b"b", b"c"] {
        txn.put(Table::Index, k, &[k[0]; 8]).unwrap();
    }
    txn.commit(Durability::OneSync).unwrap();
    // A second durable commit that does not touch the leaf: its commit record (checked at
    // open) no longer lists the leaf, so a resealed leaf is not taken for a torn commit.
    let mut txn = db.begin_write().unwrap();
    txn.put(Table::Meta, b"x", b"y").unwrap();
    txn.commit(Durability::OneSync).unwrap();
    db.begin_read().root_page(Table::Index).unwrap()
}

/// Rewrites page `page` with `edit` applied and a valid checksum.
fn tamper(path: &Path, page: u64, edit: impl FnOnce(&mut [u8])) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut bytes = vec![0u8; PAGE_SIZE];
    file.read_exact_at(&mut bytes, page * PAGE_SIZE as u64)
        .unwrap();
    edit(&mut bytes);
    seal(page, &mut bytes);
    file.write_all_at(&bytes, page * PAGE_SIZE as u64).unwrap();
}

fn slot(bytes: &[u8], i: usize) -> usize {
    let at = HEADER_SIZE + 2 * i;
    u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize
}

fn is_corrupt<T>(result: &Result<T, Error>, leaf: u64) -> bool {
    matches!(result, Err(Error::Corrupt { page, .. }) if *page == leaf)
}

/// Tampers with the leaf, reopens, and expects a reader's get and a write transaction's put
/// to both report the leaf as corrupt.
fn assert_reported(edit: impl FnOnce(&mut [u8])) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let leaf = one_leaf(&path);
    tamper(&path, leaf, edit);
    let db = Db::open(&path).unwrap();
    let got = db
        .begin_read()
        .get(Table::Index, b"b")
        .map(|v| v.map(<[u8]>::to_vec));
    assert!(is_corrupt(&got, leaf), "reader got {got:?}");
    // A fresh process: nothing verified yet, the write transaction is the first to read it.
    drop(db);
    let db = Db::open(&path).unwrap();
    let mut txn = db.begin_write().unwrap();
    let put = catch_unwind(AssertUnwindSafe(|| {
        txn.put(Table::Index, b"d", &[7u8; 10_000])
    }))
    .expect("the writer panicked instead of reporting corruption");
    assert!(is_corrupt(&put, leaf), "put got {put:?}");
}

#[test]
fn an_on_disk_fresh_flag_is_corruption() {
    // Flag 2 (a value not written yet) exists only in a write transaction's own images.
    assert_reported(|p| {
        let b = slot(p, 1);
        p[b + 2] = 2;
        p[b + 8..b + 16].fill(0);
    });
}

#[test]
fn a_used_bytes_header_below_the_entries_is_corruption() {
    assert_reported(|p| {
        let used = u64::from_le_bytes(p[8..16].try_into().unwrap());
        p[8..16].copy_from_slice(&(used - 10).to_le_bytes());
    });
}

#[test]
fn a_used_bytes_header_below_the_slots_is_corruption() {
    assert_reported(|p| p[8..16].fill(0));
}

#[test]
fn overlapping_entries_are_corruption() {
    // Slot 1 points at entry 0: the sizes may still add up, the entries overlap.
    assert_reported(|p| {
        let s0 = slot(p, 0);
        p[HEADER_SIZE + 2..HEADER_SIZE + 4].copy_from_slice(&(s0 as u16).to_le_bytes());
    });
}

#[test]
fn entries_with_a_hole_are_corruption() {
    // Move the lowest entry down by one byte: no overlap, but a hole the free-space arithmetic
    // of an in-place insert would not know about.
    assert_reported(|p| {
        let (lowest_slot, lowest) = (0..3).map(|i| (i, slot(p, i))).min_by_key(|x| x.1).unwrap();
        let len = 7 + 1 + 8;
        p.copy_within(lowest..lowest + len, lowest - 1);
        let at = HEADER_SIZE + 2 * lowest_slot;
        p[at..at + 2].copy_from_slice(&((lowest - 1) as u16).to_le_bytes());
    });
}
