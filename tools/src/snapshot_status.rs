//! `basalt-util snapshot status FILE`: etcdutl's figures for a snapshot file — the store's
//! hash (what the Hash RPC returns), its revision, the entries of every table, and its size.
//! The file is never written: the database is opened from a copy in a temporary directory.

use std::path::Path;

use basalt_engine::Engine;

use crate::snapshot_file::SnapshotFile;
use crate::{human_size, OutputFormat};

/// What `status` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotStatus {
    pub hash: u32,
    pub revision: i64,
    pub total_keys: u64,
    pub total_size: u64,
}

pub fn run(file: &Path, format: OutputFormat) -> Result<(), String> {
    let status = read(file)?;
    println!("{}", render(&status, format));
    Ok(())
}

/// Reads the figures of the snapshot at `file` (its hash, when present, must match: a damaged
/// file is not described as if it were whole).
pub fn read(file: &Path) -> Result<SnapshotStatus, String> {
    let snapshot = SnapshotFile::read(file, true)?;
    let scratch =
        tempfile::tempdir().map_err(|e| format!("cannot make a scratch directory: {e}"))?;
    let copy = scratch.path().join("db");
    std::fs::write(&copy, &snapshot.database)
        .map_err(|e| format!("cannot copy the snapshot to {}: {e}", copy.display()))?;
    let engine = Engine::open(&copy).map_err(|_| "invalid database".to_string())?;
    let report = engine
        .check()
        .map_err(|e| format!("the snapshot's database is damaged: {e}"))?;
    let view = engine.read().map_err(|e| e.to_string())?;
    Ok(SnapshotStatus {
        hash: view.hash_store().map_err(|e| e.to_string())?,
        revision: view.current_revision(),
        total_keys: report.entries,
        total_size: snapshot.database.len() as u64,
    })
}

/// etcdutl's three shapes of the same four figures.
pub fn render(status: &SnapshotStatus, format: OutputFormat) -> String {
    let size = human_size::bytes(status.total_size);
    match format {
        OutputFormat::Simple => format!(
            "{:x}, {}, {}, {}",
            status.hash, status.revision, status.total_keys, size
        ),
        OutputFormat::Json => serde_json::json!({
            "hash": status.hash,
            "revision": status.revision,
            "totalKey": status.total_keys,
            "totalSize": status.total_size,
        })
        .to_string(),
        OutputFormat::Table => {
            let header = ["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"];
            let row = [
                format!("{:x}", status.hash),
                status.revision.to_string(),
                status.total_keys.to_string(),
                size,
            ];
            table(&header, &row)
        }
    }
}

/// A one-row table in the tablewriter style etcdutl prints: headers centred, the hash and
/// the size left-aligned, the numbers right-aligned.
fn table(header: &[&str; 4], row: &[String; 4]) -> String {
    let widths: Vec<usize> = header
        .iter()
        .zip(row)
        .map(|(h, v)| h.len().max(v.len()))
        .collect();
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+";
    let centred: String = header
        .iter()
        .zip(&widths)
        .map(|(h, w)| format!("| {h:^w$} "))
        .collect::<String>()
        + "|";
    let values: String = row
        .iter()
        .zip(&widths)
        .enumerate()
        .map(|(column, (v, w))| match column {
            1 | 2 => format!("| {v:>w$} "),
            _ => format!("| {v:<w$} "),
        })
        .collect::<String>()
        + "|";
    [rule.as_str(), &centred, &rule, &values, &rule].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: SnapshotStatus = SnapshotStatus {
        hash: 0xfe01cf57,
        revision: 10,
        total_keys: 7,
        total_size: 2_105_344,
    };

    #[test]
    fn the_three_formats_carry_the_same_figures() {
        assert_eq!(
            render(&STATUS, OutputFormat::Simple),
            "fe01cf57, 10, 7, 2.1 MB"
        );
        assert_eq!(
            render(&STATUS, OutputFormat::Json),
            r#"{"hash":4261531479,"revision":10,"totalKey":7,"totalSize":2105344}"#
        );
        assert_eq!(
            render(&STATUS, OutputFormat::Table),
            "+----------+----------+------------+------------+\n\
             |   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |\n\
             +----------+----------+------------+------------+\n\
             | fe01cf57 |       10 |          7 | 2.1 MB     |\n\
             +----------+----------+------------+------------+"
        );
    }
}
