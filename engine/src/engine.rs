//! The engine's public face: open a file, take read views, run write batches.
//!
//! Write path, built for batching: the server applies many raft entries into one
//! [`WriteBatch`] (each `put`/`delete_range`/`txn` is its own MVCC transaction with its own main
//! revision), records the raft index with [`WriteBatch::set_applied_index`], then commits the
//! B+tree once with [`WriteBatch::commit_unsynced`]: published to readers, no fdatasync. The WAL
//! is the durability point; [`Engine::sync`] is the checkpoint that makes every published commit
//! durable (one fdatasync), after which the WAL may be truncated up to the applied index stored
//! in it. After a crash, open returns the last durable commit; replaying the WAL from its
//! applied index restores the rest.

use std::ops::Bound;
use std::path::Path;

use crate::db::check::CheckReport;
use crate::db::defrag::DefragReport;
use crate::db::snapshot::Snapshot;
use crate::db::{Db, Durability, ReadTxn, Table, Tables, WriteTxn};
use crate::error::{Error, Result};
use crate::mvcc::keys::Revision;
use crate::mvcc::lease::{self, Lease};
use crate::mvcc::response_budget::ResponseBudget;
use crate::mvcc::state::MvccState;
use crate::mvcc::types::{
    DeleteRangeRequest, DeleteRangeResponse, Event, HashKv, KeyValue, PutRequest, PutResponse,
    RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use crate::mvcc::write::Writer;
use crate::mvcc::{check, compact, events, hash, read};

/// Revisions a [`WriteBatch::compact`] call processes before returning; the rest is left to
/// [`WriteBatch::compact_step`] in later batches.
pub const COMPACT_STEP_BUDGET: usize = 10_000;

/// Sync-then-pin rounds `Engine::durable_view` tries before giving up on a writer that
/// publishes between every sync and pin.
const DURABLE_VIEW_ROUNDS: usize = 100;

/// An open database: an etcd-model key-value store in one file.
#[derive(Clone)]
pub struct Engine {
    db: Db,
}

impl Engine {
    /// Opens (or creates) the database at `path`. Time does not depend on the number of keys.
    /// Starts one thread, `basalt-grow`, that zero-fills the file ahead of the writer; it ends
    /// when the last handle (engine, read view or snapshot) is dropped.
    pub fn open(path: impl AsRef<Path>) -> Result<Engine> {
        Ok(Engine {
            db: Db::open(path.as_ref())?,
        })
    }

    /// A read view of the newest commit, a deferred one included (published first, on this
    /// thread: see [`WriteBatch::commit_deferred`]); `Send`, lock-free reads, pins its pages
    /// while alive.
    pub fn read(&self) -> Result<ReadView> {
        self.db.settle()?;
        let txn = self.db.begin_read();
        let state = MvccState::load(&txn)?;
        Ok(ReadView { txn, state })
    }

    /// Publishes a batch ended by [`WriteBatch::commit_deferred`] now, if one waits. Nothing
    /// depends on calling it — every read view, write batch and sync publishes it first — but a
    /// writer that told its callers the outcome calls it next, so that the cost falls on the
    /// writer and not on a reader.
    pub fn settle(&self) -> Result<()> {
        self.db.settle()
    }

    /// At least the size of the newest commit's file (its high-water mark, as
    /// [`ReadView::size_bytes`] would report it), a batch still deferred included, without
    /// opening a view or publishing that batch: exact when nothing is deferred, else counting
    /// every page the deferred batch could add. The quota check asks this on every write.
    pub fn size_bound_bytes(&self) -> u64 {
        self.db.page_count_bound() * crate::pager::PAGE_SIZE as u64
    }

    /// The exact size of the newest commit's file: a deferred batch is published first (as
    /// [`Engine::settle`] does), then the published size is read. A batch deferred after that
    /// is not counted (as a write still in flight is not).
    pub fn settled_size_bytes(&self) -> Result<u64> {
        self.db.settle()?;
        Ok(self.db.published_page_count() * crate::pager::PAGE_SIZE as u64)
    }

    /// Walks the whole newest commit: every page reachable exactly once or free, keys in
    /// order, checksums valid; then, on a snapshot, that the key index and the change log
    /// name the same revisions (each record's value is logged, nothing is logged twice or
    /// left over). Waits for an open write batch to finish, publishes a deferred one, and
    /// refuses (Poisoned) an engine whose commit failed.
    pub fn check(&self) -> Result<CheckReport> {
        let report = self.db.check()?;
        check::check_index_and_log(&self.db.begin_read())?;
        Ok(report)
    }

    /// Makes every published commit durable: fdatasync of the pages, then of the meta (so open
    /// reports a page lost after the fact as damage instead of taking it for a torn commit);
    /// nothing if already durable. Returns the applied index now durable: after a crash, open
    /// returns at least this.
    ///
    /// The bulk of the page I/O is flushed first without holding the writer, so write batches
    /// wait only for the short locked part (what they wrote meanwhile, then the meta). Blocks
    /// the calling thread for the fdatasyncs: an async caller runs it off its executor.
    pub fn sync(&self) -> Result<u64> {
        // A deferred batch's pages first, so the unlocked flush covers them too.
        self.db.settle()?;
        self.db.flush_unlocked()?;
        let txn = self.db.begin_write()?;
        let applied_index = MvccState::load(&txn)?.applied_index;
        if !txn.is_durable() {
            txn.commit(Durability::PagesFirst)?;
        }
        Ok(applied_index)
    }

    /// A read view of a *durable* commit — the newest one, synced first if it was not — for
    /// work that needs the commit's full record, such as [`ReadView::into_snapshot`] (an
    /// unsynced commit does not carry its free-page list). Waits for an open write batch.
    pub fn durable_view(&self) -> Result<ReadView> {
        // Each round syncs what is published; a writer that publishes again between the sync
        // and the pin sends us round once more.
        self.db.settle()?;
        self.db.flush_unlocked()?;
        for _ in 0..DURABLE_VIEW_ROUNDS {
            let txn = self.db.begin_write()?;
            if txn.is_durable() {
                // Holding the writer: the newest published commit is the durable one.
                let read = self.db.begin_read();
                drop(txn);
                let state = MvccState::load(&read)?;
                return Ok(ReadView { txn: read, state });
            }
            txn.commit(Durability::PagesFirst)?;
        }
        Err(Error::Busy)
    }

    /// Releases this process's resident copies of the data file's pages (they stay in the
    /// kernel's page cache): without it the resident set grows toward the file size, since
    /// copy-on-write touches a fresh page for every page it writes. Readers are unaffected;
    /// pages read again fault back in from the page cache.
    pub fn release_cached_pages(&self) -> Result<()> {
        let (mapping, page_count) = {
            let published = self
                .db
                .shared
                .published
                .lock()
                .expect("published state lock");
            (published.mapping.clone(), published.meta.page_count)
        };
        mapping
            .release_resident(page_count)
            .map_err(|source| Error::Io {
                path: self.db.shared.file.path.to_path_buf(),
                source,
            })
    }

    /// Bytes of the newest commit that hold live pages — its size less the pages the
    /// allocator holds free or waiting to be reusable: etcd's Status `db_size_in_use`. Asked of
    /// the writer's allocator (waits for an open write batch), because only durable commits
    /// record their free pages in the file.
    pub fn size_in_use_bytes(&self) -> Result<u64> {
        let txn = self.db.begin_write()?;
        let (free, pending) = txn.free_pages();
        let live = txn.page_count().saturating_sub((free + pending) as u64);
        Ok(live * crate::pager::PAGE_SIZE as u64)
    }

    /// Online defragmentation: moves the tree's pages toward the start of the file and cuts
    /// the file to about what the data needs (etcd's `defrag`, without stopping the world).
    /// Readers never wait; the writer waits for one short step at a time (a copy of at most
    /// `keys_per_step` root-to-leaf paths, committed and synced). Everything is durable when
    /// it returns. Pages a reader still pins stay until that reader ends: call it again then.
    pub fn defragment(&self, keys_per_step: usize) -> Result<DefragReport> {
        self.db.defragment(keys_per_step.max(1))
    }

    /// The commit open discarded because its meta reached the disk but not all of its pages
    /// (a crash inside its fdatasync), if any. A torn commit was never acknowledged — unless
    /// the disk lost a write after a successful fdatasync; callers with a log of their own
    /// (the server's WAL) should check that what open returned is not behind it.
    pub fn torn_commit_discarded(&self) -> Option<u64> {
        self.db.shared.torn_commit_discarded
    }

    /// Starts the single write batch (blocks while another is open).
    pub fn write(&self) -> Result<WriteBatch<'_>> {
        let txn = self.db.begin_write()?;
        let state = MvccState::load(&txn)?;
        Ok(WriteBatch {
            txn,
            loaded: state,
            state,
            poisoned: false,
            events_prev_kv: true,
        })
    }
}

