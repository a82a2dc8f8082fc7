//! How many owner operations wait on each client core's link to the raft owner
//! (`routing/owner_link.rs`), and how many the owner is working on, per core.
//!
//! Four counters instead of two gauges, so that no line is written by two cores: the client
//! core writes `sent` and `refused` on its line, the owner writes `taken` and `answered` on
//! another; a scrape subtracts. The reads are not one snapshot, so a difference may be off by
//! the calls that moved meanwhile (never negative: it is clamped).

use basalt_metrics::{CacheLinePadded, Counter};

/// One link's counters.
#[derive(Debug, Default)]
pub struct OwnerLinkDepth {
    /// Written by the client core.
    client: CacheLinePadded<ClientSide>,
    /// Written by the owner core.
    owner: CacheLinePadded<OwnerSide>,
}

#[derive(Debug, Default)]
struct ClientSide {
    /// Calls the core started to send (counted before a full channel makes it wait).
    sent: Counter,
    /// Calls the closed link refused (the owner stopped).
    refused: Counter,
}

#[derive(Debug, Default)]
struct OwnerSide {
    /// Calls the owner took from the channel.
    taken: Counter,
    /// Calls whose answer the owner sent.
    answered: Counter,
}

impl OwnerLinkDepth {
    /// On the client core: a call is about to be sent.
    pub fn on_send(&self) {
        self.client.sent.inc();
    }

    /// On the client core: the link refused the call.
    pub fn on_refused(&self) {
        self.client.refused.inc();
    }

    /// On the owner: a call was taken from the channel.
    pub fn on_taken(&self) {
        self.owner.taken.inc();
    }

    /// On the owner: a call's answer went back.
    pub fn on_answered(&self) {
        self.owner.answered.inc();
    }

    /// Calls sent and not yet taken by the owner: in the cross-core channel, or waiting for
    /// room in it.
    pub fn waiting(&self) -> u64 {
        // Read the owner's side first: what it took was sent before, so the difference
        // errs towards too many waiting rather than a wrap below zero.
        let taken = self.owner.taken.get();
        let sent = self.client.sent.get();
        sent.saturating_sub(self.client.refused.get())
            .saturating_sub(taken)
    }

    /// Calls the link carried (sent and not refused).
    pub fn carried(&self) -> u64 {
        let refused = self.client.refused.get();
        self.client.sent.get().saturating_sub(refused)
    }

    /// Calls the owner took and has not answered yet.
    pub fn in_flight(&self) -> u64 {
        let answered = self.owner.answered.get();
        self.owner.taken.get().saturating_sub(answered)
    }
}

#[cfg(test)]
mod tests {
    //! Goal: the depths follow a call through the link.
    use super::*;

    #[test]
    fn depths_follow_a_call() {
        let depth = OwnerLinkDepth::default();
        depth.on_send();
        depth.on_send();
        assert_eq!((depth.waiting(), depth.in_flight()), (2, 0));
        depth.on_taken();
        assert_eq!((depth.waiting(), depth.in_flight()), (1, 1));
        depth.on_refused();
        depth.on_answered();
        assert_eq!((depth.waiting(), depth.in_flight()), (0, 0));
        assert_eq!(depth.carried(), 1);
    }
}
