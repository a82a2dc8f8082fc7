//! Corruption tests: flip bytes in data pages and meta pages of a closed database, reopen, read
//! everything. Every outcome must be either the exact committed data (the byte was in a free
//! page or unused space not covered by... nothing: every used byte is checksummed) or an error
//! naming the damaged page — never a panic, never silently wrong data.
//!
//! The databases are written the server's way: unsynced commits made durable by
//! `Engine::sync`, whose meta says its pages were synced first — so a page that does not match
//! is damage, never taken for a torn commit. (A one-fdatasync `WriteBatch::commit` cannot tell
//! the two apart; `one_sync_commit_with_a_damaged_page_falls_back` shows what it does.)

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

use basalt_engine::*;

const PAGE: u64 = pager::PAGE_SIZE as u64;

fn all() -> RangeRequest {
    RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    }
}

/// Builds a database with a multi-level tree, overflow values and history; returns the
/// expected contents after each of its two commits.
type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

fn build(path: &Path) -> (Contents, Contents) {
    build_with(path, true)
}

fn build_with(path: &Path, checkpoint: bool) -> (Contents, Contents) {
    let engine = Engine::open(path).unwrap();
    let mut states = vec![];
    let mut expected = BTreeMap::new();
    for round in 0..2u8 {
        let mut batch = engine.write().unwrap();
        for i in 0..1500u32 {
            if round == 1 && i % 3 != 0 {
                continue;
            }
            let key = format!("key/{i:05}").into_bytes();
            let mut value = format!("{round}-{i}").into_bytes();
            if i % 250 == 0 {
                value.resize(9000, round);
            }
            batch
                .put(&PutRequest {
                    key: key.clone(),
                    value: value.clone(),
                    ..Default::default()
                })
                .unwrap();
            expected.insert(key, value);
        }
        if checkpoint {
            batch.commit_unsynced().unwrap();
            engine.sync().unwrap();
        } else {
            batch.commit().unwrap();
        }
        states.push(expected.clone());
    }
    (states[0].clone(), states[1].clone())
}

/// Opens and reads everything (latest range, history replay, hash, page check).
fn read_all(path: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let engine = Engine::open(path)?;
    let view = engine.read()?;
    let kvs = view.range(&all())?.kvs;
    view.events_since(1, usize::MAX, usize::MAX)?;
    view.hash_kv(0)?;
    engine.check()?;
    Ok(kvs.into_iter().map(|kv| (kv.key, kv.value)).collect())
}

fn flip(path: &Path, offset: u64, mask: u8) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    byte[0] ^= mask;
    file.write_all_at(&byte, offset).unwrap();
}

#[test]
fn flipped_bytes_in_data_pages_are_reported_with_their_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (_, latest) = build(&path);
    let pages = std::fs::metadata(&path).unwrap().len() / PAGE;
    let used = Engine::open(&path).unwrap().check().unwrap().pages_total;
    assert!(used > 20, "tree too small to be interesting: {used} pages");
    let (mut detected, mut harmless) = (0, 0);
    let mut seed = 12345u64;
    for page in 2..pages.min(used + 2) {
        for _ in 0..2 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let offset = page * PAGE + (seed >> 33) % PAGE;
            let mask = 1u8 << ((seed >> 20) % 8);
            flip(&path, offset, mask);
            match read_all(&path) {
                Ok(contents) => {
                    assert_eq!(
                        contents, latest,
                        "silently wrong data after flipping a byte of page {page}"
                    );
                    harmless += 1;
                }
                Err(Error::Corrupt {
                    page: reported,
                    reason,
                    ..
                }) => {
                    // Overflow runs span pages; the error names the run's first page.
                    assert!(
                        reported == page || (reported < page && page - reported < 8),
                        "flipped page {page}, error names page {reported}: {reason}"
                    );
                    detected += 1;
                }
                Err(other) => panic!("flipped page {page}: unexpected error {other}"),
            }
            flip(&path, offset, mask);
        }
    }
    assert!(detected > 0, "no corruption detected at all");
    // Harmless flips are those in free pages (not referenced by the newest commit).
    println!("detected {detected}, harmless {harmless}");
    assert_eq!(read_all(&path).unwrap(), latest);
}

#[test]
fn damaged_meta_falls_back_to_the_previous_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (previous, latest) = build(&path);
    // Two commits after creation: commit 2 is in slot 0 (2 % 2), commit 1 in slot 1.
    flip(&path, 100, 0x40);
    assert_eq!(
        read_all(&path).unwrap(),
        previous,
        "newest meta damaged: previous commit"
    );
    flip(&path, 100, 0x40);
    flip(&path, PAGE + 100, 0x40);
    assert_eq!(
        read_all(&path).unwrap(),
        latest,
        "older meta damaged: newest commit"
    );
    flip(&path, 30, 0x01);
    match read_all(&path) {
        Err(Error::Corrupt {
            page: 0, reason, ..
        }) => assert!(reason.contains("both meta pages"), "{reason}"),
        other => panic!("both metas damaged must fail naming the meta pages, got {other:?}"),
    }
}

#[test]
fn truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    build(&path);
    let used = Engine::open(&path).unwrap().check().unwrap().pages_total;
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len((used - 1) * PAGE).unwrap();
    drop(file);
    match Engine::open(&path) {
        Err(Error::BadFile { reason, .. }) => assert!(reason.contains("pages"), "{reason}"),
        other => panic!("expected a bad-file error, got {:?}", other.err()),
    }
}

/// A one-fdatasync commit whose page does not match its commit record looks exactly like a
/// commit torn by a crash inside its fdatasync: open falls back to the previous commit (never a
/// mix) and reports which commit it discarded. Method: flip a byte in each page in turn.
#[test]
fn one_sync_commit_with_a_damaged_page_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (previous, latest) = build_with(&path, false);
    let total = Engine::open(&path).unwrap().check().unwrap().pages_total;
    let mut fell_back = 0;
    for page in 2..total {
        flip(&path, page * PAGE + 64, 0x10);
        let discarded = Engine::open(&path).map(|e| e.torn_commit_discarded());
        match (discarded, read_all(&path)) {
            (Ok(Some(_)), Ok(contents)) => {
                assert_eq!(
                    contents, previous,
                    "page {page}: fell back, not to the previous"
                );
                fell_back += 1;
            }
            (Ok(None), Ok(contents)) => assert_eq!(contents, latest, "page {page}"),
            (_, Err(Error::Corrupt { .. })) => {}
            (_, Err(other)) => panic!("page {page}: unexpected error {other}"),
            (Err(e), Ok(_)) => panic!("page {page}: open failed ({e}) but a read worked"),
        }
        flip(&path, page * PAGE + 64, 0x10);
    }
    assert!(fell_back > 0, "no damaged page made open fall back");
}
