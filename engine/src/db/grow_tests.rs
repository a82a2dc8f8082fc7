//! The grower: slack prepared off the writer's thread, the inline fallback, cuts that do not
//! fight it, and its thread ending with the engine.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use super::grow::{slack_for, TailStats};
use super::{Db, Durability, Table, Tables};
use crate::pager::PAGE_SIZE;

/// Bound on waiting for the grower (it needs milliseconds; this only stops a hung test).
const WAIT: Duration = Duration::from_secs(30);

fn key(i: u32) -> Vec<u8> {
    format!("key/{i:08}").into_bytes()
}

fn value(i: u32, size: usize) -> Vec<u8> {
    (0..size).map(|j| (i as usize ^ j) as u8).collect()
}

/// Puts keys `from..from + n` with `size`-byte values in one unsynced commit.
fn put(db: &Db, from: u32, n: u32, size: usize) {
    let mut txn = db.begin_write().unwrap();
    for i in from..from + n {
        txn.put(Table::Index, &key(i), &value(i, size)).unwrap();
    }
    txn.commit(Durability::Unsynced).unwrap();
}

fn settled(db: &Db) -> TailStats {
    db.shared.grower.tail().settled(WAIT)
}

/// Bytes of pages the newest commit counts.
fn used(db: &Db) -> u64 {
    db.published_page_count() * PAGE_SIZE as u64
}

/// Checks the file's tail past the pages in use: as long as the tail state says, all zeros,
/// no hole (every block allocated by a write), and no more than the slack — or, if the page
/// count may have dropped (`cut_bound`), no more than a commit leaves before it cuts.
fn assert_slack_ready(db: &Db, stats: TailStats, cut_bound: bool) {
    let file = &db.shared.file;
    let used = used(db);
    assert_eq!(
        file.len().unwrap(),
        stats.len,
        "tail state and file disagree"
    );
    assert!(stats.data_end <= stats.len);
    assert!(
        stats.len >= used + slack_for(used) / 2,
        "less than half the slack ready: {stats:?}, used {used}"
    );
    let bound = if cut_bound {
        (2 * slack_for(used)).max(stats.len / 4)
    } else {
        slack_for(used)
    };
    assert!(
        stats.len <= used + bound,
        "more than the slack ahead: {stats:?}, used {used}"
    );
    // Past the data commits wrote (free pages below it may hold old data): zeros.
    let mut tail = vec![0xffu8; (stats.len - stats.data_end) as usize];
    file.file.read_exact_at(&mut tail, stats.data_end).unwrap();
    assert!(tail.iter().all(|&b| b == 0), "slack is not zeros");
    assert_eq!(file.first_hole(0).unwrap(), stats.len, "a hole in the file");
}

#[test]
fn commits_within_the_slack_fill_nothing_inline() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    assert_eq!(settled(&db).inline_filled, 0, "open fills nothing");
    // The first commit outgrows the two meta pages: that part is inline, the slack is not.
    put(&db, 0, 10, 256);
    let first = settled(&db);
    assert_eq!(first.inline_filled, used(&db) - 2 * PAGE_SIZE as u64);
    assert_slack_ready(&db, first, false);
    let mut last = first;
    for round in 0..60 {
        put(&db, 10 + round * 40, 40, 256);
        let stats = settled(&db);
        assert_eq!(
            stats.inline_filled, first.inline_filled,
            "round {round}: a commit filled inline although the slack covered it"
        );
        assert_eq!(stats.data_end, used(&db));
        assert_slack_ready(&db, stats, false);
        last = stats;
    }
    assert!(
        last.grower_filled > first.grower_filled,
        "the file never needed a refill: test too small"
    );
    let read = db.begin_read();
    for i in (0..10 + 60 * 40).step_by(97) {
        assert_eq!(
            read.get(Table::Index, &key(i)).unwrap(),
            Some(&value(i, 256)[..])
        );
    }
    drop(read);
    db.check().unwrap();
}

