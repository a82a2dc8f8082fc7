//! The glommio shell around the sans-IO raft node: it feeds proposals, ticks and completed writes
//! in, and carries effects out — writes to the WAL (queued at once so one fdatasync covers many
//! raft steps), committed entries to the engine, answers to the clients waiting on them.
//!
//! Everything here runs on the member's raft executor. State lives in a `RefCell` that is never
//! borrowed across an await; the persister and the durability waiter are tasks of their own so
//! that raft keeps stepping while the disk works.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use basalt_engine::Engine;
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Status};
use basalt_wal::{Queued, Wal};
use futures_channel::oneshot;
use prost::Message as _;
use raft::prelude::{Entry, SnapshotMetadata};

use super::id_generator::IdGenerator;
use super::lease_ids::LeaseIds;
use super::offload::on_own_thread;
use crate::node::{LogMetadata, Persist, RaftNode, RaftOptions, Recovered};
use crate::server::metrics::ServerMetrics;
use crate::server::state_machine::apply::{apply_entries, compaction_step, Applied, LeaseApplied};
use crate::server::state_machine::auth_hub::AuthHub;
use crate::server::state_machine::auth_store::AuthState;
use crate::server::state_machine::cluster_state::ClusterState;
use crate::server::state_machine::header::{HeaderSource, Identity};
use crate::server::state_machine::lease_lessor::{Lessor, LessorConfig, Millis};
use crate::server::state_machine::membership_change::MembershipChange;
use crate::server::state_machine::proposal::{Proposal, PROPOSAL_HEADER_BYTES};
use crate::server::state_machine::typed_write::Write;
use crate::server::watch::watch_hub::WatchHub;

/// Limit on client writes waiting for their entry to apply; past it, new writes are refused
/// with etcd's "too many requests".
const WAITING_PROPOSALS_LIMIT: usize = 64 * 1024;

/// How often the raft owner makes the engine's published commits durable (see
/// `run_engine_syncer`).
const ENGINE_SYNC_INTERVAL: Duration = Duration::from_secs(1);
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

/// The member's raft owner: node, log, engine, and the clients waiting on them.
pub struct Member {
    state: RefCell<MemberState>,
    wal: Rc<Wal>,
    engine: Arc<Engine>,
    /// Writes handed out by raft, in order, for the persister task.
    persist_queue: RefCell<VecDeque<LogWork>>,
    persist_wake: RefCell<Option<std::task::Waker>>,
    /// Queued writes waiting to become durable, in order, for the durability waiter task.
    durable_queue: RefCell<VecDeque<DurableWait>>,
    durable_wake: RefCell<Option<std::task::Waker>>,
    /// The storage fault that stopped the member, if one did.
    stopped: RefCell<Option<String>>,
    /// Names this member's proposals and read requests (unique across members).
    request_ids: IdGenerator,
    /// Response headers; the member keeps their raft term current for every core.
    headers: HeaderSource,
    /// One doorbell per other core: rung after each apply batch so that core's watchers read
    /// the new events from the engine (a full doorbell already has a ring pending).
    doorbells: RefCell<Vec<glommio::channels::shared_channel::ConnectedSender<()>>>,
    watch_hub: Rc<WatchHub>,
    /// How long a client waits for its write to apply or its read point, as etcd's request
    /// timeout: 5 s plus two election timeouts.
    request_timeout: Duration,
    /// Largest proposal: `--max-request-bytes` of request plus the proposal header, and never
    /// more than the WAL's record limit allows.
    entry_bytes_limit: usize,
    /// A compaction has revisions left to remove; the compactor task removes them in steps.
    compaction_pending: Cell<bool>,
    /// Revisions a compaction step removes, and the pause between steps.
    compaction_pacing: CompactionPacing,
    /// Answers to physical compactions (etcd's `physical`), sent when the compaction is done.
    compaction_waiters: RefCell<Vec<(AnswerSender, Applied)>>,
    /// The hard state most recently queued into the WAL (a checkpoint stores it again).
    persisted_hard_state: RefCell<raft::prelude::HardState>,
    /// Applied entries between checkpoints (etcd's --snapshot-count).
    checkpoint_entries: u64,
    /// The index of the last checkpoint handed to the persister.
    last_checkpoint: Cell<u64>,
    /// Alarms and member attributes, changed only by applied entries.
    cluster: RefCell<ClusterState>,
    /// The leases and their timers; told about every applied lease change.
    lessor: RefCell<Lessor>,
    /// The origin of the lessor's clock.
    clock_origin: std::time::Instant,
    /// Names the leases granted with ID 0 (one generator, so cores never collide).
    lease_ids: LeaseIds,
    /// Where the member records leadership, proposals and database commits for `/metrics`.
    metrics: Arc<ServerMetrics>,
    /// The auth store every core reads; apply publishes its changes there.
    auth: Arc<AuthHub>,
    /// Where raft's messages to other members go; `None` until the peer transport is attached
    /// (and for a single member, which sends none). Raft retries what is lost meanwhile.
    peers: RefCell<Option<Rc<dyn PeerOutlet>>>,
    /// This member leads and its lessor waits to be promoted (see `on_leader_changed`).
    promote_pending: Cell<bool>,
    /// How long a new leader's lessor extends every lease (the election timeout), so no lease
    /// expires before its holder could have found the new leader.
    lease_extend_ms: Millis,
    /// `--strict-reconfig-check`.
    strict_reconfig_check: bool,
    /// One raft tick (the heartbeat interval).
    tick_interval: Duration,
}

