//! A consistent copy of the database file at one commit, produced from a pinned read snapshot
//! while writers go on (what etcd's Maintenance.Snapshot streams, and what a backup is).
//!
//! The copy is the file as that commit left it, laid out so that `Engine::open` accepts it:
//! both meta slots hold the snapshot's meta (a later commit may have overwritten one slot of the
//! live file), every page the snapshot can reach is copied as is (the pin keeps the writer from
//! reusing them), and every page the commit record lists as free is written as zeros (the
//! writer may be reusing those right now, and zeros make the copy depend only on the data).

use super::read::ReadTxn;
use crate::error::Result;
use crate::pager::freelist::decode_commit_record;
use crate::pager::meta::Meta;
use crate::pager::{PageKind, PAGE_SIZE};

/// The copy of one commit, readable at any offset, holding its snapshot pinned.
pub struct Snapshot {
    txn: ReadTxn,
    meta_page: Vec<u8>,
    /// Pages free at this commit, sorted (written as zeros).
    free: Vec<u64>,
    page_count: u64,
}

impl Snapshot {
    pub(crate) fn new(txn: ReadTxn) -> Result<Snapshot> {
        let meta: Meta = txn.meta();
        let free = free_pages(&txn, meta)?;
        Ok(Snapshot {
            meta_page: meta.encode(),
            free,
            page_count: meta.page_count,
            txn,
        })
    }

    /// Bytes of the copy: the commit's page count times the page size.
    pub fn size_bytes(&self) -> u64 {
        self.page_count * PAGE_SIZE as u64
    }

    /// Bytes of the copy holding live pages (meta, reachable, commit record): what etcd calls
    /// the size in use.
    pub fn size_in_use_bytes(&self) -> u64 {
        (self.page_count - self.free.len() as u64) * PAGE_SIZE as u64
    }

    /// Fills `out` with the copy's bytes from `offset` on; returns how many it wrote (0 at the
    /// end of the copy).
    pub fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<usize> {
        let size = self.size_bytes();
        let end = size.min(offset.saturating_add(out.len() as u64));
        let mut at = offset;
        while at < end {
            let page = at / PAGE_SIZE as u64;
            let within = (at % PAGE_SIZE as u64) as usize;
            let take = (PAGE_SIZE - within).min((end - at) as usize);
            let target = &mut out[(at - offset) as usize..(at - offset) as usize + take];
            if page < 2 {
                target.copy_from_slice(&self.meta_page[within..within + take]);
            } else if self.free.binary_search(&page).is_ok() {
                target.fill(0);
            } else {
                let bytes = self.txn.view_ref().mapping.bytes(page, 1).ok_or_else(|| {
                    self.txn
                        .view_ref()
                        .corrupt(page, "page outside the mapping")
                })?;
                target.copy_from_slice(&bytes[within..within + take]);
            }
            at += take as u64;
        }
        Ok((end.saturating_sub(offset)) as usize)
    }
}

/// The pages the commit record of `meta` lists as free (sorted).
pub(crate) fn free_pages(txn: &ReadTxn, meta: Meta) -> Result<Vec<u64>> {
    if meta.freelist_page == 0 {
        return Ok(Vec::new());
    }
    let view = txn.view_ref();
    let bytes = view.run(meta.freelist_page, PageKind::FreeList)?;
    let (mut free, _written) = decode_commit_record(bytes, meta.page_count)
        .map_err(|reason| view.corrupt(meta.freelist_page, reason))?;
    free.sort_unstable();
    Ok(free)
}
