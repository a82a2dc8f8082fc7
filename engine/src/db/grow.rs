//! The data file's tail: its length, and the zero-filled slack kept ahead of the writer by a
//! background thread (`basalt-grow`).
//!
//! Pages are only ever written into blocks that hold zeros written earlier, never into a hole
//! or an unwritten extent: an fdatasync after writing there must also commit allocation
//! metadata (measured ~20x slower). Writing those zeros used to be the committing thread's
//! job, inside the writer lock; now the grower writes them ahead of need, in chunks of
//! `CHUNK_BYTES`, and a commit fills inline only the part of its own need the grower has not
//! prepared (the grower lagging, or one commit larger than the slack).
//!
//! Slack: `slack_for(used)` = used/8 clamped to 256 KiB..4 MiB, refilled to that when a commit
//! leaves less than half of it. The cap bounds how long zeros sit in the page cache before
//! data overwrites them: at the ~28 MB/s a put load grows the file, 4 MiB is ~150 ms of growth,
//! so with the engine synced every second roughly a tenth of the growth reaches the disk as
//! zeros before it is overwritten (larger slack: proportionally more). Half of it (~75 ms at
//! that rate) is the grower's lead to refill ≤ 2 MiB, about a millisecond of work. The floor
//! keeps a small or fresh database's footprint close to what it was (the file used to grow by
//! at least 256 KiB past a commit's need); the proportional part keeps the slack a small
//! fraction of a small file.
//!
//! One owner of the file length: `Tail`, behind its own mutex (not the writer lock, so a
//! grower chunk never blocks `WriteTxn::begin`). The grower holds that mutex only to pick a
//! chunk and to record it; the writer takes it in a commit (ensure the length, ask for
//! refill, maybe trim) and in defrag's final cut. Lock order: writer, then tail. The writer
//! waits for the grower only when it must move the length while a chunk is in flight (it needs
//! more than is prepared, or cuts), and then for that one chunk: the grower starts no other
//! while the writer waits. Its data pwrites may also queue behind one of the grower's 64 KiB
//! zero pwrites on the inode lock.
//!
//! Invariant (no zeros over data): the commit path writes data only below `data_end`, which it
//! raises only while the length already covers it (`data_end <= len` always); zeros are only
//! written starting at `len`, by the grower (with `filling` set, so nobody else moves `len`
//! meanwhile) or inline by the writer holding the mutex. Both assert `from >= data_end`. A cut
//! lowers `data_end` with `len`: what lay past the cut is gone, and those pages were free.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::pager::file::DataFile;
use crate::pager::PAGE_SIZE;

/// Bytes of zeros the grower writes per step: the longest the writer waits for it.
const CHUNK_BYTES: u64 = 1 << 20;
/// Least slack kept ahead of the pages in use.
const SLACK_MIN: u64 = 256 << 10;
/// Most slack kept ahead of the pages in use.
const SLACK_MAX: u64 = 4 << 20;

/// Zero-filled bytes to keep past `used` bytes of pages.
pub(crate) fn slack_for(used: u64) -> u64 {
    (used / 8)
        .clamp(SLACK_MIN, SLACK_MAX)
        .next_multiple_of(PAGE_SIZE as u64)
}

/// The file length and what the grower is asked to do.
struct TailState {
    /// The data file's length in bytes; everything below it is data or written zeros.
    len: u64,
    /// The commit path may have written data below this (never above `len`).
    data_end: u64,
    /// Length the grower fills toward.
    target: u64,
    /// The grower is writing zeros from `len` without the mutex: nobody else moves `len`.
    filling: bool,
    /// The writer waits for the chunk in flight: the grower starts no other until it is done.
    writer_waiting: bool,
    /// The engine is gone: the grower exits.
    stop: bool,
    /// Bytes of zeros commits wrote themselves (the grower had not prepared them).
    inline_filled: u64,
    /// Bytes of zeros the grower wrote.
    grower_filled: u64,
    /// Times the writer waited for a grower chunk in flight.
    writer_waits: u64,
}

