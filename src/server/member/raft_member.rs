//! The glommio shell around the sans-IO raft node: it feeds proposals, ticks and completed writes
//! in, and carries effects out — writes to the WAL (queued at once so one fdatasync covers many
//! raft steps), committed entries to the engine, answers to the clients waiting on them.
//!
//! Everything here runs on the member's raft executor. State lives in a `RefCell` that is never
//! borrowed across an await; the persister and the durability waiter are tasks of their own so
//! that raft keeps stepping while the disk works.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_engine::Engine;
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Status};
use basalt_wal::Wal;
use prost::Message as _;
use raft::prelude::{Entry, SnapshotMetadata};

use super::applier::{Applier, ApplierSetup, CompactionPacing};
use super::deadline_wait::DeadlineWait;
use super::forwarded_proposals;
use super::id_generator::IdGenerator;
use super::id_map::IdMap;
use super::lease_ids::LeaseIds;
use super::log_writer::{LogWork, LogWriter};
use super::offload::on_own_thread;
use super::reconfig_health::{Connectivity, HEALTH_INTERVAL};
use super::task_signal::TaskSignal;
use crate::node::{LogMetadata, RaftNode, RaftOptions, Recovered};
use crate::server::metrics::ServerMetrics;
use crate::server::state_machine::apply::{Applied, AppliedBatch};
use crate::server::state_machine::auth_hub::AuthHub;
use crate::server::state_machine::auth_store::AuthState;
use crate::server::state_machine::cluster_state::ClusterState;
use crate::server::state_machine::header::{HeaderSource, Identity};
use crate::server::state_machine::lease_lessor::{Lessor, LessorConfig, Millis};
use crate::server::state_machine::membership_change::MembershipChange;
use crate::server::state_machine::proposal::{Proposal, PROPOSAL_HEADER_BYTES};
use crate::server::state_machine::proposal_check::decodes_as_proposal;
use crate::server::state_machine::typed_write::Write;
use crate::server::watch::watch_hub::WatchHub;

/// Limit on client writes waiting for their entry to apply; past it, new writes are refused
/// with etcd's "too many requests".
const WAITING_PROPOSALS_LIMIT: usize = 64 * 1024;

/// How often the raft owner makes the engine's published commits durable (see
/// `run_engine_syncer`).
const ENGINE_SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Largest proposal data: the WAL's default record limit (16 MiB) less room for the raft
/// entry's own fields (index, term, type).
const ENTRY_BYTES_LIMIT: usize = (16 << 20) - 1024;

/// What the message of a member removed from its cluster says (etcd's).
pub const REMOVED_MESSAGE: &str = "the member has been permanently removed from the cluster";

/// How this member takes part in membership changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct MembershipOptions {
    /// `--initial-cluster-state=existing`: the member joins a running cluster, and learns its
    /// membership from the log (its first entries are the bootstrap's members).
    pub joining: bool,
    /// `--strict-reconfig-check`: refuse a change that would leave too few started members
    /// for a quorum.
    pub strict_reconfig_check: bool,
}

/// Raft's numbers as Status reports them.
#[derive(Clone, Copy, Debug)]
pub struct RaftStatus {
    pub term: u64,
    pub leader: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub is_learner: bool,
}

/// The member's raft loop on the owner core: the node, the clients waiting on it, and the two
/// parts it drives — the log writer (raft's writes into the WAL) and the applier (committed
/// entries into the state machine).
pub struct Member {
    state: RefCell<MemberState>,
    log: LogWriter,
    applier: Applier,
    /// The storage fault that stopped the member, if one did.
    stopped: RefCell<Option<String>>,
    /// A snapshot install is committing: raft is not advanced (see `freeze_for_snapshot`).
    frozen: Cell<bool>,
    /// Names this member's proposals and read requests (unique across members).
    request_ids: IdGenerator,
    /// Response headers; the member keeps their raft term current for every core.
    headers: HeaderSource,
    /// How long a client waits for its write to apply or its read point, as etcd's request
    /// timeout: 5 s plus two election timeouts.
    request_timeout: Duration,
    /// Largest proposal: `--max-request-bytes` of request plus the proposal header, and never
    /// more than the WAL's record limit allows.
    entry_bytes_limit: usize,
    /// Applied entries between checkpoints (etcd's --snapshot-count).
    checkpoint_entries: u64,
    /// The index of the last checkpoint handed to the persister.
    last_checkpoint: Cell<u64>,
    /// Where the member records leadership and proposals for `/metrics`.
    metrics: Arc<ServerMetrics>,
    /// Where raft's messages to other members go; `None` until the peer transport is attached
    /// (and for a single member, which sends none). Raft retries what is lost meanwhile.
    peers: RefCell<Option<Rc<dyn PeerOutlet>>>,
    /// `--strict-reconfig-check`.
    strict_reconfig_check: bool,
    /// One raft tick (the heartbeat interval).
    tick_interval: Duration,
    /// A graceful stop has handed over what it could: raft takes no more ticks or messages,
    /// so the log drains and the process can exit.
    quiesced: Cell<bool>,
    /// Proposals other members forwarded while a graceful stop hands leadership over: raft
    /// drops a proposal while a transfer is under way (and while no leader is known), and the
    /// member that forwarded it would wait out its request timeout. They are stepped again
    /// once the new leader is known, which forwards them to it. `None` outside a hand-over.
    held_proposals: RefCell<Option<Vec<raft::prelude::Message>>>,
    /// A pump was asked for (`request_pump`) and has not run yet.
    pump_due: TaskSignal,
    /// The engine holds an applied batch whose answers were given before its commit was
    /// written out (`run_publisher`).
    publish_due: TaskSignal,
    /// Raft handed the log a write since the last applied batch.
    log_write_queued: TaskSignal,
}

/// Forwarded proposals a hand-over holds at most; beyond, they are dropped as raft would drop
/// them (their members time out and their clients retry).
const HELD_PROPOSALS_LIMIT: usize = 4096;

/// How often a leader transfer's waiter looks whether the transferee leads.
const TRANSFER_POLL: Duration = Duration::from_millis(5);

/// The member's way out to the other members: the peer transport.
pub trait PeerOutlet {
    /// Queues `message` for its `to` member; `false` when it could not be queued (the peer is
    /// unreachable or its queue is full), so raft stops pipelining to it and probes again.
    fn send(&self, message: raft::prelude::Message) -> bool;

