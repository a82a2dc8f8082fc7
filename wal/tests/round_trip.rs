//! Round trips through the real log on disk: append, read back, reopen, truncate, release, reset,
//! metadata, and group commit under concurrency.

mod common;

use std::rc::Rc;

use basalt_wal::{Wal, WalError, WalOptions};
use common::{payload, run, small_options};

/// Appends `count` entries of seed `seed` one task at a time and checks their indices.
async fn append_sequential(wal: &Wal, seed: u64, first: u64, count: u64, max_len: usize) {
    for index in first..first + count {
        let got = wal
            .append(&payload(seed, index, max_len))
            .await
            .expect("append");
        assert_eq!(got, index);
    }
}

async fn assert_entries(wal: &Wal, seed: u64, low: u64, high: u64, max_len: usize) {
    let entries = wal.read(low, high).await.expect("read");
    assert_eq!(entries.len() as u64, high - low);
    for (offset, entry) in entries.iter().enumerate() {
        let index = low + offset as u64;
        assert_eq!(entry, &payload(seed, index, max_len), "entry {index}");
    }
}

#[test]
fn entries_survive_reopen_across_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(
            (wal.first_index(), wal.last_index(), wal.next_index()),
            (1, 0, 1)
        );
        append_sequential(&wal, 7, 1, 300, 3000).await;
        assert!(
            wal.segment_count() > 1,
            "300 entries of up to 3 KB roll a 256 KiB segment"
        );
        assert_entries(&wal, 7, 1, 301, 3000).await;
        wal.close().await.unwrap();

        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(wal.recovery_report().discarded_tail_bytes, 0);
        assert_eq!((wal.first_index(), wal.last_index()), (1, 300));
        assert_entries(&wal, 7, 1, 301, 3000).await;
        append_sequential(&wal, 7, 301, 50, 3000).await;
        drop(wal);

        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_entries(&wal, 7, 1, 351, 3000).await;
    });
}

#[test]
fn large_records_up_to_the_limit_round_trip_and_larger_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let options = WalOptions {
            segment_bytes: 8 << 20,
            ..WalOptions::default()
        };
        let options = WalOptions {
            record_bytes_limit: 3 << 20,
            pending_bytes_limit: 8 << 20,
            ..options
        };
        let wal = Wal::open(&path, options.clone()).await.unwrap();
        let big: Vec<u8> = (0..(2 << 20) + 17).map(|i| (i * 31 % 251) as u8).collect();
        for _ in 0..5 {
            wal.append(&big).await.unwrap();
        }
        wal.append(b"").await.unwrap();
        let too_big = vec![0u8; (3 << 20) + 1];
        assert!(matches!(
            wal.append(&too_big).await,
            Err(WalError::RecordTooLarge { .. })
        ));
        drop(wal);
        let wal = Wal::open(&path, options).await.unwrap();
        let entries = wal.read(1, 7).await.unwrap();
        assert!(entries[..5].iter().all(|e| e == &big));
        assert!(entries[5].is_empty());
    });
}

#[test]
fn read_limited_returns_at_least_one_entry_and_stops_at_the_byte_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        for _ in 0..10 {
            wal.append(&[1u8; 100]).await.unwrap();
        }
        assert_eq!(wal.read_limited(1, 11, 0).await.unwrap().len(), 1);
        assert_eq!(wal.read_limited(1, 11, 350).await.unwrap().len(), 3);
        assert_eq!(wal.read_limited(1, 11, u64::MAX).await.unwrap().len(), 10);
        assert!(wal.read(1, 1).await.unwrap().is_empty());
        assert!(matches!(
            wal.read(0, 2).await,
            Err(WalError::OutOfRange { index: 0, .. })
        ));
        assert!(matches!(
            wal.read(5, 12).await,
            Err(WalError::OutOfRange { index: 11, .. })
        ));
    });
}

