//! The two meta pages (page 0 and page 1): the root of everything a commit publishes.
//!
//! A durable commit writes its meta into the slot that does not hold the durable meta before
//! it, so that one is never overwritten by the commit that follows it (commit ids skip the
//! unsynced commits in between, so the slot is not `txn_id % 2`). At open both are read; the
//! valid one with the highest transaction id wins if every page its commit wrote is on disk with
//! the checksum its commit record lists (see `db::open`). Otherwise — a torn meta, or a crash
//! that persisted the meta but not all pages (one fdatasync covers both) — the previous commit
//! is used, whose pages the failed commit never touched.

use super::PAGE_SIZE;

/// Number of B+tree roots a meta page records (one per table).
pub(crate) const TABLE_SLOTS: usize = 8;

const MAGIC: &[u8; 8] = b"BASALTDB";
/// The on-disk format this build writes. 1: the key index held each revision's value inline.
/// 2: the key index holds record headers only; values live in the change log (`mvcc::log`),
/// large ones in headed overflow runs. 3: large values live in headerless value runs (length
/// and checksum in the leaf, `btree::page`), and the change log keys each entry by revision
/// and user key so its value is the user's value alone (`mvcc::log`): a 4 KiB value takes one
/// page instead of two.
pub(crate) const FORMAT_VERSION: u32 = 3;
/// The oldest format this build opens. Format 2 files are read in both layouts, with no
/// migration step: their records keep the format 2 layout until rewritten (a new revision, a
/// compaction, a defragmentation moving them), new writes use format 3. The first commit
/// marks its meta slot format 3; the other slot keeps the last format 2 commit until the
/// second commit. In between, a format 2 build takes the format 3 meta for invalid and opens
/// that older commit without a word (losing the newest one); only from the second commit on
/// does it refuse the file. There is no path from format 1.
pub(crate) const FORMAT_VERSION_MIN: u32 = 2;
const CRC_OFFSET: usize = PAGE_SIZE - 4;

/// What one committed transaction published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Monotonic commit number; 0 is the empty database written at creation.
    pub(crate) txn_id: u64,
    /// Pages in use (the high-water mark); the file is at least this long.
    pub(crate) page_count: u64,
    /// First page of the commit record run: free list + pages this commit wrote (0 = none).
    pub(crate) freelist_page: u64,
    /// Checksum the commit record run must have (catches a stale run with a valid checksum).
    pub(crate) freelist_crc: u32,
    /// Root page of each table (0 = empty table).
    pub(crate) roots: [u64; TABLE_SLOTS],
    /// The commit's pages were fdatasync'ed before this meta was written: a page that does not
    /// match the commit record is then damage after the fact, never a torn commit, and open
    /// must refuse rather than fall back.
    pub(crate) pages_synced_first: bool,
}

impl Meta {
    /// The meta of a freshly created database.
    pub(crate) fn empty() -> Meta {
        Meta {
            txn_id: 0,
            page_count: 2,
            freelist_page: 0,
            freelist_crc: 0,
            roots: [0; TABLE_SLOTS],
            pages_synced_first: true,
        }
    }

    /// Serialises the meta into a full page, checksum last.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut page = vec![0u8; PAGE_SIZE];
        page[0..8].copy_from_slice(MAGIC);
        page[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        page[12..16].copy_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
        page[16..24].copy_from_slice(&self.txn_id.to_le_bytes());
        page[24..32].copy_from_slice(&self.page_count.to_le_bytes());
        page[32..40].copy_from_slice(&self.freelist_page.to_le_bytes());
        for (i, root) in self.roots.iter().enumerate() {
            page[40 + i * 8..48 + i * 8].copy_from_slice(&root.to_le_bytes());
        }
        page[104..108].copy_from_slice(&self.freelist_crc.to_le_bytes());
        page[108] = self.pages_synced_first as u8;
        let crc = crc32fast::hash(&page[..CRC_OFFSET]);
        page[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        page
    }

    /// The format version a meta page declares, if it is an intact basalt meta page (checksum
    /// and magic valid), whatever that version is: lets open name the format of a file this
    /// build cannot read instead of calling it damaged.
    pub(crate) fn declared_format(page: &[u8]) -> Option<u32> {
        if page.len() != PAGE_SIZE
            || &page[0..8] != MAGIC
            || page[CRC_OFFSET..] != crc32fast::hash(&page[..CRC_OFFSET]).to_le_bytes()
        {
            return None;
        }
        Some(u32::from_le_bytes(page[8..12].try_into().unwrap()))
    }

    /// Parses a meta page; `Err` says why it is not a valid meta.
    pub(crate) fn decode(page: &[u8]) -> Result<Meta, String> {
        if page.len() != PAGE_SIZE {
            return Err(format!("meta page is {} bytes", page.len()));
        }
        let u64_at = |at: usize| u64::from_le_bytes(page[at..at + 8].try_into().unwrap());
        let u32_at = |at: usize| u32::from_le_bytes(page[at..at + 4].try_into().unwrap());
        if u32_at(CRC_OFFSET) != crc32fast::hash(&page[..CRC_OFFSET]) {
            return Err("meta checksum mismatch".into());
        }
        if &page[0..8] != MAGIC {
            return Err("bad magic".into());
        }
        if !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&u32_at(8)) {
            return Err(format!(
                "format version {} (this build reads format versions {FORMAT_VERSION_MIN} to \
                 {FORMAT_VERSION})",
                u32_at(8)
            ));
        }
        if u32_at(12) != PAGE_SIZE as u32 {
            return Err(format!("page size {} (expected {PAGE_SIZE})", u32_at(12)));
        }
        let mut roots = [0u64; TABLE_SLOTS];
        for (i, root) in roots.iter_mut().enumerate() {
            *root = u64_at(40 + i * 8);
        }
        let meta = Meta {
            txn_id: u64_at(16),
            page_count: u64_at(24),
            freelist_page: u64_at(32),
            freelist_crc: u32_at(104),
            roots,
            pages_synced_first: match page[108] {
                0 => false,
                1 => true,
                other => return Err(format!("bad flag byte {other}")),
            },
        };
        if meta.page_count < 2 {
            return Err(format!("page count {} below 2", meta.page_count));
        }
        let page_count = meta.page_count;
        let in_range = |p: u64| p == 0 || (2..page_count).contains(&p);
        if !in_range(meta.freelist_page) || !meta.roots.iter().all(|&r| in_range(r)) {
            return Err("meta points past its page count".into());
        }
        Ok(meta)
    }
}
