//! The write transaction and its commit.
//!
//! A commit is either *unsynced* (published to readers, not yet durable) or *durable*. The
//! meta page on disk always names the newest durable commit `D`; a crash (of the process or of
//! the machine) returns to `D`, never to a mix. Invariant that makes this hold: no commit writes
//! a page `D` can reach — the allocator holds pages freed since `D` that `D` reaches until a
//! newer meta is durable (`pager::freelist`), on top of gating pages by live readers.
//!
//! Unsynced commit `t`:
//! 1. encode every owned node and fresh large value into pages free in both the published
//!    snapshot and `D` (so no reader and no meta on disk can see them);
//! 2. pwrite them (no fdatasync) and publish the new roots in memory; no meta is written.
//!
//! Deferred commit (`WriteTxn::defer`): the unsynced commit's two steps wait, with everything
//! the transaction changed, in the writer's state; the writer lock is released. Whoever next
//! needs the newest commit carries them out first — the next write transaction, or
//! `Db::settle`, which every read view of the newest commit calls — so a writer can report a
//! transaction's outcome before paying for its page writes, and nobody can see the store
//! without it. It takes no page until then, and a crash loses it as it loses an unsynced one.
//!
//! Durable commit `N` (also what `sync` does, with no changes of its own):
//! 1. as above, plus a commit record run: the free list of `N`, and the (page, checksum) of
//!    every page written since `D` that `N` still uses — its own and its unsynced predecessors';
//! 2. pwrite them and the new meta (naming the record and its checksum) into the meta slot that
//!    does *not* hold `D`; one fdatasync covers all of it;
//! 3. only then is `N` the durable meta: pages held for `D` become reusable (after readers).
//!
//! A crash before the fdatasync returns can leave any subset of those writes on disk. If the
//! meta is torn, its checksum fails and `D` (other slot, pages untouched) is used. If the meta
//! is whole but a page is not, the record's checksum list says so at open and `D` is used. If
//! everything landed, `N` is used — it is complete. The price of one fdatasync instead of two
//! (pages, then meta): a page the disk *lost after* a successful fdatasync looks like a torn
//! commit, and open falls back to `D`; the engine reports that (`torn_commit_discarded`) and
//! the server refuses to start when the result is behind the checkpoint its WAL was cut at.
//! `Engine::sync` — the checkpoint the WAL is cut at — pays a second fdatasync instead (pages,
//! then meta, flagged in the meta), so there a page that does not match is reported as damage.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use super::{Shared, Table, Tables, WriterState};
use crate::btree::flush::{flush, pages_to_flush, PageWrite, PageWrites};
use crate::btree::node::Child;
use crate::btree::read::NodeRef;
use crate::btree::relocate::relocate_path;
use crate::btree::write::{insert, remove, Cow, FromPredecessor, NewValue};
use crate::error::{Error, Result};
use crate::pager::freelist::encode_commit_record;
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
    /// After the data pages are written (durable or unsynced commit), before the meta.
    pub const AFTER_PAGES: u8 = 1;
    /// One data page is never written, the meta is, then crash (a disk that lost a write).
    pub const LOST_PAGE: u8 = 2;
    /// Half of the meta page written (a torn meta), then crash.
    pub const TORN_META: u8 = 3;
    /// Meta written but not synced.
    pub const AFTER_META: u8 = 4;
    /// After the fdatasync of a durable commit returned, before it is published.
    pub const AFTER_SYNC: u8 = 5;
    /// A pages-first commit: after the pages' fdatasync, before the meta is written.
    pub const AFTER_PAGES_SYNCED: u8 = 6;
    /// Not a crash: every commit's page write fails with an I/O error (a disk that refuses
    /// writes), so tests can see what a failed commit leaves behind.
    pub const FAIL_PAGE_WRITES: u8 = 7;

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

/// How a commit reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Published to readers only; a crash returns to the last durable commit.
    Unsynced,
    /// Pages and meta under one fdatasync; open tells a torn commit by the commit record.
    OneSync,
    /// Pages fdatasync'ed, then the meta: a page not matching the record is reported as
    /// damage at open, never taken for a torn commit (what a checkpoint needs).
    PagesFirst,
}

/// The single write transaction: owned copies of the touched nodes, on top of the snapshot it
/// started from.
pub(crate) struct WriteTxn<'a> {
    shared: &'a Shared,
    writer: MutexGuard<'a, WriterState>,
    view: View,
    base: Meta,
    roots: [Option<Child>; TABLE_SLOTS],
    /// Pages of the base snapshot this transaction no longer references.
    freed: Vec<u64>,
}