#[test]
fn metadata_is_durable_and_the_latest_wins_across_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert!(wal.metadata().is_empty());
        wal.set_metadata(b"term=1 vote=2 commit=0").await.unwrap();
        append_sequential(&wal, 3, 1, 200, 3000).await;
        wal.set_metadata(b"term=2 vote=3 commit=150").await.unwrap();
        append_sequential(&wal, 3, 201, 200, 3000).await;
        assert!(wal.segment_count() > 2);
        assert_eq!(wal.metadata(), b"term=2 vote=3 commit=150");
        drop(wal);
        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(wal.metadata(), b"term=2 vote=3 commit=150");
        let too_big = vec![0u8; (4 << 10) + 1];
        assert!(matches!(
            wal.set_metadata(&too_big).await,
            Err(WalError::MetadataTooLarge { .. })
        ));
    });
}

#[test]
fn truncate_after_discards_the_suffix_durably_and_appends_continue_at_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        append_sequential(&wal, 1, 1, 300, 3000).await;
        wal.truncate_after(120).await.unwrap();
        assert_eq!((wal.last_index(), wal.next_index()), (120, 121));
        assert!(matches!(
            wal.read(100, 200).await,
            Err(WalError::OutOfRange { .. })
        ));
        append_sequential(&wal, 2, 121, 30, 3000).await;
        drop(wal);

        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(wal.last_index(), 150);
        assert_entries(&wal, 1, 1, 121, 3000).await;
        assert_entries(&wal, 2, 121, 151, 3000).await;

        // Truncating to before the newest segment, twice in a row, then reopening.
        wal.truncate_after(10).await.unwrap();
        wal.truncate_after(5).await.unwrap();
        append_sequential(&wal, 3, 6, 5, 3000).await;
        drop(wal);
        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(wal.last_index(), 10);
        assert_entries(&wal, 1, 1, 6, 3000).await;
        assert_entries(&wal, 3, 6, 11, 3000).await;
        wal.truncate_after(10).await.unwrap();
        assert_eq!(
            wal.last_index(),
            10,
            "truncating after the last index changes nothing"
        );
    });
}

#[test]
fn release_before_recycles_old_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        append_sequential(&wal, 4, 1, 600, 3000).await;
        let before = wal.segment_count();
        wal.release_before(500).await.unwrap();
        assert_eq!(wal.first_index(), 500);
        assert!(
            wal.segment_count() < before,
            "segments wholly below 500 are recycled"
        );
        assert!(matches!(
            wal.read(499, 501).await,
            Err(WalError::OutOfRange { index: 499, .. })
        ));
        assert_entries(&wal, 4, 500, 601, 3000).await;
        assert!(matches!(
            wal.truncate_after(300).await,
            Err(WalError::OutOfRange { .. })
        ));
        let files_on_disk = std::fs::read_dir(&path).unwrap().count();
        assert!(
            files_on_disk <= wal.segment_count() + 2,
            "recycled segments do not pile up"
        );
        drop(wal);

        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!((wal.first_index(), wal.last_index()), (500, 600));
        assert_entries(&wal, 4, 500, 601, 3000).await;
        append_sequential(&wal, 4, 601, 10, 3000).await;
    });
}

#[test]
fn reset_restarts_the_log_at_a_new_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        append_sequential(&wal, 5, 1, 100, 3000).await;
        wal.set_metadata(b"hard state").await.unwrap();
        wal.reset(1000).await.unwrap();
        assert_eq!(
            (wal.first_index(), wal.last_index(), wal.next_index()),
            (1000, 999, 1000)
        );
        append_sequential(&wal, 5, 1000, 20, 3000).await;
        drop(wal);
        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!((wal.first_index(), wal.last_index()), (1000, 1019));
        assert_eq!(wal.metadata(), b"hard state");
        assert_entries(&wal, 5, 1000, 1020, 3000).await;
        assert_eq!(wal.segment_count(), 1);
    });
}

