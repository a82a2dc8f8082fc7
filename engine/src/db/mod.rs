//! Transactions over the B+tree tables: many concurrent readers pinning committed snapshots,
//! one writer building the next commit.

pub(crate) mod check;
pub(crate) mod defrag;
pub(crate) mod grow;
pub(crate) mod open;
pub(crate) mod read;
pub mod snapshot;
pub mod write;

#[cfg(test)]
mod grow_tests;
#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod value_run_tests;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::btree::read::{get, scan, seek_le, NodeRef, Visit};
use crate::error::Result;
use crate::pager::file::DataFile;
use crate::pager::freelist::FreeList;
use crate::pager::mapping::Mapping;
use crate::pager::meta::Meta;
use crate::pager::View;

pub(crate) use read::ReadTxn;
pub(crate) use write::{Durability, WriteTxn};

/// The B+trees a database holds; each has a root slot in the meta page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    /// The key index: encoded user key ++ revision → record header, no value (see
    /// `mvcc::keys`, `mvcc::record`).
    Index = 0,
    /// The change log: revision → user key and value, in revision order (values of reads,
    /// replay, compaction, hash; see `mvcc::log`).
    Revisions = 1,
    /// Small named values: current revision, compaction state, applied raft index.
    Meta = 2,
    /// Seam for the lease store: lease id → lease record.
    Leases = 3,
    /// Seam for auth: user name → user record.
    AuthUsers = 4,
    /// Seam for auth: role name → role record.
    AuthRoles = 5,
    /// Cluster state replicated through raft: alarms and member attributes.
    Cluster = 6,
}

impl Table {
    /// Every table, in slot order.
    pub(crate) const ALL: [Table; 7] = [
        Table::Index,
        Table::Revisions,
        Table::Meta,
        Table::Leases,
        Table::AuthUsers,
        Table::AuthRoles,
        Table::Cluster,
    ];
}

/// What every commit publishes and readers pin.
pub(crate) struct Published {
    pub(crate) meta: Meta,
    pub(crate) mapping: Arc<Mapping>,
    /// Live readers per snapshot txn id: pages they can see are not reused.
    pub(crate) readers: BTreeMap<u64, usize>,
}

/// What the single writer owns: the page allocator and what is on disk.
pub(crate) struct WriterState {
    pub(crate) freelist: FreeList,
    /// The newest meta known durable: what open returns after a crash now.
    pub(crate) durable: Meta,
    /// The meta page (0 or 1) holding `durable`; the next durable meta goes to the other one,
    /// so a torn meta write can only ever destroy a meta that is not the durable one.
    pub(crate) durable_slot: u64,
    /// A write transaction that ended with `WriteTxn::defer`: complete, but not yet written
    /// out or published. Whoever next needs the newest commit publishes it first (`Db::settle`,
    /// `WriteTxn::begin`).
    pub(crate) deferred: Option<write::DeferredTxn>,
}

/// State shared by the database handle, its readers and its writer.
pub(crate) struct Shared {
    /// Shared with the grower thread, which writes zeros past the tail.
    pub(crate) file: Arc<DataFile>,
    /// Owns the file length; keeps zero-filled slack ahead of the writer (`grow`). Dropped
    /// with the last handle: stops and joins its thread.
    pub(crate) grower: grow::Grower,
    pub(crate) published: Mutex<Published>,
    /// The writer lock; it owns the page allocator and the durable meta.
    pub(crate) writer: Mutex<WriterState>,
    /// Set when a commit failed half-way: the process must stop writing (fail-stop).
    pub(crate) failed: AtomicBool,
    /// Whether `WriterState::deferred` holds a transaction: read without the writer lock on
    /// every `Db::settle`, so a read view costs one atomic load when nothing is deferred. Set
    /// (under the writer lock) before the deferring writer releases the lock, cleared under
    /// the lock by whoever takes the transaction out.
    pub(crate) commit_deferred: AtomicBool,
    /// While a transaction is deferred, at most how many pages its publication adds to the
    /// published page count (`Db::page_count_bound`); 0 otherwise.
    pub(crate) deferred_pages: AtomicU64,
    /// The commit id whose meta was on disk but whose pages were not (a crash inside its
    /// fdatasync), if open fell back to the commit before it.
    pub(crate) torn_commit_discarded: Option<u64>,
}

