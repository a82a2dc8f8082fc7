//! The members' state machine: a small in-memory key-value store with the engine's apply
//! semantics for puts (one revision per write, a put answered with its revision, a read
//! answered with the latest value) and the engine's durability shape (applies are published
//! at once and made durable only by a checkpoint, the engine's sync; a crash loses what the
//! last checkpoint did not cover and raft replays it from the log).
//!
//! Not the real engine: a simulated member must cost microseconds so that thousands of seeds
//! fit in the default suite; an engine per member means a file, an mmap and a sync per
//! checkpoint. The engine's own apply is tested against a model in its crate; what this
//! simulation tests is the replication around it.
//!
//! Membership changes are applied to the state machine's cluster table (`cluster`), as the
//! engine holds it, so a checkpoint and a snapshot carry the membership of their index.

use std::collections::BTreeMap;

use raft::prelude::{ConfChange, Entry, EntryType};

use super::cluster::Cluster;
use crate::server::state_machine::membership_change::MembershipChange;

/// An entry's payload: the client operation id that proposed it, then the key and the value.
pub fn encode_put(operation: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(10 + key.len() + value.len());
    data.extend_from_slice(&operation.to_le_bytes());
    data.extend_from_slice(&(key.len() as u16).to_le_bytes());
    data.extend_from_slice(key);
    data.extend_from_slice(value);
    data
}

/// A decoded entry payload.
pub struct Put<'a> {
    pub operation: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

fn decode_put(data: &[u8]) -> Put<'_> {
    let operation = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    let key_len = u16::from_le_bytes(data[8..10].try_into().expect("2 bytes")) as usize;
    Put {
        operation,
        key: &data[10..10 + key_len],
        value: &data[10 + key_len..],
    }
}

#[derive(Clone, Default, PartialEq, Debug)]
pub struct Kv {
    /// The last log index applied.
    pub applied_index: u64,
    /// Every write in revision order (revision r at position r - 1): what a member holds
    /// at each revision, for the lost-write check.
    pub writes: Vec<(Vec<u8>, Vec<u8>)>,
    /// The latest value of each key.
    latest: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The membership as of `applied_index`.
    pub cluster: Cluster,
}

/// What applying one entry did.
pub enum Applied<'a> {
    /// A new leader's empty entry, a membership change the table refused or already held.
    Nothing,
    /// A put, answered with its revision.
    Put(Put<'a>, i64),
    /// A membership change raft must apply too.
    Membership(MembershipChange, ConfChange),
}

impl Kv {
    pub fn revision(&self) -> i64 {
        self.writes.len() as i64
    }

    /// A new member's state machine: nothing applied, the initial members in its table.
    pub fn bootstrapped(voters: &[u64]) -> Kv {
        Kv {
            cluster: Cluster::initial(voters),
            ..Kv::default()
        }
    }

    /// Applies `entry`, the next one: a put (empty data: a new leader's first entry, nothing
    /// to do) or a membership change, checked by the cluster table.
    pub fn apply<'a>(&mut self, entry: &'a Entry) -> Applied<'a> {
        assert_eq!(entry.index, self.applied_index + 1, "applies are gap-free");
        self.applied_index = entry.index;
        if entry.get_entry_type() != EntryType::EntryNormal {
            let (id, change, conf_change) = MembershipChange::from_entry(entry)
                .unwrap_or_else(|reason| panic!("committed {reason}"));
            return match self.cluster.apply(&change, id == 0) {
                Ok(true) => Applied::Membership(change, conf_change),
                Ok(false) | Err(_) => Applied::Nothing,
            };
        }
        if entry.data.is_empty() {
            return Applied::Nothing;
        }
        let put = decode_put(&entry.data);
        self.writes.push((put.key.to_vec(), put.value.to_vec()));
        self.latest.insert(put.key.to_vec(), put.value.to_vec());
        let revision = self.revision();
        Applied::Put(put, revision)
    }

    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.latest.get(key).cloned()
    }
}

/// The state machine as the engine keeps it: what readers see, and what is durable.
#[derive(Default)]
pub struct CheckpointedKv {
    pub live: Kv,
    durable: Kv,
}

impl CheckpointedKv {
    /// The engine's sync: everything applied so far becomes durable.
    pub fn checkpoint(&mut self) {
        self.durable = self.live.clone();
    }

    /// A member's state machine before anything is applied.
    pub fn new(kv: Kv) -> CheckpointedKv {
        CheckpointedKv {
            live: kv.clone(),
            durable: kv,
        }
    }

    /// What the last checkpoint made durable (what a snapshot streams: the real sender pins
    /// the engine's last durable commit).
    pub fn durable(&self) -> &Kv {
        &self.durable
    }

    /// A crash: only the last checkpoint survives.
    pub fn crash(self) -> CheckpointedKv {
        CheckpointedKv::new(self.durable)
    }
}
