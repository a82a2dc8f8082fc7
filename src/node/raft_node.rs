//! One member's raft state machine (raft-rs's `RawNode`) behind a sans-IO interface.
//!
//! Every write goes through raft, even on a single member: a one-voter group commits an entry as
//! soon as the member's own log holds it durably, and clustering later adds voters without a
//! second write path. Persistence is asynchronous: `advance` hands out a [`Persist`] (entries to
//! append, a suffix to truncate, a new hard state) and the shell reports its completion with
//! `on_persisted`, in order. The leader sends its messages before persisting (raft thesis
//! 10.2.1); a follower's acks and votes wait for the persist that covers them, its heartbeat
//! replies do not.
//!
//! raft-rs reads entries through its `Storage` trait, and requires them readable there before
//! `advance_append_async`; the in-memory `MemStorage` mirrors the log (from the last snapshot on)
//! and the WAL is its durable copy, as etcd's MemoryStorage mirrors its WAL.

use std::collections::BTreeSet;

use raft::prelude::{ConfState, Entry, HardState, Message, ReadState, Snapshot, SnapshotMetadata};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};

/// Read requests held while raft cannot answer them (see `RaftNode::read_index`).
const PENDING_READS_LIMIT: usize = 64 * 1024;

/// etcd's catch-up margin: a multi-member log keeps this many entries behind the applied index
/// when it is compacted (see `RaftNode::compaction_bound`).
const CATCH_UP_ENTRIES: u64 = 5_000;

/// How raft runs: its timing in ticks of the shell's clock (etcd: 100 ms heartbeat, 1000 ms
/// election) and how it elects.
#[derive(Clone, Copy, Debug)]
pub struct RaftOptions {
    pub heartbeat_ticks: usize,
    pub election_ticks: usize,
    /// etcd's `--pre-vote`: a candidate first asks whether it could win, so a member cut off
    /// from the others does not raise the term and depose a healthy leader when it returns.
    pub pre_vote: bool,
    /// The election timeout, in ticks, drawn from `[min, max)`; `None`: raft's default range
    /// `[election_ticks, 2 × election_ticks)`. raft-rs draws from a generator nobody can seed,
    /// so a simulation that must replay exactly gives each member a range of one value, or
    /// overrides every draw with `RaftNode::seed_election_timeout`.
    pub election_ticks_range: Option<(usize, usize)>,
}

impl RaftOptions {
    /// Options for etcd's `--heartbeat-interval` and `--election-timeout` (ms), one tick per
    /// heartbeat interval as etcd does, and `--pre-vote`.
    pub fn from_etcd_flags(heartbeat_ms: u64, election_ms: u64, pre_vote: bool) -> RaftOptions {
        assert!(
            heartbeat_ms > 0 && election_ms >= 5 * heartbeat_ms,
            "validated by the config layer"
        );
        RaftOptions {
            heartbeat_ticks: 1,
            election_ticks: (election_ms / heartbeat_ms) as usize,
            pre_vote,
            election_ticks_range: None,
        }
    }
}

/// What the durable log held at start: the snapshot it continues from, its entries, and the hard
/// state.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    pub snapshot: SnapshotMetadata,
    pub entries: Vec<Entry>,
    pub hard_state: HardState,
    /// The last index the state machine (the engine) has applied durably; raft hands out
    /// committed entries after it.
    pub applied_index: u64,
}

/// A write the shell must make durable, then report with `on_persisted(ready_number)`.
#[derive(Debug, Default)]
pub struct Persist {
    pub ready_number: u64,
    /// Drop every log entry after this index before appending (a new leader overwrote them).
    pub truncate_after: Option<u64>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    /// The write is only a hard state whose commit index moved (term and vote unchanged, no
    /// entries). It need not be durable before anything, as etcd's `raft.MustSync` says: the
    /// commit index is volatile in raft, and a restart recovers it from the applied index
    /// and from the leader. The shell may hold it back and write it with its next write,
    /// which saves a durable write per round when commits follow appends.
    pub commit_only: bool,
    /// A snapshot received from the leader: the log restarts after it.
    pub snapshot: Option<Snapshot>,
    /// Messages to send only once this write is durable (a follower's acks and votes).
    pub messages_after: Vec<Message>,
}

