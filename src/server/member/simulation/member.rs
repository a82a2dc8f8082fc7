//! One simulated member: the real `RaftNode`, its log disk and its state machine, and the
//! shell around them. The shell is a minimal copy of `raft_member`'s Ready handling (the real
//! one is welded to glommio tasks and the WAL): messages leave at once, the persist goes to
//! the disk, committed entries are applied and answered, read states wait for the apply; when
//! an fdatasync completes, raft hears `on_persisted` and the held acks and votes leave.
//!
//! Like the real member, it applies membership changes to its cluster table and then to raft,
//! compacts its log every `snapshot_count` entries past raft's catch-up margin (after a
//! checkpoint of the state machine, so the log never forgets what the state machine could
//! lose), and stands still while a received snapshot commits (`frozen`).

use std::collections::BTreeMap;

use raft::prelude::{ConfState, Message};

use crate::node::{RaftNode, RaftOptions, Recovered};
use crate::server::state_machine::membership_change::MembershipChange;

use super::cluster::sorted;
use super::disk::{Disk, DurableLog};
use super::kv::{Applied, CheckpointedKv, Put};

/// What a member tells the world after an input: messages to carry and answers to clients.
#[derive(Default)]
pub struct Outbox {
    pub messages: Vec<Message>,
    pub answers: Vec<(u64, Answer)>,
    /// (index, term, data) of every entry applied, for the cluster-wide agreement check.
    pub applied: Vec<(u64, u64, Vec<u8>)>,
    /// (index, membership after it) of every membership change applied, for the check that
    /// configurations agree across members.
    pub conf_changes: Vec<(u64, ConfState)>,
    /// Log compactions made.
    pub compactions: u64,
    /// The commit index with the voters raft counted for it, taken whenever it may have
    /// moved: before each batch is applied (a step, a tick or a persist moved it under the
    /// membership applied so far) and after each membership change (raft-rs commits again
    /// under the new one).
    pub commit_points: Vec<CommitPoint>,
}

/// A commit index and the membership it was reached under.
pub struct CommitPoint {
    pub commit: u64,
    pub voters: Vec<u64>,
    pub is_leader: bool,
}

/// When a member compacts its log (etcd's `--snapshot-count` and raft's catch-up margin).
#[derive(Clone, Copy, Debug)]
pub struct Compaction {
    /// Applied entries between checkpoints.
    pub snapshot_count: u64,
    /// Entries kept behind the applied index (`RaftNode::compaction_bound`).
    pub catch_up_entries: u64,
}

/// A client operation's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Put { revision: i64 },
    Get { value: Option<Vec<u8>> },
}

pub struct Member {
    pub id: u64,
    /// Seeds the election timeouts (see `RaftNode::seed_election_timeout`).
    seed: u64,
    pub node: RaftNode,
    pub disk: Disk,
    pub kv: CheckpointedKv,
    /// Proposed puts waiting for their apply: operation id. Bounded by the clients (each has
    /// one operation outstanding, and a timed-out one is removed).
    waiting_puts: BTreeMap<u64, ()>,
    /// Reads waiting for their read state: operation id -> key.
    waiting_reads: BTreeMap<u64, Vec<u8>>,
    /// Reads with a read index, waiting for the apply to reach it: (index, operation, key).
    waiting_applies: Vec<(u64, u64, Vec<u8>)>,
    compaction: Compaction,
    /// The index the log was last compacted to.
    last_checkpoint: u64,
    /// A received snapshot is committing: raft is not advanced (`Member::freeze_for_snapshot`).
    pub frozen: bool,
    /// This member applied its own removal: it stops, as a real member does.
    pub removed: bool,
}

