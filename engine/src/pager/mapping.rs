//! The read-only memory map of the data file, and the per-page "checksum verified" bits.
//!
//! With `file.rs` (pwritev), the only module with `unsafe` code. A mapping reserves far more address space than
//! the file holds (`reserve_bytes`), so the file can grow under it without remapping; when the
//! file outgrows the reservation a new, larger `Mapping` is made and the old one stays alive in
//! the `Arc`s of the readers that pinned it.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{Mmap, MmapOptions, UncheckedAdvice};

use super::PAGE_SIZE;

/// One read-only mapping of the data file plus one "verified" bit per page it can address.
pub(crate) struct Mapping {
    mmap: Mmap,
    /// Pages the mapping can address (its length / PAGE_SIZE), not pages the file holds.
    pages_capacity: u64,
    /// Bit `p` set: page `p` (or the run starting at `p`) passed its checksum since it was last
    /// written. The writer clears the bits of every page it rewrites before publishing the commit.
    verified: Box<[AtomicU64]>,
}

impl Mapping {
    /// Maps `reserve_bytes` of `file` read-only (may exceed the file length).
    pub(crate) fn new(file: &File, reserve_bytes: u64) -> std::io::Result<Mapping> {
        assert!(reserve_bytes.is_multiple_of(PAGE_SIZE as u64));
        let len = usize::try_from(reserve_bytes).map_err(std::io::Error::other)?;
        // SAFETY: memmap2 is unsafe because another process (or this one) could modify or
        // truncate the file while it is mapped. The engine holds an exclusive lock on the file
        // (`File::try_lock` at open), never truncates it below a page any snapshot can see, and
        // only writes (with pwrite) pages that no live snapshot references, so the bytes a reader
        // sees never change under it. Bytes past the end of the file are mapped but never touched:
        // every access goes through `bytes`, whose callers check the page id against the
        // snapshot's page count, which never exceeds the file length.
        let mmap = unsafe { MmapOptions::new().len(len).map(file) }?;
        let pages_capacity = reserve_bytes / PAGE_SIZE as u64;
        let words = pages_capacity.div_ceil(64) as usize;
        let verified = (0..words).map(|_| AtomicU64::new(0)).collect();
        Ok(Mapping {
            mmap,
            pages_capacity,
            verified,
        })
    }

    /// Pages this mapping can address.
    pub(crate) fn pages_capacity(&self) -> u64 {
        self.pages_capacity
    }

    /// The bytes of `n_pages` pages starting at `page`, or `None` if outside the mapping.
    ///
    /// The caller must have checked that the pages lie below the snapshot's page count (and so
    /// inside the file).
    pub(crate) fn bytes(&self, page: u64, n_pages: u64) -> Option<&[u8]> {
        let end = page.checked_add(n_pages)?;
        if end > self.pages_capacity {
            return None;
        }
        let start = page as usize * PAGE_SIZE;
        self.mmap.get(start..end as usize * PAGE_SIZE)
    }

    /// Drops this process's mapping of the first `n_pages` pages (MADV_DONTNEED), so the
    /// resident set holds only what is read again; the kernel keeps the file's pages cached.
    pub(crate) fn release_resident(&self, n_pages: u64) -> std::io::Result<()> {
        let pages = n_pages.min(self.pages_capacity);
        let len = usize::try_from(pages * PAGE_SIZE as u64).map_err(std::io::Error::other)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the mapping is a read-only MAP_SHARED mapping of a file: after DONTNEED the
        // next access faults the page in again from the file, whose bytes for every page a
        // live snapshot can reach never change (the writer only writes pages no snapshot
        // references, see `new`). A reader holding a slice into the range therefore sees the
        // same bytes before and after; nothing private (no copy-on-write data) is discarded.
        unsafe {
            self.mmap
                .unchecked_advise_range(UncheckedAdvice::DontNeed, 0, len)
        }
    }

    /// Whether `page` passed its checksum since it was last written.
    pub(crate) fn is_verified(&self, page: u64) -> bool {
        let word = &self.verified[(page / 64) as usize];
        word.load(Ordering::Acquire) & (1 << (page % 64)) != 0
    }

    /// Records that `page` passed its checksum.
    pub(crate) fn mark_verified(&self, page: u64) {
        self.verified[(page / 64) as usize].fetch_or(1 << (page % 64), Ordering::AcqRel);
    }

    /// Forgets that `page` was verified (it is about to be rewritten).
    pub(crate) fn clear_verified(&self, page: u64) {
        if page < self.pages_capacity {
            self.verified[(page / 64) as usize].fetch_and(!(1 << (page % 64)), Ordering::AcqRel);
        }
    }
}
