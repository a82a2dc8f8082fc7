//! The write transaction and its commit.
//!
//! Commit protocol (crash-safe at every byte):
//! 1. encode every owned node and fresh large value into pages that are free in the committed
//!    snapshot (so neither the published meta nor any reader can see them), plus a commit record
//!    run: the free list and the (page, checksum) of every page this commit wrote;
//! 2. write them and fdatasync;
//! 3. write the new meta (naming the record and its checksum) into the slot the previous commit
//!    did not use, and fdatasync.
//!
//! A crash before 3 completes leaves the previous meta as the newest valid one, and every page
//! it references untouched; a torn meta fails its checksum and is ignored the same way. Open
//! checks every page the record lists, so a write the disk lost is reported, not served.
//!
//! Why not one fdatasync (pages and meta together, verify at open, fall back if a page is
//! missing)? Then a damaged page of the newest, acknowledged commit would be indistinguishable
//! from a torn one and open would silently fall back, losing an acknowledged commit — which the
//! server may already have truncated from its WAL. The server commits the B+tree rarely (the
//! WAL is the durability point), so the second sync is cheap where it matters.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use super::{Shared, Table, Tables};
use crate::btree::flush::{flush, PageWrites};
use crate::btree::node::Child;
use crate::btree::read::NodeRef;
use crate::btree::write::{insert, remove, Cow, FromPredecessor, NewValue};
use crate::error::{Error, Result};
use crate::pager::freelist::{encode_commit_record, FreeList, Written};
use crate::pager::mapping::Mapping;
use crate::pager::meta::{Meta, TABLE_SLOTS};
use crate::pager::{build_run, run_pages, PageKind, View, HEADER_SIZE, PAGE_SIZE};

/// Test hook: a crash point makes the next commit kill the process at that step, so crash tests
/// can stop a writer between (and inside) the writes of the commit protocol.
#[doc(hidden)]
pub mod crash_point {
    use std::sync::atomic::{AtomicU8, Ordering};

    /// No crash.
    pub const NONE: u8 = 0;
    /// After the data pages are written, before their fdatasync.
    pub const AFTER_PAGES: u8 = 1;
    /// One data page is never written, the meta is, then crash (a disk that lost a write).
    pub const LOST_PAGE: u8 = 2;
    /// Half of the meta page written (a torn meta), then crash.
    pub const TORN_META: u8 = 3;
    /// Meta written but not synced.
    pub const AFTER_META: u8 = 4;
    /// After the data pages are synced, before the meta is written.
    pub const AFTER_PAGES_SYNCED: u8 = 5;

    static POINT: AtomicU8 = AtomicU8::new(NONE);

    /// Arms a crash point for the following commits of this process.
    pub fn set(point: u8) {
        POINT.store(point, Ordering::SeqCst);
    }

    pub(crate) fn reached(point: u8) -> bool {
        POINT.load(Ordering::Relaxed) == point
    }

    pub(crate) fn crash() -> ! {
        std::process::abort()
    }
}

/// Minimum growth step of the file: growing in big steps keeps fdatasync from also having to
/// commit a file-size change on most commits.
const GROW_BYTES_MIN: u64 = 4 << 20;

/// The single write transaction: owned copies of the touched nodes, on top of the snapshot it
/// started from.
pub(crate) struct WriteTxn<'a> {
    shared: &'a Shared,
    freelist: MutexGuard<'a, FreeList>,
    view: View,
    base: Meta,
    roots: [Option<Child>; TABLE_SLOTS],
    /// Pages of the base snapshot this transaction no longer references.
    freed: Vec<u64>,
}