    /// Asks member `to` (the leader) a question a follower forwards (leases, promotions); `None` when
    /// it could not be asked or its answer was lost.
    fn forward_to_leader(
        &self,
        to: u64,
        query: super::leader_forward::LeaderQuery,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<super::leader_forward::LeaderReply>>>>;
    /// Since when member `peer` has been reachable without a break (`None`: not now).
    fn active_since(&self, peer: u64) -> Option<std::time::Instant>;
    /// Dials member `id` at `peer_urls` from now on (`None`: it was removed; its messages
    /// are refused).
    fn set_peer(&self, id: u64, peer_urls: Option<&[String]>);
}

struct MemberState {
    node: RaftNode,
    /// Proposers waiting for their entry to apply, by proposal id.
    waiting: IdMap<DeadlineWait<Applied>>,
    /// Linearizable reads waiting for their read index, by read context.
    read_waiters: IdMap<DeadlineWait<u64>>,
    /// Reads waiting for this member to apply their read index.
    applied_waiters: Vec<(u64, DeadlineWait<()>)>,
    applied_index: u64,
}

impl Member {
    /// Starts the member from what its log and engine hold.
    // The member's wiring, each argument from a different flag or file; a struct would only
    // move the list.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        identity: Identity,
        wal: Rc<Wal>,
        engine: Arc<Engine>,
        timing: RaftOptions,
        tick_interval: Duration,
        max_request_bytes: usize,
        checkpoint_entries: u64,
        peer_urls: Vec<String>,
        initial_members: Vec<(u64, Vec<String>)>,
        membership: MembershipOptions,
        lessor_config: LessorConfig,
        compaction_pacing: CompactionPacing,
        metrics: Arc<ServerMetrics>,
        auth: Arc<AuthHub>,
    ) -> Result<Rc<Member>, String> {
        let fresh_log = wal.metadata().is_empty() && wal.last_index() < wal.first_index();
        let joining = membership.joining;
        if fresh_log && !joining && initial_members.len() > 1 {
            // Every initial member records the same membership before its log starts, as
            // etcd's bootstrap adds each initial member to its store.
            ClusterState::record_initial_members(&engine, &initial_members)?;
        }
        let cluster = ClusterState::load(&engine, (identity.member_id, peer_urls), joining)?;
        if cluster.is_removed(identity.member_id) {
            return Err(REMOVED_MESSAGE.into());
        }
        auth.publish(Arc::new(AuthState::load(&engine)?), &[]);
        let mut metadata = LogMetadata::decode(&wal.metadata())?;
        if metadata.snapshot.get_conf_state() == &raft::prelude::ConfState::default()
            && !cluster.is_recorded()
            && !joining
        {
            // A new log takes the bootstrap's voters; the first metadata written stores them,
            // so a restart keeps its membership whatever its flags say. A log from before
            // membership was stored belongs to a one-member cluster.
            metadata.snapshot.mut_conf_state().voters = if fresh_log {
                initial_members.iter().map(|(id, _)| *id).collect()
            } else if initial_members.len() > 1 {
                // Running it as the one voter it was while the others form a cluster of their
                // own would be two clusters under one ID.
                return Err(format!(
                    "the data directory holds a one-member cluster's log, but --initial-cluster \
                     lists {} members; a member joins a cluster with a fresh data directory",
                    initial_members.len()
                ));
            } else {
                vec![identity.member_id]
            };
        }
        if fresh_log && !joining {
            // etcd's bootstrap: one AddNode entry per initial member at indices 1..=n, term
            // 1, committed, so a member added later replays the whole membership from the
            // log's start (a member that knew only its own addition would think itself a
            // cluster of one). The membership is durable before anything else enters the
            // log, so a crash after the first entries can never restart this member with no
            // voters.
            let bootstrap = MembershipChange::bootstrap_entries(&initial_members);
            for entry in &bootstrap {
                assert_eq!(wal.next_index(), entry.index, "a fresh log starts at 1");
                wal.queue_entry(&entry.encode_to_vec())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            metadata.hard_state.term = 1;
            metadata.hard_state.commit = bootstrap.len() as u64;
            let queued = wal
                .queue_metadata(&metadata.encode())
                .await
                .map_err(|e| e.to_string())?;
            wal.wait_durable(queued).await.map_err(|e| e.to_string())?;
        }
        if cluster.is_recorded() {
            // The table holds the membership as of the engine's applied index; raft's log
            // replays only what follows it, so that is raft's membership now.
            metadata.snapshot.set_conf_state(cluster.conf_state());
        }
        let conf_state = metadata.snapshot.get_conf_state().clone();
        let voters = conf_state.voters.clone();
        let own = identity.member_id;
        if !voters.contains(&own) && !conf_state.learners.contains(&own) && !joining {
            return Err(format!(
                "this member ({own:x}) is not one of its cluster's members {voters:x?}: its data \
                 directory belongs to another member"
            ));
        }
        let mut entries = Vec::new();
        if wal.last_index() >= wal.first_index() {
            for data in wal
                .read(wal.first_index(), wal.last_index() + 1)
                .await
                .map_err(|e| e.to_string())?
            {
                entries.push(
                    Entry::decode(data.as_slice())
                        .map_err(|e| format!("wal entry does not decode: {e}"))?,
                );
            }
        }
        let unfloored = IdGenerator::new(identity.member_id, None);
        let replayed_id_floor = entries
            .iter()
            .filter_map(|entry| Proposal::id_of(&entry.data))
            .filter(|&id| unfloored.is_own(id))
            .max();
        // Right after open, the engine shows its last durable commit: replay starts after it.
        let view = engine.read().map_err(|e| e.to_string())?;
        let (applied_index, compaction_pending) = (view.applied_index(), view.compaction_pending());
        let stored_leases = view.leases().map_err(|e| e.to_string())?;
        // Counted before anything is replayed: every applied event from here on comes after
        // this view, so the count plus the applied changes is the live key count.
        let keys_at_open = view;
        if let Some(commit) = engine.torn_commit_discarded() {
            tracing::warn!(
                commit,
                applied_index,
                "the database's newest commit was torn by a crash; using the one before it"
            );
        }
        if applied_index < metadata.snapshot.index {
            // The WAL forgot entries up to its checkpoint only after the engine synced them;
            // an engine behind it lost a durable commit, and the gap cannot be replayed.
            return Err(format!(
                "the database has applied raft index {applied_index} but the wal was checkpointed \
                 at {}: the database lost writes it had made durable",
                metadata.snapshot.index
            ));
        }
        let last_index = entries
            .last()
            .map_or(metadata.snapshot.index, |e: &Entry| e.index);
        if applied_index > last_index {
            return Err(format!(
                "the database has applied raft index {applied_index} but the wal ends at {last_index}: \
                 the wal directory does not belong to this database"
            ));
        }
        // A crash between storing a checkpoint and releasing the segments below it leaves
        // entries the snapshot already covers; raft's log starts after the snapshot.
        let snapshot_index = metadata.snapshot.index;
        entries.retain(|entry| entry.index > snapshot_index);
        let persisted_hard_state = metadata.hard_state.clone();
        let mut hard_state = metadata.hard_state.clone();
        // Entries the engine applied were committed, even if the commit index persisted with
        // the hard state lags behind.
        hard_state.commit = hard_state.commit.max(applied_index);
        let recovered = Recovered {
            snapshot: metadata.snapshot.clone(),
            entries,
            hard_state,
            applied_index,
        };
        let mut node = RaftNode::new(identity.member_id, &voters, timing, recovered)
            .map_err(|e| e.to_string())?;
        if node.is_sole_voter() {
            // Nobody to wait for: a single voter leads from the start.
            node.campaign().map_err(|e| e.to_string())?;
        }
        let headers = HeaderSource::new(identity);
        headers.set_term(node.term());
        let watch_hub = WatchHub::new(engine.clone(), headers.clone());
        let applier = Applier::new(ApplierSetup {
            engine,
            cluster,
            auth,
            watch_hub,
            lessor_config,
            stored_leases,
            lease_ids: LeaseIds::new(identity.member_id),
            lease_extend: tick_interval * timing.election_ticks as u32,
            compaction_pending,
            compaction_pacing,
            metrics: metrics.clone(),
        });
        let member = Rc::new(Member {
            state: RefCell::new(MemberState {
                node,
                waiting: IdMap::default(),
                read_waiters: IdMap::default(),
                applied_waiters: Vec::new(),
                applied_index,
            }),
            log: LogWriter::new(wal, persisted_hard_state, metadata.snapshot),
            applier,
            stopped: RefCell::new(None),
            frozen: Cell::new(false),
            request_ids: IdGenerator::new(identity.member_id, replayed_id_floor),
            headers,
            request_timeout: Duration::from_secs(5)
                + 2 * tick_interval * timing.election_ticks as u32,
            // etcd refuses a request whose encoding exceeds --max-request-bytes before proposing.
            entry_bytes_limit: ENTRY_BYTES_LIMIT.min(max_request_bytes + PROPOSAL_HEADER_BYTES),
            checkpoint_entries: checkpoint_entries.max(1),
            last_checkpoint: Cell::new(snapshot_index),
            metrics,
            peers: RefCell::new(None),
            strict_reconfig_check: membership.strict_reconfig_check,
            tick_interval,
            quiesced: Cell::new(false),
            held_proposals: RefCell::new(None),
            pump_due: TaskSignal::default(),
            publish_due: TaskSignal::default(),
            log_write_queued: TaskSignal::default(),
        });
        glommio::spawn_local(member.clone().run_pumper()).detach();
        glommio::spawn_local(member.clone().run_publisher()).detach();
        glommio::spawn_local(member.clone().run_persister()).detach();
        glommio::spawn_local(member.clone().run_durability_waiter()).detach();
        glommio::spawn_local(member.clone().run_ticker(tick_interval)).detach();
        glommio::spawn_local(member.clone().run_engine_syncer()).detach();
        glommio::spawn_local(member.clone().run_compactor()).detach();
        glommio::spawn_local(count_keys_at_open(member.metrics.clone(), keys_at_open)).detach();
        member.pump();
        Ok(member)
    }

    /// The peer transport, once attached (never for a single member).
    pub fn peer_outlet(&self) -> Option<Rc<dyn PeerOutlet>> {
        self.peers.borrow().clone()
    }

    /// Attaches the peer transport: from now on raft's messages to other members go there.
    pub fn attach_peers(&self, outlet: Rc<dyn PeerOutlet>) {
        *self.peers.borrow_mut() = Some(outlet);
    }

    /// Feeds a raft message from another member, and carries out what it causes.
    pub fn receive(&self, message: raft::prelude::Message) {
        if self.stopped.borrow().is_some() || self.frozen.get() || self.quiesced.get() {
            return;
        }
        if message.get_msg_type() == raft::prelude::MessageType::MsgPropose {
            if let Some(held) = self.held_proposals.borrow_mut().as_mut() {
                if held.len() < HELD_PROPOSALS_LIMIT {
                    held.push(message);
                }
                return;
            }
        }
        let from = message.from;
        if let Some(reason) = refused_message(&message) {
            tracing::warn!(from = format!("{from:x}"), reason, "dropped a raft message");
            return;
        }
        let stepped = self.state.borrow_mut().node.step(message);
        if let Err(error) = stepped {
            // A message from a member raft does not know (removed, or not yet added here) or
            // from an older term: raft's answer is to ignore it.
            tracing::debug!(from = format!("{from:x}"), %error, "ignored a raft message");
        }
        self.request_pump();
    }

    /// The peer transport lost `peer` (see `RaftNode::on_peer_unreachable`).
    pub fn peer_unreachable(&self, peer: u64) {
        if self.stopped.borrow().is_some() {
            return;
        }
        self.state.borrow_mut().node.on_peer_unreachable(peer);
        self.pump();
    }

    /// Sends raft's messages to their members. A MsgSnapshot starts a transfer of the engine
    /// (`snapshot_sender`), which reports its end with `report_snapshot`; one that cannot start
    /// is reported failed at once, so the leader tries again later.
    fn send_messages(&self, messages: Vec<raft::prelude::Message>) {
        if messages.is_empty() {
            return;
        }
        let outlet = self.peers.borrow().clone();
        let mut unreachable = Vec::new();
        let mut snapshot_failed = Vec::new();
        for message in forwarded_proposals::coalesce(messages) {
            let to = message.to;
            let is_snapshot = message.get_msg_type() == raft::prelude::MessageType::MsgSnapshot;
            let sent = outlet.as_ref().is_some_and(|outlet| outlet.send(message));
            match (sent, is_snapshot) {
                (true, _) => {}
                (false, true) => snapshot_failed.push(to),
                (false, false) => unreachable.push(to),
            }
        }
        if unreachable.is_empty() && snapshot_failed.is_empty() {
            return;
        }
        let mut state = self.state.borrow_mut();
        unreachable.dedup();
        for to in unreachable {
            state.node.report_unreachable(to);
        }
        for to in snapshot_failed {
            state.node.report_snapshot(to, false);
        }
    }

    /// Stops raft on this member while a received snapshot at (`index`, `term`) is committed
    /// and the process restarts into it: no message is stepped and no tick or proposal
    /// advances raft from now on, so nothing new is persisted or acknowledged. Refused, as
    /// raft's own `restore` refuses, when the snapshot is no longer news — its index is
    /// committed here, or the log already holds its entry (the member caught up by log while
    /// the copy streamed): installing it would then throw away entries after it that this
    /// member may have acknowledged. Entries the install does discard are ones the snapshot
    /// holds (before its index) or contradicts (so never committed). A stale copy is answered
    /// to `from`, its sender, as raft answers one (`answer_stale_snapshot`).
    pub fn freeze_for_snapshot(&self, from: u64, index: u64, term: u64) -> Result<(), String> {
        let stale = {
            let state = self.state.borrow();
            let committed = state.node.commit_index();
            if index <= committed {
                Some(format!(
                    "stale snapshot at index {index}: this member has committed {committed}"
                ))
            } else if state.node.log_matches(index, term) {
                Some(format!(
                    "stale snapshot at index {index}: this member's log already holds that entry"
                ))
            } else {
                None
            }
        };
        if let Some(reason) = stale {
            self.answer_stale_snapshot(from);
            return Err(reason);
        }
        self.frozen.set(true);
        Ok(())
    }

    /// Answers raft's snapshot from `from` that this member refused as stale, as raft would
    /// (`RaftNode::answer_stale_snapshot`): the leader learns where to resume replicating.
    pub fn answer_stale_snapshot(&self, from: u64) {
        if self.stopped.borrow().is_some() {
            return;
        }
        self.state.borrow_mut().node.answer_stale_snapshot(from);
        self.pump();
    }

    /// Lets raft run again after an install that failed to commit.
    pub fn unfreeze(&self) {
        self.frozen.set(false);
        self.pump();
    }

    /// Tells raft how the snapshot transfer to `to` ended.
    pub fn report_snapshot(&self, to: u64, delivered: bool) {
        if self.stopped.borrow().is_some() {
            return;
        }
        self.state.borrow_mut().node.report_snapshot(to, delivered);
        self.pump();
    }

    /// Raft's metadata for a snapshot of the engine at applied `index` with membership
    /// `conf_state`; `None` once the log no longer knows the term of `index`.
    pub fn snapshot_metadata_at(
        &self,
        index: u64,
        conf_state: raft::prelude::ConfState,
    ) -> Option<SnapshotMetadata> {
        let term = self.state.borrow().node.term_of(index)?;
        let mut metadata = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        metadata.set_conf_state(conf_state);
        Some(metadata)
    }

    /// The hard state most recently queued into the log (term and vote a snapshot install
    /// keeps).
    pub fn persisted_hard_state(&self) -> raft::prelude::HardState {
        self.log.persisted_hard_state()
    }

    /// Moves the lessor with leadership (see `Applier::on_leader_changed`).
    fn on_leader_changed(&self, leader: u64) {
        let own = self.headers.identity().member_id;
        self.applier.on_leader_changed(leader == own);
        tracing::info!(leader = format!("{leader:x}"), "raft leader changed");
    }

    /// The lessor (never borrow it across an await).
    pub fn lessor(&self) -> std::cell::RefMut<'_, Lessor> {
        self.applier.lessor()
    }