/// Everything one `advance` asks of the shell.
#[derive(Debug, Default)]
pub struct Effects {
    /// Messages to send now.
    pub messages: Vec<Message>,
    pub persist: Option<Persist>,
    /// Committed entries to apply, in order. Entries with empty data (a new leader's first
    /// entry) carry nothing to apply but still advance the applied index.
    pub committed: Vec<Entry>,
    /// Answers to `read_index` requests: the context and the index a read must wait for.
    pub read_states: Vec<ReadState>,
    /// The leader as this member now knows it (0: none), when that changed.
    pub leader_changed: Option<u64>,
}

/// Why a request could not enter raft.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// This member is not the leader and knows of none (etcd's `etcdserver: no leader`).
    #[error("etcdserver: no leader")]
    NoLeader,
    /// raft refused the request.
    #[error("etcdserver: raft: {0}")]
    Raft(String),
}

/// One member's raft state machine.
pub struct RaftNode {
    raw: RawNode<MemStorage>,
    /// Last log index handed to persistence, to spot overwrites (truncations).
    last_handed_index: u64,
    leader: u64,
    /// Read requests waiting for this leader to commit an entry of its term, or for this
    /// follower to know a leader: raft-rs drops a ReadIndex until then, so they are held here
    /// and re-issued.
    pending_reads: Vec<Vec<u8>>,
    /// Followers' ReadIndex requests that reached this leader before it committed an entry of
    /// its term (raft-rs would drop them, and each follower's reader would wait out its whole
    /// request timeout: every linearizable read on a follower right after an election). Stepped
    /// again once the leader can answer; dropped if it stops leading (their readers time out,
    /// as any read lost with a leader).
    pending_forwarded_reads: Vec<Message>,
    /// Read requests handed to raft and not answered yet. raft-rs forgets them when the
    /// leader or the term changes (a leader that steps down clears its queue of reads; a
    /// member that became leader ignores the old leader's late answer to its own request),
    /// and each reader would wait out its whole request timeout: every read in flight through
    /// a follower while the leader hands over on a graceful stop. On such a change they are
    /// asked again (a later read point is still a linearizable one; a duplicate answer finds
    /// no waiter). Ordered, so a seeded simulation asks them again in the same order.
    reads_in_raft: BTreeSet<Vec<u8>>,
    /// The term and leader when `reads_in_raft` were last handed to raft.
    reads_asked_under: (u64, u64),
    /// The election timeout's range in ticks, `[min, max)`.
    election_range: (usize, usize),
    /// Entries a compaction keeps behind the applied index (`compaction_bound`).
    catch_up_entries: u64,
}