/// A write transaction ended by [`WriteTxn::defer`]: everything it changed, waiting in the
/// writer's state to be written out and published (as an unsynced commit) by whoever next needs
/// the newest commit. It allocated no page yet: pages are taken when it is published.
pub(crate) struct DeferredTxn {
    view: View,
    base: Meta,
    roots: [Option<Child>; TABLE_SLOTS],
    freed: Vec<u64>,
}

impl<'a> WriteTxn<'a> {
    pub(crate) fn begin(shared: &'a Shared) -> Result<WriteTxn<'a>> {
        let writer = shared.writer.lock().expect("writer lock");
        if shared.failed.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        // A deferred transaction is the newest commit: it goes out before one starts on it.
        let writer = WriteTxn::publish_deferred(shared, writer)?;
        let (meta, mapping) = {
            let published = shared.published.lock().expect("published state lock");
            (published.meta, published.mapping.clone())
        };
        let roots = meta
            .roots
            .map(|page| (page != 0).then_some(Child::Clean(page)));
        Ok(WriteTxn {
            shared,
            writer,
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

    /// Copies the path to `key` in `table` (and its leaf's large values reaching `threshold`)
    /// so they move to the lowest free pages at commit: a defragmentation step.
    pub(crate) fn relocate(&mut self, table: Table, key: &[u8], threshold: u64) -> Result<()> {
        let mut cx = Cow {
            view: &self.view,
            freed: &mut self.freed,
        };
        relocate_path(&mut cx, &mut self.roots[table as usize], key, threshold)
    }

    /// Removes `key` from `table`; returns whether it was present.
    pub(crate) fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        let mut cx = Cow {
            view: &self.view,
            freed: &mut self.freed,
        };
        remove(&mut cx, &mut self.roots[table as usize], key)
    }

    /// Publishes everything written to new readers, durably or not as `durability` says.
    pub(crate) fn commit(self, durability: Durability) -> Result<()> {
        self.commit_keeping_writer(durability).map(drop)
    }

    /// `commit`, handing back the writer lock it held.
    fn commit_keeping_writer(self, durability: Durability) -> Result<MutexGuard<'a, WriterState>> {
        let shared = self.shared;
        let result = self.commit_inner(durability);
        if result.is_err() {
            // The allocator may have handed out pages of a commit that never happened: stop
            // writing until restart (fail-stop), which rebuilds it from the durable free list.
            shared.failed.store(true, Ordering::Release);
        }
        result
    }

    /// Ends the transaction without writing it out or publishing it, and releases the writer:
    /// the work of an unsynced commit (pages, publication) is left to whoever next needs the
    /// newest commit — the next write transaction, `Db::settle` (which every read view of the
    /// newest commit calls first), or a sync. So a writer can tell its callers the outcome
    /// before paying for the commit, and none of them can observe the store without it.
    pub(crate) fn defer(self) {
        let WriteTxn {
            shared,
            mut writer,
            view,
            base,
            roots,
            freed,
        } = self;
        assert!(
            writer.deferred.is_none(),
            "a write transaction began on top of a deferred one"
        );
        let pages: u64 = roots.iter().flatten().map(pages_to_flush).sum();
        shared.deferred_pages.store(pages, Ordering::SeqCst);
        writer.deferred = Some(DeferredTxn {
            view,
            base,
            roots,
            freed,
        });
        // Set before the writer lock is released: a reader that sees it clear after that
        // finds the transaction published (`publish_deferred` clears it only then).
        shared.commit_deferred.store(true, Ordering::SeqCst);
    }

    /// Publishes the deferred transaction, if there is one, as an unsynced commit, holding the
    /// writer throughout; hands the writer back. Refuses (Poisoned) once a commit failed: a
    /// deferred transaction's outcome may have been told, so its store must not be read without
    /// it — the flag stays set, and every later reader lands here and is refused too.
    pub(crate) fn publish_deferred(
        shared: &'a Shared,
        mut writer: MutexGuard<'a, WriterState>,
    ) -> Result<MutexGuard<'a, WriterState>> {
        let deferred = writer.deferred.take();
        if shared.failed.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        let Some(deferred) = deferred else {
            return if shared.commit_deferred.load(Ordering::SeqCst) {
                Err(Error::Poisoned) // a deferred commit failed to publish
            } else {
                Ok(writer)
            };
        };
        let txn = WriteTxn {
            shared,
            writer,
            view: deferred.view,
            base: deferred.base,
            roots: deferred.roots,
            freed: deferred.freed,
        };
        let writer = txn.commit_keeping_writer(Durability::Unsynced)?;
        shared.commit_deferred.store(false, Ordering::SeqCst);
        shared.deferred_pages.store(0, Ordering::SeqCst);
        Ok(writer)
    }

    /// Whether the published snapshot is already the durable one (a sync has nothing to do).
    pub(crate) fn is_durable(&self) -> bool {
        self.writer.durable.txn_id == self.base.txn_id
    }

    fn commit_inner(mut self, durability: Durability) -> Result<MutexGuard<'a, WriterState>> {
        let durable = durability != Durability::Unsynced;
        let shared = self.shared;
        let txn_id = self.base.txn_id + 1;
        let oldest_reader = {
            let published = shared.published.lock().expect("published state lock");
            // Commits happen only under the writer, each on the one published before it (a
            // deferred transaction holds back every other writer until it is published).
            assert_eq!(
                published.meta.txn_id, self.base.txn_id,
                "a commit must build on the published one"
            );
            published.readers.keys().next().copied()
        };
        let writer = &mut *self.writer;
        writer
            .freelist
            .release(oldest_reader.unwrap_or(self.base.txn_id));

        let mut page_count = self.base.page_count;
        let mut writes: PageWrites = Vec::new();
        let mut roots = [0u64; TABLE_SLOTS];
        {
            let freelist = &mut writer.freelist;
            let mut alloc = |n: u64| {
                freelist.take_run(n).unwrap_or_else(|| {
                    page_count += n;
                    page_count - n
                })
            };
            for (slot, root) in std::mem::take(&mut self.roots).into_iter().enumerate() {
                roots[slot] =
                    root.map_or(0, |child| flush(&self.view, child, &mut alloc, &mut writes));
            }
        }
        for write in &writes {
            writer
                .freelist
                .add_written(write.page, write.pages(), write.crc, write.value_run);
        }

        let mut freed = std::mem::take(&mut self.freed);
        // The record run of the durable meta stays in use until a newer meta is durable.
        if durable && self.base.freelist_page != 0 {
            let old = self.view.run(self.base.freelist_page, PageKind::FreeList)?;
            let first = self.base.freelist_page;
            freed.extend(first..first + run_pages(old.len()));
        }
        writer.freelist.add_freed(txn_id, freed);
        page_count = writer.freelist.trim_tail(page_count);

        let (freelist_page, freelist_crc) = if durable {
            let written = writer.freelist.written_since_durable();
            // The record run is allocated from the free list it describes; taking pages can
            // split runs, so retry until the run is large enough for the list without its own
            // pages. Its pages are not in `written`: the meta carries the record's checksum.
            let mut run_len = 1;
            let (page, bytes) = loop {
                let page = writer.freelist.take_run(run_len).unwrap_or_else(|| {
                    page_count += run_len;
                    page_count - run_len
                });
                let mut bytes = encode_commit_record(&writer.freelist.durable_runs(), &written);
                if run_pages(bytes.len()) <= run_len {
                    // Pad to the pages taken, so none of them is left neither used nor free.
                    bytes.resize(run_len as usize * PAGE_SIZE - HEADER_SIZE, 0);
                    break (page, bytes);
                }
                writer.freelist.give_back(page..page + run_len);
                run_len = run_pages(bytes.len()) + 1;
            };
            let record = PageWrite::sealed(page, build_run(page, PageKind::FreeList, &bytes));
            let crc = record.crc;
            writes.push(record);
            (page, crc)
        } else {
            // Readers ignore the record; naming the durable one keeps its pages accounted for.
            (self.base.freelist_page, self.base.freelist_crc)
        };

        let meta = Meta {
            txn_id,
            page_count,
            freelist_page,
            freelist_crc,
            roots,
            pages_synced_first: durability == Durability::PagesFirst,
        };
        let durable_page_count = writer.durable.page_count;
        let lose_one = durable && crash_point::reached(crash_point::LOST_PAGE);
        let mapping = self.write_pages(writes, page_count, lose_one)?;
        if durable {
            if durability == Durability::PagesFirst {
                shared.file.sync()?;
                if crash_point::reached(crash_point::AFTER_PAGES_SYNCED) {
                    crash_point::crash();
                }
            }
            let writer = &mut *self.writer;
            let slot = 1 - writer.durable_slot;
            let meta_page = meta.encode();
            if crash_point::reached(crash_point::TORN_META) {
                let _ = std::os::unix::fs::FileExt::write_all_at(
                    &shared.file.file,
                    &meta_page[..PAGE_SIZE / 2],
                    slot * PAGE_SIZE as u64,
                );
                crash_point::crash();
            }
            shared.file.write_pages(slot, &meta_page)?;
            if crash_point::reached(crash_point::AFTER_META)
                || crash_point::reached(crash_point::LOST_PAGE)
            {
                crash_point::crash();
            }
            shared.file.sync()?;
            if crash_point::reached(crash_point::AFTER_SYNC) {
                crash_point::crash();
            }
            writer.durable = meta;
            writer.durable_slot = slot;
            writer.freelist.made_durable();
        }

        {
            let mut published = shared.published.lock().expect("published state lock");
            published.meta = meta;
            published.mapping = mapping;
        }
        // Give back a large free tail. Only now: a shorter file must never be paired with a
        // meta on disk that still counts the cut pages — the durable one may count more pages
        // than this unsynced one. No snapshot can see pages past the new page count (they
        // were free), so cutting them is invisible to readers. The cut keeps the slack the
        // grower would otherwise put back (`grow::Tail::trim`).
        let used = page_count.max(self.writer.durable.page_count.max(durable_page_count))
            * PAGE_SIZE as u64;
        shared.grower.tail().trim(&shared.file, used)?;
        Ok(self.writer)
    }

