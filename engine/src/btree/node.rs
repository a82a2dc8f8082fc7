//! In-memory B+tree nodes: a write transaction's own copy of a page, edited in place.
//!
//! A node is its page image (the same slotted layout as on disk, see [`super::page`]) plus what
//! the image cannot say yet: the children this transaction owns (a branch) and the large values
//! not yet written to overflow runs (a leaf). Copying a page is one allocation and one memcpy,
//! and an insert writes the entry into the free gap and shifts the slot array: no per-entry
//! allocation, no decoding, no re-encoding at commit.
//!
//! Invariant of an owned image (checked by [`Node::check`] in debug builds): the entries are
//! packed without holes into `[low, PAGE_SIZE)`, where `low = PAGE_SIZE - (used - 2 * count)`,
//! so the free space is exactly the gap between the slot array and `low`. Removing an entry
//! closes its hole at once (a memmove of the entries below it), which keeps that true.

use super::page::{
    branch_entry_len, leaf_entry_len, PageNode, BRANCH_HEADER, FLAG_FRESH, FLAG_RUN, LEAF_HEADER,
    RUN_REF_BYTES,
};
use super::NODE_CAPACITY;
use crate::pager::{PageKind, HEADER_SIZE, PAGE_SIZE};

/// A branch's pointer to a child at the top of a tree: a committed page, or an owned node.
#[derive(Debug)]
pub(crate) enum Child {
    Clean(u64),
    Dirty(Box<Node>),
}

/// A value to store in a leaf entry.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NewVal<'v> {
    /// Inside the leaf.
    Inline(&'v [u8]),
    /// Not yet written: index `index` of the leaf's fresh values, `len` bytes.
    Fresh { index: u64, len: u32 },
}

impl NewVal<'_> {
    /// Bytes this value takes inside the leaf entry.
    fn stored_len(&self) -> usize {
        match self {
            NewVal::Inline(bytes) => bytes.len(),
            // The slot a value run reference takes once the value is written.
            NewVal::Fresh { .. } => RUN_REF_BYTES,
        }
    }
}

/// A B+tree node owned by a write transaction.
pub(crate) struct Node {
    /// The page image. Its checksum, and the child page ids of owned children, are filled in
    /// at commit.
    pub(crate) image: Box<[u8]>,
    pub(crate) kind: PageKind,
    /// Branch only: the owned children, by slot; `None` = the committed page the entry names.
    pub(crate) children: Vec<Option<Box<Node>>>,
    /// Leaf only: values too large for the leaf and not written yet; an entry flagged
    /// `FLAG_FRESH` holds its index here. Slots of removed values are left empty.
    pub(crate) fresh: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("kind", &self.kind)
            .field("count", &self.count())
            .field("used", &self.used())
            .finish()
    }
}

/// Entry bytes (slot included) of a leaf entry.
pub(crate) fn leaf_entry_bytes(key_len: usize, stored_len: usize) -> usize {
    super::LEAF_ENTRY_OVERHEAD + key_len + stored_len
}

/// Entry bytes (slot included) of a branch entry.
pub(crate) fn branch_entry_bytes(key_len: usize) -> usize {
    super::BRANCH_ENTRY_OVERHEAD + key_len
}

fn read_u16(bytes: &[u8], at: usize) -> usize {
    u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize
}

fn write_u16(bytes: &mut [u8], at: usize, value: usize) {
    debug_assert!(value <= u16::MAX as usize);
    bytes[at..at + 2].copy_from_slice(&(value as u16).to_le_bytes());
}

impl Node {
    /// An empty node of `kind`.
    pub(crate) fn new(kind: PageKind) -> Node {
        let mut image = vec![0u8; PAGE_SIZE].into_boxed_slice();
        image[4] = kind as u8;
        Node {
            image,
            kind,
            children: Vec::new(),
            fresh: Vec::new(),
        }
    }

    /// Copies a committed page (the copy in copy-on-write).
    pub(crate) fn copy_of(page: &PageNode) -> Node {
        let image: Box<[u8]> = page.bytes().into();
        let children = match page.kind {
            PageKind::Branch => (0..page.count).map(|_| None).collect(),
            _ => Vec::new(),
        };
        Node {
            image,
            kind: page.kind,
            children,
            fresh: Vec::new(),
        }
    }

