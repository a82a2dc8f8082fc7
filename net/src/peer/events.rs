//! Reachability changes, queued for the member (raft's `report_unreachable`, the
//! `etcd_network_*` metrics).

use std::cell::Cell;

use super::error::PeerError;
use super::queue::BoundedQueue;

/// Events kept for a member that reads them late; beyond, new ones are dropped and counted.
/// A change per peer per lane per reconnect attempt at most, so 1024 covers many seconds of
/// flapping in a 5-member cluster.
const EVENTS_QUEUED_MAX: usize = 1024;

/// A change of a peer's reachability.
#[derive(Clone, Debug)]
pub enum PeerEvent {
    /// Every lane in use is connected again.
    Reachable {
        /// The peer's member ID.
        peer: u64,
    },
    /// A dial, handshake or write to the peer failed; frames to it are being dropped.
    Unreachable {
        /// The peer's member ID.
        peer: u64,
        /// Why (a refusal names etcd's reason, e.g. the member was removed).
        error: PeerError,
    },
}

/// The queue of events and the count of those dropped.
pub(crate) struct Events {
    queue: BoundedQueue<PeerEvent>,
    pub dropped: Cell<u64>,
}

impl Events {
    pub fn new() -> Events {
        Events {
            queue: BoundedQueue::new(EVENTS_QUEUED_MAX, usize::MAX),
            dropped: Cell::new(0),
        }
    }

    pub fn push(&self, event: PeerEvent) {
        if self.queue.try_push(event, 0).is_err() {
            self.dropped.set(self.dropped.get() + 1);
        }
    }

    pub async fn next(&self) -> PeerEvent {
        self.queue
            .pop()
            .await
            .expect("the event queue is never closed")
    }
}
