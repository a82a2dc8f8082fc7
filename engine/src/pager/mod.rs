//! The bottom layer: the data file as an array of 4 KiB pages.
//!
//! Layout: page 0 and page 1 are the two meta pages ([`meta`]); every other page is a B+tree
//! node, a page of a value run (a large value), or the first page of the free-list run (or of
//! a legacy overflow run, format 2). A value run is the value's bytes alone, zero-padded to
//! whole pages, with no header: its length and checksum live in the leaf entry that points at
//! it (see `btree::page`), so a 4 KiB value takes exactly one page. Its checksum,
//! [`run_checksum`], covers the page id and every byte of its pages. Each other non-meta page
//! starts with a 16-byte header:
//!
//! ```text
//! 0..4   crc32 of (page id as u64 LE ++ bytes 4..end of the page or run)
//! 4      kind (leaf, branch, overflow, free list)
//! 5      reserved (0)
//! 6..8   entry count (nodes)
//! 8..16  aux: bytes used (nodes) or data length (runs)
//! ```
//!
//! Mixing the page id into the checksum catches a page written to the wrong place. Readers go
//! through the read-only [`mapping::Mapping`]; the writer writes with `pwrite` only to pages no
//! snapshot references, then publishes them with a new meta page.

pub(crate) mod file;
pub(crate) mod freelist;
pub(crate) mod mapping;
pub(crate) mod meta;

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use mapping::Mapping;

/// Size of every page in the data file.
pub const PAGE_SIZE: usize = 4096;
/// Largest run (overflow value or free list) a page header may claim; beyond it is corruption.
pub(crate) const RUN_BYTES_MAX: u64 = 1 << 30;
/// Size of the header at the start of every non-meta page.
pub(crate) const HEADER_SIZE: usize = 16;

/// What a page holds (byte 4 of its header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PageKind {
    Leaf = 1,
    Branch = 2,
    /// A headed overflow run (format 2 only; format 3 writes headerless value runs).
    Overflow = 3,
    FreeList = 4,
}

impl PageKind {
    fn from_byte(byte: u8) -> Option<PageKind> {
        match byte {
            1 => Some(PageKind::Leaf),
            2 => Some(PageKind::Branch),
            3 => Some(PageKind::Overflow),
            4 => Some(PageKind::FreeList),
            _ => None,
        }
    }
}

/// The checksum of a page or run that starts at `page`.
pub(crate) fn checksum(page: u64, bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&page.to_le_bytes());
    hasher.update(&bytes[4..]);
    hasher.finalize()
}

