//! Node pages: zero-copy readers over the mmap or over a write transaction's own images.
//!
//! ```text
//! header (16 bytes, see pager)   count = entries, aux = entry bytes used (slots included)
//! slots: count × u16             offset of each entry, in key order
//! ... free space ...
//! entries, packed at the end of the page (in any order):
//!   leaf:   key_len u16 | flags u8 | value_len u32 | key | stored value (by flags):
//!             0 inline:     the value
//!             1 overflow:   page u64 (a headed run, format 2: read, never written)
//!             3 value run:  page u64 | crc u32 (a headerless run: the value alone)
//!   branch: key_len u16 | child page u64 | key
//! ```
//!
//! A value run keeps its checksum and length here rather than in a page header, so a value of
//! N bytes takes exactly ceil(N / 4096) pages. Flag 2 (fresh: a large value not written yet,
//! index u64 into the owning node's list, then 4 unused bytes, the size of the value run
//! reference it becomes at commit) exists only in a write transaction's images; on disk it is
//! corruption.

use crate::error::Result;
use crate::pager::{PageKind, View, HEADER_SIZE, PAGE_SIZE};

/// Bytes of a leaf entry's header (key_len, flags, value_len).
pub(crate) const LEAF_HEADER: usize = 7;
/// Bytes of a branch entry's header (key_len, child page).
pub(crate) const BRANCH_HEADER: usize = 10;
pub(crate) const FLAG_OVERFLOW: u8 = 1;
pub(crate) const FLAG_FRESH: u8 = 2;
pub(crate) const FLAG_RUN: u8 = 3;
/// Stored bytes of a legacy overflow reference (page u64).
pub(crate) const OVERFLOW_REF_BYTES: usize = 8;
/// Stored bytes of a value run reference (page u64, crc u32), and of a fresh value's slot.
pub(crate) const RUN_REF_BYTES: usize = 12;

/// Length of the leaf entry starting at `entry[0]` (a well-formed one: owned images only).
pub(crate) fn leaf_entry_len(entry: &[u8]) -> usize {
    let key_len = u16::from_le_bytes([entry[0], entry[1]]) as usize;
    let stored = match entry[2] {
        0 => u32::from_le_bytes(entry[3..7].try_into().unwrap()) as usize,
        FLAG_OVERFLOW => OVERFLOW_REF_BYTES,
        _ => RUN_REF_BYTES,
    };
    LEAF_HEADER + key_len + stored
}

/// Length of the branch entry starting at `entry[0]`.
pub(crate) fn branch_entry_len(entry: &[u8]) -> usize {
    BRANCH_HEADER + u16::from_le_bytes([entry[0], entry[1]]) as usize
}

/// A value as found in a leaf page.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ValRef<'a> {
    Inline(&'a [u8]),
    /// A legacy headed overflow run (format 2).
    Overflow {
        page: u64,
        len: u32,
    },
    /// A headerless value run.
    Run {
        page: u64,
        len: u32,
        crc: u32,
    },
    /// A fresh value of an owned image: index into its node's list.
    Fresh {
        index: usize,
    },
}

impl ValRef<'_> {
    /// The pages of the run this value lives in, as (first page, pages), if it has one.
    pub(crate) fn run_pages(&self) -> Option<(u64, u64)> {
        match *self {
            ValRef::Overflow { page, len } => Some((page, crate::pager::run_pages(len as usize))),
            ValRef::Run { page, len, .. } => {
                Some((page, crate::pager::value_run_pages(len as usize)))
            }
            ValRef::Inline(_) | ValRef::Fresh { .. } => None,
        }
    }

    /// Bytes the value takes inside its leaf entry.
    fn stored_len(&self) -> usize {
        match self {
            ValRef::Inline(bytes) => bytes.len(),
            ValRef::Overflow { .. } => OVERFLOW_REF_BYTES,
            ValRef::Run { .. } | ValRef::Fresh { .. } => RUN_REF_BYTES,
        }
    }
}

/// A checked, read-only view of a node page.
#[derive(Clone, Copy)]
pub(crate) struct PageNode<'a> {
    pub(crate) page: u64,
    pub(crate) kind: PageKind,
    bytes: &'a [u8],
    pub(crate) count: usize,
    /// An owned image (may hold fresh values; no checksum yet).
    owned: bool,
}

