//! `basalt-util check --data-dir D`: walks a stopped member's whole database — every page
//! reachable once or free, checksums, key order, the key index against the change log — and
//! says what it found. Exit status 1 and the damage named when anything is wrong.

use std::path::Path;

pub fn run(data_dir: &Path) -> Result<(), String> {
    let db_path = crate::database_path(data_dir);
    let (engine, _data_dir_lock) = crate::stopped_member::open_database(data_dir)?;
    let report = engine
        .check()
        .map_err(|e| format!("{} is damaged: {e}", db_path.display()))?;
    let view = engine.read().map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::json!({
            "path": db_path.display().to_string(),
            "revision": view.current_revision(),
            "compact_revision": view.compact_revision(),
            "applied_index": view.applied_index(),
            "pages_total": report.pages_total,
            "pages_reachable": report.pages_reachable,
            "pages_free": report.pages_free,
            "pages_pending": report.pages_pending,
            "entries": report.entries,
        })
    );
    Ok(())
}
