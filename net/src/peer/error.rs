//! What goes wrong between peers: a listener's refusal (with etcd's wording) and the errors of
//! dialing, framing and snapshot streams.

use std::io;

/// Why a listener refused a connection. The texts are etcd's where it has one, so operators
/// grep for the same words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The dialer belongs to another cluster (etcd's `ErrClusterIDMismatch`).
    #[error("cluster ID mismatch")]
    ClusterIdMismatch,
    /// The dialer meant another member (etcd's stream handler answers this to a wrong `X-Raft-To`).
    #[error("to field mismatch")]
    WrongReceiver,
    /// The dialer was removed from the cluster (etcd's `errMemberRemoved`).
    #[error("the member has been permanently removed from the cluster")]
    Removed,
    /// The dialer speaks another protocol version (etcd's `errIncompatibleVersion`).
    #[error("incompatible version")]
    IncompatibleVersion,
    /// A reason this build does not know (a newer listener).
    #[error("{0}")]
    Other(String),
}

impl Refusal {
    /// The refusal a listener's reason text names.
    pub(crate) fn from_reason(reason: &str) -> Refusal {
        [
            Refusal::ClusterIdMismatch,
            Refusal::WrongReceiver,
            Refusal::Removed,
            Refusal::IncompatibleVersion,
        ]
        .into_iter()
        .find(|known| known.to_string() == reason)
        .unwrap_or_else(|| Refusal::Other(reason.to_string()))
    }
}

/// What can go wrong moving frames between peers.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PeerError {
    /// A socket operation failed (kept as text: errors are cloned into reachability events).
    #[error("socket: {0}")]
    Io(String),
    /// The listener refused the handshake.
    #[error("refused by the peer: {0}")]
    Refused(Refusal),
    /// The other side broke the protocol (unknown frame kind, bad handshake, ...).
    #[error("peer protocol: {0}")]
    Protocol(String),
    /// A frame's length exceeds the limit; checked before allocating.
    #[error("frame of {bytes} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The length the header announced.
        bytes: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// A step with a deadline took too long.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// No peer with this ID is known to the transport.
    #[error("unknown peer {0:x}")]
    UnknownPeer(u64),
    /// A peer URL could not be used.
    #[error("peer URL {url}: {problem}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A snapshot stream failed; both sides learn it (the text says which side and why).
    #[error("snapshot stream failed: {0}")]
    SnapshotFailed(String),
}

impl From<io::Error> for PeerError {
    fn from(error: io::Error) -> PeerError {
        PeerError::Io(error.to_string())
    }
}
