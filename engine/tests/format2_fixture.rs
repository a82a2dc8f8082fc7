//! A database written by the last format 2 build (`tests/fixtures/format2/`, made by
//! `make.rs` there at commit bf53f8f) opens in this build and reads in both layouts: every
//! record, the history kept at the compaction, the lease, and the HashKV the format 2 build
//! computed. New writes go beside the old records in the new layout, the first commit marks the
//! file format 3, and compaction, defragmentation and the whole-file check work on the mix.
//! Method: copy the fixture to a temporary directory, open, compare with the plan `make.rs`
//! followed, write, compact, defragment, reopen, compare again. Runtime: ~0.1 s.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use basalt_engine::*;

/// The value of key number `i` written in round `round` (the plan of `make.rs`).
fn value(i: usize, round: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| ((i * 7 + j * 13 + round * 29) % 251) as u8)
        .collect()
}

/// What the fixture holds at its newest revision: key → (value, lease).
fn planned() -> BTreeMap<Vec<u8>, (Vec<u8>, i64)> {
    let mut kvs = BTreeMap::new();
    for i in 0..6 {
        let round = if i == 1 { 2 } else { 0 };
        kvs.insert(format!("k/{i:02}").into_bytes(), (value(i, round, 4096), 0));
    }
    kvs.insert(b"big".to_vec(), (value(6, 0, 10_000), 0));
    kvs.insert(b"small/a".to_vec(), (value(10, 0, 100), 0));
    kvs.insert(b"small/c".to_vec(), (value(12, 0, 100), 0));
    kvs.insert(b"leased".to_vec(), (value(20, 0, 5000), 7));
    kvs
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format2")
}

/// The numbers `make.rs` recorded: (revision of k/01's round 1, HashKV as (header revision,
/// compact revision, hash)).
fn expected() -> (i64, (i64, i64, u32)) {
    let text = std::fs::read_to_string(fixture().join("expected.txt")).unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!((words[0], words[2]), ("round_1_revision", "hash_kv"));
    let round_1 = words[1].parse().unwrap();
    let hash = (
        words[3].parse().unwrap(),
        words[4].parse().unwrap(),
        words[5].parse().unwrap(),
    );
    (round_1, hash)
}

fn contents(engine: &Engine) -> BTreeMap<Vec<u8>, (Vec<u8>, i64)> {
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    let got = engine.read().unwrap().range(&all).unwrap();
    got.kvs
        .into_iter()
        .map(|kv| (kv.key, (kv.value, kv.lease)))
        .collect()
}

/// The format version of the meta page with the highest commit id.
fn newest_meta_format(path: &Path) -> u32 {
    let file = std::fs::File::open(path).unwrap();
    let mut newest = (0u64, 0u32);
    for slot in 0..2u64 {
        let mut page = vec![0u8; pager::PAGE_SIZE];
        file.read_exact_at(&mut page, slot * pager::PAGE_SIZE as u64)
            .unwrap();
        let txn_id = u64::from_le_bytes(page[16..24].try_into().unwrap());
        let format = u32::from_le_bytes(page[8..12].try_into().unwrap());
        if txn_id >= newest.0 {
            newest = (txn_id, format);
        }
    }
    newest.1
}

fn put(batch: &mut WriteBatch, key: &[u8], value: Vec<u8>) -> PutResponse {
    batch
        .put(&PutRequest {
            key: key.to_vec(),
            value,
            prev_kv: true,
            ..Default::default()
        })
        .unwrap()
        .0
}