#[test]
fn a_commit_larger_than_the_slack_fills_its_need_inline() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    put(&db, 0, 10, 256);
    let before = settled(&db);
    // 1 MiB of values in one commit: four times the slack of a file this small.
    put(&db, 10, 256, 4000);
    let during = db.shared.grower.tail().stats();
    let used_now = used(&db);
    assert!(used_now > before.len + slack_for(before.len));
    assert_eq!(
        during.inline_filled - before.inline_filled,
        used_now - before.len,
        "the commit should fill exactly what it needed past the prepared slack"
    );
    let after = settled(&db);
    assert_eq!(after.inline_filled, during.inline_filled);
    assert_slack_ready(&db, after, false);
    let read = db.begin_read();
    for i in 10..266 {
        assert_eq!(
            read.get(Table::Index, &key(i)).unwrap(),
            Some(&value(i, 4000)[..])
        );
    }
    drop(read);
    db.check().unwrap();
    db.sync().unwrap();
    drop(db);
    // Reopens with the slack past the meta's page count.
    let db = Db::open(&dir.path().join("db")).unwrap();
    assert_eq!(
        db.begin_read().get(Table::Index, &key(265)).unwrap(),
        Some(&value(265, 4000)[..])
    );
    db.check().unwrap();
}

#[test]
fn cuts_and_the_grower_settle_on_one_length() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    for batch in 0..40 {
        put(&db, batch * 100, 100, 1000);
    }
    db.sync().unwrap();
    let grown = settled(&db);
    // Delete nine keys in ten: most pages become free, scattered; defrag moves the rest down
    // and cuts the file to the pages in use.
    let mut txn = db.begin_write().unwrap();
    for i in (0..4000).filter(|i| i % 10 != 0) {
        assert!(txn.delete(Table::Index, &key(i)).unwrap());
    }
    txn.commit(Durability::Unsynced).unwrap();
    db.sync().unwrap();
    let report = db.defragment(16).unwrap();
    let cut = settled(&db);
    assert_eq!(cut.len, used(&db), "defrag cuts to the pages in use");
    assert_eq!(report.bytes_after, cut.len);
    assert!(
        cut.len * 2 < grown.len,
        "{grown:?} → {cut:?}: did not shrink"
    );
    // A steady workload now: overwrite the same keys, syncing, so freed pages are reused and
    // the pages in use level off. The length must level off with them — no cut undoing what
    // the grower prepared, no refill undoing a cut.
    let mut lengths = Vec::new();
    for _ in 0..40 {
        put(&db, 0, 100, 1000);
        db.sync().unwrap();
        let stats = settled(&db);
        assert_slack_ready(&db, stats, true);
        lengths.push(stats.len);
    }
    let steady = &lengths[20..];
    assert!(
        steady.iter().all(|&len| len == steady[0]),
        "the file length did not settle: {lengths:?}"
    );
    // The commit path's cut: large values at the tail, deleted; once neither the published
    // nor the durable meta counts their pages, a commit cuts the file back to the pages in
    // use plus the slack, and the grower leaves it there.
    put(&db, 100_000, 200, 8000);
    db.sync().unwrap();
    let big = settled(&db);
    let mut txn = db.begin_write().unwrap();
    for i in 100_000..100_200 {
        assert!(txn.delete(Table::Index, &key(i)).unwrap());
    }
    txn.commit(Durability::Unsynced).unwrap();
    db.sync().unwrap();
    let mut trimmed = big;
    for _ in 0..4 {
        db.begin_write()
            .unwrap()
            .commit(Durability::Unsynced)
            .unwrap();
        db.sync().unwrap();
        trimmed = settled(&db);
    }
    assert!(trimmed.len < big.len, "{big:?} → {trimmed:?}: no cut");
    // Cut to the pages in use then plus the slack (a later commit may trim a page or two).
    assert_slack_ready(&db, trimmed, true);
    for i in 0..10 {
        put(&db, i, 1, 1000);
        db.sync().unwrap();
        assert_eq!(
            settled(&db).len,
            trimmed.len,
            "length changed after the cut"
        );
    }
    db.check().unwrap();
}

#[test]
fn dropping_the_engine_stops_its_grower() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    for round in 0..50u32 {
        let db = Db::open(&path).unwrap();
        put(&db, round, 1, 100);
        let tail = db.shared.grower.tail_arc().clone();
        // This handle, the engine's, the thread's.
        assert_eq!(Arc::strong_count(&tail), 3);
        // A reader keeps the engine (and its grower) alive; the last handle stops it.
        let read = db.begin_read();
        drop(db);
        assert_eq!(Arc::strong_count(&tail), 3);
        assert_eq!(
            read.get(Table::Index, &key(round)).unwrap(),
            Some(&value(round, 100)[..])
        );
        drop(read);
        assert_eq!(
            Arc::strong_count(&tail),
            1,
            "the grower thread outlived its engine"
        );
    }
}