/// The member's way out to the other members: the peer transport.
pub trait PeerOutlet {
    /// Queues `message` for its `to` member; `false` when it could not be queued (the peer is
    /// unreachable or its queue is full), so raft stops pipelining to it and probes again.
    fn send(&self, message: raft::prelude::Message) -> bool;

    /// Asks member `to` a lease question (a follower forwarding to the leader); `None` when
    /// it could not be asked or its answer was lost.
    fn forward_lease(
        &self,
        to: u64,
        query: super::lease_forward::LeaseQuery,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<super::lease_forward::LeaseReply>>>>;
    /// Dials member `id` at `peer_urls` from now on (`None`: it was removed; its messages
    /// are refused).
    fn set_peer(&self, id: u64, peer_urls: Option<&[String]>);
}

/// Where a proposal's answer goes.
type AnswerSender = oneshot::Sender<Result<Applied, Status>>;

/// A write queued into the log: raft's ready number, the WAL position that makes it durable
/// (none when it wrote nothing), and the messages to send once it is durable.
type DurableWait = (u64, Option<Queued>, Vec<raft::prelude::Message>);

/// What the persister writes into the log, in order.
enum LogWork {
    Raft(Box<Persist>),
    Checkpoint(u64),
}

struct MemberState {
    node: RaftNode,
    waiting: HashMap<u64, oneshot::Sender<Result<Applied, Status>>>,
    read_waiters: HashMap<u64, oneshot::Sender<u64>>,
    applied_waiters: Vec<(u64, oneshot::Sender<()>)>,
    applied_index: u64,
    snapshot: SnapshotMetadata,
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
        let member = Rc::new(Member {
            state: RefCell::new(MemberState {
                node,
                waiting: HashMap::new(),
                read_waiters: HashMap::new(),
                applied_waiters: Vec::new(),
                applied_index,
                snapshot: metadata.snapshot,
            }),
            wal,
            engine,
            persist_queue: RefCell::new(VecDeque::new()),
            persist_wake: RefCell::new(None),
            durable_queue: RefCell::new(VecDeque::new()),
            durable_wake: RefCell::new(None),
            stopped: RefCell::new(None),
            request_ids: IdGenerator::new(identity.member_id, replayed_id_floor),
            headers,
            doorbells: RefCell::new(Vec::new()),
            watch_hub,
            request_timeout: Duration::from_secs(5)
                + 2 * tick_interval * timing.election_ticks as u32,
            // etcd refuses a request whose encoding exceeds --max-request-bytes before proposing.
            entry_bytes_limit: ENTRY_BYTES_LIMIT.min(max_request_bytes + PROPOSAL_HEADER_BYTES),
            compaction_pending: Cell::new(compaction_pending),
            compaction_pacing,
            compaction_waiters: RefCell::new(Vec::new()),
            persisted_hard_state: RefCell::new(persisted_hard_state),
            checkpoint_entries: checkpoint_entries.max(1),
            last_checkpoint: Cell::new(snapshot_index),
            cluster: RefCell::new(cluster),
            lessor: RefCell::new(Lessor::new(lessor_config, &stored_leases)),
            clock_origin: std::time::Instant::now(),
            lease_ids: LeaseIds::new(identity.member_id),
            metrics,
            auth,
            peers: RefCell::new(None),
            promote_pending: Cell::new(false),
            lease_extend_ms: tick_interval.as_millis() as Millis * timing.election_ticks as Millis,
            strict_reconfig_check: membership.strict_reconfig_check,
            tick_interval,
        });
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
        if self.stopped.borrow().is_some() {
            return;
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
        self.pump();
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
        for message in messages {
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
        self.persisted_hard_state.borrow().clone()
    }

    /// Moves the lessor with leadership. A member that stops leading stops expiring leases
    /// (etcd's `Demote`) at once; a new leader's lessor takes over only once it has applied an
    /// entry of its own term, i.e. every lease change of the terms before (etcd promotes after
    /// applying the leader's first entry): a renew or checkpoint committed by the old leader
    /// and not yet applied here would otherwise be missed and its lease revoked early.
    fn on_leader_changed(&self, leader: u64) {
        let own = self.headers.identity().member_id;
        self.promote_pending.set(leader == own);
        let mut lessor = self.lessor.borrow_mut();
        if leader != own && lessor.is_primary() {
            lessor.demote();
        }
        tracing::info!(leader = format!("{leader:x}"), "raft leader changed");
    }

    /// The lessor (never borrow it across an await).
    pub fn lessor(&self) -> std::cell::RefMut<'_, Lessor> {
        self.lessor.borrow_mut()
    }

