//! The lock that keeps a second process off a data directory in use. Start-up changes the
//! directory before the engine takes its database's lock (it swaps in a raft snapshot
//! received before a restart, removes an unfinished one, writes `--auto-tls` certificates),
//! so a second server started on a running member's directory must be refused before that,
//! and so must an offline tool while it works (`basalt-util check`, `defrag`).
//!
//! The lock is an exclusive `flock` on `<data-dir>/member/lock`, a regular file opened for
//! writing: NFS emulates `flock` with a byte-range lock, which a directory (read-only to open)
//! cannot take, so locking the directory itself would refuse every start there.

use std::fs::{File, OpenOptions};
use std::path::Path;

use basalt_engine::file_lock::{lock_exclusive, LOCK_WAIT};

/// The lock file's name, inside `<data-dir>/member`.
const LOCK_FILE: &str = "lock";

/// Held for as long as this process works on the data directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Locks `data_dir` for this process (creating `<data-dir>/member` and its lock file if
/// needed), or says why not: another process held it past the engine's lock wait.
pub fn lock(data_dir: &Path) -> Result<DataDirLock, String> {
    let member_dir = data_dir.join("member");
    std::fs::create_dir_all(&member_dir)
        .map_err(|e| format!("cannot create {}: {e}", member_dir.display()))?;
    let path = member_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match lock_exclusive(&file, LOCK_WAIT) {
        Ok(true) => Ok(DataDirLock { _file: file }),
        Ok(false) => Err(format!(
            "data directory {} is in use by another process (it still held the lock on {} \
             after {} ms)",
            data_dir.display(),
            path.display(),
            LOCK_WAIT.as_millis()
        )),
        Err(e) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}