impl<'a> WriteTxn<'a> {
    pub(crate) fn begin(shared: &'a Shared) -> Result<WriteTxn<'a>> {
        let freelist = shared.writer.lock().expect("writer lock");
        if shared.failed.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let (meta, mapping) = {
            let published = shared.published.lock().expect("published state lock");
            (published.meta, published.mapping.clone())
        };
        let roots = meta
            .roots
            .map(|page| (page != 0).then_some(Child::Clean(page)));
        Ok(WriteTxn {
            shared,
            freelist,
            view: View {
                mapping,
                page_count: meta.page_count,
                path: shared.file.path.clone(),
            },
            base: meta,
            roots,
            freed: Vec::new(),
        })
    }

    /// Inserts or replaces `key` in `table`; returns whether it replaced a value.
    pub(crate) fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<bool> {
        let mut cx = Cow {
            view: &self.view,
            freed: &mut self.freed,
        };
        let replaced = insert(
            &mut cx,
            &mut self.roots[table as usize],
            key,
            NewValue::Bytes(value),
        )?;
        Ok(replaced.expect("plain inserts always complete"))
    }

    /// Inserts `key` (not yet present) with a value computed from the entry just before it,
    /// in one descent; `Ok(false)` if that entry lives in another leaf (nothing changed: look it
    /// up and use `put`).
    pub(crate) fn put_after_predecessor(
        &mut self,
        table: Table,
        key: &[u8],
        make: FromPredecessor,
    ) -> Result<bool> {
        let mut cx = Cow {
            view: &self.view,
            freed: &mut self.freed,
        };
        let done = insert(
            &mut cx,
            &mut self.roots[table as usize],
            key,
            NewValue::AfterPredecessor(make),
        )?;
        Ok(done.is_some())
    }

    /// Removes `key` from `table`; returns whether it was present.
    pub(crate) fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        let mut cx = Cow {
            view: &self.view,
            freed: &mut self.freed,
        };
        remove(&mut cx, &mut self.roots[table as usize], key)
    }

    /// Makes everything written durable and visible to new readers.
    pub(crate) fn commit(self) -> Result<()> {
        let shared = self.shared;
        let result = self.commit_inner();
        if result.is_err() {
            // The allocator may have handed out pages of a commit that never happened: stop
            // writing until restart (fail-stop), which rebuilds it from the durable free list.
            shared.failed.store(true, Ordering::Release);
        }
        result
    }

    fn commit_inner(mut self) -> Result<()> {
        let shared = self.shared;
        let txn_id = self.base.txn_id + 1;
        let oldest_reader = {
            let published = shared.published.lock().expect("published state lock");
            published.readers.keys().next().copied()
        };
        self.freelist
            .release(oldest_reader.unwrap_or(self.base.txn_id));

        let mut page_count = self.base.page_count;
        let mut writes: PageWrites = Vec::new();
        let mut roots = [0u64; TABLE_SLOTS];
        {
            let freelist = &mut *self.freelist;
            let mut alloc = |n: u64| {
                freelist.take_run(n).unwrap_or_else(|| {
                    page_count += n;
                    page_count - n
                })
            };
            for (slot, root) in std::mem::take(&mut self.roots).into_iter().enumerate() {
                roots[slot] = root.map_or(0, |child| flush(child, &mut alloc, &mut writes));
            }
        }

        // The previous free-list run belongs to the base snapshot: freed by this commit.
        let mut freed = std::mem::take(&mut self.freed);
        if self.base.freelist_page != 0 {
            let old = self.view.run(self.base.freelist_page, PageKind::FreeList)?;
            let first = self.base.freelist_page;
            freed.extend(first..first + run_pages(old.len()));
        }
        self.freelist.add_pending(txn_id, freed);
        page_count = self.freelist.trim_tail(page_count);

        let written: Vec<Written> = writes
            .iter()
            .map(|(page, bytes)| (*page, u32::from_le_bytes(bytes[0..4].try_into().unwrap())))
            .collect();
        // The record run is allocated from the free list it describes; taking pages can split
        // runs, so retry until the run is large enough for the list without its own pages.
        let mut run_len = 1;
        let (freelist_page, freelist_bytes) = loop {
            let page = self.freelist.take_run(run_len).unwrap_or_else(|| {
                page_count += run_len;
                page_count - run_len
            });
            let mut bytes = encode_commit_record(&self.freelist.durable_runs(&[]), &written);
            if run_pages(bytes.len()) <= run_len {
                // Pad to the pages taken, so none of them is left neither used nor free.
                bytes.resize(run_len as usize * PAGE_SIZE - HEADER_SIZE, 0);
                break (page, bytes);
            }
            self.freelist.give_back(page..page + run_len);
            run_len = run_pages(bytes.len()) + 1;
        };
        let record = build_run(freelist_page, PageKind::FreeList, &freelist_bytes);
        let freelist_crc = u32::from_le_bytes(record[0..4].try_into().unwrap());
        writes.push((freelist_page, record));

        let meta = Meta {
            txn_id,
            page_count,
            freelist_page,
            freelist_crc,
            roots,
        };
        let mapping = self.write_pages(writes, page_count)?;
        let meta_page = meta.encode();
        if crash_point::reached(crash_point::TORN_META) {
            let offset = meta.slot() * PAGE_SIZE as u64;
            let _ = std::os::unix::fs::FileExt::write_all_at(
                &shared.file.file,
                &meta_page[..PAGE_SIZE / 2],
                offset,
            );
            crash_point::crash();
        }
        shared.file.write_pages(meta.slot(), &meta_page)?;
        if crash_point::reached(crash_point::AFTER_META)
            || crash_point::reached(crash_point::LOST_PAGE)
        {
            crash_point::crash();
        }
        shared.file.sync()?;

        {
            let mut published = shared.published.lock().expect("published state lock");
            published.meta = meta;
            published.mapping = mapping;
        }
        // Give back a large free tail. Only now: a shorter file must never be paired with a
        // durable meta that still counts the cut pages. No snapshot can see pages past the new
        // page count (they were free), so cutting them is invisible to readers.
        let used = page_count * PAGE_SIZE as u64;
        let file_len = shared.file.len()?;
        if file_len > used + (2 * GROW_BYTES_MIN).max(file_len / 4) {
            shared.file.set_len(used + GROW_BYTES_MIN)?;
        }
        Ok(())
    }