#[test]
fn commits_racing_the_grower_stay_consistent() {
    // No waiting for the grower between commits: it fills while commits claim pages, some
    // commits outrun it (inline path, waiting for a chunk in flight), syncs and cuts run in
    // between. The invariant's asserts (no zeros at or below data) are armed throughout.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let mut n = 0u32;
    let mut last_size = 0;
    for round in 0..200u32 {
        let (count, size) = match round % 7 {
            0 => (150, 3000),
            3 => (5, 20_000),
            _ => (30, 300),
        };
        put(&db, n, count, size);
        n += count;
        last_size = size;
        if round % 10 == 9 {
            // Drop a run of old keys so free pages and tail trims come and go.
            let mut txn = db.begin_write().unwrap();
            for i in n.saturating_sub(400)..n.saturating_sub(200) {
                txn.delete(Table::Index, &key(i)).unwrap();
            }
            txn.commit(Durability::Unsynced).unwrap();
            db.sync().unwrap();
        }
    }
    let stats = settled(&db);
    println!("{stats:?}");
    assert!(
        stats.inline_filled > 0 && stats.grower_filled > 0,
        "{stats:?}"
    );
    assert_slack_ready(&db, stats, true);
    db.check().unwrap();
    let read = db.begin_read();
    assert_eq!(
        read.get(Table::Index, &key(n - 1)).unwrap(),
        Some(&value(n - 1, last_size)[..])
    );
}

/// Environment of `full_disk_child`: the directory of its database, and the file size limit.
const FULL_DISK_DIR: &str = "BASALT_GROW_FULL_DISK_DIR";
const FULL_DISK_LIMIT: &str = "BASALT_GROW_FULL_DISK_LIMIT";

/// Keys of batch `batch` (20 keys) in the full-disk test.
fn batch_keys(batch: u32) -> std::ops::Range<u32> {
    batch * 20..batch * 20 + 20
}

/// Commits batch `batch` durably (one fdatasync).
fn commit_batch(db: &Db, batch: u32) -> crate::error::Result<()> {
    let mut txn = db.begin_write()?;
    for i in batch_keys(batch) {
        txn.put(Table::Index, &key(i), &value(i, 1000))?;
    }
    txn.commit(Durability::OneSync)
}

