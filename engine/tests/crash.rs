//! Crash tests: a child process (this test binary, running the ignored `crash_child` test)
//! commits a deterministic workload and prints each acknowledged commit; the parent kills it
//! with SIGKILL at pseudo-random moments, or arms a crash point inside the commit protocol
//! (between page writes, syncs and a torn meta write). After every crash the reopened database
//! must hold exactly the state of some commit at or after the last acknowledged one, pass the
//! whole-file page check, and accept further writes.
//!
//! The child runs in one of two modes: every commit durable (`WriteBatch::commit`), or every
//! commit unsynced with an `Engine::sync` after every `SYNC_EVERY`th (the server's way). In the
//! second mode the recovered state must be exactly a synced one, at or after the last sync
//! acknowledged: an unsynced commit never shows after a crash, and never damages the synced
//! state (which a rewrite of a page the durable meta reaches would, as the killed process's
//! page-cache writes survive SIGKILL).
//!
//! Soak: `BASALT_CRASH_ROUNDS=200 cargo test --release -p basalt-engine --test crash`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use basalt_engine::*;

/// In unsynced mode, the child syncs after every commit whose index is a multiple of this.
const SYNC_EVERY: u64 = 4;

/// How the child commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `WriteBatch::commit` every time (one fdatasync each).
    Durable,
    /// `commit_unsynced` every time, `Engine::sync` after every `SYNC_EVERY`th.
    Unsynced,
}

fn key(n: u64) -> Vec<u8> {
    format!("k{:03}", n % 500).into_bytes()
}

/// The writes of commit `i` (a pure function of `i`), applied to the engine or the model.
/// Puts and an optional delete.
type Writes = (Vec<(Vec<u8>, Vec<u8>)>, Option<Vec<u8>>);

fn workload(i: u64) -> Writes {
    let puts = (0..20u64)
        .map(|j| {
            let mut value = format!("{i}:{j}").into_bytes();
            if (i + j).is_multiple_of(17) {
                value.resize(3000 + (i as usize % 5) * 2000, b'x');
            }
            (key(i * 7 + j * 13), value)
        })
        .collect();
    let delete = i.is_multiple_of(5).then(|| key(i * 3));
    (puts, delete)
}

fn model(upto: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut state = BTreeMap::new();
    for i in 1..=upto {
        let (puts, delete) = workload(i);
        for (k, v) in puts {
            state.insert(k, v);
        }
        if let Some(k) = delete {
            state.remove(&k);
        }
    }
    state
}

fn contents(engine: &Engine) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    engine
        .read()
        .unwrap()
        .range(&all)
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect()
}

/// The child: commits the workload forever (until killed or a crash point fires).
#[test]
#[ignore = "run by the crash tests as a child process"]
fn crash_child() {
    let Ok(dir) = std::env::var("BASALT_CRASH_DIR") else {
        return;
    };
    let point: u8 = std::env::var("BASALT_CRASH_POINT").map_or(0, |p| p.parse().unwrap());
    let unsynced = std::env::var("BASALT_CRASH_MODE").is_ok_and(|m| m == "unsynced");
    let arm_after: u64 = std::env::var("BASALT_CRASH_AFTER").map_or(0, |p| p.parse().unwrap());
    let engine = Engine::open(Path::new(&dir).join("db")).unwrap();
    let start = engine.read().unwrap().applied_index() + 1;
    for i in start.. {
        if point != 0 && i == start + arm_after {
            crash_point::set(point);
        }
        let mut batch = engine.write().unwrap();
        let (puts, delete) = workload(i);
        for (k, v) in puts {
            batch
                .put(&PutRequest {
                    key: k,
                    value: v,
                    ..Default::default()
                })
                .unwrap();
        }
        if let Some(k) = delete {
            batch
                .delete_range(&DeleteRangeRequest {
                    key: k,
                    ..Default::default()
                })
                .unwrap();
        }
        if i % 10 == 0 {
            let target = batch.current_revision() - 100;
            if target > batch.compact_revision() {
                batch.compact(target).unwrap();
            }
        }
        if !batch.compact_step(200).unwrap() {
            // Leave the rest of a compaction to later commits, like the server would.
        }
        batch.set_applied_index(i);
        if !unsynced {
            batch.commit().unwrap();
            println!("acked {i}");
        } else {
            batch.commit_unsynced().unwrap();
            if i.is_multiple_of(SYNC_EVERY) {
                assert_eq!(engine.sync().unwrap(), i);
                println!("acked {i}");
            }
        }
    }
}