    /// Writes the pages (coalescing neighbours), grows the file and mapping as needed, syncs.
    fn write_pages(&self, mut writes: PageWrites, page_count: u64) -> Result<Arc<Mapping>> {
        let file = &self.shared.file;
        let needed = page_count * PAGE_SIZE as u64;
        let file_len = file.len()?;
        if file_len < needed {
            // Zero-fill rather than set_len: an fdatasync after writing into a hole or an
            // unwritten extent must also commit allocation metadata (measured ~20x slower).
            let grown = needed
                .max(file_len + (file_len / 8).max(GROW_BYTES_MIN))
                .next_multiple_of(PAGE_SIZE as u64);
            file.zero_fill(file_len, grown)?;
        }
        let mut mapping = self.view.mapping.clone();
        if page_count > mapping.pages_capacity() {
            let reserve = super::open::reserve_for(file.len()?);
            mapping = Arc::new(
                Mapping::new(&file.file, reserve).map_err(|source| Error::Io {
                    path: file.path.to_path_buf(),
                    source,
                })?,
            );
        }
        writes.sort_unstable_by_key(|(page, _)| *page);
        let mut batch: Vec<u8> = Vec::new();
        let mut batch_start = 0;
        let lose_one = crash_point::reached(crash_point::LOST_PAGE);
        for (i, (page, bytes)) in writes.into_iter().enumerate() {
            if lose_one && i == 0 {
                continue; // simulate a page the disk never persisted
            }
            let pages = (bytes.len() / PAGE_SIZE) as u64;
            assert!(
                page >= 2 && page + pages <= page_count,
                "write outside the new snapshot"
            );
            for p in page..page + pages {
                // Readers of the old mapping never reach these pages; the current one must
                // re-verify them after the rewrite.
                self.view.mapping.clear_verified(p);
                mapping.clear_verified(p);
            }
            if !batch.is_empty() && batch_start + (batch.len() / PAGE_SIZE) as u64 != page {
                file.write_pages(batch_start, &batch)?;
                batch.clear();
            }
            if batch.is_empty() {
                batch_start = page;
            }
            batch.extend_from_slice(&bytes);
        }
        if !batch.is_empty() {
            file.write_pages(batch_start, &batch)?;
        }
        if crash_point::reached(crash_point::AFTER_PAGES) {
            crash_point::crash();
        }
        file.sync()?;
        if crash_point::reached(crash_point::AFTER_PAGES_SYNCED) {
            crash_point::crash();
        }
        Ok(mapping)
    }

    /// Free and pending page counts (diagnostics and tests).
    pub(crate) fn free_pages(&self) -> (usize, usize) {
        (self.freelist.free_count(), self.freelist.pending_count())
    }
}

impl Tables for WriteTxn<'_> {
    fn view(&self) -> &View {
        &self.view
    }

    fn root(&self, table: Table) -> Option<NodeRef<'_>> {
        self.roots[table as usize].as_ref().map(NodeRef::of)
    }
}