/// A B+tree database: one file, tables, snapshots.
#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) shared: Arc<Shared>,
}

/// Read access to the tables of a snapshot (committed, or a writer's own view).
pub(crate) trait Tables {
    /// The snapshot's page view.
    fn view(&self) -> &View;
    /// The root of `table`, if the table is not empty.
    fn root(&self, table: Table) -> Option<NodeRef<'_>>;

    /// The value under `key` in `table`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>> {
        get(self.view(), self.root(table), key)
    }

    /// The entry of `table` with the greatest key ≤ `key`.
    fn seek_le(&self, table: Table, key: &[u8]) -> Result<Option<(&[u8], &[u8])>> {
        seek_le(self.view(), self.root(table), key)
    }

    /// Visits entries of `table` within the bounds, in key order or reversed.
    fn scan<'a>(
        &'a self,
        table: Table,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        visit: Visit<'a, '_>,
    ) -> Result<()> {
        if let Some(root) = self.root(table) {
            scan(self.view(), root, lower, upper, reverse, visit)?;
        }
        Ok(())
    }
}

impl Db {
    /// Publishes the deferred write transaction, if there is one, so that a snapshot pinned
    /// after this returns includes everything a writer ended before it (`WriteTxn::defer`).
    /// Every entry point that hands out the newest commit calls this first; `begin_read`
    /// alone does not (callers holding the writer use it, and nothing can be deferred then).
    pub(crate) fn settle(&self) -> Result<()> {
        if !self.shared.commit_deferred.load(Ordering::SeqCst) {
            return Ok(());
        }
        let writer = self.shared.writer.lock().expect("writer lock");
        WriteTxn::publish_deferred(&self.shared, writer).map(drop)
    }

    /// Pins the newest committed snapshot for reading.
    pub(crate) fn begin_read(&self) -> ReadTxn {
        ReadTxn::begin(self.shared.clone())
    }

    /// Pages of the newest published commit (its high-water mark).
    pub(crate) fn published_page_count(&self) -> u64 {
        let published = self.shared.published.lock().expect("published state lock");
        published.meta.page_count
    }

    /// At least the page count of the newest commit, a deferred one included, without
    /// publishing it: the published count plus every page the deferred transaction could take
    /// from past the end (it may reuse free ones instead). Exact when nothing is deferred.
    pub(crate) fn page_count_bound(&self) -> u64 {
        // The bound is set before the flag and cleared after the publish, so it is never
        // missing while the published count lacks the deferred transaction.
        let deferred = self.shared.deferred_pages.load(Ordering::SeqCst);
        self.published_page_count() + deferred
    }

    /// Checks page accounting of the newest commit (waits for the writer).
    pub(crate) fn check(&self) -> Result<check::CheckReport> {
        check::check(&self.shared)
    }

    /// Starts the (single) write transaction; blocks while another is open.
    pub(crate) fn begin_write(&self) -> Result<WriteTxn<'_>> {
        WriteTxn::begin(&self.shared)
    }
}

impl Db {
    /// fdatasync of the data file without holding the writer. A sync calls this first, so the
    /// bulk of its I/O (every page the unsynced commits since the last sync wrote) happens while
    /// commits go on; its locked part then flushes only what they wrote meanwhile. Safe at any
    /// time: it only makes pages durable earlier, and nothing on disk names them before a meta
    /// does. A failure stops all writing (fail-stop: after a failed fdatasync the kernel may
    /// have dropped the dirty pages, so no later sync could be trusted).
    pub(crate) fn flush_unlocked(&self) -> Result<()> {
        if self
            .shared
            .failed
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(crate::error::Error::Poisoned);
        }
        let result = self.shared.file.sync();
        if result.is_err() {
            self.shared
                .failed
                .store(true, std::sync::atomic::Ordering::Release);
        }
        result
    }
}
