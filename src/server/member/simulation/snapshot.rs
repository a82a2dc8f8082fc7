//! A raft snapshot in flight between simulated members: the leader's half of
//! `snapshot_sender` (raft's MsgSnapshot becomes a copy of the state machine's last durable
//! checkpoint, with that copy's own index, its term from the leader's log, and the membership
//! raft sent) and the hard state the receiver commits with it (`snapshot_installer::take`).
//! The world carries it like a stream on the snapshot lane: it may break (the sender hears a
//! failure), arrive late, or be replayed long after as a stale copy.

use raft::prelude::{HardState, Message, SnapshotMetadata};

use super::kv::Kv;
use super::member::Member;

pub struct Transfer {
    pub from: u64,
    pub to: u64,
    /// The sender's incarnation: its verdict reaches only the life that started it.
    pub sender_incarnation: u64,
    pub metadata: SnapshotMetadata,
    pub kv: Kv,
    /// Whether a sender waits for this copy's verdict (a replayed stale copy has none).
    pub awaited: bool,
}

impl Transfer {
    /// The copy `leader` streams for raft's MsgSnapshot `message`; `Err` when the copy's term
    /// is no longer in the leader's log (the real sender then reports a failure).
    pub fn for_message(
        message: &Message,
        leader: &Member,
        sender_incarnation: u64,
    ) -> Result<Transfer, String> {
        let kv = leader.kv.durable().clone();
        let index = kv.applied_index;
        let term = leader
            .node
            .term_of(index)
            .ok_or_else(|| format!("the log no longer knows the term of {index}"))?;
        let mut metadata = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        metadata.set_conf_state(
            message
                .get_snapshot()
                .get_metadata()
                .get_conf_state()
                .clone(),
        );
        Ok(Transfer {
            from: message.from,
            to: message.to,
            sender_incarnation,
            metadata,
            kv,
            awaited: true,
        })
    }

    /// The hard state the receiver commits with the copy, from the one its log last wrote:
    /// that term and vote unless the snapshot's term is newer, and the snapshot's index as
    /// the commit.
    pub fn hard_state(&self, written: HardState) -> HardState {
        let mut hard_state = written;
        if hard_state.term < self.metadata.term {
            hard_state = HardState {
                term: self.metadata.term,
                ..HardState::default()
            };
        }
        hard_state.commit = self.metadata.index;
        hard_state
    }

    /// A copy of this transfer replayed later, with no sender waiting for it.
    pub fn stale_copy(&self) -> Transfer {
        Transfer {
            from: self.from,
            to: self.to,
            sender_incarnation: self.sender_incarnation,
            metadata: self.metadata.clone(),
            kv: self.kv.clone(),
            awaited: false,
        }
    }
}
