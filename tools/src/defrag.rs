//! `basalt-util defrag --data-dir D`: defragments a stopped member's database (etcdutl's
//! `defrag`). A running member holds the database's lock, so this refuses to touch its file.

use std::path::Path;

/// Root-to-leaf paths moved per step; offline, nothing waits on the writer between steps.
const KEYS_PER_STEP: usize = 4096;

pub fn run(data_dir: &Path) -> Result<(), String> {
    let db_path = crate::database_path(data_dir);
    let (engine, _data_dir_lock) = crate::stopped_member::open_database(data_dir)?;
    let report = engine
        .defragment(KEYS_PER_STEP)
        .map_err(|e| format!("defragmenting {} failed: {e}", db_path.display()))?;
    eprintln!(
        "{}",
        serde_json::json!({
            "level": "info",
            "msg": "defragmented",
            "path": db_path.display().to_string(),
            "size-before": report.bytes_before,
            "size-after": report.bytes_after,
        })
    );
    println!("Finished defragmenting etcd data[{}]", data_dir.display());
    Ok(())
}