/// Page id reported for errors found in an owned image (it has no page yet).
const OWNED_IMAGE: u64 = u64::MAX;

impl<'a> PageNode<'a> {
    /// Opens node page `page`. Its first read through the mapping also checks its layout
    /// ([`PageNode::check_layout`]): write transactions copy pages and then edit the copies
    /// with unchecked accessors, so a page that got past its checksum with a bad layout (a
    /// buggy writer) must be reported as corrupt here, not crash or spread later.
    pub(crate) fn open(view: &'a View, page: u64) -> Result<PageNode<'a>> {
        let (kind, bytes) = view.node(page, |kind, bytes| {
            PageNode::new(view, page, kind, bytes)?.check_layout(view)
        })?;
        PageNode::new(view, page, kind, bytes)
    }

    fn new(view: &View, page: u64, kind: PageKind, bytes: &'a [u8]) -> Result<PageNode<'a>> {
        let count = u16::from_le_bytes([bytes[6], bytes[7]]) as usize;
        if HEADER_SIZE + count * 2 > PAGE_SIZE || (count == 0 && kind == PageKind::Branch) {
            return Err(view.corrupt(page, format!("implausible entry count {count}")));
        }
        Ok(PageNode {
            page,
            kind,
            bytes,
            count,
            owned: false,
        })
    }

    /// Checks what owned copies rely on: every entry inside the page with known flags, no two
    /// entries overlapping, the used-bytes header equal to the entries, and the entries packed
    /// without holes at the end of the page.
    fn check_layout(&self, view: &View) -> Result<()> {
        let mut covered = [0u64; PAGE_SIZE / 64];
        let mut used = 0;
        let mut lowest = PAGE_SIZE;
        for i in 0..self.count {
            let bytes = self.entry_bytes(view, i)?;
            let at = HEADER_SIZE + i * 2;
            let start = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]) as usize;
            let end = start + bytes - 2;
            let first = start / 64;
            for (n, bits) in covered[first..end.div_ceil(64)].iter_mut().enumerate() {
                let base = (first + n) * 64;
                let (from, to) = (base.max(start) - base, (base + 64).min(end) - base);
                let mask = if to - from == 64 {
                    u64::MAX
                } else {
                    ((1u64 << (to - from)) - 1) << from
                };
                if *bits & mask != 0 {
                    return Err(view.corrupt(self.page, format!("entry {i} overlaps another")));
                }
                *bits |= mask;
            }
            used += bytes;
            lowest = lowest.min(start);
        }
        if used != self.used_bytes() {
            let header = self.used_bytes();
            return Err(view.corrupt(
                self.page,
                format!("entries use {used} bytes, the header says {header}"),
            ));
        }
        // Disjoint entries inside [lowest, PAGE_SIZE) whose sizes add up to that span fill it.
        if PAGE_SIZE - lowest != used - 2 * self.count {
            return Err(view.corrupt(self.page, "entries are not packed at the page end"));
        }
        Ok(())
    }

