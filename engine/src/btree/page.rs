//! Encoded node pages: zero-copy readers over the mmap, and the encoder used at commit.
//!
//! ```text
//! header (16 bytes, see pager)   count = entries, aux = entry bytes used (slots included)
//! slots: count × u16             offset of each entry, in key order
//! ... free space ...
//! entries, packed from the end of the page:
//!   leaf:   key_len u16 | flags u8 (0 inline, 1 overflow) | value_len u32 | key | value or page u64
//!   branch: key_len u16 | child page u64 | key
//! ```

use super::node::{Branch, Leaf, Node, Val};
use crate::error::Result;
use crate::pager::{seal, PageKind, View, HEADER_SIZE, PAGE_SIZE};

const FLAG_OVERFLOW: u8 = 1;

/// A value as found in a leaf page.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ValRef<'a> {
    Inline(&'a [u8]),
    Overflow { page: u64, len: u32 },
}

/// A checked, read-only view of a node page.
#[derive(Clone, Copy)]
pub(crate) struct PageNode<'a> {
    pub(crate) page: u64,
    pub(crate) kind: PageKind,
    bytes: &'a [u8],
    pub(crate) count: usize,
}

impl<'a> PageNode<'a> {
    /// Reads and checks the header of node page `page`.
    pub(crate) fn open(view: &'a View, page: u64) -> Result<PageNode<'a>> {
        let (kind, bytes) = view.node(page)?;
        let count = u16::from_le_bytes([bytes[6], bytes[7]]) as usize;
        if HEADER_SIZE + count * 2 > PAGE_SIZE || (count == 0 && kind == PageKind::Branch) {
            return Err(view.corrupt(page, format!("implausible entry count {count}")));
        }
        Ok(PageNode {
            page,
            kind,
            bytes,
            count,
        })
    }

    /// Entry bytes used (from the header).
    pub(crate) fn used_bytes(&self) -> usize {
        u64::from_le_bytes(self.bytes[8..16].try_into().unwrap()) as usize
    }

    fn entry(&self, view: &View, i: usize) -> Result<&'a [u8]> {
        let at = HEADER_SIZE + i * 2;
        let offset = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]) as usize;
        let entry_header = if self.kind == PageKind::Leaf { 7 } else { 10 };
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
            PageKind::Leaf => 7,
            _ => 10,
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
            other => Err(view.corrupt(self.page, format!("entry {i} has unknown flags {other}"))),
        }
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

    /// Copies the page into an owned node (the copy in copy-on-write).
    pub(crate) fn to_node(self, view: &View) -> Result<Node> {
        let mut keys = Vec::with_capacity(self.count);
        match self.kind {
            PageKind::Leaf => {
                let mut vals = Vec::with_capacity(self.count);
                let mut bytes = 0;
                for i in 0..self.count {
                    let key = self.key(view, i)?.to_vec();
                    let val = match self.value(view, i)? {
                        ValRef::Inline(v) => Val::Inline(v.to_vec()),
                        ValRef::Overflow { page, len } => Val::Overflow { page, len },
                    };
                    bytes += super::node::leaf_entry_bytes(&key, &val);
                    keys.push(key);
                    vals.push(val);
                }
                Ok(Node::Leaf(Leaf { keys, vals, bytes }))
            }
            _ => {
                let mut children = Vec::with_capacity(self.count);
                let mut bytes = 0;
                for i in 0..self.count {
                    let key = self.key(view, i)?.to_vec();
                    bytes += super::node::branch_entry_bytes(&key);
                    keys.push(key);
                    children.push(super::node::Child::Clean(self.child(view, i)?));
                }
                Ok(Node::Branch(Branch {
                    keys,
                    children,
                    bytes,
                }))
            }
        }
    }
}

/// Encodes a leaf whose values are all inline or already in overflow runs.
pub(crate) fn encode_leaf(page: u64, leaf: &Leaf) -> Vec<u8> {
    let mut out = vec![0u8; PAGE_SIZE];
    assert!(leaf.bytes <= super::NODE_CAPACITY, "leaf over capacity");
    write_header(&mut out, PageKind::Leaf, leaf.keys.len(), leaf.bytes);
    let mut end = PAGE_SIZE;
    for (i, (key, val)) in leaf.keys.iter().zip(&leaf.vals).enumerate() {
        let size = 7 + key.len() + val.stored_len();
        end -= size;
        let entry = &mut out[end..end + size];
        entry[0..2].copy_from_slice(&(key.len() as u16).to_le_bytes());
        entry[7..7 + key.len()].copy_from_slice(key);
        match val {
            Val::Inline(bytes) => {
                entry[3..7].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
                entry[7 + key.len()..].copy_from_slice(bytes);
            }
            Val::Overflow { page, len } => {
                entry[2] = FLAG_OVERFLOW;
                entry[3..7].copy_from_slice(&len.to_le_bytes());
                entry[7 + key.len()..].copy_from_slice(&page.to_le_bytes());
            }
            Val::Fresh(_) => unreachable!("fresh values are written before their leaf"),
        }
        out[HEADER_SIZE + i * 2..HEADER_SIZE + i * 2 + 2]
            .copy_from_slice(&(end as u16).to_le_bytes());
    }
    assert!(
        end >= HEADER_SIZE + leaf.keys.len() * 2,
        "leaf entries overlap slots"
    );
    seal(page, &mut out);
    out
}

/// Encodes a branch whose children have the given page ids.
pub(crate) fn encode_branch(
    page: u64,
    keys: &[Vec<u8>],
    children: &[u64],
    bytes: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; PAGE_SIZE];
    assert!(bytes <= super::NODE_CAPACITY, "branch over capacity");
    write_header(&mut out, PageKind::Branch, keys.len(), bytes);
    let mut end = PAGE_SIZE;
    for (i, (key, child)) in keys.iter().zip(children).enumerate() {
        let size = 10 + key.len();
        end -= size;
        let entry = &mut out[end..end + size];
        entry[0..2].copy_from_slice(&(key.len() as u16).to_le_bytes());
        entry[2..10].copy_from_slice(&child.to_le_bytes());
        entry[10..].copy_from_slice(key);
        out[HEADER_SIZE + i * 2..HEADER_SIZE + i * 2 + 2]
            .copy_from_slice(&(end as u16).to_le_bytes());
    }
    assert!(
        end >= HEADER_SIZE + keys.len() * 2,
        "branch entries overlap slots"
    );
    seal(page, &mut out);
    out
}

fn write_header(out: &mut [u8], kind: PageKind, count: usize, bytes: usize) {
    out[4] = kind as u8;
    out[6..8].copy_from_slice(&(count as u16).to_le_bytes());
    out[8..16].copy_from_slice(&(bytes as u64).to_le_bytes());
}
