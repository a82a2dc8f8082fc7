//! Lanes: separate TCP connections per peer pair, so a small raft message never waits behind a
//! large one (etcd #7970: heartbeats queued behind a big append caused spurious elections).

/// Which connection a frame rides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Small raft messages: heartbeats, votes, read-index, append responses.
    Control,
    /// Appends (MsgAppend), up to the frame limit each.
    Append,
    /// One connection per snapshot transfer, streamed in chunks.
    Snapshot,
}

impl Lane {
    /// The lanes that carry frames through `Transport::send`.
    pub const FRAMED: [Lane; 2] = [Lane::Control, Lane::Append];

    /// The byte that names this lane in a handshake.
    pub(crate) fn to_wire(self) -> u8 {
        match self {
            Lane::Control => 0,
            Lane::Append => 1,
            Lane::Snapshot => 2,
        }
    }

    /// The lane a handshake byte names, if any.
    pub(crate) fn from_wire(byte: u8) -> Option<Lane> {
        match byte {
            0 => Some(Lane::Control),
            1 => Some(Lane::Append),
            2 => Some(Lane::Snapshot),
            _ => None,
        }
    }

    /// The lane's index among `FRAMED` (panics for `Snapshot`, which has no queue).
    pub(crate) fn framed_index(self) -> usize {
        match self {
            Lane::Control => 0,
            Lane::Append => 1,
            Lane::Snapshot => unreachable!("the snapshot lane has no frame queue"),
        }
    }

    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Lane::Control => "control",
            Lane::Append => "append",
            Lane::Snapshot => "snapshot",
        }
    }
}
