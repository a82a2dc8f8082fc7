//! The lock that keeps a second server off a data directory in use. Start-up changes the
//! directory before the engine takes its database's lock (it swaps in a raft snapshot
//! received before a restart, and removes an unfinished one), so a second server started on
//! a running member's directory must be refused before that: it takes an exclusive `flock` on
//! `<data-dir>/member`, held until the process exits or re-execs itself (the descriptor is
//! close-on-exec).

use std::fs::File;
use std::path::Path;

use basalt_engine::file_lock::{lock_exclusive, LOCK_WAIT};

/// Held for as long as this process serves the data directory.
#[derive(Debug)]
pub struct DataDirLock {
    _member_dir: File,
}

/// Locks `data_dir` for this process (creating `<data-dir>/member` if needed), or says why
/// not: another process holds it past the engine's lock wait.
pub fn lock(data_dir: &Path) -> Result<DataDirLock, String> {
    let member_dir = data_dir.join("member");
    std::fs::create_dir_all(&member_dir)
        .map_err(|e| format!("cannot create {}: {e}", member_dir.display()))?;
    let dir = File::open(&member_dir)
        .map_err(|e| format!("cannot open {}: {e}", member_dir.display()))?;
    match lock_exclusive(&dir, LOCK_WAIT) {
        Ok(true) => Ok(DataDirLock { _member_dir: dir }),
        Ok(false) => Err(format!(
            "data directory {} is in use by another process (it still held the lock on {} \
             after {} ms)",
            data_dir.display(),
            member_dir.display(),
            LOCK_WAIT.as_millis()
        )),
        Err(e) => Err(format!("cannot lock {}: {e}", member_dir.display())),
    }
}
