//! Whether a core that pulls events from the engine has watchers, for the owner to read before
//! it rings that core's doorbell: a core without watchers has nothing to publish, and waking it
//! after every apply batch cost a cross-core wake-up (an eventfd write here, a park and wake
//! with a handful of io_uring calls there) for every put, even with no watcher anywhere.
//!
//! The owner must never skip a ring a watcher needs. The handshake is the classic two-fence
//! one: the watching core counts a watcher in, fences, then reads the engine's revision to
//! start the watcher from; the owner publishes a commit to the engine, fences, then reads the
//! count. One of them sees the other: either the owner sees the watcher and rings, or the
//! watcher's start revision already covers the owner's commit (it needs no ring for it).

use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Arc;

/// The number of watchers on one core (plus creates in progress), shared with the owner.
#[derive(Clone, Default)]
pub struct WatcherPresence {
    count: Arc<AtomicUsize>,
}

impl WatcherPresence {
    /// Counts a watcher in; call before reading the revision the watcher starts from.
    pub fn enter(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Counts `watchers` out (removed, or a create that failed).
    pub fn leave(&self, watchers: usize) {
        let before = self.count.fetch_sub(watchers, Ordering::SeqCst);
        assert!(
            before >= watchers,
            "{watchers} watchers left a core that counted {before}"
        );
    }

    /// The owner's side: whether the core has a watcher that may need what the owner just
    /// published to the engine (call after the publish).
    pub fn any_after_publish(&self) -> bool {
        fence(Ordering::SeqCst);
        self.count.load(Ordering::SeqCst) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_watchers_in_and_out() {
        let presence = WatcherPresence::default();
        assert!(!presence.any_after_publish());
        presence.enter();
        presence.enter();
        assert!(presence.any_after_publish());
        presence.leave(1);
        assert!(presence.any_after_publish());
        presence.leave(1);
        assert!(!presence.any_after_publish());
    }

    #[test]
    #[should_panic(expected = "left a core that counted")]
    fn leaving_more_than_entered_is_a_bug() {
        let presence = WatcherPresence::default();
        presence.enter();
        presence.leave(2);
    }
}
