//! A member's simulated log disk, shaped like basalt's WAL: raft's writes become records in
//! order (a truncation, entries, the hard state), written at once but durable only when a
//! later fdatasync completes; one fdatasync covers every record written before it started
//! (group commit). A stall holds the fdatasync in flight for as long as it lasts. A crash keeps
//! what was synced plus a seeded prefix of what was not: the WAL's crc per record and torn-tail
//! repair make a torn write lose a suffix of records, never a record in the middle.
//!
//! A checkpoint (log compaction) is one more record: once durable, the log starts after its
//! index, as the WAL's stored snapshot metadata and released segments make it. A snapshot
//! install resets the log after the snapshot's index (`DurableLog::reset_to_snapshot`).

use std::collections::VecDeque;

use raft::prelude::{Entry, HardState, Message, SnapshotMetadata};

use crate::node::Persist;

use super::clock::Micros;
use super::rng::Rng;

/// One WAL record.
enum Record {
    TruncateAfter(u64),
    Entry(Entry),
    HardState(HardState),
    /// The log forgets the entries up to the metadata's index.
    Checkpoint(SnapshotMetadata),
}

/// What survives a crash: the log a restarted member recovers from.
#[derive(Clone, Default)]
pub struct DurableLog {
    /// Where the log starts: it holds the entries after this index (and the membership the
    /// log was started or last checkpointed with).
    pub snapshot: SnapshotMetadata,
    pub entries: Vec<Entry>,
    pub hard_state: HardState,
}

impl DurableLog {
    fn apply(&mut self, record: Record) {
        match record {
            Record::TruncateAfter(index) => {
                assert!(
                    index >= self.snapshot.index,
                    "a truncation at {index} reaches into the checkpoint at {}",
                    self.snapshot.index
                );
                self.entries.retain(|e| e.index <= index)
            }
            Record::Entry(entry) => {
                assert_eq!(entry.index, self.last_index() + 1, "the log has a gap");
                self.entries.push(entry);
            }
            Record::HardState(hard_state) => self.hard_state = hard_state,
            Record::Checkpoint(metadata) => {
                if metadata.index <= self.snapshot.index {
                    return;
                }
                assert!(
                    metadata.index <= self.last_index(),
                    "a checkpoint at {} beyond the durable log's end {}",
                    metadata.index,
                    self.last_index()
                );
                self.entries.retain(|e| e.index > metadata.index);
                self.snapshot = metadata;
            }
        }
    }

    pub fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.snapshot.index, |e| e.index)
    }

    /// Whether this log durably holds the entry at `index` of `term`, or a checkpoint or
    /// snapshot past it (whose entries were committed).
    pub fn holds(&self, index: u64, term: u64) -> bool {
        if index <= self.snapshot.index {
            return true;
        }
        let first = self.snapshot.index + 1;
        self.entries
            .get((index - first) as usize)
            .is_some_and(|entry| entry.index == index && entry.term == term)
    }

    /// The log restarted after an installed snapshot (`snapshot_installer`'s log reset): no
    /// entries, the snapshot's metadata, and the hard state committed with it, keeping the
    /// term and vote this log holds if they are newer.
    pub fn reset_to_snapshot(&mut self, metadata: SnapshotMetadata, mut hard_state: HardState) {
        if self.hard_state.term >= hard_state.term {
            hard_state.term = self.hard_state.term;
            hard_state.vote = self.hard_state.vote;
        }
        self.entries.clear();
        self.snapshot = metadata;
        self.hard_state = hard_state;
    }
}

/// A persist waiting for the fdatasync that covers its records.
struct Waiting {
    /// Records written (ever) when it was queued: durable once `synced` reaches this.
    upto: u64,
    ready_number: u64,
    messages_after: Vec<Message>,
}

/// Persists made durable by one fdatasync, to report to raft in one go.
pub struct Synced {
    pub ready_number: u64,
    pub messages_after: Vec<Message>,
}

pub struct Disk {
    durable: DurableLog,
    /// Records ever made durable.
    synced: u64,
    /// Written, not yet durable, oldest first.
    written: VecDeque<Record>,
    waiting: VecDeque<Waiting>,
    /// The fdatasync in flight: the record count it makes durable.
    fsync_in_flight: Option<u64>,
    /// Until when every fdatasync hangs.
    pub stalled_until: Micros,
    /// A commit-only hard state held back, not written: it goes out with the next write or
    /// checkpoint, and a crash loses it (`LogWriter::write`).
    held: Option<HardState>,
}