/// The owner of the file length, shared by the writer and the grower thread.
pub(crate) struct Tail {
    state: Mutex<TailState>,
    /// Signalled whenever `len`, `target`, `filling` or `stop` change.
    changed: Condvar,
}

/// The grower thread; dropping this stops and joins it (so the file is closed, and its lock
/// released, when the engine is dropped).
pub(crate) struct Grower {
    tail: Arc<Tail>,
    thread: Option<JoinHandle<()>>,
}

impl Grower {
    /// Starts the grower for `file`, whose length is `len` and whose pages in use end at
    /// `data_end`.
    pub(crate) fn start(file: Arc<DataFile>, len: u64, data_end: u64) -> Result<Grower> {
        let tail = Arc::new(Tail {
            state: Mutex::new(TailState {
                len,
                data_end: data_end.min(len),
                target: len,
                filling: false,
                writer_waiting: false,
                stop: false,
                inline_filled: 0,
                grower_filled: 0,
                writer_waits: 0,
            }),
            changed: Condvar::new(),
        });
        let thread = {
            let tail = tail.clone();
            let path = file.path.to_path_buf();
            std::thread::Builder::new()
                .name("basalt-grow".into())
                .spawn(move || tail.run(&file))
                .map_err(|source| Error::Io { path, source })?
        };
        Ok(Grower {
            tail,
            thread: Some(thread),
        })
    }

    pub(crate) fn tail(&self) -> &Tail {
        &self.tail
    }

    /// The shared tail state (tests: its strong count tells whether the thread is gone).
    #[cfg(test)]
    pub(crate) fn tail_arc(&self) -> &Arc<Tail> {
        &self.tail
    }
}

impl Drop for Grower {
    fn drop(&mut self) {
        // Even if a panic poisoned the mutex: the flag must reach the thread.
        let mut state = self
            .tail
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.stop = true;
        drop(state);
        self.tail.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            // It finishes at most one chunk. A panic in it was an invariant failure, already
            // reported on stderr; do not panic again inside a drop.
            let _ = thread.join();
        }
    }
}

