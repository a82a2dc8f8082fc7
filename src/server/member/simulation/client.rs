//! Simulated clients and the history they record. Each client has one operation outstanding
//! at a time, a put or a linearizable get of one of a few keys, sent to a member of its
//! choosing (a follower forwards it, as in etcd). An operation's call and return are stamped
//! from one counter of events, so "returned before called" means exactly what the simulation
//! did. A put with no answer (timed out, its member crashed) is recorded with an unknown
//! outcome; a get with no answer is dropped (it observed nothing).

use std::collections::BTreeMap;

use super::clock::Micros;
use super::linearizability::{Kind, Operation};

/// How many keys the clients share: few, so operations collide often.
pub const KEYS: u64 = 3;

/// How long a client waits for an answer: two of the longest election timeouts, shorter than
/// etcd's (7 s for 1 s elections) so a client stuck behind a crashed member moves on while
/// the faults still run.
pub const TIMEOUT: Micros = 400_000;

/// An operation id: the client in the high half, its sequence number in the low half. Puts
/// write the id itself as their value, so every put's value is unique.
pub fn operation_id(client: usize, sequence: u64) -> u64 {
    ((client as u64) << 32) | sequence
}

/// What a client is waiting for.
pub struct Outstanding {
    pub operation: u64,
    pub member: usize,
    /// Its place in the history.
    pub record: usize,
}

#[derive(Default)]
pub struct Client {
    pub next_sequence: u64,
    pub outstanding: Option<Outstanding>,
}

/// One recorded operation.
struct Record {
    key: Vec<u8>,
    operation: Operation,
    /// A get that got no answer: left out of the check.
    dropped: bool,
}

/// Every client operation, for the linearizability check.
#[derive(Default)]
pub struct History {
    clock: u64,
    records: Vec<Record>,
    /// Acknowledged puts: (key, value, revision).
    pub acknowledged: Vec<(Vec<u8>, Vec<u8>, i64)>,
}

impl History {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Records a call; returns its record number.
    pub fn call(&mut self, key: Vec<u8>, kind: Kind) -> usize {
        let call = self.tick();
        self.records.push(Record {
            key,
            operation: Operation {
                call,
                ret: u64::MAX,
                kind,
            },
            dropped: false,
        });
        self.records.len() - 1
    }

    /// Records a put's acknowledgement.
    pub fn put_returned(&mut self, record: usize, value: Vec<u8>, revision: i64) {
        let ret = self.tick();
        let entry = &mut self.records[record];
        entry.operation.ret = ret;
        self.acknowledged.push((entry.key.clone(), value, revision));
    }

    /// Records a get's answer.
    pub fn get_returned(&mut self, record: usize, value: Option<Vec<u8>>) {
        let ret = self.tick();
        let seen = value.map(|v| u64::from_le_bytes(v.as_slice().try_into().expect("8 bytes")));
        let entry = &mut self.records[record];
        entry.operation.ret = ret;
        entry.operation.kind = Kind::Get(seen);
    }

    /// A get that will never be answered.
    pub fn drop_get(&mut self, record: usize) {
        self.records[record].dropped = true;
    }

    /// The history split per key (operations on different keys commute).
    pub fn per_key(&self) -> BTreeMap<Vec<u8>, Vec<Operation>> {
        let mut keys: BTreeMap<Vec<u8>, Vec<Operation>> = BTreeMap::new();
        for record in self.records.iter().filter(|r| !r.dropped) {
            keys.entry(record.key.clone())
                .or_default()
                .push(record.operation.clone());
        }
        keys
    }
}
