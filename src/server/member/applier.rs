//! The replicated state machine as the member runs it: committed entries go into the engine
//! (`state_machine::apply`), and their effects go on to the lessor, the watchers of every core,
//! the cluster table and `/metrics`. It knows nothing of raft: the raft loop hands it entries in
//! index order and routes the answers it returns.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use basalt_engine::Engine;
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::Status;
use futures_channel::oneshot;
use raft::prelude::Entry;

use super::lease_ids::LeaseIds;
use super::offload::on_own_thread;
use crate::server::metrics::ServerMetrics;
use crate::server::state_machine::apply::{
    apply_entries, compaction_step, Applied, AppliedBatch, ApplyOptions, LeaseApplied,
};
use crate::server::state_machine::auth_hub::AuthHub;
use crate::server::state_machine::cluster_state::ClusterState;
use crate::server::state_machine::lease_lessor::{Lessor, LessorConfig, Millis};
use crate::server::watch::watch_hub::WatchHub;
use crate::server::watch::watcher_presence::WatcherPresence;

/// Where a proposal's answer goes.
pub type AnswerSender = oneshot::Sender<Result<Applied, Status>>;

/// Another core's doorbell, and whether that core has watchers to feed.
pub struct Doorbell {
    pub ring: glommio::channels::shared_channel::ConnectedSender<()>,
    pub watchers: WatcherPresence,
}

/// How a compaction's removal is paced once its first step has applied:
/// `--experimental-compaction-batch-limit` revisions a step, `--experimental-compaction-sleep-interval`
/// between steps (etcd's defaults: 1,000 and 10 ms).
#[derive(Clone, Copy, Debug)]
pub struct CompactionPacing {
    pub step_revisions: usize,
    pub step_interval: Duration,
}

impl CompactionPacing {
    /// etcd's defaults, which it also uses for a flag set to 0.
    const DEFAULT: CompactionPacing = CompactionPacing {
        step_revisions: 1_000,
        step_interval: Duration::from_millis(10),
    };

    /// The pacing the flags ask for, with etcd's rule that 0 means the default.
    pub fn from_config(config: &crate::config::CompactionConfig) -> CompactionPacing {
        CompactionPacing {
            step_revisions: match config.batch_limit {
                0 => Self::DEFAULT.step_revisions,
                limit => usize::try_from(limit).unwrap_or(usize::MAX),
            },
            step_interval: match config.sleep_interval {
                Duration::ZERO => Self::DEFAULT.step_interval,
                interval => interval,
            },
        }
    }
}

/// What the applier starts from: the engine as opened, and what the flags say.
pub struct ApplierSetup {
    pub engine: Arc<Engine>,
    pub cluster: ClusterState,
    pub auth: Arc<AuthHub>,
    pub watch_hub: Rc<WatchHub>,
    pub lessor_config: LessorConfig,
    pub stored_leases: Vec<basalt_engine::Lease>,
    pub lease_ids: LeaseIds,
    /// How long a new leader's lessor extends every lease (the election timeout).
    pub lease_extend: Duration,
    pub compaction_pending: bool,
    pub compaction_pacing: CompactionPacing,
    pub metrics: Arc<ServerMetrics>,
}

/// The state machine's runtime on the owner core.
pub struct Applier {
    engine: Arc<Engine>,
    /// Alarms and member attributes, changed only by applied entries.
    cluster: RefCell<ClusterState>,
    /// The auth store every core reads; apply publishes its changes there.
    auth: Arc<AuthHub>,
    watch_hub: Rc<WatchHub>,
    /// One doorbell per other core: rung after each apply batch that core has watchers for,
    /// so they read the new events from the engine (a full doorbell already has a ring
    /// pending).
    doorbells: RefCell<Vec<Doorbell>>,
    /// The leases and their timers; told about every applied lease change.
    lessor: RefCell<Lessor>,
    /// The origin of the lessor's clock.
    clock_origin: std::time::Instant,
    /// Names the leases granted with ID 0 (one generator, so cores never collide).
    lease_ids: LeaseIds,
    /// This member leads and its lessor waits to be promoted (see `on_leader_changed`).
    promote_pending: Cell<bool>,
    /// How long a new leader's lessor extends every lease (the election timeout), so no lease
    /// expires before its holder could have found the new leader.
    lease_extend_ms: Millis,
    /// A compaction has revisions left to remove; `compaction_step` removes them in steps.
    compaction_pending: Cell<bool>,
    /// Revisions a compaction step removes, and the pause between steps.
    compaction_pacing: CompactionPacing,
    /// Answers to physical compactions (etcd's `physical`), sent when the compaction is done.
    compaction_waiters: RefCell<Vec<(AnswerSender, Applied)>>,
    /// Where the member records proposals, key counts and database commits for `/metrics`.
    metrics: Arc<ServerMetrics>,
}