    /// A view of a write transaction's own image of `kind`.
    pub(crate) fn of_image(bytes: &'a [u8], kind: PageKind) -> PageNode<'a> {
        let count = u16::from_le_bytes([bytes[6], bytes[7]]) as usize;
        PageNode {
            page: OWNED_IMAGE,
            kind,
            bytes,
            count,
            owned: true,
        }
    }

    /// The whole page image.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Child page of branch entry `i` of an owned image (well-formed by construction).
    pub(crate) fn child_page_unchecked(&self, i: usize) -> u64 {
        debug_assert!(self.owned && i < self.count);
        let at = HEADER_SIZE + i * 2;
        let offset = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]) as usize;
        u64::from_le_bytes(self.bytes[offset + 2..offset + 10].try_into().unwrap())
    }

    /// Entry bytes used (from the header).
    pub(crate) fn used_bytes(&self) -> usize {
        u64::from_le_bytes(self.bytes[8..16].try_into().unwrap()) as usize
    }

    fn entry(&self, view: &View, i: usize) -> Result<&'a [u8]> {
        let at = HEADER_SIZE + i * 2;
        let offset = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]) as usize;
        let entry_header = if self.kind == PageKind::Leaf {
            LEAF_HEADER
        } else {
            BRANCH_HEADER
        };
        if offset < HEADER_SIZE + self.count * 2 || offset + entry_header > PAGE_SIZE {
            return Err(view.corrupt(self.page, format!("slot {i} offset {offset} out of bounds")));
        }
        Ok(&self.bytes[offset..])
    }

    /// Key of entry `i` (leaf or branch).
    pub(crate) fn key(&self, view: &View, i: usize) -> Result<&'a [u8]> {
        let entry = self.entry(view, i)?;
        let key_len = u16::from_le_bytes([entry[0], entry[1]]) as usize;
        let start = match self.kind {
            PageKind::Leaf => LEAF_HEADER,
            _ => BRANCH_HEADER,
        };
        entry
            .get(start..start + key_len)
            .ok_or_else(|| view.corrupt(self.page, format!("entry {i} key runs past the page")))
    }

    /// Value of leaf entry `i`.
    pub(crate) fn value(&self, view: &View, i: usize) -> Result<ValRef<'a>> {
        debug_assert_eq!(self.kind, PageKind::Leaf);
        let entry = self.entry(view, i)?;
        if entry.len() < 7 {
            return Err(view.corrupt(self.page, format!("entry {i} header runs past the page")));
        }
        let key_len = u16::from_le_bytes([entry[0], entry[1]]) as usize;
        let flags = entry[2];
        let len = u32::from_le_bytes(entry[3..7].try_into().unwrap());
        let start = 7 + key_len;
        let past_end = || view.corrupt(self.page, format!("entry {i} value runs past the page"));
        match flags {
            0 => Ok(ValRef::Inline(
                entry
                    .get(start..start + len as usize)
                    .ok_or_else(past_end)?,
            )),
            FLAG_OVERFLOW => {
                let raw = entry.get(start..start + 8).ok_or_else(past_end)?;
                let page = u64::from_le_bytes(raw.try_into().unwrap());
                Ok(ValRef::Overflow { page, len })
            }
            FLAG_RUN => {
                let raw = entry
                    .get(start..start + RUN_REF_BYTES)
                    .ok_or_else(past_end)?;
                let page = u64::from_le_bytes(raw[..8].try_into().unwrap());
                let crc = u32::from_le_bytes(raw[8..].try_into().unwrap());
                Ok(ValRef::Run { page, len, crc })
            }
            FLAG_FRESH if self.owned => {
                let raw = entry
                    .get(start..start + RUN_REF_BYTES)
                    .ok_or_else(past_end)?;
                let index = u64::from_le_bytes(raw[..8].try_into().unwrap()) as usize;
                Ok(ValRef::Fresh { index })
            }
            other => Err(view.corrupt(self.page, format!("entry {i} has unknown flags {other}"))),
        }
    }

    /// Entry bytes of entry `i`, slot included (what the header's used bytes sum up).
    pub(crate) fn entry_bytes(&self, view: &View, i: usize) -> Result<usize> {
        let key_len = self.key(view, i)?.len();
        Ok(match self.kind {
            PageKind::Leaf => {
                super::LEAF_ENTRY_OVERHEAD + key_len + self.value(view, i)?.stored_len()
            }
            _ => super::BRANCH_ENTRY_OVERHEAD + key_len,
        })
    }

    /// Child page of branch entry `i`.
    pub(crate) fn child(&self, view: &View, i: usize) -> Result<u64> {
        debug_assert_eq!(self.kind, PageKind::Branch);
        let entry = self.entry(view, i)?;
        let raw = entry
            .get(2..10)
            .ok_or_else(|| view.corrupt(self.page, format!("entry {i} runs past the page")))?;
        Ok(u64::from_le_bytes(raw.try_into().unwrap()))
    }

    /// First entry index whose key is ≥ `key` (`count` if none).
    pub(crate) fn lower_bound(&self, view: &View, key: &[u8]) -> Result<usize> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.key(view, mid)? < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// First entry index whose key is > `key`.
    pub(crate) fn upper_bound(&self, view: &View, key: &[u8]) -> Result<usize> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.key(view, mid)? <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Index of the branch child whose range holds `key` (key 0 counts as −∞).
    pub(crate) fn child_index(&self, view: &View, key: &[u8]) -> Result<usize> {
        Ok(self.upper_bound(view, key)?.saturating_sub(1))
    }
}