impl RaftNode {
    /// A member with id `id` of a group whose voters are `voters` (used only when the log is new),
    /// restarted from `recovered`.
    pub fn new(
        id: u64,
        voters: &[u64],
        options: RaftOptions,
        recovered: Recovered,
    ) -> Result<RaftNode, NodeError> {
        assert!(id != 0, "raft member ids are never 0");
        let storage = MemStorage::new();
        let mut snapshot_metadata = recovered.snapshot;
        if snapshot_metadata.get_conf_state() == &ConfState::default() {
            snapshot_metadata.mut_conf_state().voters = voters.to_vec();
        }
        let snapshot_index = snapshot_metadata.index;
        let applied = snapshot_index.max(recovered.applied_index);
        {
            let mut core = storage.wl();
            if snapshot_metadata.index > 0 {
                let mut snapshot = Snapshot::default();
                snapshot.set_metadata(snapshot_metadata);
                core.apply_snapshot(snapshot)
                    .map_err(|e| NodeError::Raft(e.to_string()))?;
            } else {
                // A log that starts at index 1 has no snapshot, only its membership.
                core.set_conf_state(snapshot_metadata.take_conf_state());
            }
            core.append(&recovered.entries)
                .map_err(|e| NodeError::Raft(e.to_string()))?;
            // The state machine may have applied (and made durable) entries whose commit the
            // log's hard state does not record yet: raft hands out committed entries before the
            // hard state carrying that commit index is persisted. An applied entry was
            // committed, and raft hands out only entries already durable in this log, so the
            // commit index is raised to it; raft-rs refuses an applied index above the commit.
            let mut hard_state = recovered.hard_state;
            if hard_state.commit < applied {
                let durable_last = recovered
                    .entries
                    .last()
                    .map_or(snapshot_index, |entry| entry.index);
                assert!(
                    applied <= durable_last,
                    "applied index {applied} is beyond the durable log (last {durable_last})"
                );
                hard_state.commit = applied;
            }
            core.set_hardstate(hard_state);
        }
        let last_handed_index =
            raft::Storage::last_index(&storage).map_err(|e| NodeError::Raft(e.to_string()))?;
        let config = Config {
            id,
            heartbeat_tick: options.heartbeat_ticks,
            election_tick: options.election_ticks,
            applied,
            // Large batches per message and per ready: the write path batches everything.
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: options.pre_vote,
            min_election_tick: options.election_ticks_range.map_or(0, |(min, _)| min),
            max_election_tick: options.election_ticks_range.map_or(0, |(_, max)| max),
            ..Config::default()
        };
        config
            .validate()
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        let election_range = (config.min_election_tick(), config.max_election_tick());
        let logger = super::raft_logger::raft_logger();
        let raw =
            RawNode::new(&config, storage, &logger).map_err(|e| NodeError::Raft(e.to_string()))?;
        Ok(RaftNode {
            raw,
            last_handed_index,
            leader: 0,
            pending_reads: Vec::new(),
            pending_forwarded_reads: Vec::new(),
            reads_in_raft: BTreeSet::new(),
            reads_asked_under: (0, 0),
            election_range,
            catch_up_entries: CATCH_UP_ENTRIES,
        })
    }

    /// This member's id.
    pub fn id(&self) -> u64 {
        self.raw.raft.id
    }

    /// Whether this member leads its group.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The leader this member knows (0: none).
    pub fn leader(&self) -> u64 {
        self.raw.raft.leader_id
    }

    /// Whether this member is a learner (a non-voting member that only follows the log).
    pub fn is_learner(&self) -> bool {
        let id = self.raw.raft.id;
        self.raw.raft.prs().conf().learners().contains(&id)
    }

    /// The highest index known committed.
    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// Whether the log (unstable entries included) holds an entry at `index` of `term`.
    pub fn log_matches(&self, index: u64, term: u64) -> bool {
        self.raw.raft.raft_log.match_term(index, term)
    }

    /// Whether this member is the only voter of its group (it may elect itself at once).
    pub fn is_sole_voter(&self) -> bool {
        let voters = self.raw.raft.prs().conf().voters().ids();
        voters.len() == 1 && voters.contains(self.raw.raft.id)
    }

    /// Replaces raft's draw of the election timeout by one that is a function of `seed` and
    /// of this member's raft state (term, role, vote, leader), within the configured range.
    /// raft-rs draws from a generator nobody can seed, so a simulation that must replay calls
    /// this after every input: the value is the same for as long as the state is, and a new
    /// state (where raft would have drawn again) gets a new one.
    pub fn seed_election_timeout(&mut self, seed: u64) {
        let (min, max) = self.election_range;
        let raft = &mut self.raw.raft;
        let mut hash = seed ^ raft.id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for value in [raft.term, raft.state as u64, raft.vote, raft.leader_id] {
            hash = (hash ^ value).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            hash ^= hash >> 29;
        }
        raft.set_randomized_election_timeout(min + (hash % (max - min) as u64) as usize);
    }

    /// Reports that a message to `peer` could not be delivered, so a leader stops pipelining
    /// to it and probes again.
    pub fn report_unreachable(&mut self, peer: u64) {
        self.raw.report_unreachable(peer);
    }