impl Applier {
    pub fn new(setup: ApplierSetup) -> Applier {
        Applier {
            engine: setup.engine,
            cluster: RefCell::new(setup.cluster),
            auth: setup.auth,
            watch_hub: setup.watch_hub,
            doorbells: RefCell::new(Vec::new()),
            lessor: RefCell::new(Lessor::new(setup.lessor_config, &setup.stored_leases)),
            clock_origin: std::time::Instant::now(),
            lease_ids: setup.lease_ids,
            promote_pending: Cell::new(false),
            lease_extend_ms: setup.lease_extend.as_millis() as Millis,
            compaction_pending: Cell::new(setup.compaction_pending),
            compaction_pacing: setup.compaction_pacing,
            compaction_waiters: RefCell::new(Vec::new()),
            metrics: setup.metrics,
        }
    }

    /// Applies `entries` (new ones, in index order) in one engine commit and carries their
    /// effects to the lessor (before any client hears its answer, so a TimeToLive after a
    /// Grant sees the lease), the watchers and the other cores. The batch's answers and
    /// membership changes are the caller's to route. The commit is deferred: every read of
    /// the engine includes it, but its page writes wait for the first reader or for
    /// `publish_deferred`, which the caller runs once the answers are on their way. An error
    /// is a storage fault: the member must stop.
    pub fn apply(
        &self,
        entries: &[Entry],
        header: pb::ResponseHeader,
    ) -> Result<AppliedBatch, String> {
        let batch = apply_entries(
            &self.engine,
            entries,
            header,
            ApplyOptions {
                compaction_pending: self.compaction_pending.get(),
                compaction_step_revisions: self.compaction_pacing.step_revisions,
                // Only this core's watchers see the batch's events; other cores read
                // theirs, previous values included, from the engine's history.
                events_prev_kv: self.watch_hub.wants_prev_kv(),
            },
            &mut self.cluster.borrow_mut(),
            &self.auth,
        )
        .map_err(|error| format!("applying raft entries to the database failed: {error}"))?;
        self.metrics.member.count_key_changes(&batch.events);
        self.compaction_pending.set(batch.compaction_pending);
        self.lessor_applied(&batch.leases);
        self.watch_hub.publish(&batch.events);
        let doorbells = self.doorbells.borrow();
        // `any_after_publish` fences after the deferral, which counts as the publish: a
        // watcher counted in after it reads an engine that includes the batch.
        let to_ring: Vec<&Doorbell> = doorbells
            .iter()
            .filter(|doorbell| doorbell.watchers.any_after_publish())
            .collect();
        if self.watch_hub.any_catching_up() || !to_ring.is_empty() {
            // Watchers here and on the rung cores read the engine at once, and each read
            // would publish the deferred commit on its own core under the writer lock (which
            // the next apply then waits for): publish it here, once.
            self.publish_deferred()?;
        }
        self.watch_hub.catch_up_all();
        for doorbell in to_ring {
            // Full means a ring is pending: that core reads everything new anyway.
            let _ = doorbell.ring.try_send(());
        }
        Ok(batch)
    }

    /// Writes out and publishes the batch the last `apply` left deferred, if no reader, batch
    /// or sync has yet (see `WriteBatch::commit_deferred`). An error is a storage fault: the
    /// member must stop.
    pub fn publish_deferred(&self) -> Result<(), String> {
        self.engine
            .settle()
            .map_err(|error| format!("publishing applied entries in the database failed: {error}"))
    }

    /// Holds a physical compaction's answer until the compaction's last step.
    pub fn answer_when_compacted(&self, sender: AnswerSender, applied: Applied) {
        self.compaction_waiters.borrow_mut().push((sender, applied));
    }

    /// Removes one bounded step of a pending compaction's revisions, if one is pending, and
    /// answers the physical compactions once it is done.
    pub fn compaction_step(&self) -> Result<(), String> {
        if !self.compaction_pending.get() {
            return Ok(());
        }
        let done = compaction_step(&self.engine, self.compaction_pacing.step_revisions)
            .map_err(|error| format!("compacting the database failed: {error}"))?;
        self.compaction_pending.set(!done);
        if done {
            for (sender, applied) in self.compaction_waiters.take() {
                let _ = sender.send(Ok(applied));
            }
        }
        Ok(())
    }

    /// The pause between compaction steps.
    pub fn compaction_interval(&self) -> Duration {
        self.compaction_pacing.step_interval
    }