impl Disk {
    pub fn new(durable: DurableLog) -> Disk {
        Disk {
            durable,
            synced: 0,
            written: VecDeque::new(),
            waiting: VecDeque::new(),
            fsync_in_flight: None,
            stalled_until: 0,
            held: None,
        }
    }

    /// What the log holds durably now.
    pub fn durable(&self) -> &DurableLog {
        &self.durable
    }

    /// The hard state most recently written, durable or not (`LogWriter::persisted_hard_state`:
    /// the term and vote a snapshot install keeps).
    pub fn written_hard_state(&self) -> HardState {
        if let Some(held) = &self.held {
            return held.clone();
        }
        self.written
            .iter()
            .rev()
            .find_map(|record| match record {
                Record::HardState(hard_state) => Some(hard_state.clone()),
                _ => None,
            })
            .unwrap_or_else(|| self.durable.hard_state.clone())
    }

    /// Whether a commit-only hard state is held back, not yet written.
    pub fn holds_back_a_commit(&self) -> bool {
        self.held.is_some()
    }

    /// Writes a checkpoint: durable with the next fdatasync, which the next persist starts.
    pub fn checkpoint(&mut self, metadata: SnapshotMetadata) {
        // The real checkpoint's metadata record carries the newest hard state.
        if let Some(held) = self.held.take() {
            self.written.push_back(Record::HardState(held));
        }
        self.written.push_back(Record::Checkpoint(metadata));
    }

    /// Writes raft's persist, in order (no fdatasync yet).
    pub fn write(&mut self, persist: Persist) {
        assert!(
            persist.snapshot.is_none(),
            "raft never sees a snapshot: a member installs one by restarting into it"
        );
        if persist.commit_only {
            // Held back: durable as soon as everything written before it is.
            self.held = persist.hard_state;
        } else {
            if let Some(index) = persist.truncate_after {
                self.written.push_back(Record::TruncateAfter(index));
            }
            let has_entries = !persist.entries.is_empty();
            self.written
                .extend(persist.entries.into_iter().map(Record::Entry));
            let hard_state = match persist.hard_state {
                Some(hard_state) => Some(hard_state),
                None if has_entries => self.held.take(),
                None => None,
            };
            if let Some(hard_state) = hard_state {
                self.held = None;
                self.written.push_back(Record::HardState(hard_state));
            }
        }
        self.waiting.push_back(Waiting {
            upto: self.synced + self.written.len() as u64,
            ready_number: persist.ready_number,
            messages_after: persist.messages_after,
        });
    }

    /// The oldest persists whose records are all durable already (a held-back commit after
    /// durable writes): reported at once, as the real durability waiter does.
    pub fn take_durable(&mut self) -> Option<Synced> {
        let mut done: Option<Synced> = None;
        while self.waiting.front().is_some_and(|w| w.upto <= self.synced) {
            let waiting = self.waiting.pop_front().expect("front was just seen");
            let synced = done.get_or_insert(Synced {
                ready_number: 0,
                messages_after: Vec::new(),
            });
            synced.ready_number = waiting.ready_number;
            synced.messages_after.extend(waiting.messages_after);
        }
        done
    }

    /// Starts an fdatasync if one is due and none is in flight; true if it did.
    pub fn start_fsync(&mut self) -> bool {
        if self.fsync_in_flight.is_some() || self.waiting.is_empty() {
            return false;
        }
        self.fsync_in_flight = Some(self.synced + self.written.len() as u64);
        true
    }

    /// The fdatasync in flight completed: its records are durable; returns the persists it
    /// covered (the newest ready number and every held message), if any.
    pub fn finish_fsync(&mut self) -> Option<Synced> {
        let upto = self
            .fsync_in_flight
            .take()
            .expect("an fdatasync was in flight");
        while self.synced < upto {
            let record = self.written.pop_front().expect("counted records exist");
            self.durable.apply(record);
            self.synced += 1;
        }
        self.take_durable()
    }

    /// A crash: what was synced survives, plus a seeded prefix of the unsynced records.
    pub fn crash(mut self, rng: &mut Rng) -> DurableLog {
        let kept = rng.below(self.written.len() as u64 + 1);
        for record in self.written.drain(..).take(kept as usize) {
            self.durable.apply(record);
        }
        self.durable
    }
}