/// A consistent, pinned snapshot of the store.
pub struct ReadView {
    txn: ReadTxn,
    state: MvccState,
}

impl ReadView {
    /// Newest main revision in this snapshot.
    pub fn current_revision(&self) -> i64 {
        self.state.current_revision
    }

    /// Reads below this revision fail with [`Error::Compacted`].
    pub fn compact_revision(&self) -> i64 {
        self.state.compact_revision
    }

    /// The raft index whose effects this snapshot holds.
    pub fn applied_index(&self) -> u64 {
        self.state.applied_index
    }

    /// The B+tree commit this view shows.
    pub fn commit_id(&self) -> u64 {
        self.txn.txn_id()
    }

    /// etcd's Range, its answer unbounded (tools and tests; a server uses [`Self::range_within`]).
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResponse> {
        self.range_within(request, &mut ResponseBudget::unlimited())
    }

    /// etcd's Range, failing with [`Error::ResponseTooLarge`] as soon as its answer passes
    /// `budget`.
    pub fn range_within(
        &self,
        request: &RangeRequest,
        budget: &mut ResponseBudget,
    ) -> Result<RangeResponse> {
        read::range(
            &self.txn,
            request,
            self.state.current_revision,
            self.state.compact_revision,
            budget,
        )
    }

    /// Whether a Range over `key`..`range_end` is cheap (spans a few leaves of the key index):
    /// two tree descents, no scan. A large one costs a scan of the whole range (etcd's `count`
    /// covers it all, whatever the limit), so a server runs it off its request loop.
    pub fn is_small_range(&self, key: &[u8], range_end: &[u8]) -> Result<bool> {
        read::range_is_small(&self.txn, key, range_end)
    }

