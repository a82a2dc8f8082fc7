//! Online defragmentation: after most of a database is deleted and compacted, `defragment`
//! shrinks the file while a reader on another thread keeps reading its pinned snapshot; the
//! contents, the page accounting and a reopen all stay exact. Steps are much smaller than the
//! number of leaves to move, so defragment has to carry on across many steps and passes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use basalt_engine::*;

fn all() -> RangeRequest {
    RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    }
}

fn contents(view: &ReadView) -> BTreeMap<Vec<u8>, Vec<u8>> {
    view.range(&all())
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect()
}

fn put(batch: &mut WriteBatch, key: Vec<u8>, value: Vec<u8>) {
    batch
        .put(&PutRequest {
            key,
            value,
            ..Default::default()
        })
        .unwrap();
}

#[test]
fn defragment_shrinks_the_file_under_a_live_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let engine = Engine::open(&path).unwrap();
    // 20,000 keys (some with overflow values), in 10 commits.
    for c in 0..10u32 {
        let mut batch = engine.write().unwrap();
        for i in c * 2000..(c + 1) * 2000 {
            let size = if i % 97 == 0 { 9000 } else { 200 };
            put(
                &mut batch,
                format!("key/{i:06}").into_bytes(),
                vec![i as u8; size],
            );
        }
        batch.commit().unwrap();
    }
    // A cluster record written last sits at the end of the file: defragment must move it too.
    let mut batch = engine.write().unwrap();
    batch
        .put_cluster_record(b"member/1", b"attributes")
        .unwrap();
    batch.commit().unwrap();
    // Delete 9 keys in 10 and compact everything away: most pages become free, scattered.
    let mut batch = engine.write().unwrap();
    for i in (0..20_000u32).filter(|i| i % 10 != 0) {
        batch
            .delete_range(&DeleteRangeRequest {
                key: format!("key/{i:06}").into_bytes(),
                ..Default::default()
            })
            .unwrap();
    }
    let current = batch.current_revision();
    let mut done = batch.compact(current).unwrap();
    batch.commit().unwrap();
    while !done {
        let mut batch = engine.write().unwrap();
        done = batch.compact_step(COMPACT_STEP_BUDGET).unwrap();
        batch.commit().unwrap();
    }
    let expected = contents(&engine.read().unwrap());
    assert_eq!(expected.len(), 2000);

    // A reader pinned before the defrag keeps reading, concurrently, the whole time.
    let pinned = engine.read().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let expected = expected.clone();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Acquire) || reads == 0 {
                assert_eq!(contents(&pinned), expected, "pinned snapshot changed");
                reads += 1;
            }
            reads
        })
    };
    let report = engine.defragment(16).unwrap();
    stop.store(true, Ordering::Release);
    assert!(reader.join().unwrap() > 0);

    assert_eq!(contents(&engine.read().unwrap()), expected);
    engine.check().unwrap();
    // The reader has ended: a second pass can also release what it pinned.
    let report2 = engine.defragment(16).unwrap();
    let after = std::fs::metadata(&path).unwrap().len();
    println!("{report:?} then {report2:?}");
    assert!(
        after * 3 < report.bytes_before,
        "file {} → {after} bytes: not shrunk to a third",
        report.bytes_before
    );
    let check = engine.check().unwrap();
    assert!(
        check.pages_total * 4096 <= after,
        "file shorter than its pages"
    );
    drop(engine);
    let engine = Engine::open(&path).unwrap();
    assert_eq!(contents(&engine.read().unwrap()), expected);
    assert_eq!(
        engine.read().unwrap().cluster_records(b"member/").unwrap(),
        vec![(b"member/1".to_vec(), b"attributes".to_vec())]
    );
    engine.check().unwrap();
    // Still writable.
    let mut batch = engine.write().unwrap();
    put(&mut batch, b"after".to_vec(), b"defrag".to_vec());
    batch.commit().unwrap();
}
