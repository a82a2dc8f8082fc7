//! Goal: a deferred batch whose publish fails (its page writes fail) stops the engine for
//! readers as well as writers. Its outcome may already have been told, so no reader may go on
//! seeing the store without it; the batch is not lost to the server, whose WAL holds it.
//! Its own test binary: the fault switch (`crash_point`) is the whole process's.

use basalt_engine::*;

mod support;
use support::put;

#[test]
fn a_deferred_batch_that_fails_to_publish_stops_readers_and_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let engine = Engine::open(&path).unwrap();
        let mut batch = engine.write().unwrap();
        batch.put(&put("durable", "1")).unwrap();
        batch.set_applied_index(1);
        batch.commit().unwrap();

        let mut batch = engine.write().unwrap();
        batch.put(&put("told", "2")).unwrap();
        batch.set_applied_index(2);
        batch.commit_deferred().unwrap();

        crash_point::set(crash_point::FAIL_PAGE_WRITES);
        let failed = engine.read().err();
        crash_point::set(crash_point::NONE);
        assert!(
            matches!(failed, Some(Error::Io { .. })),
            "the reader that published saw {failed:?}"
        );
        // The disk works again, but the batch is gone from memory: everything is refused.
        assert!(matches!(engine.read().err(), Some(Error::Poisoned)));
        assert!(matches!(engine.settle().err(), Some(Error::Poisoned)));
        assert!(matches!(engine.write().err(), Some(Error::Poisoned)));
        assert!(matches!(engine.sync().err(), Some(Error::Poisoned)));
    }
    // A restart returns to the last durable commit (the server's WAL replays the rest).
    let engine = Engine::open(&path).unwrap();
    let view = engine.read().unwrap();
    assert_eq!(view.applied_index(), 1);
    engine.check().unwrap();
}
