//! A TLS configuration rebuilt when its files change. etcd re-reads its key pair on every
//! handshake (Go's `GetCertificate`) and its CRL on every connection; here each handshake costs
//! one `stat` per file, and only a change rebuilds.
//!
//! Every executor reads the current configuration through an `ArcSwap` (no lock). A rebuild is
//! done by the first handshake that sees the change, under a mutex that is only ever tried:
//! a handshake on another core that sees the same change meanwhile uses the configuration it
//! has instead of waiting. A rebuild that fails keeps the previous configuration, logs once,
//! and is tried again when the files change again.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, TryLockError};

use arc_swap::ArcSwap;

use super::TlsError;

/// What `stat` says about a file, enough to see it replaced or rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileStamp {
    device: u64,
    inode: u64,
    size_bytes: u64,
    modified_ns: i128,
    changed_ns: i128,
}

fn stamp(path: &PathBuf) -> Option<FileStamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        device: metadata.dev(),
        inode: metadata.ino(),
        size_bytes: metadata.size(),
        modified_ns: i128::from(metadata.mtime()) * 1_000_000_000
            + i128::from(metadata.mtime_nsec()),
        changed_ns: i128::from(metadata.ctime()) * 1_000_000_000
            + i128::from(metadata.ctime_nsec()),
    })
}

/// One configuration and the file stamps it was built from.
struct Generation<T> {
    value: Arc<T>,
    stamps: Vec<Option<FileStamp>>,
    /// The stamps of a failed rebuild since, so the same failure is not retried (and logged)
    /// on every handshake.
    failed_stamps: Option<Vec<Option<FileStamp>>>,
}

/// Builds the rebuilt value from the files.
type Build<T> = Box<dyn Fn() -> Result<T, TlsError> + Send + Sync>;

/// A value built from files, rebuilt when they change.
pub(crate) struct Reloading<T> {
    files: Vec<PathBuf>,
    build: Build<T>,
    current: ArcSwap<Generation<T>>,
    rebuilding: Mutex<()>,
}

impl<T> Reloading<T> {
    /// Builds the first value; its error is the caller's start-up refusal.
    pub(crate) fn new(files: Vec<PathBuf>, build: Build<T>) -> Result<Reloading<T>, TlsError> {
        let stamps = files.iter().map(stamp).collect();
        let value = Arc::new(build()?);
        Ok(Reloading {
            files,
            build,
            current: ArcSwap::from_pointee(Generation {
                value,
                stamps,
                failed_stamps: None,
            }),
            rebuilding: Mutex::new(()),
        })
    }

    /// The value for the next handshake: rebuilt first if the files changed since.
    pub(crate) fn current(&self) -> Arc<T> {
        let stamps: Vec<Option<FileStamp>> = self.files.iter().map(stamp).collect();
        {
            let generation = self.current.load();
            if is_current(&generation, &stamps) {
                return generation.value.clone();
            }
        }
        let _rebuilding = match self.rebuilding.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // Another core is rebuilding: this handshake uses what is there.
            Err(TryLockError::WouldBlock) => return self.current.load().value.clone(),
        };
        let generation = self.current.load_full();
        if is_current(&generation, &stamps) {
            return generation.value.clone(); // rebuilt while we checked
        }
        let files = self.describe_files();
        match (self.build)() {
            Ok(value) => {
                tracing::info!(files, "TLS files changed; reloaded");
                let value = Arc::new(value);
                self.current.store(Arc::new(Generation {
                    value: value.clone(),
                    stamps,
                    failed_stamps: None,
                }));
                value
            }
            Err(error) => {
                tracing::warn!(
                    files,
                    %error,
                    "TLS files changed but cannot be loaded; keeping the previous certificates"
                );
                self.current.store(Arc::new(Generation {
                    value: generation.value.clone(),
                    stamps: generation.stamps.clone(),
                    failed_stamps: Some(stamps),
                }));
                generation.value.clone()
            }
        }
    }

    fn describe_files(&self) -> String {
        let names: Vec<String> = self
            .files
            .iter()
            .map(|file| file.display().to_string())
            .collect();
        names.join(", ")
    }
}

fn is_current<T>(generation: &Generation<T>, stamps: &[Option<FileStamp>]) -> bool {
    generation.stamps == stamps || generation.failed_stamps.as_deref() == Some(stamps)
}

#[cfg(test)]
mod tests {
    //! Goal: a change to any watched file rebuilds once; a failed rebuild keeps the old value
    //! and is not retried until the files change again. Method: a counter as the "config",
    //! built from a file's contents.
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn rebuilds_on_change_and_keeps_the_old_value_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("value");
        std::fs::write(&path, "1").unwrap();
        let builds = Arc::new(AtomicUsize::new(0));
        let counted = builds.clone();
        let read = path.clone();
        let reloading = Reloading::new(
            vec![path.clone()],
            Box::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let text = std::fs::read_to_string(&read).unwrap();
                text.trim()
                    .parse::<u32>()
                    .map_err(|error| TlsError::Setting(error.to_string()))
            }),
        )
        .unwrap();
        assert_eq!(*reloading.current(), 1);
        assert_eq!(*reloading.current(), 1);
        assert_eq!(builds.load(Ordering::SeqCst), 1, "no change, no rebuild");

        std::fs::write(&path, "22").unwrap();
        assert_eq!(*reloading.current(), 22);
        assert_eq!(builds.load(Ordering::SeqCst), 2);

        std::fs::write(&path, "not a number").unwrap();
        assert_eq!(
            *reloading.current(),
            22,
            "a failed rebuild keeps the old value"
        );
        assert_eq!(*reloading.current(), 22);
        assert_eq!(
            builds.load(Ordering::SeqCst),
            3,
            "the failure is not retried"
        );

        // Replaced by rename (a new inode), as certificate managers do.
        let next = dir.path().join("next");
        std::fs::write(&next, "333").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(*reloading.current(), 333);
        assert_eq!(builds.load(Ordering::SeqCst), 4);
    }
}
