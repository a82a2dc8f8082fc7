//! The copy-on-write B+tree over the pager.
//!
//! Record layout: hand-rolled slotted pages, not rkyv. A node page is a slot array of u16
//! offsets after the header, with entries packed from the end of the page; a lookup binary
//! searches the slots and compares key bytes straight out of the mmap, so reads are zero-copy
//! with no decoding step. rkyv would buy nothing here: its archived types need aligned,
//! whole-object buffers, while a B+tree node needs in-place binary search over variable-size
//! entries and cheap splitting; the layout is small enough to validate by hand (every offset and
//! length is bounds-checked, and the page checksum covers content).
//!
//! Writes copy the path they touch into owned page images ([`node::Node`]: one memcpy per
//! page) and free the old pages; inserts and removes edit those images in place (the entry goes
//! into the free gap, the slot array shifts). Many writes can land in one transaction, and each
//! touched node gets a new page only once, at commit ([`flush`]), which seals the image as it
//! is: nothing is decoded or re-encoded.

pub(crate) mod flush;
pub(crate) mod node;
pub(crate) mod page;
pub(crate) mod read;
pub(crate) mod relocate;
pub(crate) mod write;

use crate::pager::{HEADER_SIZE, PAGE_SIZE};

/// Bytes of entries (slots included) a node page can hold.
pub(crate) const NODE_CAPACITY: usize = PAGE_SIZE - HEADER_SIZE;
/// Largest branch entry, and leaf entry without its value (slot included): a quarter page.
pub(crate) const ENTRY_BYTES_MAX: usize = NODE_CAPACITY / 4;
/// Largest leaf entry with its value inline (slot included): half a page, so an overfull node
/// (at most a page and a half) always splits into two that fit (see `write::split_point`).
/// Larger values go to value runs. Half a page keeps Kubernetes objects of 1–2 KB in the
/// leaf: a value run costs a whole page per value and a second page read.
pub(crate) const INLINE_ENTRY_BYTES_MAX: usize = NODE_CAPACITY / 2;
/// Bytes of a leaf entry besides key and stored value: slot u16, key len u16, flags u8, len u32.
pub(crate) const LEAF_ENTRY_OVERHEAD: usize = 2 + 2 + 1 + 4;
/// Bytes of a branch entry besides the key: slot u16, key len u16, child page u64.
pub(crate) const BRANCH_ENTRY_OVERHEAD: usize = 2 + 2 + 8;
/// Longest key the tree accepts: a leaf entry with a legacy overflow reference (8 bytes) stays
/// ≤ a quarter page. Unchanged since format 2, so no stored key becomes too long; the value run
/// reference of format 3 (12 bytes) takes such an entry 4 bytes past a quarter page, still far
/// inside the half page every split relies on (asserted below).
pub const KEY_BYTES_MAX: usize = ENTRY_BYTES_MAX - LEAF_ENTRY_OVERHEAD - 8;
const _: () =
    assert!(LEAF_ENTRY_OVERHEAD + KEY_BYTES_MAX + page::RUN_REF_BYTES <= INLINE_ENTRY_BYTES_MAX);
/// Largest value the tree accepts (etcd's default request limit is 1.5 MiB).
pub const VALUE_BYTES_MAX: usize = 32 << 20;
/// Nodes below this many entry bytes try to merge with a sibling after a delete. Half a page:
/// compaction deletes every other entry of a leaf under churn, and leaves left half empty
/// would double the file.
pub(crate) const MERGE_BELOW_BYTES: usize = NODE_CAPACITY / 2;

/// Whether a value of `value_len` with a key of `key_len` is stored inside the leaf.
pub(crate) fn is_inline(key_len: usize, value_len: usize) -> bool {
    LEAF_ENTRY_OVERHEAD + key_len + value_len <= INLINE_ENTRY_BYTES_MAX
}