/// Runs a child; kills it after `kill_after` (if given); returns the last acknowledged commit
/// (in unsynced mode: the last acknowledged sync).
fn run_child(
    dir: &Path,
    mode: Mode,
    point: u8,
    arm_after: u64,
    kill_after: Option<Duration>,
) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BASALT_CRASH_DIR", dir)
        .env("BASALT_CRASH_POINT", point.to_string())
        .env("BASALT_CRASH_AFTER", arm_after.to_string())
        .env(
            "BASALT_CRASH_MODE",
            if mode == Mode::Unsynced {
                "unsynced"
            } else {
                "durable"
            },
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(after) = kill_after {
        std::thread::sleep(after);
        child.kill().unwrap(); // SIGKILL
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child only stops by crashing");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out.lines()
        // The first line also carries libtest's "test crash_child ... " prefix.
        .filter_map(|l| l.split_once("acked ").map(|(_, n)| n))
        .filter_map(|n| n.parse().ok())
        .max()
}

/// Reopens and checks the state against the model; returns the recovered commit.
fn verify(dir: &Path, mode: Mode, at_least: u64) -> u64 {
    let engine = Engine::open(dir.join("db")).unwrap();
    engine.check().unwrap();
    let applied = engine.read().unwrap().applied_index();
    assert!(
        applied >= at_least,
        "recovered commit {applied} is older than acknowledged {at_least}"
    );
    if mode == Mode::Unsynced {
        assert!(
            applied.is_multiple_of(SYNC_EVERY),
            "recovered commit {applied} was never synced"
        );
    }
    assert_eq!(
        contents(&engine),
        model(applied),
        "state at recovered commit {applied}"
    );
    applied
}

/// A disk that lost a page write of a checkpoint (`Engine::sync`, pages synced before the
/// meta) the engine believed durable: open must refuse with an error naming a page, not serve
/// the commit and not silently fall back to an older one.
#[test]
fn lost_page_write_of_a_sync_is_reported_at_open() {
    let dir = tempfile::tempdir().unwrap();
    verify(dir.path(), Mode::Unsynced, 0);
    // Armed at commit 4: the sync right after it loses a page, and nothing was acknowledged.
    let last = run_child(dir.path(), Mode::Unsynced, crash_point::LOST_PAGE, 3, None);
    assert_eq!(last, None);
    match Engine::open(dir.path().join("db")) {
        Err(Error::Corrupt { page, reason, .. }) => assert!(page >= 2, "page {page}: {reason}"),
        Err(other) => panic!("expected a corruption error, got {other}"),
        Ok(_) => panic!("a commit with a lost page write was accepted"),
    }
}

/// A one-fdatasync commit whose meta reached the disk but one of whose pages did not (a crash
/// inside the fdatasync) was never acknowledged: open falls back to the commit before it and
/// says so.
#[test]
fn torn_one_sync_commit_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let before = verify(dir.path(), Mode::Durable, 0);
    let last = run_child(dir.path(), Mode::Durable, crash_point::LOST_PAGE, 3, None).unwrap();
    assert_eq!(last, before + 3);
    let engine = Engine::open(dir.path().join("db")).unwrap();
    assert!(engine.torn_commit_discarded().is_some());
    drop(engine);
    assert_eq!(verify(dir.path(), Mode::Durable, last), last);
    // The next commit overwrites the torn meta's slot, never the one open fell back to: tear
    // that write, and a valid state at or after the fallback commit must open. (The workload
    // is deterministic, so the rewritten pages may complete the torn commit: both are valid.)
    assert_eq!(
        run_child(dir.path(), Mode::Durable, crash_point::TORN_META, 0, None),
        None
    );
    verify(dir.path(), Mode::Durable, last);
}

fn rounds() -> u64 {
    std::env::var("BASALT_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

#[test]
fn sigkill_at_random_moments() {
    sigkill_rounds(Mode::Durable);
}

#[test]
fn sigkill_at_random_moments_unsynced() {
    sigkill_rounds(Mode::Unsynced);
}

fn sigkill_rounds(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = 0;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..rounds() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = Duration::from_millis(30 + (seed >> 33) % 150);
        if let Some(last) = run_child(dir.path(), mode, crash_point::NONE, 0, Some(wait)) {
            acked = acked.max(last);
        }
        acked = verify(dir.path(), mode, acked);
    }
    assert!(acked > 0, "no commit was ever acknowledged");
}

#[test]
fn crash_points_inside_commit() {
    crash_points(
        Mode::Durable,
        &[
            (crash_point::AFTER_PAGES, false),
            (crash_point::TORN_META, false),
            (crash_point::AFTER_META, true),
            (crash_point::AFTER_SYNC, true),
            (crash_point::LOST_PAGE, false),
        ],
    );
}

/// In unsynced mode the crash points fire in the first commit (AFTER_PAGES) or sync (the
/// others) after arming; whether the sync it hits survives is the same question as above.
#[test]
fn crash_points_inside_unsynced_commit_and_sync() {
    crash_points(
        Mode::Unsynced,
        &[
            (crash_point::AFTER_PAGES, false),
            (crash_point::AFTER_PAGES_SYNCED, false),
            (crash_point::TORN_META, false),
            (crash_point::AFTER_META, true),
            (crash_point::AFTER_SYNC, true),
        ],
    );
}

fn crash_points(mode: Mode, points: &[(u8, bool)]) {
    let step = match mode {
        Mode::Durable => 1,
        Mode::Unsynced => SYNC_EVERY,
    };
    for &(point, survives) in points {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..3u64 {
            let before = verify(dir.path(), mode, 0);
            let arm_after = 5 + round * 7;
            let last = run_child(dir.path(), mode, point, arm_after, None).unwrap_or(before);
            // Every commit (sync) before the one the armed point hits was acknowledged.
            let armed = before + arm_after + 1;
            assert_eq!(
                last,
                (armed.div_ceil(step) - 1) * step,
                "point {point}: commits before the crash"
            );
            let recovered = verify(dir.path(), mode, last);
            // Only a meta that was fully written can make the crashed commit visible.
            assert_eq!(
                recovered,
                last + survives as u64 * step,
                "point {point} round {round}"
            );
        }
    }
}