/// A file size limit (`ulimit -f`, SIGXFSZ ignored) stands in for a full disk: a write past it
/// fails (EFBIG) and one that straddles it is cut short, as on a disk filling up mid-chunk.
/// The child commits durably until a commit fails; the grower meets the limit first (a chunk
/// cut short: the length it records is the limit, not a chunk boundary) and must then go idle
/// rather than retry on its own, commits within what it wrote must go on, and the commit that
/// needs more must fail with the I/O error. Reopened without the limit, every acknowledged
/// commit is there, the file passes the page check and grows again.
#[test]
fn a_full_disk_fails_only_the_commit_that_needs_the_space() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Db::open(&path).unwrap();
    for batch in 0..5 {
        commit_batch(&db, batch).unwrap();
    }
    let base = settled(&db);
    drop(db);
    // Past the slack the grower prepared, and not on a page boundary (bash counts `ulimit -f`
    // in KiB).
    let limit = base.len + 101 * 1024;
    assert!(!limit.is_multiple_of(PAGE_SIZE as u64));
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"",
            limit / 1024
        ))
        .arg(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "db::grow_tests::full_disk_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FULL_DISK_DIR, dir.path())
        .env(FULL_DISK_LIMIT, limit.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let acked = stdout
        .lines()
        .filter_map(|l| l.split_once("acked ").map(|(_, n)| n))
        .filter_map(|n| n.trim().parse::<u32>().ok())
        .max()
        .expect("the child acknowledged no commit");
    assert!(acked >= 5, "no commit acknowledged under the limit");

    let db = Db::open(&path).unwrap();
    let read = db.begin_read();
    for batch in 0..=acked {
        for i in batch_keys(batch) {
            assert_eq!(
                read.get(Table::Index, &key(i)).unwrap(),
                Some(&value(i, 1000)[..]),
                "acknowledged batch {batch} lost"
            );
        }
    }
    drop(read);
    db.check().unwrap();
    for batch in acked + 1..acked + 20 {
        commit_batch(&db, batch).unwrap();
    }
    let stats = settled(&db);
    assert!(stats.len > limit, "{stats:?}: the file did not grow again");
    assert_slack_ready(&db, stats, false);
    db.check().unwrap();
}

/// The child of `a_full_disk_fails_only_the_commit_that_needs_the_space`, under the limit.
#[test]
#[ignore = "run by a_full_disk_fails_only_the_commit_that_needs_the_space as a child process"]
fn full_disk_child() {
    let (Ok(dir), Ok(limit)) = (std::env::var(FULL_DISK_DIR), std::env::var(FULL_DISK_LIMIT))
    else {
        return;
    };
    let limit: u64 = limit.parse().unwrap();
    let db = Db::open(&std::path::Path::new(&dir).join("db")).unwrap();
    let file = db.shared.file.clone();
    // Commits acknowledged after the grower stopped at the limit.
    let mut after_grower_stopped = None;
    let mut batch = 5;
    let error = loop {
        assert!(batch < 1000, "the limit was never reached");
        if let Err(error) = commit_batch(&db, batch) {
            break error;
        }
        println!("acked {batch}");
        batch += 1;
        // Panics if the grower keeps trying (its target stays past the limit).
        let stats = settled(&db);
        assert_eq!(
            file.len().unwrap(),
            stats.len,
            "tail state and file disagree"
        );
        assert!(stats.len <= limit);
        assert!(stats.data_end <= stats.len);
        if stats.len == limit {
            assert!(stats.target <= stats.len, "{stats:?}");
            *after_grower_stopped.get_or_insert(0) += 1;
        }
    };
    let after = after_grower_stopped.expect("the grower never met the limit");
    assert!(
        after > 1,
        "no commit went on within the grower's slack after it stopped"
    );
    match &error {
        crate::error::Error::Io { source, .. } => {
            assert_eq!(source.raw_os_error(), Some(libc::EFBIG), "{error}")
        }
        other => panic!("the commit failed with {other}, not the write's error"),
    }
    assert!(
        matches!(db.begin_write(), Err(crate::error::Error::Poisoned)),
        "a failed commit must stop further writes"
    );
}

/// The server's threads around the grower: commits on one thread (small to larger than the
/// slack, deletes so that trims happen), syncs (`flush_unlocked` without the writer, then the
/// pages-first commit) and now and then a defragmentation (a cut to the pages in use) on a
/// second, and a reader scanning and checking every value on a third. A chunk of zeros
/// landing on data, or a cut under pages in use, shows as a wrong value, a checksum failure
/// or a failed page check, now or after reopening.
#[test]
fn syncs_defrags_and_readers_on_other_threads() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let syncer = {
        let db = db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut syncs = 0;
            while !stop.load(Ordering::Relaxed) {
                db.sync().unwrap();
                syncs += 1;
                if syncs % 20 == 0 {
                    db.defragment(8).unwrap();
                }
            }
        })
    };
    let reader = {
        let db = db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut values_checked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let read = db.begin_read();
                read.scan(
                    Table::Index,
                    std::ops::Bound::Unbounded,
                    std::ops::Bound::Unbounded,
                    false,
                    &mut |k: &[u8], v: &[u8]| {
                        let i: u32 = std::str::from_utf8(&k[4..]).unwrap().parse().unwrap();
                        assert!(v == &value(i, v.len())[..], "wrong value under key {i}");
                        values_checked += 1;
                        Ok(true)
                    },
                )
                .unwrap();
            }
            values_checked
        })
    };
    let mut next = 0u32;
    for round in 0..3000u32 {
        let mut txn = db.begin_write().unwrap();
        let size = [100, 1500, 5000, 30_000][(round % 4) as usize];
        for i in next..next + 10 {
            txn.put(Table::Index, &key(i), &value(i, size)).unwrap();
        }
        next += 10;
        if round % 3 == 0 {
            for i in next.saturating_sub(300)..next.saturating_sub(250) {
                txn.delete(Table::Index, &key(i)).unwrap();
            }
        }
        let durability = if round % 50 == 0 {
            Durability::OneSync
        } else {
            Durability::Unsynced
        };
        txn.commit(durability).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    syncer.join().unwrap();
    assert!(reader.join().unwrap() > 0, "the reader never ran");
    let stats = settled(&db);
    assert_eq!(db.shared.file.len().unwrap(), stats.len);
    db.check().unwrap();
    db.sync().unwrap();
    drop(db);
    let db = Db::open(&dir.path().join("db")).unwrap();
    db.check().unwrap();
    assert_eq!(
        db.begin_read().get(Table::Index, &key(next - 1)).unwrap(),
        Some(&value(next - 1, 30_000)[..])
    );
}
