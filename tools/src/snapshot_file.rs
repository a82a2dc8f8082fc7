//! A snapshot file as `etcdctl snapshot save` writes it: the database, then (when it came
//! from the Snapshot RPC) the 32-byte SHA-256 of the database. A database is a whole number of
//! 512-byte sectors, so a size 32 past a multiple of 512 means the hash is there (etcd's rule).

use std::path::Path;

use sha2::{Digest, Sha256};

const HASH_BYTES: usize = 32;
const SECTOR_BYTES: usize = 512;

/// The database bytes of a snapshot file, its integrity checked.
pub struct SnapshotFile {
    pub database: Vec<u8>,
    /// Whether the file carried the hash (and it matched).
    pub hash_checked: bool,
}

impl SnapshotFile {
    /// Reads `path`; with `skip_hash_check` a file without the hash (a database copied from a
    /// data directory) is accepted, and a present hash is not checked, as etcd does.
    pub fn read(path: &Path, skip_hash_check: bool) -> Result<SnapshotFile, String> {
        let mut bytes = std::fs::read(path)
            .map_err(|e| format!("open {}: {}", path.display(), os_error(&e)))?;
        let has_hash = bytes.len() % SECTOR_BYTES == HASH_BYTES;
        if !has_hash {
            if !skip_hash_check {
                return Err("snapshot missing hash but --skip-hash-check=false".to_string());
            }
            return Ok(SnapshotFile {
                database: bytes,
                hash_checked: false,
            });
        }
        let stored = bytes.split_off(bytes.len() - HASH_BYTES);
        if !skip_hash_check {
            let computed = Sha256::digest(&bytes);
            if computed.as_slice() != stored.as_slice() {
                return Err(format!(
                    "expected sha256 {}, got {}",
                    go_bytes(&computed),
                    go_bytes(&stored)
                ));
            }
        }
        Ok(SnapshotFile {
            database: bytes,
            hash_checked: !skip_hash_check,
        })
    }
}

/// A byte slice as Go's `%v` prints it (etcd's error shows both hashes that way).
fn go_bytes(bytes: &[u8]) -> String {
    let numbers: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("[{}]", numbers.join(" "))
}

/// An I/O error as Go words the common ones (`no such file or directory`).
pub fn os_error(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        file
    }

    #[test]
    fn the_hash_is_checked_and_taken_off() {
        let database = vec![7u8; 4096];
        let mut bytes = database.clone();
        bytes.extend_from_slice(&Sha256::digest(&database));
        let read = SnapshotFile::read(file_with(&bytes).path(), false).unwrap();
        assert_eq!(read.database, database);
        assert!(read.hash_checked);

        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let error = SnapshotFile::read(file_with(&bytes).path(), false)
            .err()
            .unwrap();
        assert!(error.starts_with("expected sha256 ["), "{error}");
        // --skip-hash-check takes the hash off without checking it.
        let read = SnapshotFile::read(file_with(&bytes).path(), true).unwrap();
        assert_eq!(read.database, database);
    }

    #[test]
    fn a_file_without_the_hash_needs_skip_hash_check() {
        let database = vec![7u8; 4096];
        let error = SnapshotFile::read(file_with(&database).path(), false)
            .err()
            .unwrap();
        assert_eq!(error, "snapshot missing hash but --skip-hash-check=false");
        let read = SnapshotFile::read(file_with(&database).path(), true).unwrap();
        assert_eq!((read.database, read.hash_checked), (database, false));
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = SnapshotFile::read(Path::new("/nonexistent/snap.db"), false)
            .err()
            .unwrap();
        assert_eq!(
            error,
            "open /nonexistent/snap.db: no such file or directory"
        );
    }
}