    /// The auth store every core reads.
    pub fn auth_hub(&self) -> Arc<AuthHub> {
        self.applier.auth_hub()
    }

    /// The id generator of leases granted with ID 0.
    pub fn lease_ids(&self) -> &LeaseIds {
        self.applier.lease_ids()
    }

    /// The lessor's clock: milliseconds since this member started.
    pub fn now_ms(&self) -> Millis {
        self.applier.now_ms()
    }

    /// etcd's request timeout: how long a client waits for its write or read point.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Whether the member stopped on a storage fault.
    pub fn is_stopped(&self) -> bool {
        self.stopped.borrow().is_some()
    }

    /// The header every response carries (its revision is set by the caller).
    pub fn header(&self, revision: i64) -> pb::ResponseHeader {
        self.headers.header(revision)
    }

    /// Where the member and its parts record for `/metrics`.
    pub fn metrics(&self) -> &Arc<ServerMetrics> {
        &self.metrics
    }

    /// The header source, for other cores.
    pub fn headers(&self) -> HeaderSource {
        self.headers.clone()
    }

    /// Adds another core's doorbell, rung after every apply batch while that core has watchers.
    pub fn add_doorbell(&self, doorbell: super::applier::Doorbell) {
        self.applier.add_doorbell(doorbell);
    }