    /// Writes the pages (coalescing neighbours), grows the file and mapping as needed; no sync.
    fn write_pages(
        &mut self,
        mut writes: PageWrites,
        page_count: u64,
        lose_one: bool,
    ) -> Result<Arc<Mapping>> {
        let file = &self.shared.file;
        if crash_point::reached(crash_point::FAIL_PAGE_WRITES) {
            return Err(Error::Io {
                path: file.path.to_path_buf(),
                source: std::io::Error::other("injected page write failure"),
            });
        }
        // Pages go only into zero-filled, allocated blocks (see `grow`): the grower keeps
        // slack ahead; this fills inline only what it has not prepared.
        let needed = page_count * PAGE_SIZE as u64;
        let file_len = self.shared.grower.tail().ensure(file, needed)?;
        let mut mapping = self.view.mapping.clone();
        if page_count > mapping.pages_capacity() {
            let reserve = super::open::reserve_for(file_len);
            mapping = Arc::new(
                Mapping::new(&file.file, reserve).map_err(|source| Error::Io {
                    path: file.path.to_path_buf(),
                    source,
                })?,
            );
        }
        writes.sort_unstable_by_key(|write| write.page);
        // Pages that follow each other in the file go out in one pwritev, straight from their
        // buffers.
        let mut run: Vec<&[u8]> = Vec::new();
        let mut run_start = 0;
        let mut run_end = 0;
        for (i, write) in writes.iter().enumerate() {
            if lose_one && i == 0 {
                continue; // simulate a page the disk never persisted
            }
            let (page, pages, bytes) = (write.page, write.pages(), &write.bytes);
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
            if !run.is_empty() && run_end != page {
                file.write_pages_vectored(run_start, &run)?;
                run.clear();
            }
            if run.is_empty() {
                run_start = page;
            }
            run.push(bytes);
            run_end = page + pages;
        }
        if !run.is_empty() {
            file.write_pages_vectored(run_start, &run)?;
        }
        // What was just written is what was sealed: readers of the new snapshot need not
        // checksum it again (a reopened file starts with nothing verified).
        for (i, write) in writes.iter().enumerate() {
            if !(lose_one && i == 0) {
                mapping.mark_verified(write.page);
            }
        }
        if crash_point::reached(crash_point::AFTER_PAGES) {
            crash_point::crash();
        }
        Ok(mapping)
    }

    /// Pages of the published snapshot (its high-water mark).
    pub(crate) fn page_count(&self) -> u64 {
        self.base.page_count
    }

    /// Free and pending page counts (diagnostics and tests).
    pub(crate) fn free_pages(&self) -> (usize, usize) {
        (
            self.writer.freelist.free_count(),
            self.writer.freelist.pending_count(),
        )
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