    /// The auth store every core reads.
    pub fn auth_hub(&self) -> Arc<AuthHub> {
        self.auth.clone()
    }

    /// The id generator of leases granted with ID 0.
    pub fn lease_ids(&self) -> &LeaseIds {
        &self.lease_ids
    }

    /// The lessor's clock: milliseconds since this member started.
    pub fn now_ms(&self) -> Millis {
        self.clock_origin.elapsed().as_millis() as Millis
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

    /// Adds another core's doorbell, rung after every apply batch.
    pub fn add_doorbell(&self, doorbell: glommio::channels::shared_channel::ConnectedSender<()>) {
        self.doorbells.borrow_mut().push(doorbell);
    }

    /// The watchers of this member.
    pub fn watch_hub(&self) -> Rc<WatchHub> {
        self.watch_hub.clone()
    }

    /// The engine, to share with readers on other cores.
    pub fn shared_engine(&self) -> Arc<Engine> {
        self.engine.clone()
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
        self.cluster.borrow()
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
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.state.borrow_mut();
            if state.waiting.len() >= WAITING_PROPOSALS_LIMIT {
                return Err(EtcdStatus::TooManyRequests.into());
            }
            state
                .node
                .propose(data)
                .map_err(|_| Status::from(EtcdStatus::NoLeader))?;
            state.waiting.insert(id, sender);
            self.metrics
                .member
                .proposals_pending
                .set(state.waiting.len() as i64);
        }
        self.pump();
        match within(self.request_timeout, receiver).await {
            Some(Ok(answer)) => answer,
            Some(Err(_)) => Err(self.stopped_status()),
            None => {
                let mut state = self.state.borrow_mut();
                state.waiting.remove(&id);
                self.metrics
                    .member
                    .proposals_pending
                    .set(state.waiting.len() as i64);
                Err(EtcdStatus::Timeout.into())
            }
        }
    }

