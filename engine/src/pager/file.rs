//! Positioned reads, writes and syncs on the data file (no mapping involved).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::PAGE_SIZE;
use crate::error::{Error, Result};

/// The data file, opened read-write and locked exclusively by this process.
pub(crate) struct DataFile {
    pub(crate) file: File,
    pub(crate) path: Arc<PathBuf>,
    /// Serializes fdatasyncs and remembers a failed one. Linux reports a writeback error to
    /// one fdatasync only, and after it the failed pages may be gone from the page cache: a
    /// sync running beside the one that got the error could return success for pages that
    /// never reached the disk. Holding this around each fdatasync, and failing every later
    /// one, means no sync ever claims durability after a lost write.
    pub(crate) sync_failed: std::sync::Mutex<bool>,
}

impl DataFile {
    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.to_path_buf(),
            source,
        }
    }

    /// Reads one page with pread (used for the meta pages at open).
    pub(crate) fn read_page(&self, page: u64) -> Result<Vec<u8>> {
        self.read_pages(page, 1)
    }

    /// Reads `n` pages with pread (checks at open that should not map pages into memory).
    pub(crate) fn read_pages(&self, page: u64, n: u64) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; n as usize * PAGE_SIZE];
        self.file
            .read_exact_at(&mut buf, page * PAGE_SIZE as u64)
            .map_err(|e| self.io(e))?;
        Ok(buf)
    }

    /// Writes whole pages starting at `page`.
    pub(crate) fn write_pages(&self, page: u64, bytes: &[u8]) -> Result<()> {
        assert!(bytes.len().is_multiple_of(PAGE_SIZE), "partial page write");
        self.file
            .write_all_at(bytes, page * PAGE_SIZE as u64)
            .map_err(|e| self.io(e))
    }

    /// Writes whole pages, given as buffers that follow each other in the file from `page`,
    /// with pwritev: no copy into one contiguous buffer first.
    pub(crate) fn write_pages_vectored(&self, page: u64, buffers: &[&[u8]]) -> Result<()> {
        /// Linux's IOV_MAX: iovecs one pwritev accepts.
        const IOVECS_MAX: usize = 1024;
        let mut offset = page * PAGE_SIZE as u64;
        for chunk in buffers.chunks(IOVECS_MAX) {
            let mut iovecs: Vec<libc::iovec> = chunk
                .iter()
                .map(|b| {
                    assert!(b.len().is_multiple_of(PAGE_SIZE), "partial page write");
                    libc::iovec {
                        iov_base: b.as_ptr() as *mut libc::c_void,
                        iov_len: b.len(),
                    }
                })
                .collect();
            let mut first = 0;
            while first < iovecs.len() {
                // SAFETY: every iovec points into a live `&[u8]` of `buffers` with its exact
                // length (or a suffix of one, after a short write); pwritev only reads them.
                let written = unsafe {
                    libc::pwritev(
                        std::os::fd::AsRawFd::as_raw_fd(&self.file),
                        iovecs[first..].as_ptr(),
                        (iovecs.len() - first) as libc::c_int,
                        offset as libc::off_t,
                    )
                };
                if written < 0 {
                    let error = std::io::Error::last_os_error();
                    if error.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(self.io(error));
                }
                if written == 0 {
                    return Err(self.io(std::io::ErrorKind::WriteZero.into()));
                }
                // A short write: skip what was written, resume inside the iovec it ended in.
                offset += written as u64;
                let mut left = written as usize;
                while left > 0 {
                    let iovec = &mut iovecs[first];
                    let n = left.min(iovec.iov_len);
                    // SAFETY: `n` ≤ the iovec's length, so the pointer stays in its buffer.
                    iovec.iov_base = unsafe { (iovec.iov_base as *mut u8).add(n) }.cast();
                    iovec.iov_len -= n;
                    left -= n;
                    if iovec.iov_len == 0 {
                        first += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// fdatasync: everything written so far is durable when this returns. Once one has
    /// failed, every later one fails too (see `sync_failed`).
    pub(crate) fn sync(&self) -> Result<()> {
        let mut failed = self.sync_failed.lock().expect("sync lock");
        if *failed {
            return Err(self.io(std::io::Error::other(
                "an earlier fdatasync of this file failed: pages written before it may be lost",
            )));
        }
        let result = self.file.sync_data();
        *failed = result.is_err();
        result.map_err(|e| self.io(e))
    }

    /// File length in bytes.
    pub(crate) fn len(&self) -> Result<u64> {
        Ok(self.file.metadata().map_err(|e| self.io(e))?.len())
    }

    /// Writes zeros to bytes `from..to` (extending the file), so later page writes there are
    /// plain overwrites of allocated blocks.
    pub(crate) fn zero_fill(&self, from: u64, to: u64) -> Result<()> {
        /// Zeros in the binary's bss: no allocation and no memset per fill.
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        let mut at = from;
        while at < to {
            let n = (to - at).min(ZEROS.len() as u64);
            self.file
                .write_all_at(&ZEROS[..n as usize], at)
                .map_err(|e| self.io(e))?;
            at += n;
        }
        Ok(())
    }

    /// The offset of the first hole at or after `from` (the file length if there is none):
    /// tests check that zero-filled slack is allocated, not sparse.
    #[cfg(test)]
    pub(crate) fn first_hole(&self, from: u64) -> Result<u64> {
        // SAFETY: lseek on a descriptor this struct owns; no memory is passed.
        let at = unsafe {
            libc::lseek(
                std::os::fd::AsRawFd::as_raw_fd(&self.file),
                from as libc::off_t,
                libc::SEEK_HOLE,
            )
        };
        if at < 0 {
            return Err(self.io(std::io::Error::last_os_error()));
        }
        Ok(at as u64)
    }

    /// Sets the file length in bytes.
    pub(crate) fn set_len(&self, len: u64) -> Result<()> {
        self.file.set_len(len).map_err(|e| self.io(e))
    }
}