    /// The link to `peer` failed: its connection closed or a dial was refused (a member killed
    /// with SIGKILL closes every connection at once). Besides raft's report, a follower whose
    /// leader that is stops honouring the leader's lease: its election timer is set to the
    /// election timeout, so it campaigns within its random extra (up to another timeout)
    /// instead of the whole randomized timeout, and grants the other followers' pre-votes.
    /// With pre-vote only: then a false alarm (a flapping link to a healthy leader) costs at
    /// most one refused pre-vote, since a follower still hearing the leader refuses it
    /// (check-quorum's lease) and the next heartbeat ends the attempt. Without pre-vote the
    /// early candidate would raise the term and depose a healthy leader.
    pub fn on_peer_unreachable(&mut self, peer: u64) {
        self.raw.report_unreachable(peer);
        let raft = &mut self.raw.raft;
        if raft.pre_vote && raft.state == StateRole::Follower && raft.leader_id == peer {
            raft.election_elapsed = raft.election_elapsed.max(raft.election_timeout());
        }
    }

    /// Reports how the snapshot sent to `peer` ended: delivered (the leader probes it from the
    /// snapshot's index on) or failed (the leader sends another later).
    pub fn report_snapshot(&mut self, peer: u64, delivered: bool) {
        let status = if delivered {
            raft::SnapshotStatus::Finish
        } else {
            raft::SnapshotStatus::Failure
        };
        self.raw.report_snapshot(peer, status);
    }

    /// Answers the snapshot `leader` sent that this member refused as stale (it applied or
    /// committed the snapshot's index, or its log holds that entry) as raft answers a snapshot
    /// it ignores (raft-rs's and etcd's `handleSnapshot`): an append response at the commit
    /// index, from which the leader resumes replicating. Snapshots never reach raft here (the
    /// installer takes them), so without this answer the leader hears only that the transfer
    /// failed and probes again from what it last knew to match; if that lies before its log's
    /// start (a rejection sent before an install reached it after the install was reported),
    /// it sends the same snapshot again, forever.
    pub fn answer_stale_snapshot(&mut self, leader: u64) {
        let raft = &mut self.raw.raft;
        if raft.state != StateRole::Follower {
            return;
        }
        let mut response = Message::default();
        response.set_msg_type(raft::prelude::MessageType::MsgAppendResponse);
        response.to = leader;
        response.from = raft.id;
        response.term = raft.term;
        response.index = raft.raft_log.committed;
        raft.msgs.push(response);
    }

    /// Starts an election now (a single voter need not wait out an election timeout).
    pub fn campaign(&mut self) -> Result<(), NodeError> {
        self.raw
            .campaign()
            .map_err(|e| NodeError::Raft(e.to_string()))
    }

    /// One tick of the logical clock (one heartbeat interval).
    pub fn tick(&mut self) {
        self.raw.tick();
    }

