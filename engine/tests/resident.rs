//! `Engine::release_cached_pages`: the process stops holding the data file's pages resident,
//! and readers — including one reading at that very moment — still see exactly their data.

use basalt_engine::*;

const KEYS: usize = 4000;
const VALUE_BYTES: usize = 8000;

/// This process's resident file-backed memory, in KiB.
fn rss_file_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssFile:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssFile in /proc/self/status")
}

fn value_of(n: usize) -> Vec<u8> {
    format!("{n:08}").repeat(VALUE_BYTES / 8).into_bytes()
}

fn read_all(view: &ReadView) {
    for n in 0..KEYS {
        let response = view
            .range(&RangeRequest {
                key: format!("key{n:05}").into_bytes(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(response.kvs[0].value, value_of(n), "key{n:05}");
    }
}

#[test]
fn released_pages_leave_memory_and_readers_see_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(Engine::open(dir.path().join("db")).unwrap());
    let mut batch = engine.write().unwrap();
    for n in 0..KEYS {
        batch
            .put(&PutRequest {
                key: format!("key{n:05}").into_bytes(),
                value: value_of(n),
                ..Default::default()
            })
            .unwrap();
    }
    batch.commit().unwrap();

    let view = engine.read().unwrap();
    read_all(&view); // every page of the ~32 MB of values is now mapped in
    let before = rss_file_kib();
    engine.release_cached_pages().unwrap();
    let after = rss_file_kib();
    let data_kib = (KEYS * VALUE_BYTES / 1024) as u64;
    assert!(
        before - after > data_kib / 2,
        "RssFile {before} → {after} KiB; the data is {data_kib} KiB"
    );

    // A reader on another thread keeps reading while pages are released under it.
    let releaser = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            for _ in 0..50 {
                engine.release_cached_pages().unwrap();
            }
        })
    };
    for _ in 0..3 {
        read_all(&view);
    }
    releaser.join().unwrap();
    read_all(&engine.read().unwrap());
}