    /// Waits until this member has applied everything committed when the call was made
    /// (raft's ReadIndex), so a read after it is linearizable.
    pub async fn wait_linearizable(self: &Rc<Self>) -> Result<(), Status> {
        self.check_running()?;
        let context = self.request_ids.next();
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.state.borrow_mut();
            state.read_waiters.insert(context, sender);
            state.node.read_index(context.to_le_bytes().to_vec());
        }
        self.pump();
        let index = match within(self.request_timeout, receiver).await {
            Some(Ok(index)) => index,
            Some(Err(_)) => return Err(self.stopped_status()),
            None => {
                self.state.borrow_mut().read_waiters.remove(&context);
                return Err(EtcdStatus::Timeout.into());
            }
        };
        let receiver = {
            let mut state = self.state.borrow_mut();
            if state.applied_index >= index {
                return Ok(());
            }
            let (sender, receiver) = oneshot::channel();
            state.applied_waiters.push((index, sender));
            receiver
        };
        match within(self.request_timeout, receiver).await {
            Some(Ok(())) => Ok(()),
            Some(Err(_)) => Err(self.stopped_status()),
            None => Err(EtcdStatus::Timeout.into()),
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

    /// Carries out every effect raft has, until it has none.
    fn pump(&self) {
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
                self.persist_queue
                    .borrow_mut()
                    .push_back(LogWork::Raft(Box::new(persist)));
                if let Some(waker) = self.persist_wake.borrow_mut().take() {
                    waker.wake();
                }
            }
            if !effects.committed.is_empty() {
                self.apply(&effects.committed);
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
                if let Some(sender) = state.read_waiters.remove(&context) {
                    let _ = sender.send(read_state.index);
                }
            }
        }
    }