    /// Proposes `data` as a new entry. A follower that knows the leader forwards the proposal
    /// to it (raft's `MsgPropose`, sent with the next messages); the entry comes back through
    /// the log like any other, and a lost forward shows as the proposer's timeout, as in etcd.
    /// Without a known leader the proposal is refused at once.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), NodeError> {
        if !self.is_leader() && self.leader() == 0 {
            return Err(NodeError::NoLeader);
        }
        self.raw
            .propose(Vec::new(), data)
            .map_err(|e| NodeError::Raft(e.to_string()))
    }

    /// Proposes a membership change; forwarded to the leader like any proposal. raft-rs
    /// turns it into an empty entry while another change is still being applied.
    pub fn propose_conf_change(
        &mut self,
        change: raft::prelude::ConfChange,
    ) -> Result<(), NodeError> {
        if !self.is_leader() && self.leader() == 0 {
            return Err(NodeError::NoLeader);
        }
        self.raw
            .propose_conf_change(Vec::new(), change)
            .map_err(|e| NodeError::Raft(e.to_string()))
    }

    /// Applies a committed membership change to raft, and records the new membership with the
    /// in-memory log, so the next checkpoint stores it.
    pub fn apply_conf_change(
        &mut self,
        change: &raft::prelude::ConfChange,
    ) -> Result<ConfState, NodeError> {
        let conf_state = self
            .raw
            .apply_conf_change(change)
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        self.raw.mut_store().wl().set_conf_state(conf_state.clone());
        Ok(conf_state)
    }

    /// Whether the leader's log and learner `id`'s agree closely enough to promote it:
    /// etcd's rule, its matched index at least 90% of the leader's. `None` when this member
    /// does not lead (only the leader tracks the others' progress) or `id` is unknown.
    pub fn learner_in_sync(&self, id: u64) -> Option<bool> {
        if !self.is_leader() {
            return None;
        }
        let progress = self.raw.raft.prs();
        let learner = progress.get(id)?.matched;
        let leader = progress.get(self.id())?.matched;
        Some(learner as f64 >= 0.9 * leader as f64)
    }

    /// Of `voters`, the one other than this member whose log the leader knows to match
    /// furthest: the transferee a graceful stop picks, as raft then has the least to send it
    /// before it may campaign. `None` when this member does not lead or no other voter is
    /// tracked.
    pub fn most_up_to_date_voter(&self, voters: impl Iterator<Item = u64>) -> Option<u64> {
        if !self.is_leader() {
            return None;
        }
        let progress = self.raw.raft.prs();
        voters
            .filter(|&id| id != self.id())
            .filter_map(|id| Some((progress.get(id)?.matched, id)))
            .max()
            .map(|(_, id)| id)
    }

    /// Asks raft to hand leadership to `target` (raft's leader transfer: it brings the target's
    /// log up to date, then tells it to campaign at once).
    pub fn transfer_leader(&mut self, target: u64) {
        self.raw.transfer_leader(target);
    }

    /// Asks for a linearizable read point; the answer arrives as a `ReadState` with `context`.
    /// A leader that has not yet committed an entry of its own term, or a follower that knows
    /// no leader yet (a member just restarted), holds the request until it can be answered:
    /// raft-rs would drop it silently and the reader would wait out its whole timeout.
    pub fn read_index(&mut self, context: Vec<u8>) {
        if self.can_read_index() {
            self.hand_read_to_raft(context);
        } else if self.pending_reads.len() < PENDING_READS_LIMIT {
            self.pending_reads.push(context);
        }
        // Past the limit the request is dropped: its reader times out, as with raft-rs.
    }

    /// The reader of `context` gave up (its request timed out): the read is not held or asked
    /// again any more. Without this a read whose request or answer was lost, with no change
    /// of leader, stayed remembered: enough of them would fill the bound and switch the
    /// re-asking off, and the next change would ask them all again at once.
    pub fn forget_read(&mut self, context: &[u8]) {
        self.reads_in_raft.remove(context);
        self.pending_reads.retain(|held| held.as_slice() != context);
    }

    /// Hands a read request to raft, remembering it until answered (past the limit it is not
    /// remembered: a leader change then loses it, as with raft-rs).
    fn hand_read_to_raft(&mut self, context: Vec<u8>) {
        // Those asked under an older term or leader first, so this one is not asked twice.
        self.ask_again_for_forgotten_reads();
        if self.reads_in_raft.len() < PENDING_READS_LIMIT {
            self.reads_in_raft.insert(context.clone());
        }
        self.raw.read_index(context);
    }

    /// Asks again for the reads handed to raft under another term or leader than now's.
    fn ask_again_for_forgotten_reads(&mut self) {
        let authority = self.read_authority();
        if authority == self.reads_asked_under {
            return;
        }
        self.reads_asked_under = authority;
        let forgotten = std::mem::take(&mut self.reads_in_raft);
        for context in forgotten {
            self.read_index(context);
        }
    }

    /// The term and leader raft's answers to reads belong to.
    fn read_authority(&self) -> (u64, u64) {
        (self.raw.raft.term, self.raw.raft.leader_id)
    }

    /// Whether raft-rs would act on a ReadIndex now rather than drop it.
    fn can_read_index(&self) -> bool {
        if self.is_leader() {
            self.raw.raft.commit_to_current_term()
        } else {
            self.leader() != 0
        }
    }

    /// Re-issues held read requests once raft can answer them, and asks again for those raft
    /// forgot on a change of term or leader.
    fn release_pending_reads(&mut self) {
        self.ask_again_for_forgotten_reads();
        if !self.pending_forwarded_reads.is_empty() {
            if !self.is_leader() {
                self.pending_forwarded_reads.clear();
            } else if self.raw.raft.commit_to_current_term() {
                for message in std::mem::take(&mut self.pending_forwarded_reads) {
                    // A leader that committed in its term acts on it (raft-rs's rules apply).
                    let _ = self.raw.step(message);
                }
            }
        }
        if self.pending_reads.is_empty() || !self.can_read_index() {
            return;
        }
        for context in std::mem::take(&mut self.pending_reads) {
            self.hand_read_to_raft(context);
        }
    }

    /// Feeds a message from another member.
    pub fn step(&mut self, message: Message) -> Result<(), NodeError> {
        // (A forwarded ReadIndex carries no term: raft-rs sends it as a local message.)
        if message.get_msg_type() == raft::prelude::MessageType::MsgReadIndex
            && self.is_leader()
            && !self.raw.raft.commit_to_current_term()
        {
            // Past the limit the request is dropped: its reader times out, as with raft-rs.
            if self.pending_forwarded_reads.len() < PENDING_READS_LIMIT {
                self.pending_forwarded_reads.push(message);
            }
            return Ok(());
        }
        self.raw
            .step(message)
            .map_err(|e| NodeError::Raft(e.to_string()))
    }

    /// Collects the work raft has for the shell, if any. Call after every input and after every
    /// `on_persisted`, until it returns `None`.
    pub fn advance(&mut self) -> Option<Effects> {
        self.release_pending_reads();
        if !self.raw.has_ready() {
            return None;
        }
        let mut ready = self.raw.ready();
        let mut effects = Effects {
            messages: ready.take_messages(),
            committed: ready.take_committed_entries(),
            read_states: ready.take_read_states(),
            ..Effects::default()
        };
        for answered in &effects.read_states {
            self.reads_in_raft.remove(&answered.request_ctx);
        }
        if let Some(soft_state) = ready.ss() {
            if soft_state.leader_id != self.leader {
                self.leader = soft_state.leader_id;
                effects.leader_changed = Some(soft_state.leader_id);
            }
        }
        let mut persist = Persist {
            ready_number: ready.number(),
            ..Persist::default()
        };
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            let index = snapshot.get_metadata().index;
            self.raw
                .mut_store()
                .wl()
                .apply_snapshot(snapshot.clone())
                .expect("raft hands out newer snapshots only");
            self.last_handed_index = index;
            persist.snapshot = Some(snapshot);
        }
        let entries = ready.take_entries();
        if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
            if first.index <= self.last_handed_index {
                persist.truncate_after = Some(first.index - 1);
            }
            assert!(
                first.index <= self.last_handed_index + 1,
                "raft appends without a gap"
            );
            self.raw
                .mut_store()
                .wl()
                .append(&entries)
                .expect("raft appends after its snapshot");
            self.last_handed_index = last.index;
        }
        persist.entries = entries;
        if let Some(hard_state) = ready.hs() {
            let before = self.raw.store().rl().hard_state().clone();
            persist.commit_only = persist.entries.is_empty()
                && persist.snapshot.is_none()
                && hard_state.term == before.term
                && hard_state.vote == before.vote;
            self.raw.mut_store().wl().set_hardstate(hard_state.clone());
            persist.hard_state = Some(hard_state.clone());
        }
        // raft-rs holds every message of a non-leader until the persist it rode in with is
        // durable. Only acks of entries and real votes claim something durable; the rest go
        // now, so a slow or stalled fsync cannot delay a heartbeat reply past the leader's
        // check-quorum window (etcd #7970's spurious elections on slow disks).
        let (durable, immediate): (Vec<Message>, Vec<Message>) = ready
            .take_persisted_messages()
            .into_iter()
            .partition(needs_durable_state);
        effects.messages.extend(immediate);
        persist.messages_after = durable;
        let has_write = !persist.entries.is_empty()
            || persist.hard_state.is_some()
            || persist.snapshot.is_some();
        if has_write || !persist.messages_after.is_empty() {
            effects.persist = Some(persist);
        }
        self.raw.advance_append_async(ready);
        Some(effects)
    }

    /// Reports that the persist of `ready_number` (and every earlier one) is durable.
    pub fn on_persisted(&mut self, ready_number: u64) {
        self.raw.on_persist_ready(ready_number);
    }

    /// The hard state raft holds now (term, vote, commit).
    pub fn hard_state(&self) -> HardState {
        self.raw.raft.hard_state()
    }

    /// Drops the in-memory log up to `index` (applied and checkpointed by the state machine) and
    /// returns the snapshot metadata the log now continues from: its index, term and membership.
    /// The entries after `index` stay.
    pub fn compact_log_to(&mut self, index: u64) -> Result<SnapshotMetadata, NodeError> {
        use raft::{GetEntriesContext, Storage as _};
        let raft_error = |e: raft::Error| NodeError::Raft(e.to_string());
        let store = self.raw.mut_store();
        let term = store.term(index).map_err(raft_error)?;
        let last = store.last_index().map_err(raft_error)?;
        let kept = if last > index {
            store
                .entries(index + 1, last + 1, None, GetEntriesContext::empty(false))
                .map_err(raft_error)?
        } else {
            Vec::new()
        };
        let conf_state = store.initial_state().map_err(raft_error)?.conf_state;
        let mut metadata = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        metadata.set_conf_state(conf_state);
        let mut snapshot = Snapshot::default();
        snapshot.set_metadata(metadata.clone());
        let mut core = store.wl();
        // Applying the snapshot to the in-memory log rewrites its commit index; keep raft's.
        let hard_state = core.hard_state().clone();
        core.apply_snapshot(snapshot).map_err(raft_error)?;
        core.append(&kept).map_err(raft_error)?;
        core.set_hardstate(hard_state);
        Ok(metadata)
    }

    /// How far the log may be compacted once `applied` is applied. A multi-member log keeps
    /// etcd's catch-up margin of 5,000 entries behind the applied index (a follower a little
    /// behind, or one that leads later, catches up from the log); a follower further behind
    /// catches up by snapshot (`member/snapshot_sender.rs`), so a dead follower never holds the
    /// log back.
    pub fn compaction_bound(&self, applied: u64) -> u64 {
        if self.is_sole_voter() {
            return applied;
        }
        applied.saturating_sub(self.catch_up_entries)
    }

    /// Replaces the catch-up margin of `compaction_bound` (the simulation uses a few entries,
    /// so that its short runs compact their logs and members catch up by snapshot).
    pub fn set_catch_up_entries(&mut self, entries: u64) {
        self.catch_up_entries = entries;
    }

    /// The membership raft uses now (voters and learners, as applied so far).
    pub fn conf_state(&self) -> ConfState {
        self.raw.raft.prs().conf().to_conf_state()
    }

    /// The term of the entry at `index`, if the in-memory log still knows it (from its
    /// snapshot's index on).
    pub fn term_of(&self, index: u64) -> Option<u64> {
        raft::Storage::term(self.raw.store(), index).ok()
    }

    /// Reports that committed entries up to `index` are applied.
    pub fn on_applied(&mut self, index: u64) {
        self.raw.advance_apply_to(index);
    }
}

/// Whether `message` may leave only once the write it rode in with is durable: an append's ack
/// (it promises the entries), a vote and a vote request (they promise the term and the vote).
/// Heartbeat replies, pre-vote replies and forwarded proposals and reads promise nothing on disk.
fn needs_durable_state(message: &Message) -> bool {
    use raft::prelude::MessageType;
    !matches!(
        message.get_msg_type(),
        MessageType::MsgHeartbeatResponse
            | MessageType::MsgRequestPreVoteResponse
            | MessageType::MsgRequestPreVote
            | MessageType::MsgPropose
            | MessageType::MsgReadIndex
            | MessageType::MsgReadIndexResp
            | MessageType::MsgUnreachable
            | MessageType::MsgSnapStatus
    )
}
