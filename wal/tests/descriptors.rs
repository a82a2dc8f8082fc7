//! Goal: the log keeps appending and rolling to new segments when the process has no file
//! descriptor left (a member's clients can use them all up; its log must not stop then). The
//! log holds its directory and its ready spares open, and a recycled segment goes back to the
//! pool with its file still open, so a roll opens nothing.
//!
//! Its own test binary: the descriptor limit it lowers is the whole process's.

use std::time::{Duration, Instant};

use basalt_wal::{Wal, WalOptions};

const SEGMENT_BYTES: u64 = 1 << 20;
const RECORD_BYTES: usize = 16 << 10;

/// Small segments and records, so ten segments are written quickly.
fn options() -> WalOptions {
    WalOptions {
        segment_bytes: SEGMENT_BYTES,
        record_bytes_limit: 64 << 10,
        metadata_bytes_limit: 4 << 10,
        spare_segments: 2,
        ..WalOptions::default()
    }
}

fn nofile_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit; getrlimit writes exactly one.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit
}

fn set_nofile_limit(limit: &libc::rlimit) {
    // SAFETY: `limit` is a valid rlimit with soft <= hard.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) }, 0);
}

#[test]
fn the_log_rolls_with_no_descriptor_left() {
    glommio::LocalExecutorBuilder::default()
        .spawn(|| async {
            let dir = tempfile::tempdir().unwrap();
            let wal = Wal::open(dir.path().join("wal"), options()).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while wal.spare_count() < 2 {
                assert!(Instant::now() < deadline, "the spares were never made");
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            // Use up every descriptor: a limit just above what is open, then fill the rest.
            let saved = nofile_limit();
            let highest_open = std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .max()
                .unwrap();
            set_nofile_limit(&libc::rlimit {
                rlim_cur: highest_open + 8,
                rlim_max: saved.rlim_max,
            });
            let mut fillers = Vec::new();
            let exhausted = loop {
                match std::fs::File::open("/dev/null") {
                    Ok(file) => fillers.push(file),
                    Err(error) => break error,
                }
            };
            assert_eq!(exhausted.raw_os_error(), Some(libc::EMFILE), "{exhausted}");

            // Ten segments' worth of records, released as a member's checkpoints release them.
            let segments_before = wal.segment_count();
            let payload = vec![7u8; RECORD_BYTES];
            let records = 10 * (SEGMENT_BYTES as usize / RECORD_BYTES);
            let mut rolls_seen = 0;
            let mut last_segments = segments_before;
            for written in 1..=records {
                let index = wal.append(&payload).await.unwrap_or_else(|error| {
                    panic!("append {written} failed with no descriptor left: {error}")
                });
                if wal.segment_count() > last_segments {
                    rolls_seen += 1;
                }
                if written % 16 == 0 {
                    wal.release_before(index).await.unwrap();
                }
                last_segments = wal.segment_count();
            }
            assert!(rolls_seen >= 8, "only {rolls_seen} rolls");
            // Still no descriptor to be had: the rolls opened none.
            assert!(std::fs::File::open("/dev/null").is_err());
            drop(fillers);
            set_nofile_limit(&saved);
            let next = wal.next_index();
            wal.close().await.unwrap();

            // Everything written is there after a reopen.
            let reopened = Wal::open(dir.path().join("wal"), options()).await.unwrap();
            assert_eq!(reopened.next_index(), next);
        })
        .unwrap()
        .join()
        .unwrap();
}