#[test]
fn concurrent_appenders_share_fdatasyncs_and_get_distinct_consecutive_indices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Rc::new(Wal::open(&path, WalOptions::default()).await.unwrap());
        let appenders = 200;
        let rounds = 20;
        let mut tasks = Vec::new();
        for task in 0..appenders {
            let wal = wal.clone();
            tasks.push(glommio::spawn_local(async move {
                let mut indices = Vec::new();
                for round in 0..rounds {
                    let body = format!("task {task} round {round}");
                    indices.push((wal.append(body.as_bytes()).await.unwrap(), body));
                }
                indices
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await);
        }
        all.sort();
        let total = (appenders * rounds) as u64;
        let indices: Vec<u64> = all.iter().map(|(index, _)| *index).collect();
        assert_eq!(indices, (1..=total).collect::<Vec<_>>());
        let stats = wal.stats();
        assert_eq!(stats.records, total);
        assert!(
            stats.batches * 20 <= total,
            "group commit: {} batches for {total} records",
            stats.batches
        );
        let entries = wal.read(1, total + 1).await.unwrap();
        for (index, body) in &all {
            assert_eq!(&entries[(*index - 1) as usize], body.as_bytes());
        }
    });
}

#[test]
fn a_full_pending_queue_makes_appenders_wait_instead_of_growing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let options = WalOptions {
            pending_bytes_limit: 64 << 10,
            record_bytes_limit: 16 << 10,
            ..small_options()
        };
        let wal = Rc::new(Wal::open(&path, options).await.unwrap());
        let mut tasks = Vec::new();
        for task in 0..100u64 {
            let wal = wal.clone();
            tasks.push(glommio::spawn_local(async move {
                for round in 0..10u64 {
                    wal.append(&payload(task, round, 4000)).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await;
        }
        let stats = wal.stats();
        assert_eq!(stats.records, 1000);
        // Each batch holds at most the pending limit (plus the opening record of a roll).
        assert!(stats.bytes_written <= stats.batches * ((64 << 10) + 3 * 4096) + (1 << 20));
    });
}

#[test]
fn invalid_options_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let options = WalOptions {
            segment_bytes: 1 << 20,
            record_bytes_limit: 2 << 20,
            ..WalOptions::default()
        };
        match Wal::open(&path, options).await {
            Err(WalError::InvalidOptions(reason)) => assert!(reason.contains("do not fit")),
            other => panic!("expected InvalidOptions, got {:?}", other.map(|_| ())),
        }
    });
}

#[test]
fn a_log_opens_at_a_relative_path_that_does_not_exist_yet() {
    // Operators pass relative data directories (etcd's default is `./default.etcd`).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        std::env::set_current_dir(&path).unwrap();
        let wal = Wal::open("member/wal", small_options()).await.unwrap();
        wal.append(b"entry").await.unwrap();
        assert!(wal.dir().is_absolute());
        drop(wal);
        let wal = Wal::open("member/wal", small_options()).await.unwrap();
        assert_eq!(wal.read(1, 2).await.unwrap(), vec![b"entry".to_vec()]);
    });
}

/// The open flags (octal, as `/proc/self/fdinfo` prints them) of every descriptor this process
/// holds on a file inside `dir`.
fn open_flags_of_files_in(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if target.parent() != Some(dir) {
            continue;
        }
        let fd = entry.file_name();
        let Ok(info) =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.to_string_lossy()))
        else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .map(|octal| u32::from_str_radix(octal.trim(), 8).unwrap())
            .unwrap();
        found.push((target, flags));
    }
    found
}

/// The log acknowledges an append when its write completes, with no fdatasync after it: that
/// is durable only because every segment file (tail, sealed and spare) is open O_DSYNC.
#[test]
fn every_segment_file_is_open_for_durable_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        append_sequential(&wal, 5, 1, 300, 3000).await;
        assert!(wal.segment_count() > 1, "the log rolled");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while wal.spare_count() < 1 {
            assert!(std::time::Instant::now() < deadline, "no spare was made");
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
        let files: Vec<_> = open_flags_of_files_in(&path)
            .into_iter()
            .filter(|(file, _)| file.is_file())
            .collect();
        assert!(
            files.len() > wal.segment_count(),
            "segments and a spare are open: {files:?}"
        );
        for (file, flags) in files {
            assert_ne!(
                flags & libc::O_DSYNC as u32,
                0,
                "{} is open without O_DSYNC (flags {flags:o})",
                file.display()
            );
            assert_ne!(
                flags & libc::O_DIRECT as u32,
                0,
                "{} O_DIRECT",
                file.display()
            );
        }
    });
}