/// Writes the checksum into a finished page or run that will be stored at `page`.
pub(crate) fn seal(page: u64, bytes: &mut [u8]) {
    let crc = checksum(page, bytes);
    bytes[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// The checksum of a headerless value run stored at `page`: every byte of its pages (value
/// and zero padding), with the page id mixed in as for headed pages.
pub(crate) fn run_checksum(page: u64, bytes: &[u8]) -> u32 {
    debug_assert!(bytes.len().is_multiple_of(PAGE_SIZE));
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&page.to_le_bytes());
    hasher.update(bytes);
    hasher.finalize()
}

/// Pages of a headerless value run holding `len` bytes.
pub(crate) fn value_run_pages(len: usize) -> u64 {
    len.div_ceil(PAGE_SIZE).max(1) as u64
}

/// Builds a headerless value run holding `data` (zero-padded to whole pages) for `page`;
/// returns its bytes and checksum.
pub(crate) fn build_value_run(page: u64, data: &[u8]) -> (Vec<u8>, u32) {
    let mut bytes = vec![0u8; value_run_pages(data.len()) as usize * PAGE_SIZE];
    bytes[..data.len()].copy_from_slice(data);
    let crc = run_checksum(page, &bytes);
    (bytes, crc)
}

/// Pages needed for a run holding `data_len` bytes after the header.
pub(crate) fn run_pages(data_len: usize) -> u64 {
    (HEADER_SIZE + data_len).div_ceil(PAGE_SIZE) as u64
}

/// Builds a sealed run (overflow value or free list) of `kind` holding `data`, for `page`.
pub(crate) fn build_run(page: u64, kind: PageKind, data: &[u8]) -> Vec<u8> {
    let pages = run_pages(data.len());
    let mut bytes = vec![0u8; pages as usize * PAGE_SIZE];
    bytes[4] = kind as u8;
    bytes[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
    bytes[HEADER_SIZE..HEADER_SIZE + data.len()].copy_from_slice(data);
    seal(page, &mut bytes);
    bytes
}

/// A committed snapshot's window onto the file: every read checks page bounds and checksums.
#[derive(Clone)]
pub(crate) struct View {
    pub(crate) mapping: Arc<Mapping>,
    /// Pages of the snapshot; ids at or past this are never read.
    pub(crate) page_count: u64,
    pub(crate) path: Arc<PathBuf>,
}

impl View {
    /// The corruption error for `page`.
    pub(crate) fn corrupt(&self, page: u64, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: self.path.to_path_buf(),
            page,
            reason: reason.into(),
        }
    }

    fn raw(&self, page: u64, n_pages: u64) -> Result<&[u8]> {
        if page < 2 || page.saturating_add(n_pages) > self.page_count {
            return Err(self.corrupt(
                page,
                format!(
                    "reference to pages {page}+{n_pages} outside 2..{}",
                    self.page_count
                ),
            ));
        }
        self.mapping
            .bytes(page, n_pages)
            .ok_or_else(|| self.corrupt(page, "page outside the mapping"))
    }

    /// A whole B+tree node page with its kind. The first read through this mapping checks
    /// the checksum and then the node's layout with `check_layout`; later reads trust both.
    pub(crate) fn node(
        &self,
        page: u64,
        check_layout: impl FnOnce(PageKind, &[u8]) -> Result<()>,
    ) -> Result<(PageKind, &[u8])> {
        let bytes = self.raw(page, 1)?;
        let verified = self.mapping.is_verified(page);
        if !verified {
            self.check_crc(page, bytes)?;
        }
        let kind = match PageKind::from_byte(bytes[4]) {
            Some(kind @ (PageKind::Leaf | PageKind::Branch)) => kind,
            other => {
                return Err(self.corrupt(page, format!("expected a node page, found {other:?}")))
            }
        };
        if !verified {
            check_layout(kind, bytes)?;
            self.mapping.mark_verified(page);
        }
        Ok((kind, bytes))
    }

    /// The `len` bytes of the headerless value run at `page` whose checksum is `crc` (both
    /// from the leaf entry pointing at it).
    pub(crate) fn value_run(&self, page: u64, len: u32, crc: u32) -> Result<&[u8]> {
        if u64::from(len) > RUN_BYTES_MAX {
            return Err(self.corrupt(page, format!("value run length {len} is implausible")));
        }
        let bytes = self.raw(page, value_run_pages(len as usize))?;
        if !self.mapping.is_verified(page) {
            if run_checksum(page, bytes) != crc {
                return Err(self.corrupt(page, "value run checksum mismatch"));
            }
            self.mapping.mark_verified(page);
        }
        Ok(&bytes[..len as usize])
    }

    /// The data bytes of the run (legacy overflow value or free list) starting at `page`.
    pub(crate) fn run(&self, page: u64, kind: PageKind) -> Result<&[u8]> {
        let first = self.raw(page, 1)?;
        if PageKind::from_byte(first[4]) != Some(kind) {
            return Err(self.corrupt(page, format!("expected a {kind:?} run")));
        }
        let data_len = u64::from_le_bytes(first[8..16].try_into().unwrap());
        if data_len > RUN_BYTES_MAX {
            return Err(self.corrupt(page, format!("run length {data_len} is implausible")));
        }
        let bytes = self.raw(page, run_pages(data_len as usize))?;
        self.verify(page, bytes)?;
        Ok(&bytes[HEADER_SIZE..HEADER_SIZE + data_len as usize])
    }

    fn verify(&self, page: u64, bytes: &[u8]) -> Result<()> {
        if self.mapping.is_verified(page) {
            return Ok(());
        }
        self.check_crc(page, bytes)?;
        self.mapping.mark_verified(page);
        Ok(())
    }

    fn check_crc(&self, page: u64, bytes: &[u8]) -> Result<()> {
        let stored = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
        if stored != checksum(page, bytes) {
            return Err(self.corrupt(page, "checksum mismatch"));
        }
        Ok(())
    }
}
