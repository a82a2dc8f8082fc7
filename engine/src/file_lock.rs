//! The exclusive `flock` that keeps a second process off a file in use, with a bounded wait
//! for a brief holder.
//!
//! A process that spawns a child hands it a copy of every descriptor, and with it the lock of
//! any file open at that moment, until the child's exec closes its copies (part-way through
//! execve, once it can no longer fail). So a file closed and reopened by one thread while
//! another thread spawns can find its own lock still held for a moment; the engine's tests
//! did (a full-disk test spawns a child). A real holder, a running member, holds its lock for
//! as long as it runs.

use std::fs::{File, TryLockError};
use std::io;
use std::time::{Duration, Instant};

/// How long an open waits for a lock before refusing the file as in use.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Between two attempts at the lock.
const RETRY_EVERY: Duration = Duration::from_millis(5);

/// Takes `file`'s exclusive lock, trying for up to `wait`: `Ok(true)` once taken, `Ok(false)`
/// if another open file still held it when `wait` ran out.
pub fn lock_exclusive(file: &File, wait: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(RETRY_EVERY)
            }
            Err(TryLockError::WouldBlock) => return Ok(false),
            Err(TryLockError::Error(error)) => return Err(error),
        }
    }
}
