//! Helpers shared by the log's integration tests.
#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use basalt_wal::{FaultInjector, WalOptions};
use glommio::LocalExecutorBuilder;

/// Runs `body` on a fresh glommio executor and returns its result.
pub fn run<F, Fut, T>(body: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    LocalExecutorBuilder::default()
        .spawn(body)
        .expect("spawn glommio executor")
        .join()
        .expect("executor thread")
}

/// Small segments so tests roll often.
pub fn small_options() -> WalOptions {
    WalOptions {
        segment_bytes: 256 << 10,
        record_bytes_limit: 64 << 10,
        metadata_bytes_limit: 4 << 10,
        pending_bytes_limit: 128 << 10,
        spare_segments: 1,
        fault_injector: None,
    }
}

/// The payload of entry `index` in a test log of seed `seed`: its length varies, its bytes are
/// derived from the index so a misplaced record is caught.
pub fn payload(seed: u64, index: u64, max_len: usize) -> Vec<u8> {
    let mut state = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let len = (next() % (max_len as u64 + 1)) as usize;
    (0..len).map(|_| next() as u8).collect()
}

/// Every file in `dir` whose name ends with `.wal`, sorted.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// One write the log issued: where, and what the file held there before.
#[derive(Clone, Debug)]
pub struct WriteRecord {
    pub path: PathBuf,
    pub offset: u64,
    pub len: usize,
    pub pre_image: Vec<u8>,
}

/// Fails the `fail_fdatasync_at`-th fdatasync (counting from 1) and the
/// `fail_write_at`-th write with the given error, and remembers every write with its pre-image.
#[derive(Default)]
pub struct ScriptedFaults {
    pub fail_fdatasync_at: Option<u64>,
    pub fail_write_at: Option<u64>,
    pub error_code: i32,
    pub fdatasyncs: RefCell<u64>,
    pub writes_seen: RefCell<u64>,
    pub writes: RefCell<Vec<WriteRecord>>,
}

impl FaultInjector for ScriptedFaults {
    fn before_write(&self, path: &Path, offset: u64, len: usize) -> io::Result<()> {
        *self.writes_seen.borrow_mut() += 1;
        if Some(*self.writes_seen.borrow()) == self.fail_write_at {
            return Err(io::Error::from_raw_os_error(self.error_code));
        }
        let mut pre_image = vec![0u8; len];
        if let Ok(file) = std::fs::File::open(path) {
            use std::os::unix::fs::FileExt;
            let _ = file.read_at(&mut pre_image, offset);
        }
        self.writes.borrow_mut().push(WriteRecord { path: path.to_owned(), offset, len, pre_image });
        Ok(())
    }

    fn before_fdatasync(&self, _path: &Path) -> io::Result<()> {
        *self.fdatasyncs.borrow_mut() += 1;
        if Some(*self.fdatasyncs.borrow()) == self.fail_fdatasync_at {
            return Err(io::Error::from_raw_os_error(self.error_code));
        }
        Ok(())
    }
}