#[test]
fn a_format_2_database_reads_writes_compacts_and_defragments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    std::fs::copy(fixture().join("db"), &path).unwrap();
    assert_eq!(newest_meta_format(&path), 2, "the fixture is format 2");
    let (round_1, (header, compacted, hash)) = expected();

    let engine = Engine::open(&path).unwrap();
    engine.check().unwrap();
    let mut model = planned();
    assert_eq!(contents(&engine), model);
    {
        let read = engine.read().unwrap();
        let kv_hash = read.hash_kv(0).unwrap();
        assert_eq!(
            (
                kv_hash.header_revision,
                kv_hash.compact_revision,
                kv_hash.hash
            ),
            (header, compacted, hash),
            "HashKV differs from the one the format 2 build computed"
        );
        // The history kept at the compaction: k/01 as round 1 wrote it.
        let old = read
            .range(&RangeRequest {
                key: b"k/01".to_vec(),
                revision: round_1,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(old.kvs[0].value, value(1, 1, 4096));
        assert_eq!(read.lease_keys(7).unwrap(), vec![b"leased".to_vec()]);
    }

    // New writes beside the old records: a replaced legacy value comes back as prev_kv.
    let mut batch = engine.write().unwrap();
    let replaced = put(&mut batch, b"k/02", value(2, 3, 4096));
    assert_eq!(replaced.prev_kv.unwrap().value, value(2, 0, 4096));
    put(&mut batch, b"new", value(30, 0, 4096));
    batch.commit().unwrap();
    model.insert(b"k/02".to_vec(), (value(2, 3, 4096), 0));
    model.insert(b"new".to_vec(), (value(30, 0, 4096), 0));
    engine.sync().unwrap();
    assert_eq!(
        newest_meta_format(&path),
        3,
        "the first commit marks format 3"
    );
    engine.check().unwrap();
    assert_eq!(contents(&engine), model);

    // Compaction retires legacy entries; defragmentation moves (and rewrites) the rest.
    let current = engine.read().unwrap().current_revision();
    let mut batch = engine.write().unwrap();
    batch.compact(current).unwrap();
    batch.commit().unwrap();
    engine.check().unwrap();
    engine.defragment(4).unwrap();
    engine.check().unwrap();
    assert_eq!(contents(&engine), model);
    drop(engine);

    let engine = Engine::open(&path).unwrap();
    engine.check().unwrap();
    assert_eq!(contents(&engine), model);
    assert_eq!(
        engine.read().unwrap().lease(7).unwrap().map(|l| l.id),
        Some(7)
    );
}

/// A crash in the middle of the first format 3 commit of a format 2 file: its meta (format 3)
/// reached the disk, none of its data pages did (each keeps its format 2 content, or zeros
/// past the old end). This build must still open the file, at the format 2 commit, whole.
/// Method: run the commit, then put every changed data page back as it was. Runtime: ~0.1 s.
#[test]
fn a_torn_first_format_3_commit_leaves_the_format_2_file_openable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    std::fs::copy(fixture().join("db"), &path).unwrap();
    let before = std::fs::read(&path).unwrap();

    let engine = Engine::open(&path).unwrap();
    let mut batch = engine.write().unwrap();
    put(&mut batch, b"k/03", value(3, 4, 9000));
    put(&mut batch, b"new", value(31, 0, 4096));
    batch.commit().unwrap();
    drop(engine);
    assert_eq!(newest_meta_format(&path), 3);

    let after = std::fs::read(&path).unwrap();
    let page = pager::PAGE_SIZE;
    let mut restored = after.clone();
    let mut changed = 0;
    for at in (2 * page..after.len()).step_by(page) {
        let old = before.get(at..at + page);
        if old != Some(&after[at..at + page]) {
            changed += 1;
            match old {
                Some(old) => restored[at..at + page].copy_from_slice(old),
                None => restored[at..at + page].fill(0),
            }
        }
    }
    assert!(changed > 0, "the commit wrote no data page");
    std::fs::write(&path, &restored).unwrap();

    let engine = Engine::open(&path).unwrap();
    assert!(engine.torn_commit_discarded().is_some());
    engine.check().unwrap();
    assert_eq!(contents(&engine), planned());
    // And it goes on: a new first format 3 commit, reopened.
    let mut batch = engine.write().unwrap();
    put(&mut batch, b"new", value(32, 0, 4096));
    batch.commit().unwrap();
    drop(engine);
    let engine = Engine::open(&path).unwrap();
    engine.check().unwrap();
    let mut model = planned();
    model.insert(b"new".to_vec(), (value(32, 0, 4096), 0));
    assert_eq!(contents(&engine), model);
}
