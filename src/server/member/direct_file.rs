//! A new file appended to with O_DIRECT, straight to the disk rather than through the page
//! cache, from one aligned staging buffer: a snapshot's copy is written once and synced, never
//! read back while the member runs on it, so a trip through the page cache would only add a
//! copy and the kernel's writeback (measured on this machine's disk: ~1 GB/s direct against
//! ~0.5 GB/s buffered with the fdatasync). Where the file system refuses O_DIRECT (tmpfs), the
//! file is written through the page cache instead; either way [`DirectFile::finish`] syncs it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// O_DIRECT's unit: buffer address, length and file offset are multiples of it (a page covers
/// every device's logical block).
const DIRECT_ALIGN_BYTES: usize = 4096;

/// Bytes staged before one write: large writes, bounded memory.
const STAGING_BYTES: usize = 1 << 20;

/// A file being appended to, directly when the file system allows it.
pub struct DirectFile {
    file: File,
    direct: bool,
    /// Holds an aligned window of STAGING_BYTES at `start`; never reallocated.
    staging: Vec<u8>,
    start: usize,
    filled: usize,
}

impl DirectFile {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> io::Result<DirectFile> {
        let direct = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        let (file, direct) = match direct {
            Ok(file) => (file, true),
            Err(_) => (File::create(path)?, false),
        };
        let staging = vec![0u8; STAGING_BYTES + DIRECT_ALIGN_BYTES];
        let start = staging.as_ptr().align_offset(DIRECT_ALIGN_BYTES);
        assert!(start < DIRECT_ALIGN_BYTES, "a byte buffer can be aligned");
        Ok(DirectFile {
            file,
            direct,
            staging,
            start,
            filled: 0,
        })
    }

    /// Appends `bytes`.
    pub fn append(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        if !self.direct {
            return self.file.write_all(bytes);
        }
        while !bytes.is_empty() {
            let take = (STAGING_BYTES - self.filled).min(bytes.len());
            let at = self.start + self.filled;
            self.staging[at..at + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled == STAGING_BYTES {
                self.write_staged()?;
            }
        }
        Ok(())
    }

    fn write_staged(&mut self) -> io::Result<()> {
        let staged = &self.staging[self.start..self.start + self.filled];
        self.file.write_all(staged)?;
        self.filled = 0;
        Ok(())
    }

    /// Writes what is staged and makes the file durable (fdatasync: O_DIRECT alone leaves the
    /// device's cache and the file's size unsynced).
    pub fn finish(mut self) -> io::Result<File> {
        if self.direct && !self.filled.is_multiple_of(DIRECT_ALIGN_BYTES) {
            // O_DIRECT writes whole blocks only: the unaligned tail goes through the page cache.
            let fd = self.file.as_raw_fd();
            // SAFETY: fcntl on a descriptor `self.file` keeps open only reads and sets its
            // status flags.
            let cleared = unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) == 0
            };
            if !cleared {
                return Err(io::Error::last_os_error());
            }
        }
        if self.filled > 0 {
            self.write_staged()?;
        }
        self.file.sync_all()?;
        Ok(self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_arrives_whatever_the_pieces_and_an_unaligned_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy");
        let expected: Vec<u8> = (0..(3 * STAGING_BYTES + 4096 + 17))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut file = DirectFile::create(&path).unwrap();
        for piece in expected.chunks(300_000) {
            file.append(piece).unwrap();
        }
        drop(file.finish().unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }
}