    fn apply(&self, committed: &[Entry]) {
        let applied_before = self.state.borrow().applied_index;
        let fresh: Vec<Entry> = committed
            .iter()
            .filter(|e| e.index > applied_before)
            .cloned()
            .collect();
        let Some(last) = fresh.last().map(|e| e.index) else {
            return;
        };
        if let Some(reason) = self.unjoinable(&fresh) {
            return self.stop(reason);
        }
        let header = self.header(0);
        let applied = apply_entries(
            &self.engine,
            &fresh,
            header,
            self.compaction_pending.get(),
            self.compaction_pacing.step_revisions,
            &mut self.cluster.borrow_mut(),
            &self.auth,
        );
        match applied {
            Ok(batch) => {
                self.apply_membership(&batch);
                self.metrics.member.count_key_changes(&batch.events);
                self.compaction_pending.set(batch.compaction_pending);
                self.lessor_applied(&batch.leases);
                self.watch_hub.publish(&batch.events);
                self.watch_hub.catch_up_all();
                for doorbell in self.doorbells.borrow().iter() {
                    // Full means a ring is pending: that core reads everything new anyway.
                    let _ = doorbell.try_send(());
                }
                let mut state = self.state.borrow_mut();
                for (id, answer) in batch.answers {
                    let Some(sender) = state.waiting.remove(&id) else {
                        continue;
                    };
                    match answer {
                        Ok(applied)
                            if batch.compaction_pending
                                && batch.physical_compactions.contains(&id) =>
                        {
                            self.compaction_waiters.borrow_mut().push((sender, applied));
                        }
                        answer => {
                            let _ = sender.send(answer);
                        }
                    }
                }
                state.applied_index = last;
                state.node.on_applied(last);
                let last_term = fresh.last().map_or(0, |entry| entry.term);
                if self.promote_pending.get()
                    && state.node.is_leader()
                    && last_term == state.node.term()
                {
                    // Everything of the earlier terms is applied: the lessor may take over,
                    // every lease with its remaining TTL plus the election timeout (etcd's
                    // `Promote`, so no mass revoke at a leader change).
                    self.promote_pending.set(false);
                    self.lessor
                        .borrow_mut()
                        .promote(self.now_ms(), self.lease_extend_ms);
                }
                let member = &self.metrics.member;
                member.proposals_applied.set(last as i64);
                member.proposals_pending.set(state.waiting.len() as i64);
                let keep_from = state.node.compaction_bound(last);
                if keep_from >= self.last_checkpoint.get() + self.checkpoint_entries {
                    // The checkpoint syncs the engine through at least `keep_from`, then lets
                    // the log forget it.
                    self.last_checkpoint.set(keep_from);
                    self.persist_queue
                        .borrow_mut()
                        .push_back(LogWork::Checkpoint(keep_from));
                    if let Some(waker) = self.persist_wake.borrow_mut().take() {
                        waker.wake();
                    }
                }
                let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.applied_waiters)
                    .into_iter()
                    .partition(|(index, _)| *index <= last);
                state.applied_waiters = waiting;
                for (_, sender) in ready {
                    let _ = sender.send(());
                }
            }
            Err(error) => self.stop(format!(
                "applying raft entries to the database failed: {error}"
            )),
        }
    }

    /// Why `entries` must not be applied here, if they must not: a member that joined with
    /// no membership learns it from the log's first entries (the bootstrap's members). If the
    /// log it receives starts elsewhere — the cluster was bootstrapped before its log carried
    /// its members, or the leader compacted them away — applying the rest would make it
    /// believe a membership of only the changes it saw (possibly itself alone: two clusters).
    fn unjoinable(&self, entries: &[Entry]) -> Option<String> {
        // Only a member that joined starts with no member at all (not even itself).
        if self.cluster.borrow().members().next().is_some() {
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
                 with the cluster's members (entry {}); it needs a snapshot of the cluster, \
                 which this version cannot receive",
                first_meaningful.index
            )
        })
    }

    /// Carries the membership changes of an applied batch into raft (in order) and the peer
    /// transport; a member that applied its own removal stops, as etcd's does.
    fn apply_membership(&self, batch: &crate::server::state_machine::apply::AppliedBatch) {
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
            self.stop_removed();
        }
    }

    /// Ends a member removed from its cluster. Its last messages (a leader's, telling the
    /// others the removal committed) are queued; the process exits once two heartbeats had
    /// the time to carry them, so the others need not wait out an election timeout.
    fn stop_removed(&self) {
        tracing::warn!("{REMOVED_MESSAGE}");
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
                .cluster
                .borrow()
                .members()
                .any(|(_, urls)| urls.iter().any(|url| peer_urls.contains(url)));
            if taken {
                return Err(EtcdStatus::PeerUrlExists.into());
            }
        }
        if matches!(change, MembershipChange::Add { .. }) && self.peers.borrow().is_none() {
            // A member started alone binds no peer listener (only a multi-member
            // --initial-cluster does): a member added now could never reach it, and a voter
            // added would leave the cluster without a quorum.
            return Err(Status::new(
                basalt_net::Code::Unimplemented,
                "basalt: adding a member to a cluster started as one member is not supported \
                 yet (it has no peer listener); start the cluster with every member in \
                 --initial-cluster",
            ));
        }
        if let MembershipChange::Promote { member_id } = change {
            // etcd: only the leader knows how far a learner is; a follower's request is
            // answered by the leader (here: the client is told to ask it).
            let in_sync = self.state.borrow().node.learner_in_sync(member_id);
            match in_sync {
                None if !self.is_leader() => return Err(EtcdStatus::NotLeader.into()),
                None => {
                    let cluster = self.cluster.borrow();
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
        if self.strict_reconfig_check && !self.cluster.borrow().keeps_started_quorum(&change) {
            return Err(EtcdStatus::MemberNotEnoughStarted.into());
        }
        let id = self.request_ids.next();
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.state.borrow_mut();
            state
                .node
                .propose_conf_change(change.to_conf_change(id))
                .map_err(|_| Status::from(EtcdStatus::NoLeader))?;
            state.waiting.insert(id, sender);
        }
        self.pump();
        match within(self.request_timeout, receiver).await {
            Some(Ok(answer)) => answer.map(|_| ()),
            Some(Err(_)) => Err(self.stopped_status()),
            None => {
                self.state.borrow_mut().waiting.remove(&id);
                Err(EtcdStatus::Timeout.into())
            }
        }
    }

    /// etcd's MoveLeader on the leader: asks raft to hand leadership to `target` and waits,
    /// tick by tick, until `target` leads, at most the request timeout.
    pub async fn transfer_leader(self: &Rc<Self>, target: u64) -> Result<(), Status> {
        self.check_running()?;
        if !self.is_leader() {
            return Err(EtcdStatus::NotLeader.into());
        }
        let own = self.headers.identity().member_id;
        let is_voter = {
            let cluster = self.cluster.borrow();
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
        let deadline = std::time::Instant::now() + self.request_timeout;
        while self.state.borrow().node.leader() != target {
            if std::time::Instant::now() >= deadline {
                return Err(EtcdStatus::TimeoutLeaderTransfer.into());
            }
            glommio::timer::sleep(self.tick_interval).await;
        }
        tracing::info!(
            new_leader = format!("{target:x}"),
            "leadership transfer finished"
        );
        Ok(())
    }

    /// Tells the lessor about applied lease changes (before clients hear their answers, so a
    /// TimeToLive after a Grant sees the lease).
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

    /// Queues raft's writes into the WAL in order, without waiting for them to be durable, and
    /// carries out checkpoints in the same order (the one writer of the log's metadata).
    async fn run_persister(self: Rc<Self>) {
        loop {
            let work = poll_fn(|cx| match self.persist_queue.borrow_mut().pop_front() {
                Some(work) => Poll::Ready(work),
                None => {
                    *self.persist_wake.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            let result = match work {
                LogWork::Raft(persist) => self.queue_persist(*persist).await.map(Some),
                LogWork::Checkpoint(index) => self.checkpoint(index).await.map(|()| None),
            };
            match result {
                Ok(Some(item)) => {
                    self.durable_queue.borrow_mut().push_back(item);
                    if let Some(waker) = self.durable_wake.borrow_mut().take() {
                        waker.wake();
                    }
                }
                Ok(None) => {}
                Err(reason) => return self.stop(reason),
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
            .timed_engine_sync()
            .await
            .map_err(|e| format!("syncing the database for a checkpoint failed: {e}"))?;
        assert!(
            durable >= index,
            "engine durable through {durable}, checkpoint at {index}"
        );
        let snapshot = {
            let mut state = self.state.borrow_mut();
            let snapshot = state
                .node
                .compact_log_to(index)
                .map_err(|e| e.to_string())?;
            state.snapshot = snapshot.clone();
            snapshot
        };
        let hard_state = self.persisted_hard_state.borrow().clone();
        let metadata = LogMetadata {
            hard_state,
            snapshot,
        };
        let queued = self
            .wal
            .queue_metadata(&metadata.encode())
            .await
            .map_err(|e| e.to_string())?;
        self.wal
            .wait_durable(queued)
            .await
            .map_err(|e| e.to_string())?;
        self.wal
            .release_before(index + 1)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(index, "checkpointed the raft log");
        Ok(())
    }

    async fn queue_persist(&self, persist: Persist) -> Result<DurableWait, String> {
        if persist.snapshot.is_some() {
            // Snapshots are never stepped into raft (see `refused_message`): the installer
            // swaps the engine and the log in before the member starts.
            return Err(
                "raft handed out a snapshot that did not come through the installer".into(),
            );
        }
        if let Some(last_kept) = persist.truncate_after {
            self.wal
                .truncate_after(last_kept)
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut last = None;
        for entry in &persist.entries {
            assert_eq!(
                self.wal.next_index(),
                entry.index,
                "the wal and raft agree on indices"
            );
            last = Some(
                self.wal
                    .queue_entry(&entry.encode_to_vec())
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        if let Some(hard_state) = persist.hard_state {
            *self.persisted_hard_state.borrow_mut() = hard_state.clone();
            let snapshot = self.state.borrow().snapshot.clone();
            let metadata = LogMetadata {
                hard_state,
                snapshot,
            };
            last = Some(
                self.wal
                    .queue_metadata(&metadata.encode())
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok((persist.ready_number, last, persist.messages_after))
    }

    /// Reports raft's writes durable, in order, as the WAL's fdatasyncs complete. Everything one
    /// fdatasync made durable is reported at once, so raft commits and the engine applies it as
    /// one batch.
    async fn run_durability_waiter(self: Rc<Self>) {
        loop {
            let (mut ready_number, queued, mut messages) =
                poll_fn(|cx| match self.durable_queue.borrow_mut().pop_front() {
                    Some(item) => Poll::Ready(item),
                    None => {
                        *self.durable_wake.borrow_mut() = Some(cx.waker().clone());
                        Poll::Pending
                    }
                })
                .await;
            if let Some(queued) = queued {
                if let Err(error) = self.wal.wait_durable(queued).await {
                    return self.stop(format!("the write-ahead log failed: {error}"));
                }
            }
            loop {
                let mut pending = self.durable_queue.borrow_mut();
                match pending.front() {
                    Some((number, queued, _)) if queued.is_none_or(|q| self.wal.is_durable(q)) => {
                        ready_number = *number;
                        let (_, _, after) = pending.pop_front().expect("front was just seen");
                        messages.extend(after);
                    }
                    _ => break,
                }
            }
            self.state.borrow_mut().node.on_persisted(ready_number);
            // Raft's rule: a follower acknowledges entries (and grants votes) only once they
            // are durable here.
            self.send_messages(messages);
            self.pump();
        }
    }

    /// Makes the engine's published commits durable every ENGINE_SYNC_INTERVAL, on a thread
    /// of its own (`sync_engine`). Apply batches are published to the engine without fsync
    /// (the WAL is the durability point); syncing every ENGINE_SYNC_INTERVAL bounds what a restart after a crash
    /// must replay from the WAL to about that much time's writes, whatever --snapshot-count is.
    /// The same beat releases the engine's resident page copies.
    async fn run_engine_syncer(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(ENGINE_SYNC_INTERVAL).await;
            if self.stopped.borrow().is_some() {
                return;
            }
            if let Err(error) = self.timed_engine_sync().await {
                self.stop(format!("syncing the database failed: {error}"));
                return;
            }
            // Keeps the resident set near one interval's working set rather than growing toward
            // the file size (copy-on-write touches a fresh page for every page it writes).
            // The same thread measures the bytes in use for `/metrics`: measuring waits for the
            // writer, which a scrape on a serving core must never do.
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
    }

    /// `sync_engine`, timed for `etcd_disk_backend_commit_duration_seconds` (the engine's
    /// sync is what makes a commit durable, as bbolt's commit is for etcd).
    async fn timed_engine_sync(&self) -> basalt_engine::Result<u64> {
        let started = std::time::Instant::now();
        let synced = sync_engine(&self.engine).await;
        self.metrics
            .member
            .backend_commit_seconds
            .observe_duration(started.elapsed());
        synced
    }

    /// Removes a pending compaction's revisions, a bounded step every
    /// `compaction_pacing.step_interval` whether or not writes arrive, then answers the physical
    /// compactions waiting for it.
    async fn run_compactor(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(self.compaction_pacing.step_interval).await;
            if self.stopped.borrow().is_some() {
                return;
            }
            if !self.compaction_pending.get() {
                continue;
            }
            match compaction_step(&self.engine, self.compaction_pacing.step_revisions) {
                Ok(done) => {
                    self.compaction_pending.set(!done);
                    if done {
                        for (sender, applied) in self.compaction_waiters.take() {
                            let _ = sender.send(Ok(applied));
                        }
                    }
                }
                Err(error) => {
                    self.stop(format!("compacting the database failed: {error}"));
                    return;
                }
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
            self.state.borrow_mut().node.tick();
            self.pump();
            // Lagging watchers whose catch-up was cut short make progress even when idle.
            self.watch_hub.catch_up_all();
        }
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

/// Runs `future` for at most `limit`; `None` if it did not finish in time.
async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    let mut future = std::pin::pin!(future);
    let mut timer = std::pin::pin!(glommio::timer::sleep(limit));
    poll_fn(|cx| {
        if let Poll::Ready(value) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(value));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
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
                    EntryType::EntryNormal => Proposal::decode(&entry.data).is_err(),
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