impl Tail {
    fn lock(&self) -> MutexGuard<'_, TailState> {
        self.state.lock().expect("tail lock")
    }

    fn wait<'a>(&self, state: MutexGuard<'a, TailState>) -> MutexGuard<'a, TailState> {
        self.changed.wait(state).expect("tail lock")
    }

    /// Waits for the grower's chunk in flight to end; it starts no other meanwhile.
    fn wait_chunk<'a>(&self, mut state: MutexGuard<'a, TailState>) -> MutexGuard<'a, TailState> {
        state.writer_waiting = true;
        state.writer_waits += 1;
        while state.filling {
            state = self.wait(state);
        }
        state.writer_waiting = false;
        // The grower skipped its target for us: let it look again (once we unlock).
        self.changed.notify_all();
        state
    }

    /// The grower thread: fill toward `target` a chunk at a time, until stopped.
    fn run(&self, file: &DataFile) {
        let mut state = self.lock();
        loop {
            if state.stop {
                return;
            }
            if state.len >= state.target || state.writer_waiting {
                state = self.wait(state);
                continue;
            }
            let from = state.len;
            let to = state.target.min(from + CHUNK_BYTES);
            assert!(
                from >= state.data_end,
                "grower would write zeros at {from} below data written up to {}",
                state.data_end
            );
            state.filling = true;
            drop(state);
            let result = file.zero_fill(from, to);
            state = self.lock();
            state.filling = false;
            match result {
                Ok(()) => {
                    state.len = to;
                    state.grower_filled += to - from;
                }
                Err(_) => {
                    // Give up this round (the disk may be full); a commit that needs the
                    // space fills it inline and reports the error, and its next request for
                    // slack tries again. Part of the chunk may have been written: only zeros,
                    // past `data_end`, so the length may count them.
                    state.target = state.len;
                    if let Ok(actual) = file.len() {
                        state.len = state.len.max(actual);
                    }
                }
            }
            self.changed.notify_all();
        }
    }

    /// Makes the file at least `needed` bytes (zero-filled, past what the grower prepared) so
    /// the commit can write pages below it, claims them for data, and asks the grower to
    /// refill the slack if the commit leaves less than half of it. Returns the file length.
    pub(crate) fn ensure(&self, file: &DataFile, needed: u64) -> Result<u64> {
        let mut state = self.lock();
        // A grower chunk in flight may cover the need, and the rest can only be written after
        // it: wait for it (one chunk at most).
        if state.len < needed && state.filling {
            state = self.wait_chunk(state);
        }
        debug_assert!(
            state.filling || file.len().ok() == Some(state.len),
            "cached file length"
        );
        if state.len < needed {
            let from = state.len;
            let to = needed.next_multiple_of(PAGE_SIZE as u64);
            assert!(
                from >= state.data_end,
                "commit would write zeros at {from} below data written up to {}",
                state.data_end
            );
            file.zero_fill(from, to)?;
            state.len = to;
            state.inline_filled += to - from;
        }
        state.data_end = state.data_end.max(needed);
        let slack = slack_for(needed);
        if state.len < needed + slack / 2 {
            let target = (needed + slack).next_multiple_of(PAGE_SIZE as u64);
            if target > state.target {
                state.target = target;
                self.changed.notify_all();
            }
        }
        Ok(state.len)
    }

    /// After a commit: cuts a free tail much larger than the slack (`used` = bytes of pages
    /// any meta, durable or published, still counts) back to `used` plus the slack. The
    /// grower never aims past `used + slack_for(used)` (slack grows with `used`), so a cut
    /// needs `used` to have dropped by more than the slack since: the two do not fight.
    pub(crate) fn trim(&self, file: &DataFile, used: u64) -> Result<()> {
        let slack = slack_for(used);
        let mut state = self.lock();
        let cut = |state: &TailState| state.len > used + (2 * slack).max(state.len / 4);
        // Checked before waiting for a chunk in flight: the common case (nothing to cut)
        // must not make the writer wait for the grower.
        if cut(&state) && state.filling {
            state = self.wait_chunk(state);
        }
        if cut(&state) {
            Self::cut_locked(&mut state, file, used, used + slack)?;
            self.changed.notify_all();
        }
        Ok(())
    }

    /// Cuts the file to exactly `used` bytes (defrag's last step); the grower stays idle
    /// until a commit asks for slack again.
    pub(crate) fn cut(&self, file: &DataFile, used: u64) -> Result<()> {
        let mut state = self.lock();
        if state.filling {
            state = self.wait_chunk(state);
        }
        if state.len > used {
            Self::cut_locked(&mut state, file, used, used)?;
            self.changed.notify_all();
        }
        Ok(())
    }

    fn cut_locked(state: &mut TailState, file: &DataFile, used: u64, len: u64) -> Result<()> {
        assert!(len >= used, "cut below the pages in use");
        assert!(!state.filling, "cut while the grower writes");
        file.set_len(len)?;
        state.len = len;
        // Data past the cut was in free pages; it is gone now.
        state.data_end = state.data_end.min(len);
        state.target = state.target.min(len);
        Ok(())
    }
}

/// What the tail looks like (tests).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TailStats {
    pub(crate) len: u64,
    pub(crate) target: u64,
    pub(crate) data_end: u64,
    pub(crate) inline_filled: u64,
    pub(crate) grower_filled: u64,
    pub(crate) writer_waits: u64,
}

#[cfg(test)]
impl Tail {
    pub(crate) fn stats(&self) -> TailStats {
        let state = self.lock();
        TailStats {
            len: state.len,
            target: state.target,
            data_end: state.data_end,
            inline_filled: state.inline_filled,
            grower_filled: state.grower_filled,
            writer_waits: state.writer_waits,
        }
    }

    /// Waits until the grower has reached its target (bounded by `timeout`); the stats then.
    pub(crate) fn settled(&self, timeout: std::time::Duration) -> TailStats {
        let deadline = std::time::Instant::now() + timeout;
        let mut state = self.lock();
        while state.filling || state.len < state.target {
            let left = deadline
                .checked_duration_since(std::time::Instant::now())
                .expect("grower did not reach its target in time");
            state = self.changed.wait_timeout(state, left).expect("tail lock").0;
        }
        drop(state);
        self.stats()
    }
}
