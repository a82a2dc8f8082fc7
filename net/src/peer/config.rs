//! The transport's identity and limits, with the reasons for their defaults.

use std::time::Duration;

/// What raft puts in one append message at most, besides a single entry larger than this (raft
/// always sends at least one entry): the member must set raft's `max_size_per_msg` to at most
/// this.
pub const MESSAGE_ENTRIES_BYTES_MAX: usize = 1024 * 1024;

/// What a raft message adds around its entries (term, index, commit, entry headers, the
/// request's envelope); generous, since only the bound on allocation depends on it.
pub const FRAME_OVERHEAD_BYTES_MAX: usize = 256 * 1024;

/// A queue's bounds: frames and bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimit {
    /// Frames queued at most.
    pub frames: usize,
    /// Payload bytes queued at most (an empty queue still takes one frame of any allowed size).
    pub bytes: usize,
}

/// The transport's identity and limits.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// The cluster's ID; connections from other clusters are refused.
    pub cluster_id: u64,
    /// This member's ID.
    pub local_id: u64,
    /// The largest frame sent or accepted (checked by the sender, and by the receiver before
    /// it allocates).
    pub max_frame_bytes: usize,
    /// Per peer, the control lane's send queue. etcd buffers 4096 messages per stream; control
    /// messages are small (~100 bytes), so 4096 frames in 16 MiB.
    pub control_queue: QueueLimit,
    /// Per peer, the append lane's send queue: raft's in-flight window (256 messages) of
    /// appends, within 64 MiB.
    pub append_queue: QueueLimit,
    /// For all peers, control frames received and not yet taken by the member.
    pub control_inbox: QueueLimit,
    /// For all peers, append frames received and not yet taken by the member.
    pub append_inbox: QueueLimit,
    /// How often the control lane pings for the round-trip metric and to find out a silent
    /// peer (1 s: a ping is 13 bytes each way).
    pub ping_interval: Duration,
    /// How long the control lane may go without a pong before its connection counts as dead
    /// and is redialed (5 s, etcd's `ConnReadTimeout`; a partition sends no FIN).
    pub pong_timeout: Duration,
}

impl TransportConfig {
    /// The configuration for a member whose clients may send `max_request_bytes`
    /// (`--max-request-bytes`): a frame holds at most one such request, or a batch of entries
    /// of [`MESSAGE_ENTRIES_BYTES_MAX`], with its overhead.
    pub fn new(cluster_id: u64, local_id: u64, max_request_bytes: usize) -> TransportConfig {
        let max_frame_bytes =
            max_request_bytes.max(MESSAGE_ENTRIES_BYTES_MAX) + FRAME_OVERHEAD_BYTES_MAX;
        let append_bytes = (64 * 1024 * 1024).max(4 * max_frame_bytes);
        TransportConfig {
            cluster_id,
            local_id,
            max_frame_bytes,
            control_queue: QueueLimit {
                frames: 4096,
                bytes: 16 * 1024 * 1024,
            },
            append_queue: QueueLimit {
                frames: 256,
                bytes: append_bytes,
            },
            control_inbox: QueueLimit {
                frames: 4096,
                bytes: 16 * 1024 * 1024,
            },
            ping_interval: Duration::from_secs(1),
            pong_timeout: Duration::from_secs(5),
            append_inbox: QueueLimit {
                frames: 256,
                bytes: append_bytes,
            },
        }
    }
}
