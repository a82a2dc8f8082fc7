//! One simulated member: the real `RaftNode`, its log disk and its state machine, and the
//! shell around them. The shell is a minimal copy of `raft_member`'s Ready handling (the real
//! one is welded to glommio tasks and the WAL): messages leave at once, the persist goes to
//! the disk, committed entries are applied and answered, read states wait for the apply; when
//! an fdatasync completes, raft hears `on_persisted` and the held acks and votes leave.

use std::collections::BTreeMap;

use raft::prelude::{Message, SnapshotMetadata};

use crate::node::{RaftNode, RaftOptions, Recovered};

use super::disk::{Disk, DurableLog};
use super::kv::{CheckpointedKv, Put};

/// What a member tells the world after an input: messages to carry and answers to clients.
#[derive(Default)]
pub struct Outbox {
    pub messages: Vec<Message>,
    pub answers: Vec<(u64, Answer)>,
    /// (index, data) of every entry applied, for the cluster-wide agreement check.
    pub applied: Vec<(u64, Vec<u8>)>,
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
}

impl Member {
    /// Starts (or restarts) member `id` from what its disk and its state machine hold.
    pub fn start(
        seed: u64,
        id: u64,
        voters: &[u64],
        options: RaftOptions,
        log: DurableLog,
        kv: CheckpointedKv,
    ) -> Member {
        let recovered = Recovered {
            snapshot: SnapshotMetadata::default(),
            entries: log.entries.clone(),
            hard_state: log.hard_state.clone(),
            applied_index: kv.live.applied_index,
        };
        let node = RaftNode::new(id, voters, options, recovered).expect("node starts");
        Member {
            id,
            seed,
            node,
            disk: Disk::new(log),
            kv,
            waiting_puts: BTreeMap::new(),
            waiting_reads: BTreeMap::new(),
            waiting_applies: Vec::new(),
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
        self.waiting_reads.remove(&operation);
        self.waiting_applies.retain(|(_, op, _)| *op != operation);
    }

    /// Carries out every effect raft has, until it has none (`raft_member::pump`). Called
    /// after every input, so it also replaces raft's unseeded election-timeout draw.
    pub fn pump(&mut self, out: &mut Outbox) {
        self.node.seed_election_timeout(self.seed);
        while let Some(effects) = self.node.advance() {
            out.messages.extend(effects.messages);
            if let Some(persist) = effects.persist {
                self.disk.write(persist);
            }
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
            out.applied.push((entry.index, entry.data.to_vec()));
            if let Some((Put { operation, .. }, revision)) =
                self.kv.live.apply(entry.index, &entry.data)
            {
                if self.waiting_puts.remove(&operation).is_some() {
                    out.answers.push((operation, Answer::Put { revision }));
                }
            }
            last = Some(entry.index);
        }
        if let Some(last) = last {
            self.node.on_applied(last);
        }
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
