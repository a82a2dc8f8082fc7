//! Goal: a batch ended with `WriteBatch::commit_deferred` is part of every read view, write
//! batch and sync that begins after the call returns — on any thread — even though nobody has
//! written its pages yet; until something needs it, it is no more durable than an unsynced
//! commit (a reopen without a sync returns to the last durable commit).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use basalt_engine::*;

mod support;
use support::{put, value_at};

/// Puts `key` = `value` in a batch of its own and defers its commit.
fn put_deferred(engine: &Engine, key: &str, value: &str, applied_index: u64) -> i64 {
    let mut batch = engine.write().unwrap();
    let (response, _) = batch.put(&put(key, value)).unwrap();
    batch.set_applied_index(applied_index);
    batch.commit_deferred().unwrap();
    response.header_revision
}

#[test]
fn a_view_begun_after_a_deferred_batch_sees_it_and_one_begun_before_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let before = engine.read().unwrap();
    let revision = put_deferred(&engine, "a", "1", 1);
    let after = engine.read().unwrap();
    assert_eq!(value_at(&after, "a").as_deref(), Some(&b"1"[..]));
    assert_eq!(after.current_revision(), revision);
    assert_eq!(after.applied_index(), 1);
    assert_eq!(value_at(&before, "a"), None, "a pinned view changed");
    engine.check().unwrap();
}

#[test]
fn a_batch_builds_on_a_deferred_one_and_settle_publishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let first = put_deferred(&engine, "a", "1", 1);
    // The next batch starts from the deferred one: its revision follows, its key is there.
    let second = put_deferred(&engine, "b", "2", 2);
    assert_eq!(second, first + 1);
    engine.settle().unwrap();
    // Nothing left deferred: settling again is a no-op.
    engine.settle().unwrap();
    let view = engine.read().unwrap();
    assert_eq!(value_at(&view, "a").as_deref(), Some(&b"1"[..]));
    assert_eq!(value_at(&view, "b").as_deref(), Some(&b"2"[..]));
    assert_eq!(view.applied_index(), 2);
    engine.check().unwrap();
}

#[test]
fn a_sync_makes_a_deferred_batch_durable_and_a_reopen_without_one_loses_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let engine = Engine::open(&path).unwrap();
        put_deferred(&engine, "synced", "1", 1);
        assert_eq!(engine.sync().unwrap(), 1);
        put_deferred(&engine, "lost", "2", 2);
        // Dropped with a deferred batch: like a crash after an unsynced commit.
    }
    let engine = Engine::open(&path).unwrap();
    let view = engine.read().unwrap();
    assert_eq!(value_at(&view, "synced").as_deref(), Some(&b"1"[..]));
    assert_eq!(value_at(&view, "lost"), None);
    assert_eq!(view.applied_index(), 1);
    engine.check().unwrap();
}

/// The point of the design: a writer defers each batch and only then tells another thread
/// about it; that thread's read view must include it, whether the writer, a syncing thread or
/// the reader itself ends up publishing it.
#[test]
fn another_thread_told_of_a_deferred_batch_always_reads_it() {
    const BATCHES: u64 = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db")).unwrap();
    let (told, told_of) = mpsc::sync_channel::<(u64, i64)>(1);
    let stop = Arc::new(AtomicBool::new(false));
    // Every other way in that waits for the writer, racing the deferrals.
    let syncer = {
        let (engine, stop) = (engine.clone(), stop.clone());
        thread::spawn(move || {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match round % 3 {
                    0 => drop(engine.sync().unwrap()),
                    1 => drop(engine.durable_view().unwrap()),
                    _ => drop(engine.size_in_use_bytes().unwrap()),
                }
                round += 1;
            }
        })
    };
    let reader = {
        let engine = engine.clone();
        thread::spawn(move || {
            for (index, revision) in told_of {
                let view = engine.read().unwrap();
                assert!(
                    view.applied_index() >= index && view.current_revision() >= revision,
                    "batch {index} (revision {revision}) was told, the view has {} ({})",
                    view.applied_index(),
                    view.current_revision()
                );
                let value = value_at(&view, &format!("k{index}"));
                assert_eq!(value.as_deref(), Some(format!("v{index}").as_bytes()));
            }
        })
    };
    for index in 1..=BATCHES {
        let revision = put_deferred(&engine, &format!("k{index}"), &format!("v{index}"), index);
        told.send((index, revision)).unwrap();
        if index % 3 == 0 {
            // Now and then the writer publishes first, as the raft core does when idle.
            engine.settle().unwrap();
        }
    }
    drop(told);
    reader.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    syncer.join().unwrap();
    engine.check().unwrap();
}