    /// Moves the lessor with leadership. A member that stops leading stops expiring leases
    /// (etcd's `Demote`) at once; a new leader's lessor takes over only once it has applied an
    /// entry of its own term, i.e. every lease change of the terms before (etcd promotes after
    /// applying the leader's first entry): a renew or checkpoint committed by the old leader
    /// and not yet applied here would otherwise be missed and its lease revoked early.
    pub fn on_leader_changed(&self, leads: bool) {
        self.promote_pending.set(leads);
        let mut lessor = self.lessor.borrow_mut();
        if !leads && lessor.is_primary() {
            lessor.demote();
        }
    }

    /// Called after each applied batch with whether this member leads and the batch ended
    /// with an entry of the current term: once it has, everything of the earlier terms is
    /// applied and the lessor takes over, every lease with its remaining TTL plus the
    /// election timeout (etcd's `Promote`, so no mass revoke at a leader change).
    pub fn on_applied_as_leader(&self, leads_with_own_entry: bool) {
        if self.promote_pending.get() && leads_with_own_entry {
            self.promote_pending.set(false);
            self.lessor
                .borrow_mut()
                .promote(self.now_ms(), self.lease_extend_ms);
        }
    }

    fn lessor_applied(&self, changes: &[LeaseApplied]) {
        if changes.is_empty() {
            return;
        }
        let now = self.now_ms();
        let mut lessor = self.lessor.borrow_mut();
        for change in changes {
            match *change {
                LeaseApplied::Granted { id, ttl } => lessor.on_granted(id, ttl, now),
                LeaseApplied::Revoked { id } => lessor.on_revoked(id),
                LeaseApplied::Checkpointed { id, remaining_ttl } => {
                    lessor.on_checkpointed(id, remaining_ttl, now)
                }
            }
        }
    }

    /// `sync_engine`, timed for `etcd_disk_backend_commit_duration_seconds` (the engine's
    /// sync is what makes a commit durable, as bbolt's commit is for etcd). Returns the
    /// applied index now durable in the engine.
    pub async fn sync_engine(&self) -> basalt_engine::Result<u64> {
        let started = std::time::Instant::now();
        let synced = sync_engine(&self.engine).await;
        self.metrics
            .member
            .backend_commit_seconds
            .observe_duration(started.elapsed());
        synced
    }

    /// Releases the engine's resident page copies, so the resident set stays near one sync
    /// interval's working set rather than growing toward the file size (copy-on-write touches
    /// a fresh page for every page it writes). The same thread measures the bytes in use for
    /// `/metrics`: measuring waits for the writer, which a scrape on a serving core must never do.
    pub async fn release_cached_pages(&self) {
        let engine = self.engine.clone();
        let (released, in_use) = on_own_thread("basalt-release", move || {
            (engine.release_cached_pages(), engine.size_in_use_bytes())
        })
        .await;
        if let Err(error) = released {
            tracing::warn!(%error, "could not release the database's resident pages");
        }
        if let Ok(bytes) = in_use {
            self.metrics.member.db_size_in_use_bytes.set(bytes as i64);
        }
    }

    /// The lessor (never borrow it across an await).
    pub fn lessor(&self) -> std::cell::RefMut<'_, Lessor> {
        self.lessor.borrow_mut()
    }

    /// The lessor's clock: milliseconds since this member started.
    pub fn now_ms(&self) -> Millis {
        self.clock_origin.elapsed().as_millis() as Millis
    }

    pub fn lease_ids(&self) -> &LeaseIds {
        &self.lease_ids
    }

    pub fn auth_hub(&self) -> Arc<AuthHub> {
        self.auth.clone()
    }

    pub fn watch_hub(&self) -> Rc<WatchHub> {
        self.watch_hub.clone()
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Alarms and member attributes as of the last applied entry.
    pub fn cluster(&self) -> std::cell::Ref<'_, ClusterState> {
        self.cluster.borrow()
    }

    /// Adds another core's doorbell, rung after every apply batch while that core has watchers.
    pub fn add_doorbell(&self, doorbell: Doorbell) {
        self.doorbells.borrow_mut().push(doorbell);
    }
}

/// `Engine::sync` on a thread of its own: its fdatasyncs (every page written since the last
/// sync, up to a second of writes) would otherwise stop this core — raft, applies and every
/// connection on it — for as long as the disk takes, and on the executor's shared blocking
/// thread it would queue behind large range scans (see `offload`). Write batches keep going
/// meanwhile (the engine flushes the bulk without holding its writer).
pub async fn sync_engine(engine: &Arc<Engine>) -> basalt_engine::Result<u64> {
    let engine = engine.clone();
    on_own_thread("basalt-sync", move || engine.sync()).await
}
