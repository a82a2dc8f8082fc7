//! Helpers shared by the log's integration tests.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
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

/// Fails storage operations on command (with `error_code`), and remembers every write with its
/// pre-image so a test can tear it afterwards.
pub struct ScriptedFaults {
    pub fail_fdatasyncs: Cell<bool>,
    pub fail_writes: Cell<bool>,
    pub error_code: i32,
    pub writes: RefCell<Vec<WriteRecord>>,
}

impl ScriptedFaults {
    pub fn new(error_code: i32) -> ScriptedFaults {
        ScriptedFaults {
            fail_fdatasyncs: Cell::new(false),
            fail_writes: Cell::new(false),
            error_code,
            writes: RefCell::new(Vec::new()),
        }
    }
}

impl FaultInjector for ScriptedFaults {
    fn before_write(&self, path: &Path, offset: u64, len: usize) -> io::Result<()> {
        if self.fail_writes.get() {
            return Err(io::Error::from_raw_os_error(self.error_code));
        }
        if path.extension().is_none_or(|e| e != "wal") {
            return Ok(()); // spares being pre-written are synced before use; not torn here
        }
        let mut pre_image = vec![0u8; len];
        let file = std::fs::File::open(path)?;
        let mut filled = 0;
        while filled < len {
            match file.read_at(&mut pre_image[filled..], offset + filled as u64)? {
                0 => break,
                n => filled += n,
            }
        }
        self.writes.borrow_mut().push(WriteRecord {
            path: path.to_owned(),
            offset,
            len,
            pre_image,
        });
        Ok(())
    }

    fn before_fdatasync(&self, _path: &Path) -> io::Result<()> {
        if self.fail_fdatasyncs.get() {
            return Err(io::Error::from_raw_os_error(self.error_code));
        }
        Ok(())
    }
}

/// Puts back the pre-image of each 512-byte sector of `writes` where `keep_new(sector)` says no:
/// what a crash leaves of writes that were issued but never synced.
pub fn tear_writes(writes: &[WriteRecord], mut keep_new: impl FnMut() -> bool) {
    for write in writes {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&write.path)
            .expect("open for tearing");
        for sector in (0..write.len).step_by(512) {
            if !keep_new() {
                let end = (sector + 512).min(write.len);
                file.write_all_at(&write.pre_image[sector..end], write.offset + sector as u64)
                    .expect("tear");
            }
        }
        file.sync_all().expect("sync torn file");
    }
}
