//! The member's log writer: raft's writes go into the WAL in the order raft handed them out,
//! queued without waiting, so one fdatasync covers many raft steps; then they are reported
//! durable in the same order. It also stores the log's metadata (raft's hard state and the
//! checkpoint's snapshot metadata) — it is the one writer of that metadata.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use basalt_wal::{Queued, Wal};
use prost::Message as _;
use raft::prelude::{HardState, Message, SnapshotMetadata};

use crate::node::{LogMetadata, Persist};

/// What the persister writes into the log, in order.
pub enum LogWork {
    Raft(Box<Persist>),
    /// Let the log forget entries up to this index (the engine is synced through it first).
    Checkpoint(u64),
}

/// A write queued into the log: raft's ready number, the WAL position that makes it durable
/// (none when it wrote nothing), and the messages to send once it is durable.
pub type DurableWait = (u64, Option<Queued>, Vec<Message>);

pub struct LogWriter {
    wal: Rc<Wal>,
    /// Work handed out by raft and the checkpoints, in order, for the persister task. Its
    /// length is bounded by raft: a Ready's write is queued at once and the persister only
    /// queues into the WAL (whose pending buffer is bounded), so it drains as fast as raft
    /// produces.
    work: RefCell<VecDeque<LogWork>>,
    work_wake: RefCell<Option<Waker>>,
    /// Queued writes waiting to become durable, in order, for the durability waiter task.
    durable: RefCell<VecDeque<DurableWait>>,
    durable_wake: RefCell<Option<Waker>>,
    /// The newest hard state raft handed out (a checkpoint stores it again). It is in the WAL
    /// unless `hard_state_held` says it is a commit-only change still held back.
    persisted_hard_state: RefCell<HardState>,
    /// Whether `persisted_hard_state` is a commit-only change not yet queued into the WAL: it
    /// goes out with the next write, so a commit costs no durable write of its own.
    hard_state_held: Cell<bool>,
    /// The snapshot metadata of the last checkpoint, which every metadata record carries.
    snapshot: RefCell<SnapshotMetadata>,
    /// Work taken off a queue and not finished yet (being written, or waiting for its
    /// fdatasync): with both queues empty and this zero, everything handed out is durable.
    in_hand: Cell<usize>,
}

impl LogWriter {
    pub fn new(wal: Rc<Wal>, hard_state: HardState, snapshot: SnapshotMetadata) -> LogWriter {
        LogWriter {
            wal,
            work: RefCell::new(VecDeque::new()),
            work_wake: RefCell::new(None),
            durable: RefCell::new(VecDeque::new()),
            durable_wake: RefCell::new(None),
            persisted_hard_state: RefCell::new(hard_state),
            hard_state_held: Cell::new(false),
            snapshot: RefCell::new(snapshot),
            in_hand: Cell::new(0),
        }
    }

    /// Whether every write handed to the log is durable: nothing queued, nothing being
    /// written, nothing waiting for its fdatasync. A graceful stop waits for it.
    pub fn is_drained(&self) -> bool {
        self.work.borrow().is_empty() && self.durable.borrow().is_empty() && self.in_hand.get() == 0
    }

    /// The persister finished the work `next_work` handed it.
    pub fn finished_work(&self) {
        assert!(
            self.in_hand.get() > 0,
            "finished work that was never handed out"
        );
        self.in_hand.set(self.in_hand.get() - 1);
    }

    /// Hands `work` to the persister.
    pub fn push(&self, work: LogWork) {
        self.work.borrow_mut().push_back(work);
        if let Some(waker) = self.work_wake.borrow_mut().take() {
            waker.wake();
        }
    }

