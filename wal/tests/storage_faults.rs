//! Storage faults are fail-stop: the error reaches every waiting appender, the log refuses
//! further appends (it never retries an fdatasync), and what was acknowledged survives reopen.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use basalt_wal::{Wal, WalError, WalOptions};
use common::{payload, run, small_options, ScriptedFaults};

/// Starts `appenders` tasks that each queue one entry, returns their results.
async fn concurrent_appends(wal: &Rc<Wal>, appenders: u64) -> Vec<Result<u64, WalError>> {
    let tasks: Vec<_> = (0..appenders)
        .map(|task| {
            let wal = wal.clone();
            glommio::spawn_local(async move { wal.append(&payload(9, task, 500)).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await);
    }
    results
}

fn check_fail_stop(fail_writes: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let faults = Rc::new(ScriptedFaults::new(libc::EIO));
        let options = WalOptions {
            fault_injector: Some(faults.clone()),
            ..small_options()
        };
        let wal = Rc::new(Wal::open(&path, options).await.unwrap());
        for index in 1..=20 {
            wal.append(&payload(9, index, 500)).await.unwrap();
        }
        if fail_writes {
            faults.fail_writes.set(true);
        } else {
            faults.fail_fdatasyncs.set(true);
        }
        let results = concurrent_appends(&wal, 50).await;
        let operation = if fail_writes { "write" } else { "fdatasync" };
        for result in &results {
            match result {
                Err(WalError::Io {
                    operation: failed,
                    source,
                    ..
                }) => {
                    assert_eq!(*failed, operation);
                    assert_eq!(source.raw_os_error(), Some(libc::EIO));
                }
                other => panic!("every waiting appender gets the storage error, got {other:?}"),
            }
        }
        assert!(wal.fault().is_some());
        // The fault is cleared at the injector, but the log must not retry: it stays stopped.
        faults.fail_writes.set(false);
        faults.fail_fdatasyncs.set(false);
        match wal.append(b"after the fault").await {
            Err(WalError::Stopped(cause)) => assert!(matches!(*cause, WalError::Io { .. })),
            other => panic!("appends after a fault are refused, got {other:?}"),
        }
        assert!(matches!(
            wal.truncate_after(5).await,
            Err(WalError::Stopped(_))
        ));
        assert_eq!(
            wal.last_index(),
            20,
            "nothing unacknowledged is reported durable"
        );
        drop(wal);

        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert!(wal.last_index() >= 20);
        let entries = wal.read(1, 21).await.unwrap();
        for (i, entry) in entries.iter().enumerate() {
            assert_eq!(entry, &payload(9, i as u64 + 1, 500));
        }
        wal.append(b"a reopened log accepts appends again")
            .await
            .unwrap();
    });
}

#[test]
fn a_failed_fdatasync_stops_the_log_and_fails_every_waiting_appender() {
    check_fail_stop(false);
}

#[test]
fn a_failed_write_stops_the_log_and_fails_every_waiting_appender() {
    check_fail_stop(true);
}

/// A small tmpfs mounted for one test; unmounted on drop.
struct SmallFilesystem {
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFilesystem {
    fn mount(bytes: u64) -> SmallFilesystem {
        let dir = tempfile::tempdir().unwrap();
        let mount_point = dir.path().to_owned();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&mount_point)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: this test needs root (the project's test machines run as root)"
        );
        SmallFilesystem {
            mount_point,
            _dir: dir,
        }
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        // Lazy: the kernel tears an io_uring instance down on a worker after its close, and
        // until then the ring's file references keep the filesystem busy (a plain umount
        // failed with "target is busy" now and then, leaving the tmpfs mounted). The detached
        // filesystem goes once the last reference does.
        let _ = Command::new("umount")
            .arg("--lazy")
            .arg(&self.mount_point)
            .status();
    }
}

#[test]
fn a_full_disk_stops_appends_with_no_space_and_keeps_what_was_acknowledged() {
    // A 1.5 MiB filesystem holds five 256 KiB segments (and a little metadata); the log fills
    // them, then cannot pre-write another spare and has nothing to roll onto.
    let filesystem = SmallFilesystem::mount(1536 << 10);
    let path = filesystem.path().join("wal");
    let outcome = run(move || async move {
        let wal = Rc::new(Wal::open(&path, small_options()).await.unwrap());
        let mut acknowledged = 0u64;
        let failure = loop {
            let index = wal.next_index();
            match wal.append(&payload(11, index, 3000)).await {
                Ok(got) => {
                    assert_eq!(got, index);
                    acknowledged = got;
                }
                Err(error) => break error,
            }
            assert!(
                acknowledged < 100_000,
                "a 1.5 MiB disk cannot hold this much"
            );
        };
        assert!(
            matches!(failure, WalError::NoSpace { ref source, .. } if source.raw_os_error() == Some(libc::ENOSPC)),
            "expected NoSpace carrying ENOSPC, got {failure}"
        );
        assert!(matches!(
            wal.append(b"more").await,
            Err(WalError::Stopped(_))
        ));
        assert_eq!(wal.last_index(), acknowledged);
        drop(wal);

        // Reopen on the still-full disk: everything acknowledged is there.
        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(wal.last_index(), acknowledged);
        let entries = wal.read(1, acknowledged + 1).await.unwrap();
        for (i, entry) in entries.iter().enumerate() {
            assert_eq!(entry, &payload(11, i as u64 + 1, 3000));
        }
        acknowledged
    });
    assert!(
        outcome > 100,
        "the log used the space it had before stopping ({outcome} entries)"
    );
}