    /// etcd's Txn when every op is a Range (see [`crate::is_read_only_txn`]): evaluated on this
    /// snapshot, without the writer. A txn that writes is refused with [`Error::NotReadOnly`].
    pub fn read_only_txn(&self, request: &TxnRequest) -> Result<TxnResponse> {
        self.read_only_txn_within(request, &mut ResponseBudget::unlimited())
    }

    /// [`Self::read_only_txn`], failing with [`Error::ResponseTooLarge`] as soon as the answer
    /// (every branch's ranges together) passes `budget`.
    pub fn read_only_txn_within(
        &self,
        request: &TxnRequest,
        budget: &mut ResponseBudget,
    ) -> Result<TxnResponse> {
        crate::mvcc::read_txn::read_only_txn(
            &self.txn,
            request,
            self.state.current_revision,
            self.state.compact_revision,
            budget,
        )
    }

    /// Events of main revisions ≥ `from`, whole revisions only: up to about `limit` events and
    /// about `max_bytes` of keys and values (at least one revision, whatever its size).
    pub fn events_since(&self, from: i64, limit: usize, max_bytes: usize) -> Result<Vec<Event>> {
        events::events_since(
            &self.txn,
            from,
            limit,
            max_bytes,
            self.state.current_revision,
            self.state.compact_revision,
        )
    }

    /// etcd's HashKV at `revision` (0 = current).
    pub fn hash_kv(&self, revision: i64) -> Result<HashKv> {
        hash::hash_kv(
            &self.txn,
            revision,
            self.state.current_revision,
            self.state.compact_revision,
        )
    }

    /// Whether a compaction still has revisions to remove.
    pub fn compaction_pending(&self) -> bool {
        self.state.compact_cursor.is_some()
    }

    /// The lease `id`, if it exists.
    pub fn lease(&self, id: i64) -> Result<Option<Lease>> {
        lease::get(&self.txn, id)
    }

