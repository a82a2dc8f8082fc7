//! Opening a stopped member's database for offline work. A running member holds an exclusive
//! lock on its database file for as long as it runs (a `flock`, taken by the engine's open:
//! `basalt_engine::file_lock`); the tools try the same lock first, at once, so a member in use
//! is refused with a clear message before anything is read or written. They then hold the
//! data directory's lock while they work, as a member does, so no member starts on it (and
//! changes its files at start-up) meanwhile.

use std::fs::{File, TryLockError};
use std::path::Path;

use basalt::server::data_dir_lock::{self, DataDirLock};
use basalt_engine::Engine;

/// The engine over `data_dir`'s database, once it is known that no member runs on it, and the
/// data directory's lock, which keeps a member from starting there until it is dropped.
pub fn open_database(data_dir: &Path) -> Result<(Engine, DataDirLock), String> {
    let db_path = crate::database_path(data_dir);
    if !db_path.is_file() {
        return Err(format!("cannot open database at {}", db_path.display()));
    }
    let file = File::open(&db_path)
        .map_err(|e| format!("cannot open database at {}: {e}", db_path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(format!(
                "data directory {} is in use: a running member holds the lock on {} (stop it \
                 first)",
                data_dir.display(),
                db_path.display()
            ))
        }
        Err(TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", db_path.display()))
        }
    }
    // The engine takes the lock itself: flock locks conflict between open files even within
    // one process, so this probe lets go first.
    drop(file);
    let data_dir_lock = data_dir_lock::lock(data_dir)?;
    let engine = Engine::open(&db_path)
        .map_err(|e| format!("cannot open database at {}: {e}", db_path.display()))?;
    Ok((engine, data_dir_lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While a tool works on a data directory, a member starting there is refused (it takes the
    /// directory's lock before it changes anything); once the tool is done, it may start.
    #[test]
    fn a_tool_at_work_holds_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let db_path = crate::database_path(dir.path());
        std::fs::create_dir_all(db_path.parent().unwrap()).unwrap();
        drop(Engine::open(&db_path).unwrap());

        let (engine, held) = open_database(dir.path()).unwrap();
        let refused = data_dir_lock::lock(dir.path()).unwrap_err();
        assert!(refused.contains("is in use"), "{refused}");
        drop((engine, held));
        data_dir_lock::lock(dir.path()).unwrap();
    }
}