impl Member {
    /// Starts (or restarts) member `id` from what its disk and its state machine hold. Its
    /// membership is the state machine's cluster table, if it holds one (as of its applied
    /// index; the log replays what follows), else the log's (the bootstrap's voters, or none
    /// for a member that joins).
    pub fn start(
        seed: u64,
        id: u64,
        options: RaftOptions,
        compaction: Compaction,
        log: DurableLog,
        kv: CheckpointedKv,
    ) -> Member {
        let mut snapshot = log.snapshot.clone();
        if kv.live.cluster.is_recorded() {
            snapshot.set_conf_state(kv.live.cluster.conf_state());
        }
        assert!(
            kv.live.applied_index >= snapshot.index,
            "the state machine (applied {}) is behind the log's checkpoint at {}",
            kv.live.applied_index,
            snapshot.index
        );
        let last_checkpoint = snapshot.index;
        let recovered = Recovered {
            snapshot,
            entries: log.entries.clone(),
            hard_state: log.hard_state.clone(),
            applied_index: kv.live.applied_index,
        };
        let mut node = RaftNode::new(id, &[], options, recovered).expect("node starts");
        node.set_catch_up_entries(compaction.catch_up_entries);
        Member {
            id,
            seed,
            node,
            disk: Disk::new(log),
            kv,
            waiting_puts: BTreeMap::new(),
            waiting_reads: BTreeMap::new(),
            waiting_applies: Vec::new(),
            compaction,
            last_checkpoint,
            frozen: false,
            removed: false,
        }
    }

    /// A client's put; false if raft refused it at once (nothing will be applied).
    pub fn propose(&mut self, operation: u64, data: Vec<u8>) -> bool {
        if self.node.propose(data).is_err() {
            return false;
        }
        self.waiting_puts.insert(operation, ());
        true
    }

    /// A client's linearizable get: a ReadIndex, then a local read once applied to it.
    pub fn read(&mut self, operation: u64, key: Vec<u8>) {
        self.waiting_reads.insert(operation, key);
        self.node.read_index(operation.to_le_bytes().to_vec());
    }

    /// The client gave up on `operation`.
    pub fn forget(&mut self, operation: u64) {
        self.waiting_puts.remove(&operation);
        if self.waiting_reads.remove(&operation).is_some() {
            self.node.forget_read(&operation.to_le_bytes());
        }
        self.waiting_applies.retain(|(_, op, _)| *op != operation);
    }

    /// Carries out every effect raft has, until it has none (`raft_member::pump`). Called
    /// after every input, so it also replaces raft's unseeded election-timeout draw.
    pub fn pump(&mut self, out: &mut Outbox) {
        if self.frozen || self.removed {
            return;
        }
        self.node.seed_election_timeout(self.seed);
        while let Some(effects) = self.node.advance() {
            out.messages.extend(effects.messages);
            if let Some(persist) = effects.persist {
                self.disk.write(persist);
                if let Some(synced) = self.disk.take_durable() {
                    self.node.on_persisted(synced.ready_number);
                    out.messages.extend(synced.messages_after);
                }
            }
            self.note_commit(out);
            self.apply(&effects.committed, out);
            for read_state in effects.read_states {
                let operation =
                    u64::from_le_bytes(read_state.request_ctx.as_slice().try_into().unwrap());
                if let Some(key) = self.waiting_reads.remove(&operation) {
                    self.waiting_applies
                        .push((read_state.index, operation, key));
                }
            }
            self.answer_reads(out);
        }
    }

    /// The fdatasync in flight completed.
    pub fn on_fsync(&mut self, out: &mut Outbox) {
        if let Some(synced) = self.disk.finish_fsync() {
            self.node.on_persisted(synced.ready_number);
            // A follower's acks and votes leave only now that what they promise is durable.
            out.messages.extend(synced.messages_after);
        }
        self.pump(out);
    }