    /// Every lease, in id order.
    pub fn leases(&self) -> Result<Vec<Lease>> {
        lease::all(&self.txn)
    }

    /// The keys attached to lease `id` (live keys whose newest version names it), in key order.
    pub fn lease_keys(&self, id: i64) -> Result<Vec<Vec<u8>>> {
        lease::keys(&self.txn, id)
    }

    /// Bytes of the database at this commit: its page count times the page size, free pages
    /// included (bbolt's size, which etcd's quota and Status `db_size` report).
    pub fn size_bytes(&self) -> u64 {
        self.txn.meta().page_count * crate::pager::PAGE_SIZE as u64
    }

    /// A consistent copy of the database file at this view's commit (for backups and etcd's
    /// Snapshot RPC); it keeps the commit pinned while it lives. The view must come from
    /// [`Engine::durable_view`]: an unsynced commit does not carry its free-page list, and the
    /// copy would hold pages that are neither reachable nor free.
    pub fn into_snapshot(self) -> Result<Snapshot> {
        Snapshot::new(self.txn)
    }

    /// etcd's Hash: a crc32 over every table's entries at this commit (see `mvcc::hash`).
    pub fn hash_store(&self) -> Result<u32> {
        hash::hash_store(&self.txn)
    }

    /// Seam for cluster state (alarms, members): every (key, record) whose key starts with
    /// `prefix`, in key order.
    pub fn cluster_records(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        self.txn.scan(
            Table::Cluster,
            Bound::Included(prefix),
            Bound::Unbounded,
            false,
            &mut |k, v| {
                if !k.starts_with(prefix) {
                    return Ok(false);
                }
                out.push((k.to_vec(), v.to_vec()));
                Ok(true)
            },
        )?;
        Ok(out)
    }

    /// Seam for auth: the record of a user or role.
    pub fn auth_record(&self, kind: AuthTable, name: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.txn.get(kind.table(), name)?.map(<[u8]>::to_vec))
    }

    /// Seam for auth: every (name, record) of a table of users or roles, in name order.
    pub fn auth_records(&self, kind: AuthTable) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        self.txn.scan(
            kind.table(),
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |k, v| {
                out.push((k.to_vec(), v.to_vec()));
                Ok(true)
            },
        )?;
        Ok(out)
    }
}

/// Which auth table a record lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthTable {
    Users,
    Roles,
}

impl AuthTable {
    fn table(self) -> Table {
        match self {
            AuthTable::Users => Table::AuthUsers,
            AuthTable::Roles => Table::AuthRoles,
        }
    }
}

/// The single writer: any number of MVCC write transactions, then one B+tree commit.
pub struct WriteBatch<'e> {
    txn: WriteTxn<'e>,
    loaded: MvccState,
    state: MvccState,
    poisoned: bool,
    /// See [`WriteBatch::set_events_prev_kv`].
    events_prev_kv: bool,
}