    /// The persister's next work, in order.
    pub async fn next_work(&self) -> LogWork {
        poll_fn(|cx| match self.work.borrow_mut().pop_front() {
            Some(work) => {
                self.in_hand.set(self.in_hand.get() + 1);
                Poll::Ready(work)
            }
            None => {
                *self.work_wake.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Queues raft's write into the WAL (a truncation, entries, the hard state) without
    /// waiting for it to be durable, and hands it to the durability waiter. A commit-only
    /// hard state is held back instead (see `Persist::commit_only`) and queued with the next
    /// write; its wait is answered once the writes before it are durable.
    pub async fn write(&self, persist: Persist) -> Result<(), String> {
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
        if persist.commit_only {
            let hard_state = persist
                .hard_state
                .expect("a commit-only write carries a hard state");
            assert!(
                persist.entries.is_empty() && persist.truncate_after.is_none(),
                "a commit-only write carries nothing else"
            );
            *self.persisted_hard_state.borrow_mut() = hard_state;
            self.hard_state_held.set(true);
            self.hand_to_durability_waiter((persist.ready_number, None, persist.messages_after));
            return Ok(());
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
        let hard_state = match persist.hard_state {
            Some(hard_state) => Some(hard_state),
            // Something is written anyway: a held-back commit rides along.
            None if last.is_some() && self.hard_state_held.get() => {
                Some(self.persisted_hard_state.borrow().clone())
            }
            None => None,
        };
        if let Some(hard_state) = hard_state {
            *self.persisted_hard_state.borrow_mut() = hard_state.clone();
            self.hard_state_held.set(false);
            let metadata = LogMetadata {
                hard_state,
                snapshot: self.snapshot.borrow().clone(),
            };
            last = Some(
                self.wal
                    .queue_metadata(&metadata.encode())
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        self.hand_to_durability_waiter((persist.ready_number, last, persist.messages_after));
        Ok(())
    }

    fn hand_to_durability_waiter(&self, wait: DurableWait) {
        self.durable.borrow_mut().push_back(wait);
        if let Some(waker) = self.durable_wake.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Waits for the oldest write not yet reported to be durable, and returns the newest ready
    /// number that is durable with it and every message those writes held back. Everything one
    /// fdatasync made durable is reported at once, so raft commits and the engine applies it
    /// as one batch.
    pub async fn next_durable(&self) -> Result<(u64, Vec<Message>), String> {
        let (mut ready_number, queued, mut messages) =
            poll_fn(|cx| match self.durable.borrow_mut().pop_front() {
                Some(item) => {
                    self.in_hand.set(self.in_hand.get() + 1);
                    Poll::Ready(item)
                }
                None => {
                    *self.durable_wake.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
        if let Some(queued) = queued {
            // On an error the member stops at once; the count no longer matters.
            self.wal
                .wait_durable(queued)
                .await
                .map_err(|error| format!("the write-ahead log failed: {error}"))?;
        }
        self.in_hand.set(self.in_hand.get() - 1);
        let mut pending = self.durable.borrow_mut();
        while let Some((number, queued, _)) = pending.front() {
            if !queued.is_none_or(|q| self.wal.is_durable(q)) {
                break;
            }
            ready_number = *number;
            let (_, _, after) = pending.pop_front().expect("front was just seen");
            messages.extend(after);
        }
        Ok((ready_number, messages))
    }

    /// Stores a checkpoint: the metadata record carries `snapshot` (index, term, membership)
    /// with the hard state from now on, and once it is durable the WAL releases the segments
    /// below it, so a restart replays only what follows. The caller has made the engine
    /// durable through `snapshot.index` first.
    pub async fn store_checkpoint(&self, snapshot: SnapshotMetadata) -> Result<(), String> {
        let index = snapshot.index;
        *self.snapshot.borrow_mut() = snapshot.clone();
        let metadata = LogMetadata {
            hard_state: self.persisted_hard_state.borrow().clone(),
            snapshot,
        };
        self.hard_state_held.set(false);
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
        Ok(())
    }

    /// The hard state most recently queued into the log (term and vote a snapshot install
    /// keeps).
    pub fn persisted_hard_state(&self) -> HardState {
        self.persisted_hard_state.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_wal::WalOptions;
    use raft::prelude::Entry;

    fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
        HardState { term, vote, commit }
    }

    fn entry(index: u64) -> Entry {
        Entry {
            index,
            term: 1,
            data: vec![index as u8],
            ..Entry::default()
        }
    }

    /// An ack that rides in a write's `messages_after`, told apart by its index.
    fn ack(index: u64) -> Message {
        Message {
            index,
            ..Message::default()
        }
    }

    fn durable_metadata(wal: &Wal) -> LogMetadata {
        LogMetadata::decode(&wal.metadata()).unwrap()
    }

    /// Goal: a commit-only hard state (`Persist::commit_only`) costs no WAL record of its own,
    /// yet reaches the log with the next write that carries entries, or with a checkpoint, and
    /// its durability wait is never answered ahead of the writes raft handed out before it
    /// (its acks promise only those). Method: drive a `LogWriter` over a real WAL and read the
    /// WAL's durable metadata after each step.
    #[test]
    fn a_commit_only_hard_state_is_held_back_and_rides_with_the_next_write() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = tempfile::tempdir().unwrap();
                let wal = Rc::new(Wal::open(dir.path(), WalOptions::default()).await.unwrap());
                let writer = LogWriter::new(
                    wal.clone(),
                    HardState::default(),
                    SnapshotMetadata::default(),
                );

                // Ready 1: two entries with a new term and vote; ready 2: the commit alone.
                writer
                    .write(Persist {
                        ready_number: 1,
                        entries: vec![entry(1), entry(2)],
                        hard_state: Some(hard_state(1, 1, 0)),
                        messages_after: vec![ack(1)],
                        ..Persist::default()
                    })
                    .await
                    .unwrap();
                writer
                    .write(Persist {
                        ready_number: 2,
                        hard_state: Some(hard_state(1, 1, 2)),
                        commit_only: true,
                        messages_after: vec![ack(2)],
                        ..Persist::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(writer.persisted_hard_state(), hard_state(1, 1, 2));
                // Every report up to ready 2 comes after ready 1's records are durable, with
                // the acks in the order raft handed them out.
                let mut acks = Vec::new();
                loop {
                    let (ready_number, messages) = writer.next_durable().await.unwrap();
                    assert_eq!(wal.last_index(), 2, "reported before ready 1 was durable");
                    assert_eq!(durable_metadata(&wal).hard_state, hard_state(1, 1, 0));
                    acks.extend(messages.iter().map(|m| m.index));
                    if ready_number == 2 {
                        break;
                    }
                }
                assert_eq!(acks, [1, 2]);
                assert!(writer.is_drained());
                assert_eq!(
                    wal.stats().records,
                    3,
                    "the commit-only hard state was written as a record of its own"
                );

                // Ready 3 writes nothing (an ack only): the held commit stays held.
                writer
                    .write(Persist {
                        ready_number: 3,
                        messages_after: vec![ack(3)],
                        ..Persist::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(writer.next_durable().await.unwrap().0, 3);
                assert_eq!(wal.stats().records, 3);

                // Ready 4 appends an entry and no hard state: the held commit rides along.
                writer
                    .write(Persist {
                        ready_number: 4,
                        entries: vec![entry(3)],
                        ..Persist::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(writer.next_durable().await.unwrap().0, 4);
                assert_eq!(wal.last_index(), 3);
                assert_eq!(durable_metadata(&wal).hard_state, hard_state(1, 1, 2));

                // Held again, then a checkpoint: its metadata record carries the held commit.
                writer
                    .write(Persist {
                        ready_number: 5,
                        hard_state: Some(hard_state(1, 1, 3)),
                        commit_only: true,
                        ..Persist::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(writer.next_durable().await.unwrap().0, 5);
                assert_eq!(durable_metadata(&wal).hard_state.commit, 2);
                let checkpoint = SnapshotMetadata {
                    index: 2,
                    term: 1,
                    ..SnapshotMetadata::default()
                };
                writer.store_checkpoint(checkpoint.clone()).await.unwrap();
                let stored = durable_metadata(&wal);
                assert_eq!(stored.hard_state, hard_state(1, 1, 3));
                assert_eq!(stored.snapshot, checkpoint);

                // Once written, it is not written again: the next entry goes alone.
                let records = wal.stats().records;
                writer
                    .write(Persist {
                        ready_number: 6,
                        entries: vec![entry(4)],
                        ..Persist::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(writer.next_durable().await.unwrap().0, 6);
                assert_eq!(wal.stats().records, records + 1);
                assert_eq!(durable_metadata(&wal), stored);
                drop(writer);
                Rc::try_unwrap(wal).ok().unwrap().close().await.unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