    /// A read view of the image (fresh values show as such).
    pub(crate) fn page(&self) -> PageNode<'_> {
        PageNode::of_image(&self.image, self.kind)
    }

    pub(crate) fn count(&self) -> usize {
        read_u16(&self.image, 6)
    }

    /// Entry bytes used, slots included (the header's aux field).
    pub(crate) fn used(&self) -> usize {
        u64::from_le_bytes(self.image[8..16].try_into().unwrap()) as usize
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count() == 0
    }

    fn set_header(&mut self, count: usize, used: usize) {
        write_u16(&mut self.image, 6, count);
        self.image[8..16].copy_from_slice(&(used as u64).to_le_bytes());
    }

    /// Start of the packed entries.
    fn low(&self) -> usize {
        PAGE_SIZE - (self.used() - 2 * self.count())
    }

    fn slot(&self, i: usize) -> usize {
        read_u16(&self.image, HEADER_SIZE + 2 * i)
    }

    /// Byte range of entry `i` in the image.
    pub(crate) fn entry_range(&self, i: usize) -> std::ops::Range<usize> {
        let offset = self.slot(i);
        let len = match self.kind {
            PageKind::Leaf => leaf_entry_len(&self.image[offset..]),
            _ => branch_entry_len(&self.image[offset..]),
        };
        offset..offset + len
    }

    /// Key of entry `i`.
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        let offset = self.slot(i);
        let key_len = read_u16(&self.image, offset);
        let header = match self.kind {
            PageKind::Leaf => LEAF_HEADER,
            _ => BRANCH_HEADER,
        };
        &self.image[offset + header..offset + header + key_len]
    }

    /// Whether an entry of `entry_bytes` (slot included) fits without a split.
    pub(crate) fn fits(&self, entry_bytes: usize) -> bool {
        self.used() + entry_bytes <= NODE_CAPACITY
    }

    /// Reserves `len` bytes for a new entry at index `i` and returns their offset. The caller
    /// fills them in; the entry must fit ([`Node::fits`]).
    fn reserve(&mut self, i: usize, len: usize) -> usize {
        let (count, used) = (self.count(), self.used());
        assert!(i <= count, "slot index past the end");
        assert!(used + len + 2 <= NODE_CAPACITY, "entry does not fit");
        let offset = self.low() - len;
        let slots = HEADER_SIZE + 2 * i;
        self.image
            .copy_within(slots..HEADER_SIZE + 2 * count, slots + 2);
        write_u16(&mut self.image, slots, offset);
        self.set_header(count + 1, used + len + 2);
        assert!(
            offset >= HEADER_SIZE + 2 * (count + 1),
            "entries overlap slots"
        );
        offset
    }

    /// Inserts a whole encoded entry (as read from another page) at index `i`.
    pub(crate) fn insert_raw(&mut self, i: usize, entry: &[u8]) {
        let offset = self.reserve(i, entry.len());
        self.image[offset..offset + entry.len()].copy_from_slice(entry);
    }

    /// Inserts leaf entry (`key`, `value`) at index `i`; it must fit.
    pub(crate) fn insert_leaf(&mut self, i: usize, key: &[u8], value: NewVal) {
        debug_assert_eq!(self.kind, PageKind::Leaf);
        let len = LEAF_HEADER + key.len() + value.stored_len();
        let offset = self.reserve(i, len);
        let entry = &mut self.image[offset..offset + len];
        write_u16(entry, 0, key.len());
        entry[LEAF_HEADER..LEAF_HEADER + key.len()].copy_from_slice(key);
        let rest = LEAF_HEADER + key.len();
        let (flags, value_len) = match value {
            NewVal::Inline(bytes) => {
                entry[rest..].copy_from_slice(bytes);
                (0, bytes.len() as u32)
            }
            NewVal::Fresh { index, len } => {
                entry[rest..rest + 8].copy_from_slice(&index.to_le_bytes());
                entry[rest + 8..].fill(0);
                (FLAG_FRESH, len)
            }
        };
        entry[2] = flags;
        entry[3..7].copy_from_slice(&value_len.to_le_bytes());
    }

    /// Inserts branch entry (`key`, child) at index `i`; it must fit. An owned child's page id
    /// is written at commit.
    pub(crate) fn insert_branch(
        &mut self,
        i: usize,
        key: &[u8],
        page: u64,
        dirty: Option<Box<Node>>,
    ) {
        self.write_branch_entry(i, key, page);
        self.children.insert(i, dirty);
    }

    /// Writes branch entry (`key`, `page`) at index `i`, leaving the child slots to the caller.
    fn write_branch_entry(&mut self, i: usize, key: &[u8], page: u64) {
        debug_assert_eq!(self.kind, PageKind::Branch);
        let len = BRANCH_HEADER + key.len();
        let offset = self.reserve(i, len);
        let entry = &mut self.image[offset..offset + len];
        write_u16(entry, 0, key.len());
        entry[2..10].copy_from_slice(&page.to_le_bytes());
        entry[BRANCH_HEADER..].copy_from_slice(key);
    }

    /// Removes entry `i`, closing its hole; returns the owned child it held (branch).
    pub(crate) fn remove(&mut self, i: usize) -> Option<Box<Node>> {
        let (count, used, low) = (self.count(), self.used(), self.low());
        let range = self.entry_range(i);
        let len = range.len();
        // Entries below the removed one move up by `len`; their slots follow.
        self.image.copy_within(low..range.start, low + len);
        self.image[low..low + len].fill(0);
        for j in 0..count {
            let offset = self.slot(j);
            if offset < range.start {
                write_u16(&mut self.image, HEADER_SIZE + 2 * j, offset + len);
            }
        }
        let slots = HEADER_SIZE + 2 * i;
        self.image
            .copy_within(slots + 2..HEADER_SIZE + 2 * count, slots);
        self.image[HEADER_SIZE + 2 * (count - 1)..HEADER_SIZE + 2 * count].fill(0);
        self.set_header(count - 1, used - len - 2);
        if cfg!(debug_assertions) {
            self.check_packing();
        }
        match self.kind {
            PageKind::Branch => self.children.remove(i),
            _ => None,
        }
    }

    /// Writes `page` as the child page id of branch entry `i`.
    pub(crate) fn set_child_page(&mut self, i: usize, page: u64) {
        let offset = self.slot(i);
        self.image[offset + 2..offset + 10].copy_from_slice(&page.to_le_bytes());
    }

    /// Points leaf entry `i` (a fresh value) at the value run it was written to.
    pub(crate) fn set_value_run(&mut self, i: usize, page: u64, crc: u32) {
        let offset = self.slot(i);
        let key_len = read_u16(&self.image, offset);
        assert_eq!(
            self.image[offset + 2],
            FLAG_FRESH,
            "only fresh values get a run"
        );
        let at = offset + LEAF_HEADER + key_len;
        self.image[offset + 2] = FLAG_RUN;
        self.image[at..at + 8].copy_from_slice(&page.to_le_bytes());
        self.image[at + 8..at + RUN_REF_BYTES].copy_from_slice(&crc.to_le_bytes());
    }

    /// Moves the entries from `from` on into a new node (a split), keeping their owned
    /// children and fresh values with them.
    pub(crate) fn split_off(&mut self, from: usize) -> Node {
        let count = self.count();
        let mut right = Node::new(self.kind);
        for i in from..count {
            let range = self.entry_range(i);
            right.insert_raw(i - from, &self.image[range]);
        }
        if self.kind == PageKind::Branch {
            right.children = self.children.split_off(from);
        }
        right.take_fresh_from(self);
        // Rebuild the left part packed (the moved entries leave holes anywhere).
        let mut left = Node::new(self.kind);
        for i in 0..from {
            let range = self.entry_range(i);
            left.insert_raw(i, &self.image[range]);
        }
        left.children = std::mem::take(&mut self.children);
        left.fresh = std::mem::take(&mut self.fresh);
        *self = left;
        right
    }

    /// Appends every entry of `right` (all keys greater) to this node; the caller checked that
    /// they fit. For branches, `first_key` replaces the key of right's first entry (its −∞ key
    /// becomes the real separator).
    pub(crate) fn append(&mut self, mut right: Node, first_key: Option<&[u8]>) {
        assert_eq!(self.kind, right.kind, "siblings of one level");
        let count = self.count();
        for i in 0..right.count() {
            let range = right.entry_range(i);
            match (i, first_key) {
                (0, Some(key)) => {
                    // Its owned child (if any) moves over with the others below.
                    let page = right.page().child_page_unchecked(0);
                    self.write_branch_entry(count, key, page);
                }
                _ => self.insert_raw(count + i, &right.image[range]),
            }
        }
        if self.kind == PageKind::Branch {
            self.children.append(&mut right.children);
        }
        self.take_fresh_from_range(&mut right, count);
    }

    /// Moves the fresh values the entries of this node refer to out of `source`.
    fn take_fresh_from(&mut self, source: &mut Node) {
        self.take_fresh_from_range(source, 0);
    }

    /// Like [`Node::take_fresh_from`], for entries from index `first` on.
    fn take_fresh_from_range(&mut self, source: &mut Node, first: usize) {
        if self.kind != PageKind::Leaf || source.fresh.is_empty() {
            return;
        }
        for i in first..self.count() {
            let offset = self.slot(i);
            if self.image[offset + 2] != FLAG_FRESH {
                continue;
            }
            let at = offset + LEAF_HEADER + read_u16(&self.image, offset);
            let old = u64::from_le_bytes(self.image[at..at + 8].try_into().unwrap()) as usize;
            let index = self.fresh.len() as u64;
            self.fresh.push(std::mem::take(&mut source.fresh[old]));
            self.image[at..at + 8].copy_from_slice(&index.to_le_bytes());
        }
    }

    /// Checks the packing invariant and the child slots (debug builds and tests).
    pub(crate) fn check(&self) {
        self.check_packing();
        if self.kind == PageKind::Branch {
            assert_eq!(
                self.children.len(),
                self.count(),
                "one child slot per entry"
            );
        }
    }

    fn check_packing(&self) {
        let count = self.count();
        let mut total = 0;
        let mut ranges: Vec<_> = (0..count).map(|i| self.entry_range(i)).collect();
        for range in &ranges {
            total += range.len() + 2;
        }
        assert_eq!(total, self.used(), "used bytes");
        ranges.sort_by_key(|r| r.start);
        let mut at = self.low();
        for range in ranges {
            assert_eq!(range.start, at, "entries packed without holes");
            at = range.end;
        }
        assert_eq!(at, PAGE_SIZE, "entries end at the page end");
    }
}