    /// The watchers of this member.
    pub fn watch_hub(&self) -> Rc<WatchHub> {
        self.applier.watch_hub()
    }

    /// The engine, to share with readers on other cores.
    pub fn shared_engine(&self) -> Arc<Engine> {
        self.applier.engine().clone()
    }

    /// Whether this member leads the raft group now.
    pub fn is_leader(&self) -> bool {
        self.state.borrow().node.is_leader()
    }

    /// Raft's numbers for Status.
    pub fn raft_status(&self) -> RaftStatus {
        let state = self.state.borrow();
        RaftStatus {
            term: state.node.term(),
            leader: state.node.leader(),
            commit_index: state.node.commit_index(),
            applied_index: state.applied_index,
            is_learner: state.node.is_learner(),
        }
    }

    /// Alarms and member attributes as of the last applied entry.
    pub fn cluster(&self) -> std::cell::Ref<'_, ClusterState> {
        self.applier.cluster()
    }

    /// Proposes a client write and waits until it is applied; returns its typed answer.
    pub async fn propose_write<W: Write>(self: &Rc<Self>, write: W) -> Result<W::Answer, Status> {
        W::answer(self.propose(write.into_proposal()).await?)
    }

    /// Proposes a write and waits until it is applied; returns its answer.
    pub async fn propose(self: &Rc<Self>, proposal: Proposal) -> Result<Applied, Status> {
        let answer = self.propose_and_wait(proposal).await;
        if answer.is_err() {
            self.metrics.member.proposals_failed.inc();
        }
        answer
    }

    async fn propose_and_wait(self: &Rc<Self>, proposal: Proposal) -> Result<Applied, Status> {
        self.check_running()?;
        let id = self.request_ids.next();
        let data = proposal.encode(id);
        // An entry the log cannot hold must be refused here, not discovered by the persister
        // (which would have to stop the member).
        if data.len() > self.entry_bytes_limit {
            return Err(EtcdStatus::RequestTooLarge.into());
        }
        let (wait, receiver) = DeadlineWait::until(Instant::now() + self.request_timeout);
        {
            let mut state = self.state.borrow_mut();
            if state.waiting.len() >= WAITING_PROPOSALS_LIMIT {
                return Err(EtcdStatus::TooManyRequests.into());
            }
            state
                .node
                .propose(data)
                .map_err(|_| Status::from(EtcdStatus::NoLeader))?;
            state.waiting.insert(id, wait);
            self.metrics
                .member
                .proposals_pending
                .set(state.waiting.len() as i64);
        }
        self.request_pump();
        // Answered by apply, or with a timeout by the tick (`expire_waits`).
        receiver
            .await
            .unwrap_or_else(|_| Err(self.stopped_status()))
    }

    /// Waits until this member has applied everything committed when the call was made
    /// (raft's ReadIndex), so a read after it is linearizable. One deadline covers the round
    /// and the wait for apply, as etcd's one request context does.
    pub async fn wait_linearizable(self: &Rc<Self>) -> Result<(), Status> {
        self.check_running()?;
        let context = self.request_ids.next();
        let deadline = Instant::now() + self.request_timeout;
        let (wait, receiver) = DeadlineWait::until(deadline);
        {
            let mut state = self.state.borrow_mut();
            state.read_waiters.insert(context, wait);
            state.node.read_index(context.to_le_bytes().to_vec());
        }
        self.request_pump();
        // Each wait is answered by raft, or with a timeout by the tick (`expire_waits`).
        let index = receiver
            .await
            .unwrap_or_else(|_| Err(self.stopped_status()))?;
        let receiver = {
            let mut state = self.state.borrow_mut();
            if state.applied_index >= index {
                return Ok(());
            }
            let (wait, receiver) = DeadlineWait::until(deadline);
            state.applied_waiters.push((index, wait));
            receiver
        };
        receiver
            .await
            .unwrap_or_else(|_| Err(self.stopped_status()))
    }

    /// Answers every wait whose deadline has passed with etcd's "request timed out"; a
    /// timed-out read is also forgotten by raft. Runs on every tick.
    fn expire_waits(&self, now: Instant) {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let proposals: Vec<_> = state
            .waiting
            .extract_if(|_, wait| wait.expired(now))
            .collect();
        if !proposals.is_empty() {
            self.metrics
                .member
                .proposals_pending
                .set(state.waiting.len() as i64);
        }
        for (_, wait) in proposals {
            wait.time_out();
        }
        let reads: Vec<_> = state
            .read_waiters
            .extract_if(|_, wait| wait.expired(now))
            .collect();
        for (context, wait) in reads {
            state.node.forget_read(&context.to_le_bytes());
            wait.time_out();
        }
        for (_, wait) in state
            .applied_waiters
            .extract_if(.., |(_, wait)| wait.expired(now))
        {
            wait.time_out();
        }
    }

    fn check_running(&self) -> Result<(), Status> {
        match self.stopped.borrow().as_ref() {
            Some(_) => Err(self.stopped_status()),
            None => Ok(()),
        }
    }

    fn stopped_status(&self) -> Status {
        EtcdStatus::Stopped.into()
    }

    /// Asks for a pump soon rather than now: the pumper task runs after the tasks already
    /// queued on this executor, so the proposals, reads and peer messages that arrive together
    /// (a burst of client calls, an inbox of frames) enter raft before one pump carries them
    /// out — one Ready, one WAL batch, one append per peer and one apply batch for all of them,
    /// instead of one each.
    fn request_pump(&self) {
        self.pump_due.raise();
    }

    /// Runs the pumps `request_pump` asks for.
    async fn run_pumper(self: Rc<Self>) {
        loop {
            self.pump_due.taken().await;
            self.pump();
        }
    }

    /// Writes out the engine's deferred commit (`Applier::apply` ends each batch with one)
    /// once raft has handed the log its next write and this core has nothing else to do. With
    /// a lone client, the client often runs on this core's CPU: pages written right after the
    /// answer would hold up its next request by as long, while written after that request's
    /// WAL write has gone to the kernel they overlap the disk's work. Nothing depends on this
    /// for correctness: a read view, the next batch or a sync publishes the commit first (the
    /// engine syncer's, within a second, when no write follows), and under a load that never
    /// leaves the core idle the next batch does.
    async fn run_publisher(self: Rc<Self>) {
        loop {
            self.publish_due.taken().await;
            self.log_write_queued.taken().await;
            glommio::executor().idle().await;
            if let Err(reason) = self.applier.publish_deferred() {
                return self.stop(reason);
            }
        }
    }

    /// Carries out every effect raft has, until it has none.
    fn pump(&self) {
        if self.frozen.get() {
            // Nothing new may be persisted or acknowledged while an install commits.
            return;
        }
        loop {
            let effects = {
                let mut state = self.state.borrow_mut();
                let effects = state.node.advance();
                self.headers.set_term(state.node.term());
                let member = &self.metrics.member;
                member.observe_leader(state.node.leader(), self.headers.identity().member_id);
                member
                    .proposals_committed
                    .set(state.node.commit_index() as i64);
                effects
            };
            let Some(effects) = effects else { return };
            if let Some(leader) = effects.leader_changed {
                self.on_leader_changed(leader);
            }
            self.send_messages(effects.messages);
            if let Some(persist) = effects.persist {
                self.log.push(LogWork::Raft(Box::new(persist)));
                self.log_write_queued.raise();
            }
            if !effects.committed.is_empty() {
                self.apply(effects.committed);
            }
            let mut state = self.state.borrow_mut();
            for read_state in effects.read_states {
                let context = u64::from_le_bytes(
                    read_state
                        .request_ctx
                        .as_slice()
                        .try_into()
                        .unwrap_or_default(),
                );
                if let Some(wait) = state.read_waiters.remove(&context) {
                    wait.answer(Ok(read_state.index));
                }
            }
        }
    }

    /// Applies the committed entries not yet applied, answers their proposers, and carries
    /// what they changed into raft (membership, the applied index) and the log (checkpoints).
    fn apply(&self, mut fresh: Vec<Entry>) {
        let applied_before = self.state.borrow().applied_index;
        fresh.retain(|e| e.index > applied_before);
        let Some(last) = fresh.last().map(|e| e.index) else {
            return;
        };
        if let Some(reason) = self.unjoinable(&fresh) {
            return self.stop(reason);
        }
        let batch = match self.applier.apply(&fresh, self.header(0)) {
            Ok(batch) => batch,
            Err(reason) => return self.stop(reason),
        };
        self.apply_membership(&batch);
        let mut state = self.state.borrow_mut();
        for (id, answer) in batch.answers {
            let Some(wait) = state.waiting.remove(&id) else {
                continue;
            };
            match answer {
                // As etcd's, a physical compaction's answer waits for the compaction however
                // long it takes: the request deadline no longer applies.
                Ok(applied)
                    if batch.compaction_pending && batch.physical_compactions.contains(&id) =>
                {
                    self.applier.answer_when_compacted(wait.sender, applied);
                }
                answer => wait.answer(answer),
            }
        }
        state.applied_index = last;
        state.node.on_applied(last);
        let last_term = fresh.last().map_or(0, |entry| entry.term);
        self.applier
            .on_applied_as_leader(state.node.is_leader() && last_term == state.node.term());
        let member = &self.metrics.member;
        member.proposals_applied.set(last as i64);
        member.proposals_pending.set(state.waiting.len() as i64);
        let keep_from = state.node.compaction_bound(last);
        if keep_from >= self.last_checkpoint.get() + self.checkpoint_entries {
            // The checkpoint syncs the engine through at least `keep_from`, then lets the log
            // forget it.
            self.last_checkpoint.set(keep_from);
            self.log.push(LogWork::Checkpoint(keep_from));
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.applied_waiters)
            .into_iter()
            .partition(|(index, _)| *index <= last);
        state.applied_waiters = waiting;
        for (_, wait) in ready {
            wait.answer(Ok(()));
        }
        self.log_write_queued.lower();
        self.publish_due.raise();
    }

    /// Why `entries` must not be applied here, if they must not: a member that joined with
    /// no membership learns it from the log's first entries (the bootstrap's members). If the
    /// log it receives starts elsewhere — the cluster was bootstrapped before its log carried
    /// its members (a leader that compacted them away sends a snapshot instead, whose cluster
    /// table is the membership) — applying the rest would make it believe a membership of
    /// only the changes it saw (possibly itself alone: two clusters).
    fn unjoinable(&self, entries: &[Entry]) -> Option<String> {
        // Only a member that joined starts with no member at all (not even itself).
        if self.applier.cluster().members().next().is_some() {
            return None;
        }
        let first_meaningful = entries.iter().find(|entry| {
            entry.get_entry_type() != raft::prelude::EntryType::EntryNormal
                || !entry.data.is_empty()
        })?;
        let starts_membership = matches!(
            MembershipChange::from_entry(first_meaningful),
            Ok((0, MembershipChange::Add { learner: false, .. }, _))
        );
        (!starts_membership).then(|| {
            format!(
                "this member joined with an empty log, but the log it received does not start \
                 with the cluster's members (entry {}): the cluster was bootstrapped before \
                 its log carried its members",
                first_meaningful.index
            )
        })
    }

    /// Carries the membership changes of an applied batch into raft (in order) and the peer
    /// transport; a member that applied its own removal stops, as etcd's does.
    fn apply_membership(&self, batch: &AppliedBatch) {
        if batch.conf_changes.is_empty() && batch.peer_changes.is_empty() {
            return;
        }
        let own = self.headers.identity().member_id;
        let mut removed_self = false;
        {
            let mut state = self.state.borrow_mut();
            for (change, conf_change) in &batch.conf_changes {
                match state.node.apply_conf_change(conf_change) {
                    Ok(conf_state) => tracing::info!(
                        ?change,
                        voters = ?conf_state.voters,
                        learners = ?conf_state.learners,
                        "raft membership changed"
                    ),
                    // The cluster table accepted it, so raft must: they would disagree.
                    Err(error) => panic!("raft refused membership change {change:?}: {error}"),
                }
                if matches!(change, MembershipChange::Remove { member_id } if *member_id == own) {
                    removed_self = true;
                }
            }
        }
        if let Some(outlet) = self.peers.borrow().clone() {
            for (id, urls) in &batch.peer_changes {
                if *id != own {
                    outlet.set_peer(*id, urls.as_deref());
                }
            }
        }
        if removed_self {
            self.stop_removed("it applied its own removal");
        }
    }

    /// Ends a member removed from its cluster. Its last messages (a leader's, telling the
    /// others the removal committed) are queued; the process exits once two heartbeats had
    /// the time to carry them, so the others need not wait out an election timeout.
    /// Called when it applies its own removal, or when a peer refuses it as removed (a
    /// removed follower rarely learns that its removal committed: the leader stops sending
    /// to it once it applied the removal, as etcd's does); the first call counts. `cause`
    /// says which.
    pub(super) fn stop_removed(&self, cause: &str) {
        if self.stopped.borrow().as_deref() == Some(REMOVED_MESSAGE) {
            return;
        }
        tracing::warn!(cause, "{REMOVED_MESSAGE}");
        eprintln!("basalt: {REMOVED_MESSAGE}");
        *self.stopped.borrow_mut() = Some(REMOVED_MESSAGE.to_string());
        let grace = 2 * self.tick_interval;
        glommio::spawn_local(async move {
            glommio::timer::sleep(grace).await;
            std::process::exit(0);
        })
        .detach();
    }

    /// Proposes a membership change (MemberAdd, MemberRemove, MemberPromote) after etcd's
    /// checks on the proposing member, and waits until it is applied.
    pub async fn propose_membership(
        self: &Rc<Self>,
        change: MembershipChange,
    ) -> Result<(), Status> {
        self.check_running()?;
        if let MembershipChange::Add { peer_urls, .. } = &change {
            // Checked again at apply; here so that a member that cannot add answers it first.
            let taken = self
                .applier
                .cluster()
                .members()
                .any(|(_, urls)| urls.iter().any(|url| peer_urls.contains(url)));
            if taken {
                return Err(EtcdStatus::PeerUrlExists.into());
            }
        }
        if let MembershipChange::Promote { member_id } = change {
            // etcd: only the leader knows how far a learner is; a follower forwards the
            // request to it (`ProposeMembership`, `leader_forward`).
            let in_sync = self.state.borrow().node.learner_in_sync(member_id);
            match in_sync {
                None if !self.is_leader() => return Err(EtcdStatus::NotLeader.into()),
                None => {
                    let cluster = self.applier.cluster();
                    return Err(if cluster.peer_urls(member_id).is_none() {
                        EtcdStatus::MemberNotFound.into()
                    } else {
                        EtcdStatus::MemberNotLearner.into()
                    });
                }
                Some(false) => return Err(EtcdStatus::LearnerNotReady.into()),
                Some(true) => {}
            }
        }
        if self.strict_reconfig_check && !self.applier.cluster().keeps_started_quorum(&change) {
            return Err(EtcdStatus::MemberNotEnoughStarted.into());
        }
        if self.strict_reconfig_check && !self.connected_enough_for(&change) {
            tracing::warn!(
                ?change,
                "rejecting a membership change: this member has not been connected to enough \
                 voters for the health interval; the change could break the active quorum"
            );
            return Err(EtcdStatus::Unhealthy.into());
        }
        let id = self.request_ids.next();
        let (wait, receiver) = DeadlineWait::until(Instant::now() + self.request_timeout);
        {
            let mut state = self.state.borrow_mut();
            state
                .node
                .propose_conf_change(change.to_conf_change(id))
                .map_err(|_| Status::from(EtcdStatus::NoLeader))?;
            state.waiting.insert(id, wait);
        }
        self.pump();
        receiver
            .await
            .unwrap_or_else(|_| Err(self.stopped_status()))
            .map(|_| ())
    }

    /// etcd's connectivity rules for `change` (`reconfig_health`), as this member's peer
    /// links see the voters now: adding a voter needs every voter connected for the health
    /// interval, removing one needs the rest to keep a connected quorum.
    fn connected_enough_for(&self, change: &MembershipChange) -> bool {
        let own = self.headers.identity().member_id;
        let outlet = self.peers.borrow().clone();
        let cluster = self.applier.cluster();
        let voters: Vec<(u64, Option<std::time::Instant>)> = cluster
            .members()
            .filter(|(id, _)| !cluster.is_learner(*id))
            .map(|(id, _)| {
                let active_since = match &outlet {
                    Some(outlet) if id != own => outlet.active_since(id),
                    _ => None,
                };
                (id, active_since)
            })
            .collect();
        let connectivity = Connectivity {
            own,
            voters: &voters,
            now: std::time::Instant::now(),
            health_interval: HEALTH_INTERVAL,
        };
        connectivity.allows(change, |id| cluster.is_learner(id))
    }

    /// etcd's MoveLeader on the leader: asks raft to hand leadership to `target` and waits,
    /// tick by tick, until `target` leads, at most the request timeout.
    pub async fn transfer_leader(self: &Rc<Self>, target: u64) -> Result<(), Status> {
        self.transfer_leader_within(target, self.request_timeout)
            .await
    }

    /// The first half of a graceful stop (SIGTERM), as etcd's TransferLeadership: a leader
    /// with another voter hands leadership to the voter whose log matches furthest and waits
    /// for it at most `limit`; then, leader or not, raft takes no more ticks or messages and
    /// the log's pending writes are waited for (at most `limit` again), so the process exits
    /// with everything it handed to the WAL durable. A transfer that fails is logged and the
    /// stop goes on (the others elect a leader as after a crash).
    pub async fn quiesce_for_stop(self: &Rc<Self>, limit: Duration) {
        if self.check_running().is_err() {
            return;
        }
        let transferee = {
            let cluster = self.applier.cluster();
            let voters = cluster
                .members()
                .map(|(id, _)| id)
                .filter(|id| !cluster.is_learner(*id));
            self.state.borrow().node.most_up_to_date_voter(voters)
        };
        match transferee {
            _ if !self.is_leader() => {
                tracing::info!("skipped leadership transfer; local server is not leader");
            }
            None => tracing::info!("skipped leadership transfer for single voting member cluster"),
            Some(target) => {
                *self.held_proposals.borrow_mut() = Some(Vec::new());
                if let Err(status) = self.transfer_leader_within(target, limit).await {
                    tracing::warn!(
                        error = status.message,
                        "failed to transfer leadership before stopping"
                    );
                }
                let held = self.held_proposals.borrow_mut().take().unwrap_or_default();
                let own = self.headers.identity().member_id;
                for mut proposal in held {
                    // Forwarded on from here: the leader's peer link accepts a message only
                    // from the member its connection is with.
                    proposal.from = own;
                    self.receive(proposal);
                }
                // As etcd after its transfer: one more tick of serving, so the messages just
                // produced (forwarded proposals, the last appends) leave before the process
                // ends.
                glommio::timer::sleep(self.tick_interval).await;
            }
        }
        self.quiesced.set(true);
        // What was stepped before now is still carried out (a pump asked for may not have run),
        // so the drain below waits for its writes too.
        self.pump();
        let deadline = std::time::Instant::now() + limit;
        while !self.log.is_drained() && std::time::Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        if !self.log.is_drained() {
            tracing::warn!("stopping with log writes still in flight");
        }
    }

    /// `transfer_leader`, waiting at most `limit` for the target to lead.
    async fn transfer_leader_within(
        self: &Rc<Self>,
        target: u64,
        limit: Duration,
    ) -> Result<(), Status> {
        self.check_running()?;
        if !self.is_leader() {
            return Err(EtcdStatus::NotLeader.into());
        }
        let own = self.headers.identity().member_id;
        let is_voter = {
            let cluster = self.applier.cluster();
            cluster.peer_urls(target).is_some() && !cluster.is_learner(target)
        };
        if !is_voter {
            return Err(EtcdStatus::BadLeaderTransferee.into());
        }
        if target == own {
            return Ok(());
        }
        tracing::info!(
            transferee = format!("{target:x}"),
            "leadership transfer starting"
        );
        self.state.borrow_mut().node.transfer_leader(target);
        self.pump();
        let deadline = std::time::Instant::now() + limit;
        while self.state.borrow().node.leader() != target {
            if std::time::Instant::now() >= deadline {
                return Err(EtcdStatus::TimeoutLeaderTransfer.into());
            }
            // Finer than a tick: a graceful stop holds forwarded proposals until this ends.
            glommio::timer::sleep(TRANSFER_POLL.min(self.tick_interval)).await;
        }
        tracing::info!(
            new_leader = format!("{target:x}"),
            "leadership transfer finished"
        );
        Ok(())
    }

    /// Fail-stop: a storage fault ends the member. Everyone waiting gets an error; the process
    /// exits so a supervisor restarts it from what is durable.
    pub(super) fn stop(&self, reason: String) {
        tracing::error!(%reason, "member stopping on a storage fault");
        eprintln!("basalt: fatal: {reason}");
        *self.stopped.borrow_mut() = Some(reason);
        let mut state = self.state.borrow_mut();
        state.waiting.clear();
        state.read_waiters.clear();
        state.applied_waiters.clear();
        std::process::exit(1);
    }

    /// Writes raft's work into the log in order (see `LogWriter`), and carries out
    /// checkpoints in the same order (the log writer is the one writer of the log's metadata).
    async fn run_persister(self: Rc<Self>) {
        loop {
            let result = match self.log.next_work().await {
                LogWork::Raft(persist) => self.log.write(*persist).await,
                LogWork::Checkpoint(index) => self.checkpoint(index).await,
            };
            self.log.finished_work();
            if let Err(reason) = result {
                return self.stop(reason);
            }
        }
    }

    /// Syncs the engine through (at least) `index`, then lets the log forget the entries up to
    /// it: the in-memory raft log is trimmed, the snapshot metadata (index, term, membership)
    /// is stored with the hard state, and the WAL releases the segments below. A restart then
    /// replays only what follows `index`.
    async fn checkpoint(&self, index: u64) -> Result<(), String> {
        // First make the engine durable through `index` (applies since are included): only
        // then may the log forget the entries.
        let durable = self
            .applier
            .sync_engine()
            .await
            .map_err(|e| format!("syncing the database for a checkpoint failed: {e}"))?;
        assert!(
            durable >= index,
            "engine durable through {durable}, checkpoint at {index}"
        );
        let snapshot = self
            .state
            .borrow_mut()
            .node
            .compact_log_to(index)
            .map_err(|e| e.to_string())?;
        self.log.store_checkpoint(snapshot).await?;
        tracing::info!(index, "checkpointed the raft log");
        Ok(())
    }

    /// Reports raft's writes durable, in order, as the WAL's fdatasyncs complete.
    async fn run_durability_waiter(self: Rc<Self>) {
        loop {
            let (ready_number, messages) = match self.log.next_durable().await {
                Ok(durable) => durable,
                Err(reason) => return self.stop(reason),
            };
            self.state.borrow_mut().node.on_persisted(ready_number);
            // Raft's rule: a follower acknowledges entries (and grants votes) only once they
            // are durable here.
            self.send_messages(messages);
            self.pump();
        }
    }

    /// Makes the engine's published commits durable every ENGINE_SYNC_INTERVAL, on a thread
    /// of its own (`applier::sync_engine`). Apply batches are published to the engine without
    /// fsync (the WAL is the durability point); syncing every ENGINE_SYNC_INTERVAL bounds what
    /// a restart after a crash must replay from the WAL to about that much time's writes,
    /// whatever --snapshot-count is. The same beat releases the engine's resident page copies.
    async fn run_engine_syncer(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(ENGINE_SYNC_INTERVAL).await;
            if self.stopped.borrow().is_some() {
                return;
            }
            if let Err(error) = self.applier.sync_engine().await {
                self.stop(format!("syncing the database failed: {error}"));
                return;
            }
            self.applier.release_cached_pages().await;
        }
    }

    /// Removes a pending compaction's revisions, a bounded step every compaction interval
    /// whether or not writes arrive (`Applier::compaction_step`).
    async fn run_compactor(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(self.applier.compaction_interval()).await;
            if self.stopped.borrow().is_some() {
                return;
            }
            if let Err(reason) = self.applier.compaction_step() {
                return self.stop(reason);
            }
        }
    }

    /// Drives raft's logical clock: one tick every heartbeat interval.
    async fn run_ticker(self: Rc<Self>, interval: Duration) {
        loop {
            glommio::timer::sleep(interval).await;
            if self.stopped.borrow().is_some() {
                return;
            }
            // Callers time out even while raft is frozen or quiesced.
            self.expire_waits(Instant::now());
            if self.frozen.get() || self.quiesced.get() {
                continue;
            }
            self.state.borrow_mut().node.tick();
            self.pump();
            // Lagging watchers whose catch-up was cut short make progress even when idle.
            self.applier.watch_hub().catch_up_all();
        }
    }
}

