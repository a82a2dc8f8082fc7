//! The file lock at open: a second holder is refused after the wait, and the copies of
//! descriptors that a spawned child holds until its exec are not mistaken for one.

use std::fs::{File, OpenOptions};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::db::Db;
use crate::error::Error;
use crate::file_lock::lock_exclusive;

fn open_file(path: &std::path::Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap()
}

/// A child process holds a copy of every open descriptor, and with it every `flock`, from its
/// fork until its exec. A test of this crate spawning children (the full-disk test) made
/// another test's reopen fail as "locked by another process".
#[test]
fn reopening_while_another_thread_spawns_children_is_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let stop = Arc::new(AtomicBool::new(false));
    let spawned = Arc::new(AtomicU32::new(0));
    let spawner = {
        let (stop, spawned) = (stop.clone(), spawned.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let status = std::process::Command::new("true").status().unwrap();
                assert!(status.success());
                spawned.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // However this test ends, the spawner stops (a failed reopen must not leave it running).
    let stop_spawner = StopOnDrop(stop);
    let mut db = Db::open(&path).unwrap();
    let mut reopens = 0;
    // Enough reopens to overlap many spawns (without the wait, about one reopen in five
    // failed on the project's machine); a spawner that failed ends the loop.
    while (reopens < 300 || spawned.load(Ordering::Relaxed) < 30) && !spawner.is_finished() {
        drop(db);
        db = Db::open(&path).unwrap_or_else(|e| panic!("reopen {reopens} refused: {e}"));
        reopens += 1;
    }
    drop(stop_spawner);
    spawner.join().expect("the spawner failed");
    assert!(spawned.load(Ordering::Relaxed) >= 30);
    db.check().unwrap();
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_lock_held_past_the_wait_is_refused_as_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let holder = open_file(&path);
    holder.lock().unwrap();
    let second = open_file(&path);
    assert!(!lock_exclusive(&second, Duration::from_millis(50)).unwrap());
    // Through open as well, with its own wait.
    match Db::open(&path) {
        Err(Error::BadFile { reason, .. }) => {
            assert!(reason.contains("locked by another process"), "{reason}")
        }
        Err(other) => panic!("a held lock was refused with the wrong error: {other}"),
        Ok(_) => panic!("a held lock was not refused"),
    }
}

#[test]
fn a_lock_released_during_the_wait_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let holder = open_file(&path);
    holder.lock().unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(holder);
    });
    // The bound is far above the holder's 50 ms, so the outcome does not depend on timing
    // (the test also passes if the release came before the first try).
    let second = open_file(&path);
    assert!(lock_exclusive(&second, Duration::from_secs(30)).unwrap());
    releaser.join().unwrap();
}