    fn apply(&mut self, committed: &[raft::prelude::Entry], out: &mut Outbox) {
        let mut last = None;
        for entry in committed {
            // After a restart raft may hand out entries the checkpoint already holds.
            if entry.index <= self.kv.live.applied_index {
                continue;
            }
            out.applied
                .push((entry.index, entry.term, entry.data.to_vec()));
            match self.kv.live.apply(entry) {
                Applied::Put(Put { operation, .. }, revision) => {
                    if self.waiting_puts.remove(&operation).is_some() {
                        out.answers.push((operation, Answer::Put { revision }));
                    }
                }
                Applied::Membership(change, conf_change) => {
                    let conf_state = self
                        .node
                        .apply_conf_change(&conf_change)
                        .unwrap_or_else(|e| panic!("raft refused {change:?}: {e}"));
                    let conf_state = sorted(conf_state);
                    assert_eq!(
                        conf_state,
                        self.kv.live.cluster.conf_state(),
                        "member {}: raft's membership and the cluster table disagree at {}",
                        self.id,
                        entry.index
                    );
                    out.conf_changes.push((entry.index, conf_state));
                    self.note_commit(out);
                    if change == (MembershipChange::Remove { member_id: self.id }) {
                        self.removed = true;
                    }
                }
                Applied::Nothing => {}
            }
            last = Some(entry.index);
        }
        let Some(last) = last else {
            return;
        };
        self.node.on_applied(last);
        // raft_member's checkpoint: the state machine is made durable through (at least) the
        // bound, then the log forgets the entries up to it.
        let keep_from = self.node.compaction_bound(last);
        if keep_from >= self.last_checkpoint + self.compaction.snapshot_count {
            self.last_checkpoint = keep_from;
            self.kv.checkpoint();
            let metadata = self
                .node
                .compact_log_to(keep_from)
                .expect("an applied index is in the log");
            self.disk.checkpoint(metadata);
            out.compactions += 1;
        }
    }

    /// Records a commit point; a removed member never counts toward raft's quorum.
    fn note_commit(&self, out: &mut Outbox) {
        let voters = self.node.conf_state().voters;
        for voter in &voters {
            assert!(
                !self.kv.live.cluster.is_removed(*voter),
                "member {}: raft counts removed member {voter} toward its quorum",
                self.id
            );
        }
        out.commit_points.push(CommitPoint {
            commit: self.node.commit_index(),
            voters,
            is_leader: self.node.is_leader(),
        });
    }

    /// The real installer's rules for a snapshot at `metadata` arriving here
    /// (`snapshot_installer::take` and `Member::freeze_for_snapshot`): refused unless it is
    /// news — past what this member applied and committed, and not an entry its log already
    /// holds (it caught up by log meanwhile: installing would drop entries after it this member
    /// may have acknowledged) — and unless its membership holds this member. A copy refused as
    /// stale is answered to `from` as raft answers one (`RaftNode::answer_stale_snapshot`).
    /// Accepted, the member stands still until the copy is committed and it restarts into it.
    pub fn freeze_for_snapshot(
        &mut self,
        from: u64,
        metadata: &raft::prelude::SnapshotMetadata,
    ) -> Result<(), String> {
        let index = metadata.index;
        let applied = self.kv.live.applied_index;
        if index <= applied {
            self.node.answer_stale_snapshot(from);
            return Err(format!(
                "stale snapshot at index {index}: this member has applied {applied}"
            ));
        }
        let conf_state = metadata.get_conf_state();
        if !conf_state.voters.contains(&self.id) && !conf_state.learners.contains(&self.id) {
            return Err("the snapshot's membership does not hold this member".into());
        }
        let committed = self.node.commit_index();
        if index <= committed {
            self.node.answer_stale_snapshot(from);
            return Err(format!(
                "stale snapshot at index {index}: this member has committed {committed}"
            ));
        }
        if self.node.log_matches(index, metadata.term) {
            self.node.answer_stale_snapshot(from);
            return Err(format!(
                "stale snapshot at index {index}: this member's log already holds that entry"
            ));
        }
        self.frozen = true;
        Ok(())
    }

    fn answer_reads(&mut self, out: &mut Outbox) {
        let applied = self.kv.live.applied_index;
        let kv = &self.kv.live;
        self.waiting_applies.retain(|(index, operation, key)| {
            if *index > applied {
                return true;
            }
            out.answers
                .push((*operation, Answer::Get { value: kv.get(key) }));
            false
        });
    }

    /// A crash: the disk keeps what it keeps, the state machine its last checkpoint.
    pub fn crash(self, rng: &mut super::rng::Rng) -> (DurableLog, CheckpointedKv) {
        (self.disk.crash(rng), self.kv.crash())
    }
}