/// Counts the live keys of `view` on a thread of its own (a pass over the key index: start-up
/// does not wait for it) for `etcd_debugging_mvcc_keys_total`.
async fn count_keys_at_open(metrics: Arc<ServerMetrics>, view: basalt_engine::ReadView) {
    let everything = basalt_engine::RangeRequest {
        key: vec![0],
        range_end: vec![0],
        count_only: true,
        ..Default::default()
    };
    match on_own_thread("basalt-count-keys", move || view.range(&everything)).await {
        Ok(counted) => metrics.member.set_keys_at_open(counted.count),
        Err(error) => tracing::warn!(%error, "could not count the keys for /metrics"),
    }
}

/// Why a message from a peer must not reach raft, if it must not. A forwarded proposal enters
/// every member's log and is applied everywhere, so one that is not a well-formed proposal of
/// ours (or a membership change that does not decode as one) is refused here rather than stopping every member at apply. A snapshot travels with its data
/// on the transport's snapshot lane (`snapshot_installer`), never as a bare raft message:
/// raft installing one without the data would serve an empty store.
fn refused_message(message: &raft::prelude::Message) -> Option<&'static str> {
    use raft::prelude::{EntryType, MessageType};
    match message.get_msg_type() {
        MessageType::MsgPropose => {
            let bad = message
                .entries
                .iter()
                .any(|entry| match entry.get_entry_type() {
                    EntryType::EntryNormal => !decodes_as_proposal(&entry.data),
                    // A membership change a follower's Cluster service proposed.
                    EntryType::EntryConfChange => MembershipChange::from_entry(entry).is_err(),
                    EntryType::EntryConfChangeV2 => true,
                });
            bad.then_some("a forwarded proposal that is not a basalt proposal")
        }
        MessageType::MsgSnapshot => Some("a snapshot without its data"),
        _ => None,
    }
}
