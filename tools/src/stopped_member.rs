//! Opening a stopped member's database for offline work. A running member holds an exclusive
//! lock on its database file for as long as it runs (a `flock`, taken by the engine's open:
//! `basalt_engine::file_lock`); the tools try the same lock first, at once, so a member in use
//! is refused with a clear message before anything is read or written.

use std::fs::{File, TryLockError};
use std::path::Path;

use basalt_engine::Engine;

/// The engine over `data_dir`'s database, once it is known that no member runs on it.
pub fn open_database(data_dir: &Path) -> Result<Engine, String> {
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
    Engine::open(&db_path)
        .map_err(|e| format!("cannot open database at {}: {e}", db_path.display()))
}
