//! Regressions for the crash-safety review of the log: each scenario below once lost
//! acknowledged data, resurrected unacknowledged entries, refused a legal crash state, or hung.
//! Crashes are modelled by their physical effect on the files (see crash_recovery.rs).
mod common;

use std::future::{poll_fn, Future};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use basalt_wal::{Wal, WalError, WalOptions};
use common::{run, segment_files, small_options, ScriptedFaults};

/// Fills segment 1 with 64 acked entries of 4000 B (end 261664; 480 B left), then issues one
/// batch that rolls to segment 2 (no chunk in segment 1, so no fdatasync before the roll) and
/// whose fdatasync fails. The crash then persists everything of that batch except block 0 of
/// segment 2 (the header sector): a legal crash state (sectors persist in any order).
/// The torn batch is [65: 4040 B (ends exactly at 8192), 66.., 70: 2000 B "OLD"].
async fn crash_during_first_batch_of_segment_2(path: &Path) {
    let faults = Rc::new(ScriptedFaults::new(libc::EIO));
    let options = WalOptions {
        fault_injector: Some(faults.clone()),
        ..small_options()
    };
    let wal = Wal::open(path, options).await.unwrap();
    for _ in 0..64 {
        wal.append(&[7u8; 4000]).await.unwrap();
    }
    assert_eq!(wal.segment_count(), 1);
    faults.fail_fdatasyncs.set(true);
    let before = faults.writes.borrow().len();
    let mut last = wal.queue_entry(&[0x65u8; 4040]).await.unwrap();
    for _ in 66..=70 {
        last = wal.queue_entry(&[0x01u8; 2000]).await.unwrap();
    }
    assert!(wal.wait_durable(last).await.is_err());
    drop(wal);
    let writes = faults.writes.borrow()[before..].to_vec();
    let header_write = writes
        .iter()
        .find(|w| w.offset == 0)
        .expect("roll wrote block 0");
    assert!(header_write.path.ends_with("0000000000000002.wal"));
    // Crash: block 0 (header) never reached the disk; the rest of the batch did.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&header_write.path)
        .unwrap();
    file.write_all_at(&header_write.pre_image[..4096], 0)
        .unwrap();
    file.sync_all().unwrap();
}

#[test]
fn records_of_a_discarded_segment_never_validate_in_its_next_life() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        crash_during_first_batch_of_segment_2(&path).await;
        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(
            wal.last_index(),
            64,
            "nothing of the torn batch was acknowledged"
        );
        // New life: one entry, same size as the old 65, rolls to a new segment, possibly in the
        // same file (it sorts first among the spares); the old records must not validate there.
        assert_eq!(wal.append(&[0xAAu8; 4040]).await.unwrap(), 65);
        drop(wal);
        let wal = Wal::open(&path, small_options()).await.unwrap();
        let last = wal.last_index();
        let resurrected = wal.read(66, last + 1).await.unwrap_or_default();
        assert_eq!(
            last, 65,
            "entries 66..={last} were never acknowledged but came back: {} entries, first payload byte {:?}",
            resurrected.len(),
            resurrected.first().map(|e| e[0])
        );
    });
}

#[test]
fn truncating_after_a_discarded_segment_reopens_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        crash_during_first_batch_of_segment_2(&path).await;
        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(wal.last_index(), 64);
        // New life: two small entries in seq-2 segment, then a raft truncation rolls to seq 3.
        wal.append(&[0xBBu8; 1000]).await.unwrap(); // does not fit segment 1: rolls to seq 2
        assert_eq!(wal.segment_count(), 2);
        wal.append(&[0xBBu8; 100]).await.unwrap();
        wal.truncate_after(65).await.unwrap();
        wal.append(&[0xCCu8; 100]).await.unwrap();
        drop(wal);
        match Wal::open(&path, small_options()).await {
            Ok(wal) => assert_eq!(wal.last_index(), 66),
            Err(e) => panic!("a legal crash history made the log refuse to open: {e}"),
        }
    });
}

#[test]
fn a_wiped_header_on_a_synced_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        for _ in 0..20 {
            wal.append(&[5u8; 100]).await.unwrap(); // 20 acknowledged batches
        }
        drop(wal);
        let segment = segment_files(&path).pop().unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap();
        file.write_all_at(&[0u8; 4096], 0).unwrap(); // corruption: block 0 reads back as zeros
        drop(file);
        match Wal::open(&path, small_options()).await {
            Err(WalError::Corrupt { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
            Ok(wal) => panic!(
                "opened with last_index {} (20 acknowledged entries silently lost, metadata too)",
                wal.last_index()
            ),
        }
    });
}

#[test]
fn a_rolled_segment_whose_rename_was_lost_is_recovered_by_its_header() {
    // Should a roll's rename of a spare into a segment be lost (its directory entry not durable),
    // the file's header still says what it is. Simulate the directory as such a crash leaves it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        wal.set_metadata(b"term=5 vote=2").await.unwrap();
        for _ in 0..10 {
            wal.append(&[5u8; 100]).await.unwrap();
        }
        drop(wal);
        let segment = segment_files(&path).pop().unwrap();
        std::fs::rename(&segment, path.join("fresh-0-0.spare")).unwrap();
        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(
            (wal.last_index(), wal.metadata()),
            (10, b"term=5 vote=2".to_vec()),
            "acknowledged entries and hard state lost"
        );
    });
}

/// Polls `fut` until it completes or `limit` passes.
async fn within<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    let mut fut = Box::pin(fut);
    let mut sleep = Box::pin(glommio::timer::sleep(limit));
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

#[test]
fn a_cancelled_truncation_still_completes_and_releases_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        for _ in 0..10 {
            wal.append(&[5u8; 100]).await.unwrap();
        }
        // e.g. a select! with a timeout around truncate_after: the future is dropped mid-way.
        let r = within(Duration::from_nanos(1), wal.truncate_after(5)).await;
        assert!(r.is_none(), "truncate finished in its first poll");
        let appended = within(Duration::from_secs(2), wal.append(b"after")).await;
        assert!(
            appended.is_some(),
            "append hangs forever: `exclusive` was never cleared"
        );
    });
}