impl WriteBatch<'_> {
    /// Whether the events of later puts in this batch carry the previous version's value
    /// (`prev_kv`) when their request does not ask for it; true unless set. With false, an
    /// event whose key had a live previous version has `prev_kv: None` and
    /// `prev_kv_omitted: true`, and the put skips a lookup in the change log.
    pub fn set_events_prev_kv(&mut self, wanted: bool) {
        self.events_prev_kv = wanted;
    }

    /// Runs one MVCC write transaction; request errors (which happen before any change) leave
    /// the batch usable, storage errors poison it.
    fn mvcc<T>(&mut self, op: impl FnOnce(&mut Writer) -> Result<T>) -> Result<(T, Vec<Event>)> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let mut writer = Writer::new(
            &mut self.txn,
            self.state.current_revision,
            self.state.compact_revision,
            self.events_prev_kv,
        );
        match op(&mut writer) {
            Ok(out) => {
                let end = writer.end_revision();
                let events = std::mem::take(&mut writer.events);
                self.state.current_revision = end;
                Ok((out, events))
            }
            Err(error) => {
                if !writer.events.is_empty() || is_storage_error(&error) {
                    self.poisoned = true;
                }
                Err(error)
            }
        }
    }

    /// Current revision including this batch's writes.
    pub fn current_revision(&self) -> i64 {
        self.state.current_revision
    }

    /// Compaction revision including this batch's changes.
    pub fn compact_revision(&self) -> i64 {
        self.state.compact_revision
    }

    /// etcd's Range over this batch's state (its own writes included).
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResponse> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        read::range(
            &self.txn,
            request,
            self.state.current_revision,
            self.state.compact_revision,
            &mut ResponseBudget::unlimited(),
        )
    }

    /// etcd's Put; returns the response and its event.
    pub fn put(&mut self, request: &PutRequest) -> Result<(PutResponse, Vec<Event>)> {
        self.mvcc(|w| w.put(request))
    }

    /// etcd's DeleteRange; returns the response and one event per deleted key.
    pub fn delete_range(
        &mut self,
        request: &DeleteRangeRequest,
    ) -> Result<(DeleteRangeResponse, Vec<Event>)> {
        self.mvcc(|w| w.delete_range(request))
    }

    /// etcd's Txn (one main revision for all its writes); returns the response and events.
    pub fn txn(&mut self, request: &TxnRequest) -> Result<(TxnResponse, Vec<Event>)> {
        self.txn_within(request, &mut ResponseBudget::unlimited())
    }

    /// [`Self::txn`] with its ranges' answers charged to `budget`: the writes are applied
    /// whatever the answer's size, ranges past the budget answer nothing, and the caller checks
    /// [`ResponseBudget::check`] before sending the answer.
    pub fn txn_within(
        &mut self,
        request: &TxnRequest,
        budget: &mut ResponseBudget,
    ) -> Result<(TxnResponse, Vec<Event>)> {
        self.mvcc(|w| w.txn(request, budget))
    }

    /// Imports one historical change of another store at `revision` (`basalt-util migrate`):
    /// revisions must increase across calls, none below the current revision nor at or below
    /// the compaction revision (asserted); the current revision becomes `revision.main`.
    pub fn import_change(
        &mut self,
        revision: Revision,
        kv: &KeyValue,
        tombstone: bool,
    ) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        assert!(
            revision.main >= self.state.current_revision
                && revision.main > self.state.compact_revision,
            "imported revisions increase: {revision:?} after {}",
            self.state.current_revision
        );
        let mut writer = Writer::new(
            &mut self.txn,
            revision.main,
            self.state.compact_revision,
            self.events_prev_kv,
        );
        let result = writer.import(revision, kv, tombstone);
        match result {
            Ok(()) => {
                self.state.current_revision = revision.main;
                Ok(())
            }
            Err(error) => {
                if is_storage_error(&error) {
                    self.poisoned = true;
                }
                Err(error)
            }
        }
    }

    /// etcd's Compact(rev): reads below `rev` fail from now on; removes up to
    /// [`COMPACT_STEP_BUDGET`] revisions now. Returns whether the physical work is finished;
    /// if not, call [`WriteBatch::compact_step`] in later batches.
    pub fn compact(&mut self, revision: i64) -> Result<bool> {
        self.compact_within(revision, COMPACT_STEP_BUDGET)
    }

    /// [`WriteBatch::compact`] removing up to `budget` revisions now.
    pub fn compact_within(&mut self, revision: i64, budget: usize) -> Result<bool> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        compact::schedule(&mut self.state, revision)?;
        self.compact_step(budget)
    }

    /// Continues a pending compaction by up to `budget` revisions; returns whether it is done.
    pub fn compact_step(&mut self, budget: usize) -> Result<bool> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let result = compact::step(&mut self.txn, &mut self.state, budget);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// Records the raft index whose effects this batch completes (stored in the same commit).
    pub fn set_applied_index(&mut self, index: u64) {
        assert!(
            index >= self.state.applied_index,
            "applied index went backwards"
        );
        self.state.applied_index = index;
    }

    /// Starts the count of applied raft entries over: a database restored from a snapshot
    /// belongs to a new raft log that begins at index 1 (what `etcdutl snapshot restore`
    /// gives its new cluster). The only way the applied index may go back.
    pub fn start_new_raft_log(&mut self) {
        self.state.applied_index = 0;
    }

    /// etcd's lease grant: stores lease `id` with `ttl` seconds. Fails with
    /// [`Error::LeaseExists`] (nothing changed) if the id is taken.
    pub fn grant_lease(&mut self, id: i64, ttl: i64) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if lease::get(&self.txn, id)?.is_some() {
            return Err(Error::LeaseExists);
        }
        let record = Lease {
            id,
            ttl,
            remaining_ttl: 0,
        };
        self.raw(|txn| lease::put(txn, &record))
    }

    /// etcd's lease revoke: deletes every key attached to lease `id` in one revision, then the
    /// lease; returns the delete events. Fails with [`Error::LeaseNotFound`] (nothing changed).
    pub fn revoke_lease(&mut self, id: i64) -> Result<Vec<Event>> {
        self.mvcc(|w| w.revoke_lease(id)).map(|((), events)| events)
    }

    /// etcd's lease checkpoint: records lease `id`'s remaining TTL (0 clears it) so a restart
    /// resumes from it. An unknown lease is ignored, as etcd does.
    pub fn checkpoint_lease(&mut self, id: i64, remaining_ttl: i64) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let Some(mut record) = lease::get(&self.txn, id)? else {
            return Ok(());
        };
        record.remaining_ttl = remaining_ttl;
        self.raw(|txn| lease::put(txn, &record))
    }

    /// Seam for cluster state (alarms, members): stores `record` under `key`.
    pub fn put_cluster_record(&mut self, key: &[u8], record: &[u8]) -> Result<()> {
        self.raw(|txn| txn.put(Table::Cluster, key, record).map(drop))
    }

    /// Seam for cluster state (alarms, members): removes the record under `key`.
    pub fn delete_cluster_record(&mut self, key: &[u8]) -> Result<()> {
        self.raw(|txn| txn.delete(Table::Cluster, key).map(drop))
    }

    /// Seam for auth: stores a user or role record.
    pub fn put_auth_record(&mut self, kind: AuthTable, name: &[u8], record: &[u8]) -> Result<()> {
        self.raw(|txn| txn.put(kind.table(), name, record).map(drop))
    }

    /// Seam for auth: removes a user or role record.
    pub fn delete_auth_record(&mut self, kind: AuthTable, name: &[u8]) -> Result<()> {
        self.raw(|txn| txn.delete(kind.table(), name).map(drop))
    }

    fn raw(&mut self, op: impl FnOnce(&mut WriteTxn) -> Result<()>) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let result = op(&mut self.txn);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// Writes everything (and every unsynced commit before it) durably, with one fdatasync,
    /// and publishes it to new readers.
    pub fn commit(self) -> Result<()> {
        self.finish(Durability::OneSync)
    }

    /// Publishes everything to new readers without fdatasync: a crash before the next
    /// [`Engine::sync`] (or durable [`WriteBatch::commit`]) returns to the last durable commit.
    pub fn commit_unsynced(self) -> Result<()> {
        self.finish(Durability::Unsynced)
    }

    /// Ends the batch as [`WriteBatch::commit_unsynced`] does, but leaves writing its pages
    /// and publishing it to whoever next needs the newest commit: the next read view
    /// ([`Engine::read`]), write batch or sync publishes it first, on its own thread, or
    /// [`Engine::settle`] does. Once this returns, no read view can miss the batch, so its
    /// outcome (revisions, responses) may be told before the commit's cost is paid. A failure
    /// when it is published stops the engine (Poisoned), readers included: they must not see
    /// the store without a batch whose outcome was told.
    pub fn commit_deferred(mut self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.state.store(&self.loaded, &mut self.txn)?;
        self.txn.defer();
        Ok(())
    }

    fn finish(mut self, durability: Durability) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.state.store(&self.loaded, &mut self.txn)?;
        self.txn.commit(durability)
    }

    /// (free, pending) page counts of the allocator — diagnostics.
    pub fn free_pages(&self) -> (usize, usize) {
        self.txn.free_pages()
    }
}

fn is_storage_error(error: &Error) -> bool {
    matches!(
        error,
        Error::Io { .. } | Error::Corrupt { .. } | Error::BadFile { .. } | Error::Poisoned
    )
}
